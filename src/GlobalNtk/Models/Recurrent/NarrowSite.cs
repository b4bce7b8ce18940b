using System.Numerics;

namespace GlobalNtk.Models.Recurrent;

/// <summary>
/// K's products with a narrow weight site (a few inputs plus biases, d̂ ≤ 8 columns of Û), where a
/// GEMM would waste its tiles: C += Ûᵀ g and A = Û C as per-column loops over SIMD lanes.
/// </summary>
/// <remarks>
/// Each element's sum keeps the order and roundings of one axpy per (row, column of Û): row by row,
/// c ← g·u + c, and a = c_0 u_0 + c_1 u_1 + … left to right, with no fused multiply-add. The loops
/// only hold the partial sums in registers (up to four columns of Û at a time) instead of
/// re-reading g and C for every axpy, so the bits are those of the axpys.
/// </remarks>
internal static class NarrowSite
{
    /// <summary>
    /// c[i, lo..lo+w) += Σ_r u[r, i] · g[r, offset + lo ..] over rows r &lt; <paramref name="rows"/>, in row
    /// order; c has row stride <paramref name="ldc"/>, g row stride <paramref name="ldg"/>, u is
    /// [rows, d] (the chunk's rows of Û).
    /// </summary>
    public static void Accumulate<T>(ReadOnlySpan<T> g, int ldg, int offset, int rows, ReadOnlySpan<T> u, int d, Span<T> c, int ldc, int lo, int w)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i0 = 0; i0 < d; i0 += 4)
        {
            var k = new AccumulateKernel<T>(g[(offset + lo)..], ldg, rows, u, d, i0, Math.Min(4, d - i0), c[lo..], ldc, w);
            Lanes.For<T, AccumulateKernel<T>>(w, ref k);
        }
    }

    /// <summary>a[0..w) = Σ_i c[i, 0..w) · u[i] for i &lt; d (left to right); c has row stride <paramref name="ldc"/>.</summary>
    public static void Combine<T>(ReadOnlySpan<T> c, int ldc, ReadOnlySpan<T> u, int d, Span<T> a, int w)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var k = new CombineKernel<T>(c, ldc, u, d, a, w);
        Lanes.For<T, CombineKernel<T>>(w, ref k);
    }

    private readonly ref struct AccumulateKernel<T>(ReadOnlySpan<T> g, int ldg, int rows, ReadOnlySpan<T> u, int d, int i0, int n, Span<T> c, int ldc, int w)
        : ILaneKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly ReadOnlySpan<T> _g = g[..((rows - 1) * ldg + w)], _u = u[..(rows * d)];
        private readonly Span<T> _c = c[..((i0 + n - 1) * ldc + w)];

        public void Run<TL>(int from, int to) where TL : struct, ILanes<TL, T>
        {
            for (int j = from; j < to; j += TL.Count)
            {
                if (n == 4)
                {
                    var a0 = TL.Load(_c, i0 * ldc + j); var a1 = TL.Load(_c, (i0 + 1) * ldc + j);
                    var a2 = TL.Load(_c, (i0 + 2) * ldc + j); var a3 = TL.Load(_c, (i0 + 3) * ldc + j);
                    for (int r = 0; r < rows; r++)
                    {
                        var x = TL.Load(_g, r * ldg + j);
                        int ur = r * d + i0;
                        a0 = x * TL.Splat(_u[ur]) + a0;
                        a1 = x * TL.Splat(_u[ur + 1]) + a1;
                        a2 = x * TL.Splat(_u[ur + 2]) + a2;
                        a3 = x * TL.Splat(_u[ur + 3]) + a3;
                    }
                    a0.Store(_c, i0 * ldc + j); a1.Store(_c, (i0 + 1) * ldc + j);
                    a2.Store(_c, (i0 + 2) * ldc + j); a3.Store(_c, (i0 + 3) * ldc + j);
                    continue;
                }
                for (int i = i0; i < i0 + n; i++)
                {
                    var a = TL.Load(_c, i * ldc + j);
                    for (int r = 0; r < rows; r++) a = TL.Load(_g, r * ldg + j) * TL.Splat(_u[r * d + i]) + a;
                    a.Store(_c, i * ldc + j);
                }
            }
        }
    }

    private readonly ref struct CombineKernel<T>(ReadOnlySpan<T> c, int ldc, ReadOnlySpan<T> u, int d, Span<T> a, int w)
        : ILaneKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly ReadOnlySpan<T> _c = c[..((d - 1) * ldc + w)], _u = u[..d];
        private readonly Span<T> _a = a[..w];

        public void Run<TL>(int from, int to) where TL : struct, ILanes<TL, T>
        {
            for (int j = from; j < to; j += TL.Count)
            {
                var s = TL.Load(_c, j) * TL.Splat(_u[0]);
                for (int i = 1; i < d; i++) s = TL.Load(_c, i * ldc + j) * TL.Splat(_u[i]) + s;
                s.Store(_a, j);
            }
        }
    }
}
