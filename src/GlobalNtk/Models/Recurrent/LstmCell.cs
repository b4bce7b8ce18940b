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

    internal override void ApplyD<T>(in StepRow<T> row, ReadOnlySpan<T> da, Span<T> dz, Span<T> work)
    {
        int h = HiddenSize;
        var cache = row.Cache;
        var i = cache[..h]; var f = cache.Slice(h, h); var g = cache.Slice(2 * h, h); var o = cache.Slice(3 * h, h); var tc = cache.Slice(4 * h, h);
        var t1 = work[..h]; var t2 = work.Slice(h, h);
        var dh = dz[..h]; var dc = dz.Slice(h, h);
        // dc' = c σ'(f) da_f + g σ'(i) da_i + i (1 − g²) da_g
        Pointwise.SigmoidDerivative(f, t1);
        TensorPrimitives.Multiply(t1, da.Slice(h, h), t1);
        TensorPrimitives.Multiply(t1, row.ZPrev.Slice(h, h), dc);
        Pointwise.SigmoidDerivative(i, t1);
        TensorPrimitives.Multiply(t1, da[..h], t1);
        TensorPrimitives.MultiplyAdd(t1, g, dc, dc);
        Pointwise.OneMinusSquare(g, t1);
        TensorPrimitives.Multiply(t1, da.Slice(2 * h, h), t1);
        TensorPrimitives.MultiplyAdd(t1, i, dc, dc);
        // dh' = o (1 − tc²) dc' + tc σ'(o) da_o
        Pointwise.OneMinusSquare(tc, t1);
        TensorPrimitives.Multiply(t1, o, t1);
        TensorPrimitives.Multiply(t1, dc, dh);
        Pointwise.SigmoidDerivative(o, t2);
        TensorPrimitives.Multiply(t2, da.Slice(3 * h, h), t2);
        TensorPrimitives.MultiplyAdd(t2, tc, dh, dh);
    }

    internal override void ApplyDTranspose<T>(in StepRow<T> row, ReadOnlySpan<T> q, Span<T> gOut, Span<T> work)
    {
        int h = HiddenSize;
        var cache = row.Cache;
        var i = cache[..h]; var f = cache.Slice(h, h); var g = cache.Slice(2 * h, h); var o = cache.Slice(3 * h, h); var tc = cache.Slice(4 * h, h);
        var gc = work[..h]; var t = work.Slice(h, h);
        var qh = q[..h]; var qc = q.Slice(h, h);
        // gc = qc + qh ⊙ o ⊙ (1 − tc²)
        Pointwise.OneMinusSquare(tc, gc);
        TensorPrimitives.Multiply(gc, o, gc);
        TensorPrimitives.MultiplyAdd(gc, qh, qc, gc);
        // g_i = gc g σ'(i), g_f = gc c σ'(f), g_g = gc i (1 − g²), g_o = qh tc σ'(o)
        Pointwise.SigmoidDerivative(i, t);
        TensorPrimitives.Multiply(t, g, t);
        TensorPrimitives.Multiply(t, gc, gOut[..h]);
        Pointwise.SigmoidDerivative(f, t);
        TensorPrimitives.Multiply(t, row.ZPrev.Slice(h, h), t);
        TensorPrimitives.Multiply(t, gc, gOut.Slice(h, h));
        Pointwise.OneMinusSquare(g, t);
        TensorPrimitives.Multiply(t, i, t);
        TensorPrimitives.Multiply(t, gc, gOut.Slice(2 * h, h));
        Pointwise.SigmoidDerivative(o, t);
        TensorPrimitives.Multiply(t, tc, t);
        TensorPrimitives.Multiply(t, qh, gOut.Slice(3 * h, h));
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
