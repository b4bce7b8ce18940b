using System.Numerics;
using System.Numerics.Tensors;

namespace GlobalNtk.Models.Recurrent;

/// <summary>
/// nn.GRU (gates r, z, n; docs/math.md#cells): r = σ(a_ir + a_hr), u = σ(a_iz + a_hz),
/// n = tanh(a_in + r ⊙ a_hn), h' = (1 − u) ⊙ n + u ⊙ h, with a_i· = W_i· x + b_i·, a_h· = W_h· h + b_h·.
/// </summary>
/// <remarks>
/// Because r multiplies a_hn, the ih and hh pre-activations enter differently: two weight sites
/// [x; 1] and [h; 1] (docs/math.md#kronecker-core). Cache per row: r, u, n, a_hn.
/// </remarks>
public sealed class GruCell : RecurrentCell
{
    internal GruCell(RecurrentConfig config, ParameterSet parameters)
        : base(config, parameters, hasBiasIh: true, splitPreActivation: true) { }

    internal override int CacheWidth => 4 * HiddenSize;
    internal override int WorkWidth => 2 * HiddenSize;
    internal override bool UnitLocal => true;   // every gate, c and h: unit i from unit i's entries only

    internal override void ForwardRow<T>(ReadOnlySpan<T> pre, ReadOnlySpan<T> zPrev, Span<T> z, Span<T> cache)
    {
        int h = HiddenSize;
        var r = cache[..h]; var u = cache.Slice(h, h); var n = cache.Slice(2 * h, h); var hn = cache.Slice(3 * h, h);
        TensorPrimitives.Add(pre[..h], pre.Slice(3 * h, h), r);
        TensorPrimitives.Sigmoid(r, r);
        TensorPrimitives.Add(pre.Slice(h, h), pre.Slice(4 * h, h), u);
        TensorPrimitives.Sigmoid(u, u);
        pre.Slice(5 * h, h).CopyTo(hn);
        TensorPrimitives.MultiplyAdd(r, hn, pre.Slice(2 * h, h), n);
        TensorPrimitives.Tanh(n, n);
        // h' = n + u ⊙ (h − n)
        TensorPrimitives.Subtract(zPrev, n, z);
        TensorPrimitives.MultiplyAdd(u, z, n, z);
    }

    // D and Dᵀ are one pass over the row's units (Lanes): every gate's cache entry is read once and
    // each output written once, where a pass per operation would stream the row ~15 times. The
    // per-unit formulas keep the operations and their order of the step-by-step form (no fused
    // multiply-add), so the results are the same bits.

    internal override void ApplyD<T>(in StepRow<T> row, ReadOnlySpan<T> da, Span<T> dz, Span<T> work)
    {
        var k = new DKernel<T>(row, da, dz, HiddenSize);
        Lanes.For<T, DKernel<T>>(HiddenSize, ref k);
    }

    internal override void ApplyDTranspose<T>(in StepRow<T> row, ReadOnlySpan<T> q, Span<T> g, Span<T> work)
    {
        var k = new DTransposeKernel<T>(row, q, g, HiddenSize);
        Lanes.For<T, DTransposeKernel<T>>(HiddenSize, ref k);
    }

    // The state maps see only the hh block: a state JVP's ih pre-activations are zero, and a state
    // VJP reads only the hh part of Dᵀq. So P skips clearing and reading a zero ih block, and P*
    // writes 3H values per row instead of 6H. The zeros still enter D as additions (0 + x is x, and
    // keeps the sign of a zero as the whole-row form does), so the bits are those of ApplyD.

    internal override void ApplyDHh<T>(in StepRow<T> row, ReadOnlySpan<T> daHh, Span<T> dz, Span<T> work)
    {
        var k = new DHhKernel<T>(row, daHh, dz, HiddenSize);
        Lanes.For<T, DHhKernel<T>>(HiddenSize, ref k);
    }

    internal override void ApplyDTransposeHh<T>(in StepRow<T> row, ReadOnlySpan<T> q, Span<T> gHh, Span<T> work)
    {
        var k = new DTransposeHhKernel<T>(row, q, gHh, HiddenSize);
        Lanes.For<T, DTransposeHhKernel<T>>(HiddenSize, ref k);
    }

    /// <summary><see cref="DKernel{T}"/> with da_ir = da_iz = da_in = 0.</summary>
    private readonly ref struct DHhKernel<T> : ILaneKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly ReadOnlySpan<T> _r, _u, _n, _hn, _zPrev, _hr, _hz, _hnDa;
        private readonly Span<T> _dz;

        public DHhKernel(in StepRow<T> row, ReadOnlySpan<T> daHh, Span<T> dz, int h)
        {
            var c = row.Cache;
            _r = c[..h]; _u = c.Slice(h, h); _n = c.Slice(2 * h, h); _hn = c.Slice(3 * h, h); _zPrev = row.ZPrev[..h];
            _hr = daHh[..h]; _hz = daHh.Slice(h, h); _hnDa = daHh.Slice(2 * h, h);
            _dz = dz[..h];
        }

        public void Run<TL>(int from, int to) where TL : struct, ILanes<TL, T>
        {
            var one = TL.Splat(T.One);
            var zero = TL.Splat(T.Zero);
            for (int i = from; i < to; i += TL.Count)
            {
                var r = TL.Load(_r, i); var u = TL.Load(_u, i); var n = TL.Load(_n, i);
                var t1 = (zero + TL.Load(_hr, i)) * (r * (one - r));
                t1 = t1 * TL.Load(_hn, i);
                t1 = r * TL.Load(_hnDa, i) + t1;
                t1 = t1 + zero;
                t1 = t1 * (one - n * n);
                var dz = t1 * (one - u);
                var du = (zero + TL.Load(_hz, i)) * (u * (one - u));
                (du * (TL.Load(_zPrev, i) - n) + dz).Store(_dz, i);
            }
        }
    }

    /// <summary>The hh block [g_r, g_z, g_hn] of <see cref="DTransposeKernel{T}"/>.</summary>
    private readonly ref struct DTransposeHhKernel<T> : ILaneKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly ReadOnlySpan<T> _r, _u, _n, _hn, _zPrev, _q;
        private readonly Span<T> _hr, _hz, _hnG;

        public DTransposeHhKernel(in StepRow<T> row, ReadOnlySpan<T> q, Span<T> gHh, int h)
        {
            var c = row.Cache;
            _r = c[..h]; _u = c.Slice(h, h); _n = c.Slice(2 * h, h); _hn = c.Slice(3 * h, h); _zPrev = row.ZPrev[..h]; _q = q[..h];
            _hr = gHh[..h]; _hz = gHh.Slice(h, h); _hnG = gHh.Slice(2 * h, h);
        }

        public void Run<TL>(int from, int to) where TL : struct, ILanes<TL, T>
        {
            var one = TL.Splat(T.One);
            for (int i = from; i < to; i += TL.Count)
            {
                var r = TL.Load(_r, i); var u = TL.Load(_u, i); var n = TL.Load(_n, i); var q = TL.Load(_q, i);
                ((TL.Load(_zPrev, i) - n) * q * (u * (one - u))).Store(_hz, i);
                var gin = (one - u) * q * (one - n * n);
                (gin * r).Store(_hnG, i);
                (gin * TL.Load(_hn, i) * (r * (one - r))).Store(_hr, i);
            }
        }
    }

    /// <summary>
    /// dz = D da per unit: dr = σ'(r)(da_ir + da_hr), dn = (1 − n²)(dr a_hn + r da_hn + da_in),
    /// du = σ'(u)(da_iz + da_hz), dz = (1 − u) dn + (h − n) du.
    /// </summary>
    private readonly ref struct DKernel<T> : ILaneKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly ReadOnlySpan<T> _r, _u, _n, _hn, _zPrev, _ir, _iz, _in, _hr, _hz, _hnDa;
        private readonly Span<T> _dz;

        public DKernel(in StepRow<T> row, ReadOnlySpan<T> da, Span<T> dz, int h)
        {
            var c = row.Cache;
            _r = c[..h]; _u = c.Slice(h, h); _n = c.Slice(2 * h, h); _hn = c.Slice(3 * h, h); _zPrev = row.ZPrev[..h];
            _ir = da[..h]; _iz = da.Slice(h, h); _in = da.Slice(2 * h, h); _hr = da.Slice(3 * h, h); _hz = da.Slice(4 * h, h); _hnDa = da.Slice(5 * h, h);
            _dz = dz[..h];
        }

        public void Run<TL>(int from, int to) where TL : struct, ILanes<TL, T>
        {
            var one = TL.Splat(T.One);
            for (int i = from; i < to; i += TL.Count)
            {
                var r = TL.Load(_r, i); var u = TL.Load(_u, i); var n = TL.Load(_n, i);
                var t1 = (TL.Load(_ir, i) + TL.Load(_hr, i)) * (r * (one - r));
                t1 = t1 * TL.Load(_hn, i);
                t1 = r * TL.Load(_hnDa, i) + t1;
                t1 = t1 + TL.Load(_in, i);
                t1 = t1 * (one - n * n);
                var dz = t1 * (one - u);
                var du = (TL.Load(_iz, i) + TL.Load(_hz, i)) * (u * (one - u));
                (du * (TL.Load(_zPrev, i) - n) + dz).Store(_dz, i);
            }
        }
    }

    /// <summary>
    /// g = Dᵀ q per unit: g_z = q (h − n) σ'(u) and g_r = g_in a_hn σ'(r), shared by the ih and hh
    /// blocks; g_in = q (1 − u)(1 − n²); g_hn = r g_in.
    /// </summary>
    private readonly ref struct DTransposeKernel<T> : ILaneKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly ReadOnlySpan<T> _r, _u, _n, _hn, _zPrev, _q;
        private readonly Span<T> _ir, _iz, _in, _hr, _hz, _hnG;

        public DTransposeKernel(in StepRow<T> row, ReadOnlySpan<T> q, Span<T> g, int h)
        {
            var c = row.Cache;
            _r = c[..h]; _u = c.Slice(h, h); _n = c.Slice(2 * h, h); _hn = c.Slice(3 * h, h); _zPrev = row.ZPrev[..h]; _q = q[..h];
            _ir = g[..h]; _iz = g.Slice(h, h); _in = g.Slice(2 * h, h); _hr = g.Slice(3 * h, h); _hz = g.Slice(4 * h, h); _hnG = g.Slice(5 * h, h);
        }

        public void Run<TL>(int from, int to) where TL : struct, ILanes<TL, T>
        {
            var one = TL.Splat(T.One);
            for (int i = from; i < to; i += TL.Count)
            {
                var r = TL.Load(_r, i); var u = TL.Load(_u, i); var n = TL.Load(_n, i); var q = TL.Load(_q, i);
                var gz = (TL.Load(_zPrev, i) - n) * q * (u * (one - u));
                gz.Store(_iz, i); gz.Store(_hz, i);
                var gin = (one - u) * q * (one - n * n);
                gin.Store(_in, i);
                (gin * r).Store(_hnG, i);
                var gr = gin * TL.Load(_hn, i) * (r * (one - r));
                gr.Store(_ir, i); gr.Store(_hr, i);
            }
        }
    }

    internal override void ApplyEAdd<T>(in StepRow<T> row, ReadOnlySpan<T> src, Span<T> dst, T alpha, Span<T> work)
    {
        var t = work[..HiddenSize];
        TensorPrimitives.Multiply(row.Cache.Slice(HiddenSize, HiddenSize), src, t);
        TensorPrimitives.MultiplyAdd(t, alpha, dst, dst);
    }

    internal override void ApplyETransposeAdd<T>(in StepRow<T> row, ReadOnlySpan<T> q, Span<T> dst, T alpha, Span<T> work) =>
        ApplyEAdd(row, q, dst, alpha, work); // E = diag(u) is symmetric
}
