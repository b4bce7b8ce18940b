using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using GlobalNtk.Dense;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// The AVX2 kernel's paths in both precisions, run on its blocked driver on one thread (the kernel
/// the library picks on CPUs without AVX-512): packed tiles cut by the edges of C (every height 1–6
/// of the last row panel, every width of the last column tile, the last vector under a lane mask)
/// written straight into C, and an untransposed A read where it is stored. Against a float64 naive
/// product, and bit for bit between the stored-A and the packed-A path.
/// </summary>
public class GemmAvx2Tests
{
    public static IEnumerable<object[]> Precisions() => [["f64"], ["f32"]];

    private static bool Supported => Fma.IsSupported && Avx2.IsSupported;

    /// <summary>
    /// m = 7…12 (the last 6-row panel 1–6 rows high: the 3-row body for ≤ 3, the 6-row body with its
    /// stores cut for 4–5) and n = 1…NR+1 and 2·NR+3 (every cut of the last vector, and a masked tile
    /// after whole ones), A stored or transposed (packed), B stored or transposed, over two k-slices
    /// (the second accumulates onto C, reading it back under the mask). β = 0 runs on a C full of NaN.
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void EdgeTilesOfEveryHeightAndWidthMatchNaive(string precision)
    {
        if (!Supported) { Assert.NotEqual(Gemm.KernelKind.Avx2, Gemm.SelectedKernel); return; }
        if (precision == "f64") EveryEdge<double>(); else EveryEdge<float>();
    }

    private static void EveryEdge<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(41);
        int nr = Avx2Kernel<T>.NR, kc = Avx2Kernel<T>.KC, caseIndex = 0;
        var widths = Enumerable.Range(1, nr + 1).Append(2 * nr + 3).ToArray();
        for (int m = 7; m <= 12; m++)
            foreach (int n in widths)
            {
                Trans ta = (caseIndex & 1) == 0 ? Trans.No : Trans.Yes;
                Trans tb = (caseIndex & 2) == 0 ? Trans.No : Trans.Yes;
                var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                Check<T>(rng, ta, tb, m, n, kc + 3 + caseIndex % 2, alpha, beta, pad: caseIndex % 3, offset: 1 + caseIndex % 2);
                caseIndex++;
            }
    }

    /// <summary>Products of 1–6 rows (a single, partial row panel) of every width class, both transposes of A.</summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void ProductsOfOnePartialRowPanelMatchNaive(string precision)
    {
        if (!Supported) { Assert.NotEqual(Gemm.KernelKind.Avx2, Gemm.SelectedKernel); return; }
        if (precision == "f64") OnePanel<double>(); else OnePanel<float>();
    }

    private static void OnePanel<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(42);
        int l = Vector256<T>.Count, caseIndex = 0;
        for (int m = 1; m <= 6; m++)
            foreach (int n in new[] { 2, l, l + 1, 2 * l, 4 * l + 1 })
                foreach (Trans ta in new[] { Trans.No, Trans.Yes })
                {
                    var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                    Check<T>(rng, ta, caseIndex % 3 == 0 ? Trans.Yes : Trans.No, m, n, 5 + 7 * caseIndex % 40, alpha, beta,
                        pad: 1 + caseIndex % 2, offset: caseIndex % 3);
                    caseIndex++;
                }
    }

    /// <summary>
    /// Across the driver's block boundaries: two MC-row blocks of A (the stored A read at the second
    /// block's offset; the second block ragged), B̄ blocks of the full width NC and a ragged last one ending
    /// in a masked tile (the driver splits n evenly, so n = 3·NC − 5 gives NC, NC, NC − 5), three
    /// k-slices, every transpose pair.
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void BlockBoundariesMatchNaive(string precision)
    {
        if (!Supported) { Assert.NotEqual(Gemm.KernelKind.Avx2, Gemm.SelectedKernel); return; }
        if (precision == "f64") Blocks<double>(); else Blocks<float>();
    }

    private static void Blocks<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(43);
        int mc = Avx2Kernel<T>.MC, nc = Avx2Kernel<T>.NC, kc = Avx2Kernel<T>.KC, caseIndex = 0;
        foreach (var (m, n, k) in new[] { (mc + 13, Vector256<T>.Count + 3, 40), (mc + 4, 2, kc + 9), (9, 3 * nc - 5, 2 * kc + 5) })
            foreach (Trans ta in new[] { Trans.No, Trans.Yes })
                foreach (Trans tb in new[] { Trans.No, Trans.Yes })
                {
                    var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                    Check<T>(rng, ta, tb, m, n, k, alpha, beta, pad: 1 + caseIndex % 2, offset: caseIndex % 3);
                    caseIndex++;
                }
    }

    /// <summary>
    /// Reading an untransposed A where it is stored gives the bits of packing it: the same product
    /// run on A (stored-A tiles) and on an explicit copy of Aᵀ with ta = Yes (packed panels, the edge
    /// tiles on the padded panel) must agree exactly, over one and several k-slices and every edge.
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void StoredAIsBitIdenticalToPackedA(string precision)
    {
        if (!Supported) { Assert.NotEqual(Gemm.KernelKind.Avx2, Gemm.SelectedKernel); return; }
        if (precision == "f64") BitIdentical<double>(); else BitIdentical<float>();
    }

    private static unsafe void BitIdentical<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(44);
        int nr = Avx2Kernel<T>.NR, kc = Avx2Kernel<T>.KC, caseIndex = 0;
        foreach (var (m, n, k) in new[] { (2, 2, 1), (7, nr - 1, 13), (6, nr, 16), (17, 2 * nr + 5, 33), (64, 64, kc), (23, 3 * nr + 1, 2 * kc + 7) })
            foreach (Trans tb in new[] { Trans.No, Trans.Yes })
                foreach (var (alpha, beta) in Scalars)
                {
                    int pad = caseIndex++ % 3;
                    int lda = k + pad, ldt = m + pad, ldb = (tb == Trans.No ? n : k) + pad, ldc = n + pad;
                    T[] a = Random<T>(rng, m * lda), b = Random<T>(rng, (tb == Trans.No ? k : n) * ldb);
                    T[] at = new T[k * ldt];
                    for (int i = 0; i < m; i++)
                        for (int p = 0; p < k; p++) at[p * ldt + i] = a[i * lda + p];
                    T[] c1 = Random<T>(rng, m * ldc), c2 = (T[])c1.Clone();
                    T al = T.CreateTruncating(alpha), be = T.CreateTruncating(beta);
                    fixed (T* pa = a, pt = at, pb = b, p1 = c1, p2 = c2)
                    {
                        GemmDriver<T, Avx2Kernel<T>>.Serial(Trans.No, tb, m, n, k, al, pa, lda, pb, ldb, be, p1, ldc);
                        GemmDriver<T, Avx2Kernel<T>>.Serial(Trans.Yes, tb, m, n, k, al, pt, ldt, pb, ldb, be, p2, ldc);
                    }
                    for (int q = 0; q < c1.Length; q++)
                        Assert.True(c1[q] == c2[q], $"{typeof(T).Name} N/{tb} m={m} n={n} k={k} α={alpha} β={beta}: element {q} stored A {c1[q]}, packed A {c2[q]}");
                }
    }

    private static readonly (double Alpha, double Beta)[] Scalars = [(1, 0), (-0.7, 1.3), (2, 1), (1, -1)];


    /// <summary>
    /// Runs the AVX2 kernel's blocked driver on one thread and compares with a float64 naive product.
    /// Tolerance: the result's rounding error is ≤ γ_{k+2}·(|α|·|A||B| + |β|·|C|) (k products and sums,
    /// then α and β), the float64 reference's at most k·u₆₄ of the same scale; 4·(k+2)·ε (ε = 2u of T)
    /// covers both with margin. Operands start <paramref name="offset"/> elements into their arrays with
    /// row strides <paramref name="pad"/> past their widths (nothing 32-byte aligned); 8 guard rows follow
    /// C and the gaps between its rows must stay untouched. With β = 0, C holds NaN (it must not be read).
    /// </summary>
    private static unsafe void Check<T>(Random rng, Trans ta, Trans tb, int m, int n, int k, double alpha, double beta, int pad, int offset)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int aRows = ta == Trans.No ? m : k, aCols = ta == Trans.No ? k : m;
        int bRows = tb == Trans.No ? k : n, bCols = tb == Trans.No ? n : k;
        int lda = aCols + pad, ldb = bCols + pad, ldc = n + pad;
        T[] a = Random<T>(rng, offset + (aRows - 1) * lda + aCols), b = Random<T>(rng, offset + (bRows - 1) * ldb + bCols);
        int cEnd = offset + (m - 1) * ldc + n;
        T[] c = Random<T>(rng, cEnd + 8 * ldc);
        if (beta == 0)
            for (int i = 0; i < m; i++) c.AsSpan(offset + i * ldc, n).Fill(T.NaN);
        T[] c0 = (T[])c.Clone();
        fixed (T* pa = a, pb = b, pc = c)
            GemmDriver<T, Avx2Kernel<T>>.Serial(ta, tb, m, n, k, T.CreateTruncating(alpha), pa + offset, lda, pb + offset, ldb,
                T.CreateTruncating(beta), pc + offset, ldc);
        GemmReference.AssertNaive(ta, tb, m, n, k, alpha, beta, a, lda, b, ldb, c0, c, ldc, offset, cEnd, $"pad={pad}");
    }

    private static T[] Random<T>(Random rng, int count) where T : IFloatingPointIeee754<T>
        => Array.ConvertAll(TestMath.Uniform(rng, count), v => T.CreateTruncating(v));
}
