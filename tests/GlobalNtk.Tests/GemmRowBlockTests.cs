using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using GlobalNtk.Dense;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// The AVX-512 packed path's cut edges: a last block of 1–7 rows (the 4-, 6- and 8-row bodies, on
/// stored A and on packed Ā panels) and a ragged last B̄ panel (packed by masked loads, padded only
/// as far as the edge tiles read), against the naive float64 product and bit for bit against the same
/// rows computed inside a whole 8-row block.
/// </summary>
public class GemmRowBlockTests
{
    public static IEnumerable<object[]> Precisions() => [["f64"], ["f32"]];

    private static readonly (double Alpha, double Beta)[] Scalars = [(1, 0), (-0.7, 1.3), (2, 1), (1.5, 0)];

    /// <summary>
    /// Every row count 1…16 and the 37 and 38, against ragged widths (1, 5, a whole vector and
    /// one more, a panel less one, and a full panel plus 5 columns) at depths of one and three k-slices.
    /// Each product's rows must match the naive product within the class's bound and equal, bit for bit,
    /// the same rows of a product with 8–15 more rows of A (so that every row there sits in a whole
    /// 8-row block): each element is the same chain of fused multiply-adds whatever body computes it.
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void RowRemaindersMatchNaiveAndTheWholeBlockBits(string precision)
    {
        if (!Avx512F.IsSupported) return; // the AVX-512 kernel's bodies; the other kernels have their own tests
        if (precision == "f64") RowRemainders<double>(); else RowRemainders<float>();
    }

    private static void RowRemainders<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        int l = Vector512<T>.Count, nr = 3 * l, kc = Avx512Kernel<T>.KC;
        var rng = new Random(121);
        int[] rows = [.. Enumerable.Range(1, 16), 37, 38];
        int[] widths = [1, 5, l + 1, nr - 1, nr + 5];
        int caseIndex = 0;
        foreach (int m in rows)
            foreach (int n in widths)
                foreach (int k in new[] { 9, 2 * kc + 3 })
                    foreach (Trans ta in new[] { Trans.No, Trans.Yes })
                        foreach (Trans tb in new[] { Trans.No, Trans.Yes })
                        {
                            var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                            int pad = caseIndex++ % 3;
                            Check<T>(rng, ta, tb, m, n, k, alpha, beta, pad);
                        }
    }

    private static unsafe void Check<T>(Random rng, Trans ta, Trans tb, int m, int n, int k, double alpha, double beta, int pad)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int big = (m + 15) / 8 * 8; // m rounded up to 8, plus one more whole block
        int lda = (ta == Trans.No ? k : big) + pad, ldb = (tb == Trans.No ? n : k) + pad, ldc = n + pad;
        T[] a = Random<T>(rng, (ta == Trans.No ? big : k) * lda), b = Random<T>(rng, (tb == Trans.No ? k : n) * ldb);
        T[] c0 = Random<T>(rng, (big + 1) * ldc);
        if (beta == 0) Array.Fill(c0, T.NaN); // beta = 0 must overwrite, never read
        T[] c = (T[])c0.Clone(), cBig = (T[])c0.Clone();
        T al = T.CreateTruncating(alpha), be = T.CreateTruncating(beta);
        fixed (T* pa = a, pb = b, pc = c, pcBig = cBig)
        {
            // The same A and B: op(A)'s first m rows are the first m of the big product's (a prefix of A's
            // rows, or of its columns when transposed, at the same leading dimension).
            GemmDriver<T, Avx512Kernel<T>>.Serial(ta, tb, m, n, k, al, pa, lda, pb, ldb, be, pc, ldc);
            GemmDriver<T, Avx512Kernel<T>>.Serial(ta, tb, big, n, k, al, pa, lda, pb, ldb, be, pcBig, ldc);
        }
        double u = typeof(T) == typeof(float) ? Math.Pow(2, -23) : Math.Pow(2, -52); // ε of T
        double tol = 4.0 * (k + 2) * u;
        string what = $"{typeof(T).Name} {ta}/{tb} m={m} n={n} k={k} α={alpha} β={beta} pad={pad}";
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0, sAbs = 0;
                for (int p = 0; p < k; p++)
                {
                    double x = double.CreateTruncating(ta == Trans.No ? a[i * lda + p] : a[p * lda + i]);
                    double y = double.CreateTruncating(tb == Trans.No ? b[p * ldb + j] : b[j * ldb + p]);
                    s += x * y; sAbs += Math.Abs(x * y);
                }
                double c0ij = beta == 0 ? 0 : double.CreateTruncating(c0[i * ldc + j]);
                double expected = alpha * s + beta * c0ij, scale = Math.Abs(alpha) * sAbs + Math.Abs(beta * c0ij);
                double got = double.CreateTruncating(c[i * ldc + j]);
                Assert.True(Math.Abs(got - expected) <= tol * scale + 1e-300, $"{what}: C[{i},{j}] = {got}, naive {expected}");
                Assert.True(c[i * ldc + j] == cBig[i * ldc + j], $"{what}: C[{i},{j}] = {got}, in a whole block {cBig[i * ldc + j]}");
            }
        for (int q = 0; q < c.Length; q++) // the gaps between rows and the rows past m are not this product's
            if (q >= m * ldc || q % ldc >= n)
                Assert.True(c0[q].Equals(c[q]), $"{what}: element {q} outside C changed");
    }

    /// <summary>
    /// <c>PackAll</c>'s ragged last panel: every k-row holds op(B)'s columns, then zeros up to the end of
    /// the vector that holds the last column (the edge tiles multiply those lanes; they must be finite);
    /// whole panels are copied whole. Both transposes, one and two k-slices, a buffer full of NaN; the
    /// AVX-512 kernel's panels (3 zmm wide) and the AVX2 kernel's (2 ymm wide).
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void RaggedPanelsHoldTheColumnsThenZerosToTheVectorEnd(string precision)
    {
        if (Avx512F.IsSupported)
        {
            if (precision == "f64") RaggedPanels<double, Avx512Kernel<double>>(Vector512<double>.Count);
            else RaggedPanels<float, Avx512Kernel<float>>(Vector512<float>.Count);
        }
        if (Avx2.IsSupported && Fma.IsSupported)
        {
            if (precision == "f64") RaggedPanels<double, Avx2Kernel<double>>(Vector256<double>.Count);
            else RaggedPanels<float, Avx2Kernel<float>>(Vector256<float>.Count);
        }
    }

    private static unsafe void RaggedPanels<T, K>(int l) where T : unmanaged, IFloatingPointIeee754<T> where K : struct, IGemmKernel<T>
    {
        int nr = K.NR, kc = K.KC;
        var rng = new Random(122);
        foreach (int n in new[] { 1, 5, l - 1, l, l + 1, 2 * l + 3, nr - 1, nr + 5, 2 * nr + l + 2 })
            foreach (int k in new[] { 7, kc + 5 })
                foreach (Trans tb in new[] { Trans.No, Trans.Yes })
                {
                    int ldb = (tb == Trans.No ? n : k) + 2;
                    T[] b = Random<T>(rng, (tb == Trans.No ? k : n) * ldb);
                    long length = GemmDriver<T, K>.PackedLength(k, n);
                    T[] packed = new T[length];
                    Array.Fill(packed, T.NaN);
                    fixed (T* pb = b, pp = packed)
                        GemmDriver<T, K>.PackAll(tb, pb, ldb, k, n, pp);
                    int depth = GemmDriver<T, K>.SliceDepth(k), nPad = (n + nr - 1) / nr * nr;
                    int reach = Math.Min(nr, (n % nr + l - 1) / l * l); // lanes the last panel's edge tiles read
                    for (int pc = 0; pc < k; pc += depth)
                    {
                        int kcs = Math.Min(depth, k - pc);
                        for (int p = 0; p < kcs; p++)
                            for (int j = 0; j < nPad; j++)
                            {
                                int panel = j / nr, lane = j % nr;
                                T got = packed[(long)pc * nPad + (long)panel * nr * kcs + p * nr + lane];
                                string at = $"{typeof(K).Name} {typeof(T).Name} {tb} n={n} k={k}: row {pc + p} column {j}";
                                if (j < n)
                                    Assert.True(got == (tb == Trans.No ? b[(pc + p) * ldb + j] : b[j * ldb + pc + p]), $"{at} is {got}");
                                else if (n % nr == 0 || lane < reach)
                                    Assert.True(got == T.Zero, $"{at} (padding read by the edge tiles) is {got}, not 0");
                            }
                    }
                }
    }

    private static T[] Random<T>(Random rng, int length) where T : IFloatingPointIeee754<T>
    {
        var x = new T[length];
        for (int i = 0; i < length; i++) x[i] = T.CreateTruncating(2 * rng.NextDouble() - 1);
        return x;
    }
}
