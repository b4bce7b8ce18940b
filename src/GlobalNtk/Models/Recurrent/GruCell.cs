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

    internal override void ApplyD<T>(in StepRow<T> row, ReadOnlySpan<T> da, Span<T> dz, Span<T> work)
    {
        int h = HiddenSize;
        var c = row.Cache;
        var r = c[..h]; var u = c.Slice(h, h); var n = c.Slice(2 * h, h); var hn = c.Slice(3 * h, h);
        var t1 = work[..h]; var t2 = work.Slice(h, h);
        // dr = σ'(r)(da_ir + da_hr)
        TensorPrimitives.Add(da[..h], da.Slice(3 * h, h), t1);
        Pointwise.SigmoidDerivative(r, t2);
        TensorPrimitives.Multiply(t1, t2, t1);
        // dn = (1 − n²)(da_in + r ⊙ da_hn + dr ⊙ a_hn)
        TensorPrimitives.Multiply(t1, hn, t1);
        TensorPrimitives.MultiplyAdd(r, da.Slice(5 * h, h), t1, t1);
        TensorPrimitives.Add(t1, da.Slice(2 * h, h), t1);
        Pointwise.OneMinusSquare(n, t2);
        TensorPrimitives.Multiply(t1, t2, t1);
        // dz = (1 − u) dn + (h − n) du
        TensorPrimitives.Subtract(T.One, u, t2);
        TensorPrimitives.Multiply(t1, t2, dz);
        TensorPrimitives.Add(da.Slice(h, h), da.Slice(4 * h, h), t1);
        Pointwise.SigmoidDerivative(u, t2);
        TensorPrimitives.Multiply(t1, t2, t1);
        TensorPrimitives.Subtract(row.ZPrev, n, t2);
        TensorPrimitives.MultiplyAdd(t1, t2, dz, dz);
    }

    internal override void ApplyDTranspose<T>(in StepRow<T> row, ReadOnlySpan<T> q, Span<T> g, Span<T> work)
    {
        int h = HiddenSize;
        var c = row.Cache;
        var r = c[..h]; var u = c.Slice(h, h); var n = c.Slice(2 * h, h); var hn = c.Slice(3 * h, h);
        var t1 = work[..h]; var t2 = work.Slice(h, h);
        var gir = g[..h]; var giz = g.Slice(h, h); var gin = g.Slice(2 * h, h);
        // g_z = q ⊙ (h − n) ⊙ σ'(u), shared by ih and hh
        TensorPrimitives.Subtract(row.ZPrev, n, t1);
        TensorPrimitives.Multiply(t1, q, t1);
        Pointwise.SigmoidDerivative(u, t2);
        TensorPrimitives.Multiply(t1, t2, giz);
        giz.CopyTo(g.Slice(4 * h, h));
        // g_in = q ⊙ (1 − u) ⊙ (1 − n²); g_hn = r ⊙ g_in
        TensorPrimitives.Subtract(T.One, u, t1);
        TensorPrimitives.Multiply(t1, q, t1);
        Pointwise.OneMinusSquare(n, t2);
        TensorPrimitives.Multiply(t1, t2, gin);
        TensorPrimitives.Multiply(gin, r, g.Slice(5 * h, h));
        // g_r = g_in ⊙ a_hn ⊙ σ'(r), shared
        TensorPrimitives.Multiply(gin, hn, t1);
        Pointwise.SigmoidDerivative(r, t2);
        TensorPrimitives.Multiply(t1, t2, gir);
        gir.CopyTo(g.Slice(3 * h, h));
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
