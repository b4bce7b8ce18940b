using System.Numerics;
using System.Numerics.Tensors;

namespace GlobalNtk.Models.Recurrent;

/// <summary>
/// nn.LSTM (gates i, f, g, o; docs/math.md#cells): c' = f ⊙ c + i ⊙ g, h' = o ⊙ tanh(c'), with all gates
/// from a = W_ih x + b_ih + W_hh h + b_hh. State z = [h; c] (size 2H, h first).
/// </summary>
/// <remarks>Cache per row: i, f, g, o, tanh(c'). E acts through c only: dc' = f dc, dh' = o(1 − tanh²c') f dc.</remarks>
public sealed class LstmCell : RecurrentCell
{
    internal LstmCell(RecurrentConfig config, ParameterSet parameters)
        : base(config, parameters, hasBiasIh: true, splitPreActivation: false) { }

    internal override int CacheWidth => 5 * HiddenSize;
    internal override int WorkWidth => 2 * HiddenSize;
    internal override bool UnitLocal => true;   // every gate, c and h: unit i from unit i's entries only

    internal override void ForwardRow<T>(ReadOnlySpan<T> pre, ReadOnlySpan<T> zPrev, Span<T> z, Span<T> cache)
    {
        int h = HiddenSize;
        var i = cache[..h]; var f = cache.Slice(h, h); var g = cache.Slice(2 * h, h); var o = cache.Slice(3 * h, h); var tc = cache.Slice(4 * h, h);
        TensorPrimitives.Sigmoid(pre[..(2 * h)], cache[..(2 * h)]);
        TensorPrimitives.Tanh(pre.Slice(2 * h, h), g);
        TensorPrimitives.Sigmoid(pre.Slice(3 * h, h), o);
        var hNew = z[..h]; var cNew = z.Slice(h, h);
        TensorPrimitives.Multiply(f, zPrev.Slice(h, h), cNew);
        TensorPrimitives.MultiplyAdd(i, g, cNew, cNew);
        TensorPrimitives.Tanh(cNew, tc);
        TensorPrimitives.Multiply(o, tc, hNew);
    }

    // D and Dᵀ are one pass over the row's units (Lanes), as for the GRU: each cache entry is read
    // once; the per-unit formulas keep the operations and order of the step-by-step form, so the
    // results are the same bits.

    internal override void ApplyD<T>(in StepRow<T> row, ReadOnlySpan<T> da, Span<T> dz, Span<T> work)
    {
        var k = new DKernel<T>(row, da, dz, HiddenSize);
        Lanes.For<T, DKernel<T>>(HiddenSize, ref k);
    }

    internal override void ApplyDTranspose<T>(in StepRow<T> row, ReadOnlySpan<T> q, Span<T> gOut, Span<T> work)
    {
        var k = new DTransposeKernel<T>(row, q, gOut, HiddenSize);
        Lanes.For<T, DTransposeKernel<T>>(HiddenSize, ref k);
    }

    /// <summary>
    /// dz = D da per unit: dc' = c σ'(f) da_f + g σ'(i) da_i + i (1 − g²) da_g,
    /// dh' = o (1 − tc²) dc' + tc σ'(o) da_o.
    /// </summary>
    private readonly ref struct DKernel<T> : ILaneKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly ReadOnlySpan<T> _i, _f, _g, _o, _tc, _c, _di, _df, _dg, _do;
        private readonly Span<T> _dh, _dc;

        public DKernel(in StepRow<T> row, ReadOnlySpan<T> da, Span<T> dz, int h)
        {
            var cache = row.Cache;
            _i = cache[..h]; _f = cache.Slice(h, h); _g = cache.Slice(2 * h, h); _o = cache.Slice(3 * h, h); _tc = cache.Slice(4 * h, h);
            _c = row.ZPrev.Slice(h, h);
            _di = da[..h]; _df = da.Slice(h, h); _dg = da.Slice(2 * h, h); _do = da.Slice(3 * h, h);
            _dh = dz[..h]; _dc = dz.Slice(h, h);
        }

        public void Run<TL>(int from, int to) where TL : struct, ILanes<TL, T>
        {
            var one = TL.Splat(T.One);
            for (int j = from; j < to; j += TL.Count)
            {
                var i = TL.Load(_i, j); var f = TL.Load(_f, j); var g = TL.Load(_g, j); var o = TL.Load(_o, j); var tc = TL.Load(_tc, j);
                var dc = f * (one - f) * TL.Load(_df, j) * TL.Load(_c, j);
                dc = i * (one - i) * TL.Load(_di, j) * g + dc;
                dc = (one - g * g) * TL.Load(_dg, j) * i + dc;
                dc.Store(_dc, j);
                var dh = (one - tc * tc) * o * dc;
                (o * (one - o) * TL.Load(_do, j) * tc + dh).Store(_dh, j);
            }
        }
    }

    /// <summary>
    /// g = Dᵀ q per unit: gc = qc + qh o (1 − tc²); g_i = gc g σ'(i), g_f = gc c σ'(f),
    /// g_g = gc i (1 − g²), g_o = qh tc σ'(o).
    /// </summary>
    private readonly ref struct DTransposeKernel<T> : ILaneKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly ReadOnlySpan<T> _i, _f, _g, _o, _tc, _c, _qh, _qc;
        private readonly Span<T> _gi, _gf, _gg, _go;

        public DTransposeKernel(in StepRow<T> row, ReadOnlySpan<T> q, Span<T> gOut, int h)
        {
            var cache = row.Cache;
            _i = cache[..h]; _f = cache.Slice(h, h); _g = cache.Slice(2 * h, h); _o = cache.Slice(3 * h, h); _tc = cache.Slice(4 * h, h);
            _c = row.ZPrev.Slice(h, h);
            _qh = q[..h]; _qc = q.Slice(h, h);
            _gi = gOut[..h]; _gf = gOut.Slice(h, h); _gg = gOut.Slice(2 * h, h); _go = gOut.Slice(3 * h, h);
        }

        public void Run<TL>(int from, int to) where TL : struct, ILanes<TL, T>
        {
            var one = TL.Splat(T.One);
            for (int j = from; j < to; j += TL.Count)
            {
                var i = TL.Load(_i, j); var f = TL.Load(_f, j); var g = TL.Load(_g, j); var o = TL.Load(_o, j); var tc = TL.Load(_tc, j);
                var qh = TL.Load(_qh, j);
                var gc = (one - tc * tc) * o * qh + TL.Load(_qc, j);
                (i * (one - i) * g * gc).Store(_gi, j);
                (f * (one - f) * TL.Load(_c, j) * gc).Store(_gf, j);
                ((one - g * g) * i * gc).Store(_gg, j);
                (o * (one - o) * tc * qh).Store(_go, j);
            }
        }
    }

    internal override void ApplyEAdd<T>(in StepRow<T> row, ReadOnlySpan<T> src, Span<T> dst, T alpha, Span<T> work)
    {
        int h = HiddenSize;
        var f = row.Cache.Slice(h, h); var o = row.Cache.Slice(3 * h, h); var tc = row.Cache.Slice(4 * h, h);
        var t1 = work[..h]; var t2 = work.Slice(h, h);
        TensorPrimitives.Multiply(f, src.Slice(h, h), t1);               // f dc
        TensorPrimitives.MultiplyAdd(t1, alpha, dst.Slice(h, h), dst.Slice(h, h));
        Pointwise.OneMinusSquare(tc, t2);
        TensorPrimitives.Multiply(t2, o, t2);
        TensorPrimitives.Multiply(t1, t2, t1);                         // o (1 − tc²) f dc
        TensorPrimitives.MultiplyAdd(t1, alpha, dst[..h], dst[..h]);
    }

    internal override void ApplyETransposeAdd<T>(in StepRow<T> row, ReadOnlySpan<T> q, Span<T> dst, T alpha, Span<T> work)
    {
        int h = HiddenSize;
        var f = row.Cache.Slice(h, h); var o = row.Cache.Slice(3 * h, h); var tc = row.Cache.Slice(4 * h, h);
        var t = work[..h];
        // dc_prev += alpha f (qc + qh o (1 − tc²)); h_prev gets nothing directly
        Pointwise.OneMinusSquare(tc, t);
        TensorPrimitives.Multiply(t, o, t);
        TensorPrimitives.MultiplyAdd(t, q[..h], q.Slice(h, h), t);
        TensorPrimitives.Multiply(t, f, t);
        TensorPrimitives.MultiplyAdd(t, alpha, dst.Slice(h, h), dst.Slice(h, h));
    }
}
