using GlobalNtk.Dense;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// The float32 GEMM against a float64 naive product of the same (float32) inputs, for every
/// microkernel the CPU supports, all transpose pairs, the sizes of <see cref="GemmTests"/> plus
/// sizes crossing the float32 tiles (8×48, 6×16) and blockings (MC = 384, NC = 4800).
/// </summary>
public class GemmFloat32Tests
{
    public static IEnumerable<object[]> Kernels() => GemmTests.Kernels();

    private static readonly (int M, int N, int K)[] Sizes =
    [
        (1, 1, 1), (7, 5, 3), (2, 9, 1), (33, 17, 9), (8, 48, 16), (6, 16, 16), (9, 49, 257),
        (1, 300, 50), (300, 1, 50), (40, 50, 600), (200, 31, 20), (5, 4850, 3), (390, 20, 7), (24, 97, 513),
    ];

    private const double EpsF32 = 1.1920928955078125e-7; // machine epsilon of float32 (2u)

    private static readonly (float Alpha, float Beta)[] Scalars = [(1, 0), (-0.7f, 1.3f), (2, 1), (1, -1)];

    [Theory]
    [MemberData(nameof(Kernels))]
    public void MatchesNaiveForAllTransposesSizesAndScalars(string kernel)
    {
        var rng = new Random(17);
        int caseIndex = 0;
        foreach (var (m, n, k) in Sizes)
            foreach (Trans ta in new[] { Trans.No, Trans.Yes })
                foreach (Trans tb in new[] { Trans.No, Trans.Yes })
                {
                    var (alpha, beta) = Scalars[caseIndex++ % Scalars.Length];
                    int pad = caseIndex % 3 == 0 ? 0 : 3;
                    Check(kernel, rng, ta, tb, m, n, k, alpha, beta, pad);
                }
    }

    [Theory]
    [MemberData(nameof(Kernels))]
    public void MultiThreadedSizesMatchNaive(string kernel)
    {
        var rng = new Random(4);
        Assert.True(150L * 170 * 130 >= Gemm.ParallelThreshold && 300L * 40 * 100 >= Gemm.ParallelThreshold);
        Check(kernel, rng, Trans.No, Trans.Yes, 150, 170, 130, 1f, 0f, 1);
        Check(kernel, rng, Trans.Yes, Trans.No, 300, 40, 100, 0.5f, 2f, 0);
        Check(kernel, rng, Trans.Yes, Trans.Yes, 260, 77, 290, -1f, 1f, 5);
        Check(kernel, rng, Trans.No, Trans.No, 200, 200, 410, 1f, 0.5f, 3); // square: split along m on AVX-512
    }

    [Theory]
    [MemberData(nameof(Kernels))]
    public void BetaZeroOverwritesNaNAndLeavesPaddingAlone(string kernel)
    {
        var rng = new Random(6);
        foreach (var (m, n, k) in new[] { (9, 49, 30), (16, 96, 8), (3, 2, 300) })
        {
            int ldc = n + 2;
            float[] a = RandomArray(rng, m * k), b = RandomArray(rng, k * n);
            float[] c = Enumerable.Repeat(float.NaN, m * ldc).ToArray();
            RunForced(kernel, () => Gemm.Multiply(Trans.No, Trans.No, m, n, k, 1.5f, a, k, b, n, 0f, c, ldc));
            for (int i = 0; i < m; i++)
            {
                for (int j = 0; j < n; j++)
                {
                    double s = 0, scale = 0;
                    for (int p = 0; p < k; p++) { s += (double)a[i * k + p] * b[p * n + j]; scale += Math.Abs((double)a[i * k + p] * b[p * n + j]); }
                    Assert.True(Math.Abs(c[i * ldc + j] - 1.5 * s) <= 4.0 * (k + 2) * EpsF32 * 1.5 * scale,
                        $"C[{i},{j}] = {c[i * ldc + j]}, expected {1.5 * s}");
                }
                if (i < m - 1) Assert.True(float.IsNaN(c[i * ldc + n]) && float.IsNaN(c[i * ldc + n + 1]), "row padding was written");
            }
        }
    }

    [Fact]
    public void BatchedMatchesPerItemProducts()
    {
        var rng = new Random(9);
        foreach (var (batch, m, n, k) in new[] { (7, 5, 9, 13), (3, 120, 110, 100) })
        {
            int lda = k + 1, ldb = n, ldc = n + 2;
            int strideA = m * lda + 3, strideC = m * ldc + 1;
            float[] a = RandomArray(rng, batch * strideA), b = RandomArray(rng, k * ldb);
            float[] c = RandomArray(rng, batch * strideC), c0 = (float[])c.Clone();
            Gemm.MultiplyBatched(Trans.No, Trans.No, batch, m, n, k, 0.9f, a, lda, strideA, b, ldb, 0, -0.5f, c, ldc, strideC);
            for (int t = 0; t < batch; t++)
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++)
                    {
                        double s = 0, scale = 0;
                        for (int p = 0; p < k; p++)
                        {
                            double term = (double)a[t * strideA + i * lda + p] * b[p * ldb + j];
                            s += term; scale += Math.Abs(term);
                        }
                        int q = t * strideC + i * ldc + j;
                        double expected = 0.9 * s - 0.5 * c0[q];
                        Assert.True(Math.Abs(c[q] - expected) <= 4.0 * (k + 2) * EpsF32 * (0.9 * scale + 0.5 * Math.Abs(c0[q])),
                            $"batch {batch}: C_{t}[{i},{j}] = {c[q]}, expected {expected}");
                    }
        }
    }

    /// <summary>
    /// Full-height tiles cut by the right edge of C (n mod 48 ≠ 0 on AVX-512) are written straight
    /// into C under a lane mask: every cut width, a depth of two KC slices (so the second slice
    /// reads C back under the mask), both β paths, and padded rows whose padding must stay as it was.
    /// </summary>
    [Theory]
    [MemberData(nameof(Kernels))]
    public void ColumnEdgeTilesWriteOnlyTheirColumns(string kernel)
    {
        var rng = new Random(23);
        int k = GemmTuning.KC512F32 + 17;
        foreach (int n in new[] { 2, 15, 16, 17, 33, 47, 49, 63, 64, 65, 95 })
            foreach (var (alpha, beta) in new[] { (1f, 0f), (-0.5f, 1.25f) })
                Check(kernel, rng, n % 2 == 0 ? Trans.No : Trans.Yes, Trans.No, 16, n, k, alpha, beta, pad: 5);
    }

    /// <summary>
    /// The thread split goes along the side whose whole tiles share out more evenly: n = 1000 in
    /// 48-wide tiles leaves one of two threads 11 of 21, so a 1000×1000 float32 product splits
    /// along m (125 eight-row tiles: 63/62), while the float64 kernel's 24-wide tiles (21/21) keep
    /// the split along n; a product much wider than tall splits along n.
    /// </summary>
    [Fact]
    public void ThreadSplitFollowsTheBetterTileBalance()
    {
        Assert.False(Gemm.SplitAlongN(1000, 1000, 1000, mr: 8, nr: 48, threads: 2));
        Assert.True(Gemm.SplitAlongN(1000, 1000, 1000, mr: 8, nr: 24, threads: 2));
        Assert.True(Gemm.SplitAlongN(260, 768, 2880, mr: 8, nr: 48, threads: 2));
        Assert.False(Gemm.SplitAlongN(768, 260, 2880, mr: 8, nr: 48, threads: 2));
    }

    [Fact]
    public void BadShapesThrowNamingTheOperand()
    {
        var ex = Assert.Throws<ArgumentException>(() =>
            Gemm.Multiply(Trans.No, Trans.No, 3, 4, 5, 1f, new float[14], 5, new float[20], 4, 0f, new float[12], 4));
        Assert.Contains("A is stored 3×5", ex.Message);
    }

    /// <summary>
    /// Tolerance: the float32 result's rounding error is ≤ γ_k·(|α|·|A||B| + |β|·|C|) with
    /// γ_k ≈ (k+2)·u₃₂, while the float64 reference of the same inputs is exact to ~1e-16; we allow
    /// 4·(k+2)·ε₃₂·(…), i.e. the float64 GEMM test's bound with float32's epsilon.
    /// </summary>
    private static void Check(string kernel, Random rng, Trans ta, Trans tb, int m, int n, int k,
        float alpha, float beta, int pad)
    {
        int aRows = ta == Trans.No ? m : k, aCols = ta == Trans.No ? k : m;
        int bRows = tb == Trans.No ? k : n, bCols = tb == Trans.No ? n : k;
        int lda = aCols + pad, ldb = bCols + pad, ldc = n + pad;
        float[] a = RandomArray(rng, Math.Max(0, (aRows - 1) * lda + aCols));
        float[] b = RandomArray(rng, Math.Max(0, (bRows - 1) * ldb + bCols));
        float[] c = RandomArray(rng, (m - 1) * ldc + n);
        float[] c0 = (float[])c.Clone();
        RunForced(kernel, () => Gemm.Multiply(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc));
        double tol = 4.0 * (k + 2) * EpsF32;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0, scale = 0;
                for (int p = 0; p < k; p++)
                {
                    double term = (double)(ta == Trans.No ? a[i * lda + p] : a[p * lda + i]) * (tb == Trans.No ? b[p * ldb + j] : b[j * ldb + p]);
                    s += term; scale += Math.Abs(term);
                }
                int q = i * ldc + j;
                double expected = beta == 0 ? alpha * s : alpha * s + (double)beta * c0[q];
                double bound = tol * (Math.Abs(alpha) * scale + Math.Abs(beta) * Math.Abs(c0[q])) + 1e-30;
                Assert.True(Math.Abs(c[q] - expected) <= bound,
                    $"{kernel} {ta}/{tb} m={m} n={n} k={k} α={alpha} β={beta} pad={pad}: C[{i},{j}] = {c[q]}, reference {expected}");
            }
        for (int i = 0; i < m - 1; i++)
            for (int j = n; j < ldc; j++)
                Assert.Equal(c0[i * ldc + j], c[i * ldc + j]);
    }

    private static void RunForced(string kernel, Action action)
    {
        var saved = Gemm.ForcedKernel;
        Gemm.ForcedKernel = Enum.Parse<Gemm.KernelKind>(kernel);
        try { action(); }
        finally { Gemm.ForcedKernel = saved; }
    }

    private static float[] RandomArray(Random rng, int count) => Array.ConvertAll(TestMath.Uniform(rng, count), v => (float)v);

}
