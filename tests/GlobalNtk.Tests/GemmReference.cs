using System.Numerics;
using GlobalNtk.Dense;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>The naive float64 reference the GEMM kernel tests hold a product to, and the guards around C.</summary>
internal static class GemmReference
{
    /// <summary>Machine epsilon (2u) of T.</summary>
    public static double Eps<T>() => typeof(T) == typeof(float) ? 1.1920928955078125e-7 : 2.220446049250313e-16;

    /// <summary>
    /// Asserts that C (row stride ldc, from <paramref name="offset"/>) equals α·op(A)·op(B) + β·C₀ summed in float64,
    /// within 4(k+2)·eps·(|α|·Σ|a||b| + |β|·|c₀|): any summation order's rounding is within γ_{k+2} of that sum (k products
    /// and sums, α and β), and 4·eps = 8u leaves room for the fused epilogue; and that the elements before C, from
    /// <paramref name="cEnd"/> on, and the padding between C's rows, are untouched. A route whose chains are shorter
    /// passes their <paramref name="depth"/> for k in the bound (lane sums: ⌈k/L⌉ + L).
    /// </summary>
    public static void AssertNaive<T>(Trans ta, Trans tb, int m, int n, int k, double alpha, double beta,
        T[] a, int lda, T[] b, int ldb, T[] c0, T[] c, int ldc, int offset, int cEnd, string label, int depth = -1)
        where T : IFloatingPointIeee754<T>
    {
        double tol = 4.0 * ((depth < 0 ? k : depth) + 2) * Eps<T>();
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
                Assert.True(Math.Abs(got - expected) <= bound,
                    $"{typeof(T).Name} {ta}/{tb} {m}×{n}×{k} α={alpha} β={beta} {label}: C[{i},{j}] = {got}, reference {expected}");
            }
        for (int q = 0; q < offset; q++) Assert.Equal(c0[q], c[q]);
        for (int q = cEnd; q < c.Length; q++) Assert.Equal(c0[q], c[q]);
        for (int i = 0; i < m - 1; i++)
            for (int j = n; j < ldc; j++)
                Assert.Equal(c0[offset + i * ldc + j], c[offset + i * ldc + j]);
    }
}
