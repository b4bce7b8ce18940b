using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using GlobalNtk.Dense;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// Products with a narrow C (2 ≤ n ≤ 8 columns): the AVX-512 dot form (<c>Avx512NarrowDot</c>, A as stored,
/// vectors along k; its own summation order, so checked against a naive float64 product within a bound for
/// that order) and the transposed narrow route that <c>Gemm</c> now also takes past the direct path (A
/// transposed; the packed path's bits, checked bit for bit). Every n, every last row block of the dot form's
/// tiles, k around whole vectors, all transposes, α/β with β = 0 on a C full of NaN, padded strides,
/// unaligned starts and guard elements around C.
/// </summary>
public class GemmNarrowTests
{
    public static IEnumerable<object[]> Precisions() => [["f64"], ["f32"]];

    private static readonly (double Alpha, double Beta)[] Scalars = [(1, 0), (-0.7, 1.3), (2, 1), (1.5, 0), (1, -1)];

    /// <summary>
    /// The dot form on its own (both layouts of B): m = 1..17 (every last row block of every tile height, 3 to 8
    /// rows) and 50, n = 2..8, k from 1 to 13 vectors and 7, each cut of the last vector.
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void DotFormMatchesNaive(string precision)
    {
        if (!Avx512F.IsSupported) return; // AVX-512 instructions; the routed tests below cover the other kernels
        if (precision == "f64") Dot<double>(); else Dot<float>();
    }

    private static void Dot<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(12);
        int l = Vector512<T>.Count, caseIndex = 0;
        int[] depths = [1, l - 1, l, l + 1, 2 * l + 3, 3 * l, 13 * l + 7];
        int[] heights = [.. Enumerable.Range(1, 17), 50];
        foreach (Trans tb in new[] { Trans.No, Trans.Yes })
            for (int n = 2; n <= 8; n++)
                foreach (int m in heights)
                {
                    var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                    int k = depths[caseIndex % depths.Length];
                    Check<T>(rng, Trans.No, tb, m, n, k, alpha, beta, pad: caseIndex % 3, offset: 1 + caseIndex % 2, Route.Dot);
                    caseIndex++;
                }
    }

    /// <summary>
    /// Through <c>Gemm.Multiply</c>, shapes the narrow routes take (and neighbours they leave), all four transposes,
    /// against the naive product; with AVX-512 also that each shape the dot form takes really ran it (its bits differ
    /// from the packed path's only there) and that every other one has the packed path's bits. Some are over the
    /// parallel threshold, so on a machine with several cores they run split along m.
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void RoutedNarrowProductsMatchNaive(string precision)
    {
        if (precision == "f64") Routed<double>(); else Routed<float>();
    }

    private static void Routed<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(13);
        int l = Vector512<T>.Count, caseIndex = 0;
        (int M, int N, int K)[] shapes =
        [
            (72, 4, 2856), (184, 2, 475), (67, 3, 225), (107, 5, 234), (41, 8, 24 * l + 3), (37, 6, 12 * l - 1),
            (300, 3, 6 * 8 + 1), (2880, 2, 80), (30, 7, 40),
            (2052, 3, 171), (1347, 8, 101), (590, 8, 230), (267, 2, 19), (1102, 2, 17), (646, 7, 19), (100, 5, 16), (37, 6, 15),
        ];
        int dot = 0;
        foreach (var (m, n, k) in shapes)
            foreach (Trans ta in new[] { Trans.No, Trans.Yes })
                foreach (Trans tb in new[] { Trans.No, Trans.Yes })
                {
                    var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                    bool takes = Avx512F.IsSupported && m > 8 && (Avx512NarrowDot<T>.Takes(ta, tb, n, k)
                        || GemmTransposedCopy.ChangesBits<T>(ta, tb, m, n, k)); // Bᵀ copied, then the dot form
                    if (takes) dot++;
                    Check<T>(rng, ta, tb, m, n, k, alpha, beta, pad: caseIndex % 2, offset: caseIndex % 3, takes ? Route.GemmDot : Route.GemmPackedBits);
                    caseIndex++;
                }
        if (Avx512F.IsSupported) Assert.True(dot >= 5, $"only {dot} shapes take the dot form");
    }

    private enum Route { Dot, GemmDot, GemmPackedBits }


    /// <summary>
    /// Runs the product by <paramref name="route"/> and checks it. Tolerance: in the dot form each term of C(i, j)
    /// passes through at most ⌈k/L⌉ fused multiply-adds (its lane's chain) and L − 1 additions (the lane sum, in any
    /// order), then α and β: error ≤ γ_{⌈k/L⌉+L+1}·(|α|·Σ|a||b| + |β|·|C|), γ_j ≈ j·u; the packed path's chains are
    /// k + 2 deep. The float64 reference of the same inputs carries at most k·u₆₄ on the same scale, so
    /// 2·(depth + 2)·ε (ε = 2u) covers both, with depth = ⌈k/L⌉ + L for the dot form and k otherwise.
    /// With <see cref="Route.GemmPackedBits"/> and AVX-512, also bit for bit against the packed path
    /// (<c>GemmDriver.Serial</c>) on the same inputs, guards included. C starts <paramref name="offset"/> elements into
    /// its array, rows <paramref name="pad"/> apart past n, with 8 guard rows after it: all must stay untouched.
    /// </summary>
    private static unsafe void Check<T>(Random rng, Trans ta, Trans tb, int m, int n, int k, double alpha, double beta, int pad, int offset, Route route)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int aRows = ta == Trans.No ? m : k, aCols = ta == Trans.No ? k : m;
        int bRows = tb == Trans.No ? k : n, bCols = tb == Trans.No ? n : k;
        int lda = aCols + pad, ldb = bCols + pad, ldc = n + pad;
        T[] a = Random<T>(rng, offset + (aRows - 1) * lda + aCols), b = Random<T>(rng, offset + (bRows - 1) * ldb + bCols);
        int cEnd = offset + (m - 1) * ldc + n;
        T[] c = Random<T>(rng, cEnd + 8 * ldc);
        if (beta == 0) // β = 0 must overwrite C without reading it
            for (int i = 0; i < m; i++) c.AsSpan(offset + i * ldc, n).Fill(T.NaN);
        T[] c0 = (T[])c.Clone();
        T al = T.CreateTruncating(alpha), be = T.CreateTruncating(beta);
        if (route == Route.Dot)
            fixed (T* pa = a, pb = b, pc = c)
                Avx512NarrowDot<T>.Run(tb, m, n, k, al, pa + offset, lda, pb + offset, ldb, be, pc + offset, ldc);
        else
            Gemm.Multiply(ta, tb, m, n, k, al, a.AsSpan(offset), lda, b.AsSpan(offset), ldb, be, c.AsSpan(offset), ldc);
        string what = $"{typeof(T).Name} {ta}/{tb} {m}×{n}×{k} α={alpha} β={beta} pad={pad} offset={offset} {route}";
        if (route == Route.GemmPackedBits && Avx512F.IsSupported)
        {
            T[] packed = (T[])c0.Clone();
            fixed (T* pa = a, pb = b, pp = packed)
                GemmDriver<T, Avx512Kernel<T>>.Serial(ta, tb, m, n, k, al, pa + offset, lda, pb + offset, ldb, be, pp + offset, ldc);
            for (int q = 0; q < c.Length; q++)
                Assert.True(c[q].Equals(packed[q]), $"{what}: element {q} = {c[q]}, packed path {packed[q]}");
        }
        int l = Vector512<T>.Count, depth = route == Route.GemmPackedBits ? k : (k + l - 1) / l + l;
        double tol = 2.0 * (depth + 2) * GemmReference.Eps<T>();
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0, scale = 0;
                for (int p = 0; p < k; p++)
                {
                    T x = ta == Trans.No ? a[offset + i * lda + p] : a[offset + p * lda + i];
                    T y = tb == Trans.No ? b[offset + p * ldb + j] : b[offset + j * ldb + p];
                    double term = double.CreateTruncating(x) * double.CreateTruncating(y);
                    s += term; scale += Math.Abs(term);
                }
                int q = offset + i * ldc + j;
                double old = beta == 0 ? 0 : double.CreateTruncating(c0[q]);
                double expected = alpha * s + beta * old;
                double bound = tol * (Math.Abs(alpha) * scale + Math.Abs(beta) * Math.Abs(old)) + 1e-300;
                double got = double.CreateTruncating(c[q]);
                Assert.True(Math.Abs(got - expected) <= bound, $"{what}: C[{i},{j}] = {got}, reference {expected}, bound {bound}");
            }
        for (int q = 0; q < offset; q++) Assert.Equal(c0[q], c[q]);
        for (int q = cEnd; q < c.Length; q++) Assert.Equal(c0[q], c[q]);
        for (int i = 0; i < m - 1; i++)
            for (int j = n; j < ldc; j++)
                Assert.Equal(c0[offset + i * ldc + j], c[offset + i * ldc + j]);
    }

    private static T[] Random<T>(Random rng, int count) where T : IFloatingPointIeee754<T>
        => Array.ConvertAll(TestMath.Uniform(rng, count), v => T.CreateTruncating(v));
}
