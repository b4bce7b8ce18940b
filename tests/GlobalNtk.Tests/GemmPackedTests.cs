using System.Runtime.Intrinsics.X86;
using GlobalNtk.Dense;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// A pre-packed right operand (<see cref="PackedOperand{T}"/>, <see cref="Gemm.MultiplyPacked{T}"/>)
/// gives the same bits as <see cref="Gemm.Multiply(Trans, Trans, int, int, int, double, ReadOnlySpan{double}, int, ReadOnlySpan{double}, int, double, Span{double}, int)"/>
/// on the stored operand wherever that runs its blocked kernel, the same bits for a row whatever
/// rows it is multiplied with, and falls back to the stored operand under another kernel.
/// </summary>
public class GemmPackedTests
{
    public static IEnumerable<object[]> Kernels() => GemmTests.Kernels();

    // (m, n, k): thin and tiny products, n cut by every NR (8, 16, 24, 48), k over several KC slices,
    // m over MC, and products above Gemm.ParallelThreshold (split along m and along n).
    private static readonly (int M, int N, int K)[] Sizes =
    [
        (1, 1, 1), (1, 30, 7), (2, 5, 3), (3, 25, 4), (8, 24, 16), (9, 50, 257), (32, 768, 256), (32, 256, 768),
        (17, 770, 3), (200, 31, 513), (40, 1000, 300), (300, 40, 100),
    ];

    private static readonly (double Alpha, double Beta)[] Scalars = [(1, 0), (-0.7, 1.3), (1, 1)];

    [Theory]
    [MemberData(nameof(Kernels))]
    public void PackedProductsEqualTheStoredOperandsProductBitForBit(string kernel)
    {
        var rng = new Random(21);
        int caseIndex = 0;
        foreach (var (m, n, k) in Sizes)
            foreach (Trans ta in new[] { Trans.No, Trans.Yes })
                foreach (Trans tb in new[] { Trans.No, Trans.Yes })
                {
                    var (alpha, beta) = Scalars[caseIndex++ % Scalars.Length];
                    int lda = (ta == Trans.No ? k : m) + 2, ldb = (tb == Trans.No ? n : k) + 1, ldc = n + 3;
                    double[] a = TestMath.Uniform(rng, (ta == Trans.No ? m : k) * lda), b = TestMath.Uniform(rng, (tb == Trans.No ? k : n) * ldb);
                    double[] c0 = TestMath.Uniform(rng, m * ldc);
                    double[] expected = (double[])c0.Clone(), packed = (double[])c0.Clone(), naive = (double[])c0.Clone();
                    Forced(kernel, () =>
                    {
                        Gemm.Multiply(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, expected, ldc);
                        var pb = new PackedOperand<double>(tb, k, n, b, ldb);
                        Gemm.MultiplyPacked(ta, m, alpha, a, lda, pb, beta, packed, ldc, Gemm.MaxDegreeOfParallelism);
                    });
                    Naive(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, naive, ldc);
                    string what = $"{kernel} {ta}/{tb} m={m} n={n} k={k} alpha={alpha} beta={beta}";
                    // Gemm.Multiply takes other paths for one row, ≤ 128 multiply-adds or (AVX-512) the dot form's
                    // shapes: there only agreement with the naive loop to rounding. Entries are ≤ 1 in size, so both
                    // sums are within γ_(k+2)·(|α|·k + |β|) ≤ (k+2)·u·(|α|·k + |β|) of the exact one.
                    bool dot = kernel == "Avx512" && (Gemm.UseDot<double>(ta, tb, m, n, k) || GemmTransposedCopy.ChangesBits<double>(ta, tb, m, n, k));
                    if (m >= 2 && (long)m * n * k > 128 && !dot) Assert.True(expected.SequenceEqual(packed), what);
                    double tol = 2 * (k + 2) * 1.12e-16 * (Math.Abs(alpha) * k + Math.Abs(beta));
                    for (int i = 0; i < naive.Length; i++)
                    {
                        Assert.True(Math.Abs(naive[i] - packed[i]) <= tol, $"{what}: element {i}: {packed[i]} vs {naive[i]}");
                        Assert.True(Math.Abs(naive[i] - expected[i]) <= tol, $"{what}: element {i}: Multiply {expected[i]} vs {naive[i]}");
                    }
                }
    }

    [Theory]
    [MemberData(nameof(Kernels))]
    public void ARowsResultDoesNotDependOnTheOtherRows(string kernel)
    {
        // What lets the recurrent engine split a step's rows over threads without changing a bit.
        var rng = new Random(4);
        int m = 19, n = 77, k = 300;
        double[] a = TestMath.Uniform(rng, m * k), b = TestMath.Uniform(rng, n * k);
        double[] whole = new double[m * n], split = new double[m * n];
        Forced(kernel, () =>
        {
            var pb = new PackedOperand<double>(Trans.Yes, k, n, b, k);
            Gemm.MultiplyPacked(Trans.No, m, 0.9, a, k, pb, 0.0, whole, n, Gemm.MaxDegreeOfParallelism);
            foreach (var (r0, r1) in new[] { (0, 1), (1, 9), (9, 17), (17, 18), (18, 19) })
                Gemm.MultiplyPacked(Trans.No, r1 - r0, 0.9, a.AsSpan(r0 * k), k, pb, 0.0, split.AsSpan(r0 * n), n, 1);
        });
        Assert.Equal(whole, split);
    }

    [Fact]
    public void AnotherKernelUsesTheStoredOperand()
    {
        // Packed for the kernel selected now, multiplied under a forced other one: the stored B is used.
        var rng = new Random(6);
        int m = 12, n = 50, k = 40;
        double[] a = TestMath.Uniform(rng, m * k), b = TestMath.Uniform(rng, k * n);
        var pb = new PackedOperand<double>(Trans.No, k, n, b, n);
        foreach (var kernel in Kernels().Select(o => (string)o[0]))
        {
            double[] expected = new double[m * n], packed = new double[m * n];
            Forced(kernel, () =>
            {
                Gemm.Multiply(Trans.No, Trans.No, m, n, k, 1.0, a, k, b, n, 0.0, expected, n);
                Gemm.MultiplyPacked(Trans.No, m, 1.0, a, k, pb, 0.0, packed, n, 1);
            });
            Assert.Equal(expected, packed);
        }
    }

    [Fact]
    public void Float32PackedProductsEqualTheStoredOperandsProduct()
    {
        var rng = new Random(9);
        foreach (var (m, n, k) in new[] { (32, 768, 256), (32, 256, 768), (9, 50, 400), (40, 1000, 300) })
            foreach (Trans tb in new[] { Trans.No, Trans.Yes })
            {
                float[] a = TestMath.Uniform(rng, m * k).Select(v => (float)v).ToArray();
                float[] b = TestMath.Uniform(rng, k * n).Select(v => (float)v).ToArray();
                float[] expected = new float[m * n], packed = new float[m * n];
                int ldb = tb == Trans.No ? n : k;
                Gemm.Multiply(Trans.No, tb, m, n, k, 1f, a, k, b, ldb, 0f, expected, n);
                Gemm.MultiplyPacked(Trans.No, m, 1f, a, k, new PackedOperand<float>(tb, k, n, b, ldb), 0f, packed, n, Gemm.MaxDegreeOfParallelism);
                if (Gemm.SelectedKernel == Gemm.KernelKind.Avx512 && Gemm.UseDot<float>(Trans.No, tb, m, n, k))
                {
                    // The dot form sums along k in its own order: both within γ_k·Σ|a||b| ≤ k·u·k (entries ≤ 1) of the exact sum.
                    double tol = 2.0 * k * k * 5.97e-8;
                    for (int i = 0; i < expected.Length; i++)
                        Assert.True(Math.Abs(expected[i] - packed[i]) <= tol, $"f32 {tb} m={m} n={n} k={k}: element {i}: {expected[i]} vs {packed[i]}");
                }
                else Assert.True(expected.SequenceEqual(packed), $"f32 {tb} m={m} n={n} k={k}");
            }
    }

    [Fact]
    public void CallerStorageIsReusedAndSerialProductsKeepTheBits()
    {
        // K's site kernel packs a new C_s into the same pinned storage for every vector, and runs its
        // column parts as serial products: both must give the threaded product's bits.
        var rng = new Random(17);
        int k = 256, n = 768, m = 40;
        var storage = GC.AllocateUninitializedArray<double>((int)PackedOperand<double>.StorageLength(k, n), pinned: true);
        var a = TestMath.Uniform(rng, m * k);
        for (int round = 0; round < 2; round++)
        {
            var b = TestMath.Uniform(rng, k * n);
            double[] expected = new double[m * n], packed = new double[m * n], serial = new double[m * n];
            Gemm.Multiply(Trans.No, Trans.No, m, n, k, 1.0, a, k, b, n, 0.0, expected, n);
            Gemm.MultiplyPacked(Trans.No, m, 1.0, a, k, new PackedOperand<double>(Trans.No, k, n, b, n, storage), 0.0, packed, n, 1);
            Gemm.Multiply<double>(Trans.No, Trans.No, m, n, k, 1.0, a, k, b, n, 0.0, serial, n, 1);
            Assert.Equal(expected, packed);
            Assert.Equal(expected, serial);
        }
        var ex = Assert.Throws<ArgumentException>(() => new PackedOperand<double>(Trans.No, k, n, new double[k * n], n, new double[100]));
        Assert.Contains("storage of 100 elements", ex.Message);
    }

    [Fact]
    public void ABadOperandOrShapeThrowsNamingIt()
    {
        var b = new double[10 * 4];
        Assert.Contains("row stride", Assert.Throws<ArgumentException>(() => new PackedOperand<double>(Trans.No, 10, 5, b, 5)).Message);
        var pb = new PackedOperand<double>(Trans.No, 10, 4, b, 4);
        var ex = Assert.Throws<ArgumentException>(() => Gemm.MultiplyPacked(Trans.No, 3, 1.0, new double[29], 10, pb, 0.0, new double[12], 4, 1));
        Assert.Contains("A is stored 3×10", ex.Message);
    }

    private static void Forced(string kernel, Action action)
    {
        var saved = Gemm.ForcedKernel;
        Gemm.ForcedKernel = Enum.Parse<Gemm.KernelKind>(kernel);
        try { action(); }
        finally { Gemm.ForcedKernel = saved; }
    }

    private static void Naive(Trans ta, Trans tb, int m, int n, int k, double alpha, double[] a, int lda,
        double[] b, int ldb, double beta, double[] c, int ldc)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                    s += (ta == Trans.No ? a[i * lda + p] : a[p * lda + i]) * (tb == Trans.No ? b[p * ldb + j] : b[j * ldb + p]);
                c[i * ldc + j] = alpha * s + beta * c[i * ldc + j];
            }
    }
}
