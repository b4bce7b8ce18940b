using System.Runtime.Intrinsics.X86;
using GlobalNtk.Dense;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// Gemm.Multiply / MultiplyBatched against a naive triple loop, for every microkernel the CPU
/// supports (forced per test thread), all transpose pairs, odd and blocking-boundary sizes,
/// strided operands and alpha/beta variants.
/// </summary>
public class GemmTests
{
    public static IEnumerable<object[]> Kernels()
    {
        yield return [nameof(Gemm.KernelKind.Scalar)];
        if (Fma.IsSupported && Avx2.IsSupported) yield return [nameof(Gemm.KernelKind.Avx2)];
        if (Avx512F.IsSupported) yield return [nameof(Gemm.KernelKind.Avx512)];
    }

    // (m, n, k): ones, odd primes-ish, exact tiles, tile+1, m=1/n=1, and sizes crossing KC (k > 256),
    // MC (m > 192 / 96 / 64) and NC (n > 2400 / 2048 / 1024) of the three kernels' blockings.
    private static readonly (int M, int N, int K)[] Sizes =
    [
        (1, 1, 1), (7, 5, 3), (2, 9, 1), (33, 17, 9), (8, 24, 16), (6, 8, 16), (9, 25, 257),
        (1, 300, 50), (300, 1, 50), (40, 50, 600), (200, 31, 20), (5, 2500, 3), (24, 48, 513),
        (16, 64, 70), (8, 40, 300), // right-edge tiles of 16 columns (the AVX-512 f64 masked edge), over 1 and 2 KC slices
    ];

    private const double Eps = 2.220446049250313e-16; // machine epsilon of float64 (2u)

    private static readonly (double Alpha, double Beta)[] Scalars = [(1, 0), (-0.7, 1.3), (2, 1), (1, -1)];

    [Theory]
    [MemberData(nameof(Kernels))]
    public void MatchesNaiveForAllTransposesSizesAndScalars(string kernel)
    {
        var rng = new Random(11);
        int caseIndex = 0;
        foreach (var (m, n, k) in Sizes)
            foreach (Trans ta in new[] { Trans.No, Trans.Yes })
                foreach (Trans tb in new[] { Trans.No, Trans.Yes })
                {
                    var (alpha, beta) = Scalars[caseIndex++ % Scalars.Length];
                    int pad = caseIndex % 3 == 0 ? 0 : 3; // alternate contiguous and strided rows
                    Check(kernel, rng, ta, tb, m, n, k, alpha, beta, pad);
                }
    }

    [Theory]
    [MemberData(nameof(Kernels))]
    public void BetaZeroOverwritesNaNAndLeavesPaddingAlone(string kernel)
    {
        var rng = new Random(5);
        foreach (var (m, n, k) in new[] { (9, 25, 30), (16, 48, 8), (3, 2, 300) })
        {
            int ldc = n + 2;
            double[] a = TestMath.Uniform(rng, m * k), b = TestMath.Uniform(rng, k * n);
            double[] c = Enumerable.Repeat(double.NaN, m * ldc).ToArray();
            RunForced(kernel, () => Gemm.Multiply(Trans.No, Trans.No, m, n, k, 1.5, a, k, b, n, 0.0, c, ldc));
            double[] expected = Naive(Trans.No, Trans.No, m, n, k, 1.5, a, k, b, n, 0.0, new double[m * ldc], ldc);
            for (int i = 0; i < m; i++)
            {
                for (int j = 0; j < n; j++)
                    Assert.True(Math.Abs(c[i * ldc + j] - expected[i * ldc + j]) <= 1e-12 * (1 + Math.Abs(expected[i * ldc + j])),
                        $"C[{i},{j}] = {c[i * ldc + j]}, expected {expected[i * ldc + j]}");
                if (i < m - 1) Assert.True(double.IsNaN(c[i * ldc + n]) && double.IsNaN(c[i * ldc + n + 1]), "row padding was written");
            }
        }
    }

    [Fact]
    public void AlphaZeroOrEmptyKScalesC()
    {
        double[] a = [double.NaN, 1], b = [double.NaN, 2];
        double[] c = [1, 2, 3, 4];
        Gemm.Multiply(Trans.No, Trans.No, 2, 2, 1, 0.0, a, 1, b, 2, 3.0, c, 2); // A, B not read when alpha = 0
        Assert.Equal(new double[] { 3, 6, 9, 12 }, c);
        Gemm.Multiply(Trans.No, Trans.No, 2, 2, 0, 1.0, [], 0, [], 2, 0.5, c, 2);
        Assert.Equal(new double[] { 1.5, 3, 4.5, 6 }, c);
        double[] nan = [double.NaN, double.NaN];
        Gemm.Multiply(Trans.No, Trans.No, 1, 2, 0, 1.0, [], 0, [], 2, 0.0, nan, 2);
        Assert.Equal(new double[] { 0, 0 }, nan);
    }

    [Theory]
    [MemberData(nameof(Kernels))]
    public void MultiThreadedSizesMatchNaive(string kernel)
    {
        // m·n·k above Gemm.ParallelThreshold: split along n (n ≥ m) and along m (m > n).
        var rng = new Random(3);
        Assert.True(150L * 170 * 130 >= Gemm.ParallelThreshold && 300L * 40 * 100 >= Gemm.ParallelThreshold);
        Check(kernel, rng, Trans.No, Trans.Yes, 150, 170, 130, 1.0, 0.0, 1);
        Check(kernel, rng, Trans.Yes, Trans.No, 300, 40, 100, 0.5, 2.0, 0);
        Check(kernel, rng, Trans.Yes, Trans.Yes, 260, 77, 290, -1.0, 1.0, 5);
    }

    [Fact]
    public void BatchedMatchesPerItemProducts()
    {
        var rng = new Random(8);
        foreach (var (batch, m, n, k) in new[] { (7, 5, 9, 13), (3, 120, 110, 100), (1, 4, 4, 4) })
        {
            int lda = k + 1, ldb = n, ldc = n + 2;
            int strideA = m * lda + 3, strideC = m * ldc + 1;
            double[] a = TestMath.Uniform(rng, batch * strideA), b = TestMath.Uniform(rng, k * ldb); // B shared: strideB = 0
            double[] c = TestMath.Uniform(rng, batch * strideC), expected = (double[])c.Clone();
            Gemm.MultiplyBatched(Trans.No, Trans.No, batch, m, n, k, 0.9, a, lda, strideA, b, ldb, 0, -0.5, c, ldc, strideC);
            for (int t = 0; t < batch; t++)
            {
                double[] ct = expected.AsSpan(t * strideC, m * ldc).ToArray();
                Naive(Trans.No, Trans.No, m, n, k, 0.9, a.AsSpan(t * strideA).ToArray(), lda, b, ldb, -0.5, ct, ldc);
                ct.CopyTo(expected, t * strideC);
            }
            for (int i = 0; i < c.Length; i++)
                Assert.True(Math.Abs(c[i] - expected[i]) <= 1e-12 * (1 + Math.Abs(expected[i])), $"batch {batch}: element {i}");
        }
    }

    /// <summary>
    /// The inline validation (<c>Gemm.Validate</c>, which builds no message unless a check fails) draws the
    /// same line as the detailed checks: for each operand, stored plain or transposed, a span of exactly
    /// its footprint passes and one element less throws naming it; a row stride below the stored width
    /// throws unless the operand has a single stored row; a padded stride needs its padding only between rows.
    /// </summary>
    [Fact]
    public void ValidationAcceptsExactFitsAndRejectsOneElementShort()
    {
        foreach (var (m, n, k) in new[] { (3, 4, 5), (1, 4, 5), (3, 1, 5), (3, 4, 1), (2, 2, 2) })
            foreach (Trans ta in new[] { Trans.No, Trans.Yes })
                foreach (Trans tb in new[] { Trans.No, Trans.Yes })
                    foreach (int pad in new[] { 0, 2 })
                    {
                        (int ar, int ac) = ta == Trans.No ? (m, k) : (k, m);
                        (int br, int bc) = tb == Trans.No ? (k, n) : (n, k);
                        int lda = ac + pad, ldb = bc + pad, ldc = n + pad;
                        int aLen = (ar - 1) * lda + ac, bLen = (br - 1) * ldb + bc, cLen = (m - 1) * ldc + n;
                        void Run(int la, int lb, int lc, int a = -1, int b = -1, int c = -1) =>
                            Gemm.Multiply(ta, tb, m, n, k, 1.0, new double[la], a < 0 ? lda : a, new double[lb], b < 0 ? ldb : b,
                                0.0, new double[lc], c < 0 ? ldc : c);

                        Run(aLen, bLen, cLen); // exact fits: no exception
                        Assert.Contains("A is stored", Assert.Throws<ArgumentException>(() => Run(aLen - 1, bLen, cLen)).Message);
                        Assert.Contains("B is stored", Assert.Throws<ArgumentException>(() => Run(aLen, bLen - 1, cLen)).Message);
                        Assert.Contains("C is stored", Assert.Throws<ArgumentException>(() => Run(aLen, bLen, cLen - 1)).Message);
                        if (ar > 1) Assert.Contains("A is stored", Assert.Throws<ArgumentException>(() => Run(aLen + 99, bLen, cLen, a: ac - 1)).Message);
                        else Run(aLen, bLen, cLen, a: Math.Max(ac - 1, 0)); // one stored row: its stride is never used
                        if (br > 1) Assert.Contains("B is stored", Assert.Throws<ArgumentException>(() => Run(aLen, bLen + 99, cLen, b: bc - 1)).Message);
                        else Run(aLen, bLen, cLen, b: Math.Max(bc - 1, 0));
                        if (m > 1) Assert.Contains("C is stored", Assert.Throws<ArgumentException>(() => Run(aLen, bLen, cLen + 99, c: n - 1)).Message);
                        else Run(aLen, bLen, cLen, c: Math.Max(n - 1, 0));

                    }
    }

    [Fact]
    public void BadShapesThrowNamingTheOperand()
    {
        var ex = Assert.Throws<ArgumentException>(() =>
            Gemm.Multiply(Trans.No, Trans.No, 3, 4, 5, 1, new double[14], 5, new double[20], 4, 0, new double[12], 4));
        Assert.Contains("A is stored 3×5", ex.Message);
        ex = Assert.Throws<ArgumentException>(() =>
            Gemm.Multiply(Trans.No, Trans.Yes, 3, 4, 5, 1, new double[15], 5, new double[20], 4, 0, new double[12], 4));
        Assert.Contains("B is stored 4×5 (transposed)", ex.Message);
        ex = Assert.Throws<ArgumentException>(() =>
            Gemm.Multiply(Trans.No, Trans.No, 3, 4, 5, 1, new double[15], 5, new double[20], 4, 0, new double[12], 3));
        Assert.Contains("C is stored 3×4", ex.Message);
        ex = Assert.Throws<ArgumentException>(() =>
            Gemm.MultiplyBatched(Trans.No, Trans.No, 2, 2, 2, 2, 1, new double[8], 2, 4, new double[4], 2, 0, 0, new double[8], 2, 3));
        Assert.Contains("overlap", ex.Message);
        Assert.Throws<ArgumentException>(() =>
            Gemm.Multiply(Trans.No, Trans.No, -1, 4, 5, 1, new double[15], 5, new double[20], 4, 0, new double[12], 4));
    }

    /// <summary>
    /// Compares with the naive product elementwise. Tolerance: each implementation's rounding error
    /// is bounded by γ_k·(|α|·|A||B| + |β|·|C|)_ij with γ_k ≈ (k+2)·u (u = ε/2; blocked/FMA summation
    /// only reorders the same k terms), so their difference is ≤ 2·γ_k·(…); we allow 4·(k+2)·ε·(…).
    /// </summary>
    private static void Check(string kernel, Random rng, Trans ta, Trans tb, int m, int n, int k,
        double alpha, double beta, int pad)
    {
        int aRows = ta == Trans.No ? m : k, aCols = ta == Trans.No ? k : m;
        int bRows = tb == Trans.No ? k : n, bCols = tb == Trans.No ? n : k;
        int lda = aCols + pad, ldb = bCols + pad, ldc = n + pad;
        double[] a = TestMath.Uniform(rng, Math.Max(0, (aRows - 1) * lda + aCols));
        double[] b = TestMath.Uniform(rng, Math.Max(0, (bRows - 1) * ldb + bCols));
        double[] c = TestMath.Uniform(rng, (m - 1) * ldc + n);
        double[] c0 = (double[])c.Clone();
        RunForced(kernel, () => Gemm.Multiply(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc));
        double[] expected = Naive(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, (double[])c0.Clone(), ldc);
        double[] absA = a.Select(Math.Abs).ToArray(), absB = b.Select(Math.Abs).ToArray();
        double[] scale = Naive(ta, tb, m, n, k, Math.Abs(alpha), absA, lda, absB, ldb, Math.Abs(beta),
            c0.Select(Math.Abs).ToArray(), ldc);
        double tol = 4.0 * (k + 2) * Eps;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                int q = i * ldc + j;
                Assert.True(Math.Abs(c[q] - expected[q]) <= tol * scale[q] + 1e-300,
                    $"{kernel} {ta}/{tb} m={m} n={n} k={k} α={alpha} β={beta} pad={pad}: C[{i},{j}] = {c[q]}, naive {expected[q]}");
            }
        for (int i = 0; i < m - 1; i++) // the gap between rows of a strided C is not C's
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

    private static double[] Naive(Trans ta, Trans tb, int m, int n, int k, double alpha, double[] a, int lda,
        double[] b, int ldb, double beta, double[] c, int ldc)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                    s += (ta == Trans.No ? a[i * lda + p] : a[p * lda + i]) * (tb == Trans.No ? b[p * ldb + j] : b[j * ldb + p]);
                c[i * ldc + j] = beta == 0 ? alpha * s : alpha * s + beta * c[i * ldc + j];
            }
        return c;
    }
}
