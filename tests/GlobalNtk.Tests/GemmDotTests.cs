using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using GlobalNtk.Dense;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// The dot / axpy forms of <c>GemmDot</c> (one column of C, one row of C over a transposed B, A·Bᵀ with few
/// rows) in both precisions: every k tail modulo the vector width, m and n from 1 past the 4×4 dot tile and the
/// 4-vector axpy block, every transpose pair, α/β (β = 0 on a C full of NaN), padded strides, starts off any
/// 64-byte boundary, guard elements around C; through <see cref="Gemm"/> under each kernel the CPU runs
/// (AVX-512 routes these shapes to GemmDot, AVX2 and scalar to their own paths) and, with AVX-512, on the
/// kernel directly for shapes its routing sends elsewhere.
/// </summary>
public class GemmDotTests
{
    public static IEnumerable<object[]> Precisions() => [["f64"], ["f32"]];

    private static readonly (double Alpha, double Beta)[] Scalars = [(1, 0), (-0.7, 1.3), (2, 1), (1, -1), (0.5, 0)];

    /// <summary>One column of C (n = 1), all four transpose pairs, every k tail and m across the blocks.</summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void OneColumnMatchesNaive(string precision)
    {
        if (precision == "f64") OneColumn<double>(); else OneColumn<float>();
    }

    private static void OneColumn<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(120);
        int w = Vector512<T>.Count, caseIndex = 0;
        // m: below, at and past a vector, the 4-vector axpy block and the 4-row dot tile; k: 1..2w+1 (every tail, both
        // sides of the scalar chains), then deep.
        int[] ms = [1, 2, 3, 4, 5, 7, 9, w - 1, w, w + 1, 4 * w - 1, 4 * w, 4 * w + 1, 5 * w + 3, 9 * w + 5];
        var ks = Enumerable.Range(1, 2 * w + 1).Concat([3 * w + 3, 257]).ToArray();
        foreach (int m in ms)
            foreach (int k in ks)
            {
                Trans ta = (caseIndex & 1) == 0 ? Trans.No : Trans.Yes;
                Trans tb = (caseIndex & 2) == 0 ? Trans.No : Trans.Yes;
                var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                CheckAllKernels<T>(rng, ta, tb, m, 1, k, alpha, beta, pad: caseIndex % 3, offset: 1 + caseIndex % 2);
                caseIndex++;
            }
    }

    /// <summary>
    /// One column over a stored A larger than the axpy slab (several slabs, later ones add to C), A·x over a
    /// strided x longer than the stack gather (a rented buffer), both precisions and all transpose pairs; and one
    /// row of Aᵀ·Bᵀ over a strided column of A, short and long.
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void LargeColumnsMatchNaive(string precision)
    {
        if (precision == "f64") LargeColumns<double>(); else LargeColumns<float>();
    }

    private static void LargeColumns<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(121);
        int caseIndex = 0;
        // (300, 1300) f64 and (100, 6000) are over L2 with short rows: Aᵀ·x streams A through GemmVector.
        foreach (var (m, k) in new[] { (300, 700), (37, 2500), (5, 4100), (300, 1300), (100, 6000) })
            foreach (Trans ta in new[] { Trans.No, Trans.Yes })
                foreach (Trans tb in new[] { Trans.No, Trans.Yes })
                {
                    var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                    CheckAllKernels<T>(rng, ta, tb, m, 1, k, alpha, beta, pad: 1 + caseIndex % 2, offset: caseIndex % 3);
                    caseIndex++;
                }
        // One row of Aᵀ·Bᵀ: the column of the stored A is gathered (on the stack, then into a rented buffer).
        CheckAllKernels<T>(rng, Trans.Yes, Trans.Yes, 1, 7, 1000, -0.7, 1.3, pad: 2, offset: 1);
        CheckAllKernels<T>(rng, Trans.Yes, Trans.Yes, 1, 7, 3000, 1, 0, pad: 2, offset: 1);
    }

    /// <summary>
    /// A·Bᵀ and Aᵀ·Bᵀ with few rows (m = 1..16: every height of the last dot tile, past the dot-form limit) by
    /// n = 1..9 and wider (every width of the last group of 4 rows of B), every k tail.
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void FewRowsOverTransposedBMatchNaive(string precision)
    {
        if (precision == "f64") FewRows<double>(); else FewRows<float>();
    }

    private static void FewRows<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(122);
        int w = Vector512<T>.Count, caseIndex = 0;
        int[] ks = [.. Enumerable.Range(1, w + 1), 2 * w, 2 * w + 3, 4 * w + 1, 100, 600];
        int[] ns = [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 40];
        for (int m = 1; m <= 16; m++)
            foreach (int n in ns)
            {
                int k = ks[caseIndex % ks.Length];
                Trans ta = m == 1 && (caseIndex & 1) == 1 ? Trans.Yes : Trans.No; // Aᵀ·Bᵀ in dot form only for one row
                var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                CheckAllKernels<T>(rng, ta, Trans.Yes, m, n, k, alpha, beta, pad: caseIndex % 3, offset: 1 + caseIndex % 2);
                caseIndex++;
            }
    }

    /// <summary>
    /// The AVX-512 dot kernel itself on A·Bᵀ for every tile height 1..4 (and 5..9: a full tile plus each remainder),
    /// n across the 4-row groups, every k tail (1..2w+1, including the unrolled one-row loop) and a deep k,
    /// whatever <see cref="Gemm"/> would route them to.
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void DotKernelMatchesNaiveForEveryTileAndTail(string precision)
    {
        if (!Avx512F.IsSupported) return; // the kernel is AVX-512 only; Gemm never selects it here (GemmDirectTests checks)
        if (precision == "f64") DotKernel<double>(); else DotKernel<float>();
    }

    private static void DotKernel<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(123);
        int w = Vector512<T>.Count, caseIndex = 0;
        for (int m = 1; m <= 9; m++)
            foreach (int n in new[] { 1, 2, 3, 4, 5, 8, 11 })
                foreach (int k in Enumerable.Range(1, 2 * w + 1).Concat([5 * w - 1]))
                {
                    var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                    Check<T>(rng, Trans.No, Trans.Yes, m, n, k, alpha, beta, pad: caseIndex % 3, offset: 1 + caseIndex % 2, kernelDirectly: true);
                    caseIndex++;
                }
    }

    /// <summary>With AVX-512 the shapes of this class do run on GemmDot (so the cases above test it), and wide or deep-but-tall ones do not.</summary>
    [Fact]
    public void RoutingSendsTheVectorAndFewRowShapesToTheDotKernel()
    {
        Assert.True(Gemm.UseDot<double>(Trans.No, Trans.No, 2046, 1, 1));
        Assert.True(Gemm.UseDot<float>(Trans.Yes, Trans.No, 2274, 1, 21));
        Assert.True(Gemm.UseDot<double>(Trans.Yes, Trans.Yes, 1, 844, 291));
        Assert.True(Gemm.UseDot<float>(Trans.No, Trans.Yes, 2, 20, 482));
        Assert.True(Gemm.UseDot<float>(Trans.No, Trans.Yes, 15, 22, 1280));
        Assert.True(Gemm.UseDot<double>(Trans.No, Trans.Yes, 4, 500, 12));
        Assert.False(Gemm.UseDot<float>(Trans.No, Trans.Yes, 4, 500, 12)); // one 16-lane step: the direct path
        Assert.True(Gemm.UseDot<double>(Trans.No, Trans.Yes, 7, 90, 33));
        Assert.False(Gemm.UseDot<float>(Trans.No, Trans.Yes, 7, 90, 33));
        Assert.False(Gemm.UseDot<double>(Trans.No, Trans.Yes, 16, 64, 256)); // a full 16-row tile
        Assert.False(Gemm.UseDot<double>(Trans.Yes, Trans.Yes, 3, 226, 728)); // rows of Aᵀ are not contiguous
        Assert.False(Gemm.UseDot<double>(Trans.No, Trans.No, 2, 20, 482));
        Assert.False(Gemm.UseDot<double>(Trans.No, Trans.Yes, 8, 3000, 3000)); // over the one-thread limit: packed, split
    }

    /// <summary>Runs the case under every kernel this CPU supports (the forced kernel is per thread).</summary>
    private static void CheckAllKernels<T>(Random rng, Trans ta, Trans tb, int m, int n, int k, double alpha, double beta, int pad, int offset)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var kinds = new List<Gemm.KernelKind> { Gemm.KernelKind.Scalar };
        if (Fma.IsSupported && Avx2.IsSupported) kinds.Add(Gemm.KernelKind.Avx2);
        if (Avx512F.IsSupported) kinds.Add(Gemm.KernelKind.Avx512);
        var saved = Gemm.ForcedKernel;
        try
        {
            foreach (var kind in kinds)
            {
                Gemm.ForcedKernel = kind;
                int seed = rng.Next();
                Check<T>(new Random(seed), ta, tb, m, n, k, alpha, beta, pad, offset, kernelDirectly: false, kind.ToString());
            }
        }
        finally { Gemm.ForcedKernel = saved; }
    }

    /// <summary>
    /// Checks one product against <see cref="GemmReference.AssertNaive"/> (any summation order of the lane
    /// accumulators, horizontal sums, axpy slabs added into C, or a scalar chain is within its bound; a wrong tail
    /// mask, a dropped or repeated row or lane, or a wrong stride is off by about one term, far outside it), on
    /// padded, offset operands with guards around C (<see cref="GemmCase{T}"/>).
    /// </summary>
    private static unsafe void Check<T>(Random rng, Trans ta, Trans tb, int m, int n, int k, double alpha, double beta,
        int pad, int offset, bool kernelDirectly, string kernel = "Avx512 GemmDot")
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = new GemmCase<T>(rng, ta, tb, m, n, k, alpha, beta, pad, offset);
        if (kernelDirectly)
            g.Run((a, b, c) => GemmDot.Run(ta, tb, m, n, k, g.Al, a, g.Lda, b, g.Ldb, g.Be, c, g.Ldc));
        else
            GemmGeneric.Multiply(ta, tb, m, n, k, g.Al, g.A.AsSpan(offset), g.Lda, g.B.AsSpan(offset), g.Ldb, g.Be, g.C.AsSpan(offset), g.Ldc);
        g.AssertNaive($"{kernel} pad={pad} offset={offset}");
    }
}
