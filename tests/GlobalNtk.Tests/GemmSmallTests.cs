using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using GlobalNtk.Dense;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// Shallow and tiny products (k ≤ 8, m·n·k ≤ 128, 8 × 8 × 8) and deeper ones over one vector of columns (k ≤ 24): the
/// AVX-512 <c>Avx512Kernel.Shallow</c> and <c>Deep</c> kernels (B's k rows of a strip held in registers) called directly and through <see cref="Gemm.Multiply(Trans, Trans, int, int, int, double, ReadOnlySpan{double}, int, ReadOnlySpan{double}, int, double, Span{double}, int)"/>,
/// in both precisions and every transpose pair, with padded strides, starts off 64-byte alignment,
/// guard elements around C and β = 0 on a NaN-filled C. Each result is checked against a naive float64
/// product and, where the AVX-512 kernel runs, bit for bit against the packed path (the shallow kernel
/// keeps its FMA chains and epilogue). The other kernels (AVX2, scalar) are checked against the naive
/// product on the same cases.
/// </summary>
public class GemmSmallTests
{
    public static IEnumerable<object[]> Precisions() => [["f64"], ["f32"]];

    /// <summary>(α, β): the bench's (1, 0) (stored sums as they are), β = 0 with α ≠ 1, and general ones.</summary>
    private static readonly (double Alpha, double Beta)[] Scalars = [(1, 0), (-0.7, 1.3), (2, 0), (1, -1), (1.5, 1)];

    /// <summary>
    /// Every depth k = 1..8, heights around the 4-row routing limit and past several rows, widths at every
    /// cut of a strip's vectors (L − 1, L, L + 1, 3L, 3L + 1, two strips and a cut one), all four transpose
    /// pairs: Shallow and Gemm.Multiply give the packed path's bits and agree with the naive product.
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void ShallowProductsMatchNaiveAndThePackedPathBits(string precision)
    {
        if (precision == "f64") Shallow<double>(); else Shallow<float>();
    }

    private static void Shallow<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(61);
        int l = Vector512<T>.Count, caseIndex = 0, routed = 0;
        int[] heights = [2, 3, 4, 5, 8, 9, 17];
        int[] widths = [2, 3, l - 1, l, l + 1, 2 * l + 3, 3 * l, 3 * l + 1, 7 * l + 2];
        for (int k = 1; k <= 8; k++)
            foreach (int m in heights)
                foreach (int n in widths)
                {
                    Trans ta = (caseIndex & 1) == 0 ? Trans.No : Trans.Yes;
                    Trans tb = (caseIndex & 2) == 0 ? Trans.No : Trans.Yes;
                    var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                    if (Check<T>(rng, ta, tb, m, n, k, alpha, beta, pad: caseIndex % 3, offset: 1 + caseIndex % 2)) routed++;
                    caseIndex++;
                }
        // The routing really sends most of these to Shallow (the rest: 2–4 rows over several strips, or a narrow C).
        Assert.True(routed > caseIndex / 2 || !Avx512F.IsSupported, $"only {routed} of {caseIndex} cases take the shallow kernel");
    }

    /// <summary>
    /// Every transpose pair and (α, β) on the shapes of the sweep's shallow and tiny rows (2471×3×2, 389×4×2,
    /// 45×11×3, 490×2×1, 7×60×5, 6×92×6, 8×8×8, 21×3×2, 3×8×4, 3×6×3) and tiny products deeper than 8
    /// (2×2×32, 3×3×14: the direct path).
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void SweepShapesMatchNaiveAndThePackedPathBits(string precision)
    {
        if (precision == "f64") SweepShapes<double>(); else SweepShapes<float>();
    }

    private static void SweepShapes<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(62);
        int caseIndex = 0;
        foreach (var (m, n, k) in new[] { (2471, 3, 2), (389, 4, 2), (45, 11, 3), (490, 2, 1), (7, 60, 5), (6, 92, 6), (8, 8, 8), (21, 3, 2), (3, 8, 4), (3, 6, 3), (2, 2, 32), (3, 3, 14) })
            foreach (Trans ta in new[] { Trans.No, Trans.Yes })
                foreach (Trans tb in new[] { Trans.No, Trans.Yes })
                {
                    var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                    Check<T>(rng, ta, tb, m, n, k, alpha, beta, pad: caseIndex % 3, offset: caseIndex % 4);
                    caseIndex++;
                }
    }

    /// <summary>
    /// One vector of columns at depths 9..24 (<c>Avx512Kernel.Deep</c>: B's k rows in registers; Gemm routes float32 with
    /// 9–16 columns there, and the kernel is also run directly on float64's up to 8): every depth, widths at the vector's
    /// cuts, heights from 2 to several 8-row blocks, all transposes and (α, β).
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void DeepSingleVectorProductsMatchNaiveAndThePackedPathBits(string precision)
    {
        if (precision == "f64") Deep<double>(); else Deep<float>();
    }

    private static void Deep<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(65);
        int l = Vector512<T>.Count, caseIndex = 0, routed = 0;
        int[] heights = [2, 3, 5, 9, 17, 40];
        int[] widths = typeof(T) == typeof(float) ? [9, 12, 15, 16] : [2, 5, 7, 8];
        for (int k = 9; k <= 24; k++)
            foreach (int m in heights)
                foreach (int n in widths)
                {
                    Trans ta = (caseIndex & 1) == 0 ? Trans.No : Trans.Yes;
                    Trans tb = (caseIndex & 2) == 0 ? Trans.No : Trans.Yes;
                    var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                    if (Check<T>(rng, ta, tb, m, n, k, alpha, beta, pad: caseIndex % 3, offset: 1 + caseIndex % 2)) routed++;
                    caseIndex++;
                }
        Assert.True(typeof(T) == typeof(double) || routed == caseIndex || !Avx512F.IsSupported, $"only {routed} of {caseIndex} cases take the deep kernel");
    }

    /// <summary>The AVX2 and scalar kernels on shallow products (forced on this thread only) against the naive product.</summary>
    [Theory]
    [InlineData("f64", "Avx2")]
    [InlineData("f32", "Avx2")]
    [InlineData("f64", "Scalar")]
    [InlineData("f32", "Scalar")]
    public void OtherKernelsMatchNaiveOnShallowProducts(string precision, string kernel)
    {
        var kind = Enum.Parse<Gemm.KernelKind>(kernel);
        if (kind == Gemm.KernelKind.Avx2 && !(Fma.IsSupported && Avx2.IsSupported)) return;
        var saved = Gemm.ForcedKernel;
        Gemm.ForcedKernel = kind;
        try
        {
            var rng = new Random(63);
            int caseIndex = 0;
            foreach (var (m, n, k) in new[] { (2471, 3, 2), (45, 11, 3), (7, 60, 5), (8, 8, 8), (3, 8, 4), (17, 33, 7), (5, 2, 1), (20, 16, 14), (300, 12, 9) })
                foreach (Trans ta in new[] { Trans.No, Trans.Yes })
                    foreach (Trans tb in new[] { Trans.No, Trans.Yes })
                    {
                        var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                        if (precision == "f64") Check<double>(rng, ta, tb, m, n, k, alpha, beta, pad: caseIndex % 3, offset: 1 + caseIndex % 2);
                        else Check<float>(rng, ta, tb, m, n, k, alpha, beta, pad: caseIndex % 3, offset: 1 + caseIndex % 2);
                        caseIndex++;
                    }
        }
        finally
        {
            Gemm.ForcedKernel = saved;
        }
    }


    /// <summary>
    /// Runs one product through Gemm (the selected kernel) and, where AVX-512 runs and Gemm selects it,
    /// through Shallow directly and the packed path (<c>GemmDriver.Serial</c>): the three must agree bit for
    /// bit over the whole array (C, its padding and the guards). Returns whether Gemm routes it to Shallow.
    /// Naive bound: C = α·Σ_p a_p b_p + β·c computed in T by a chain of k fused multiply-adds, then α·s
    /// (+ β·c, fused) has rounding error ≤ γ_{k+2}·(|α|·Σ_p|a_p b_p| + |β|·|c|), γ_j = j·u/(1 − j·u), u = ε/2
    /// (Higham, inner products); the float64 reference adds at most k·u₆₄ of the same scale. 4·(k+2)·ε
    /// covers both with a factor ≥ 4 to spare for k ≤ 32.
    /// </summary>
    private static unsafe bool Check<T>(Random rng, Trans ta, Trans tb, int m, int n, int k, double alpha, double beta, int pad, int offset)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int aRows = ta == Trans.No ? m : k, aCols = ta == Trans.No ? k : m;
        int bRows = tb == Trans.No ? k : n, bCols = tb == Trans.No ? n : k;
        int lda = aCols + pad, ldb = bCols + pad, ldc = n + pad;
        // A and B end exactly at their arrays' ends (C is followed by guards).
        T[] a = Random<T>(rng, offset + (aRows - 1) * lda + aCols), b = Random<T>(rng, offset + (bRows - 1) * ldb + bCols);
        int cEnd = offset + (m - 1) * ldc + n; // 8 guard rows follow C; `offset` guards precede it
        T[] c = Random<T>(rng, cEnd + 8 * ldc);
        if (beta == 0) // β = 0 must overwrite C without reading it
            for (int i = 0; i < m; i++) c.AsSpan(offset + i * ldc, n).Fill(T.NaN);
        T[] c0 = (T[])c.Clone();
        T al = T.CreateTruncating(alpha), be = T.CreateTruncating(beta);
        GemmGeneric.Multiply(ta, tb, m, n, k, al, a.AsSpan(offset), lda, b.AsSpan(offset), ldb, be, c.AsSpan(offset), ldc);
        bool shallow = false;
        if (Avx512F.IsSupported && Gemm.SelectedKernel == Gemm.KernelKind.Avx512)
        {
            shallow = (Avx512Kernel<T>.TakesShallow(ta, tb, m, n, k) || Avx512Kernel<T>.TakesDeep(ta, m, n, k)) && (long)m * n * k <= Gemm.DirectProduct;
            T[] direct = (T[])c0.Clone(), packed = (T[])c0.Clone();
            fixed (T* pa = a, pb = b, pd = direct, pp = packed)
            {
                if (k > Avx512Kernel<T>.ShallowDepth && k <= Avx512Kernel<T>.DeepDepth && n <= Vector512<T>.Count)
                    Avx512Kernel<T>.Deep(ta, tb, m, n, k, al, pa + offset, lda, pb + offset, ldb, be, pd + offset, ldc);
                else if (k <= Avx512Kernel<T>.ShallowDepth)
                    Avx512Kernel<T>.Shallow(ta, tb, m, n, k, al, pa + offset, lda, pb + offset, ldb, be, pd + offset, ldc);
                else
                    Avx512Kernel<T>.DirectSliced(ta, tb, m, n, k, al, pa + offset, lda, pb + offset, ldb, be, pd + offset, ldc);
                GemmDriver<T, Avx512Kernel<T>>.Serial(ta, tb, m, n, k, al, pa + offset, lda, pb + offset, ldb, be, pp + offset, ldc);
            }
            // Gemm itself keeps the packed path's bits except where it routes to a dot form (GemmDot, the narrow
            // dot form), which sums along k in another order: those are held to the naive bound below only.
            bool dotForm = Gemm.UseDot<T>(ta, tb, m, n, k) || (m > 8 && k >= 8 && Avx512NarrowDot<T>.Takes(ta, tb, n, k))
                           || GemmTransposedCopy.ChangesBits<T>(ta, tb, m, n, k);
            for (int q = 0; q < c.Length; q++)
            {
                Assert.True(direct[q].Equals(packed[q]), $"{typeof(T).Name} {ta}/{tb} {m}×{n}×{k} α={alpha} β={beta}: element {q} shallow/direct {direct[q]}, packed {packed[q]}");
                Assert.True(dotForm || c[q].Equals(packed[q]), $"{typeof(T).Name} {ta}/{tb} {m}×{n}×{k} α={alpha} β={beta}: element {q} Gemm {c[q]}, packed {packed[q]}");
            }
        }
        GemmReference.AssertNaive(ta, tb, m, n, k, alpha, beta, a, lda, b, ldb, c0, c, ldc, offset, cEnd, $"pad={pad}");
        return shallow;
    }

    private static T[] Random<T>(Random rng, int count) where T : IFloatingPointIeee754<T>
        => Array.ConvertAll(TestMath.Uniform(rng, count), v => T.CreateTruncating(v));
}
