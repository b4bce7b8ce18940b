using System.Runtime.InteropServices;
using GlobalNtk.Dense;
using GlobalNtk.Models;

using GlobalNtk.Operators;

namespace GlobalNtk.Ntk;

/// <summary>
/// K in Kronecker-core form (docs/math.md#kronecker-core): K = Σ_s D_s (Ĝ_s ⊗ I_{m_s}) D_s* + J_rest J_rest*.
/// The Gram Ĝ_s = Û Ûᵀ is applied as Û (Ûᵀ A) with two GEMMs per vector ([N, m_s] blocks),
/// never as an N × N matrix; parameters not covered by any site (LayerNorm gains, …) go
/// through the generic parameter JVP/VJP restricted to them. When a step holds several sites or
/// J_rest scalars and the linearisation can (block chains: <see cref="ChainLinearization.TryAddStepKernel(ReadOnlySpan{double}, Span{double}, int)"/>),
/// the same sum is applied step by step: one cotangent and one tangent sweep per step for all of
/// its sites and LayerNorm gains (docs/math.md#kronecker-core). Self-adjoint.
/// </summary>
public sealed class KroneckerKernelOperator : CheckedOperator
{
    private readonly ChainLinearization _lin;
    private readonly SiteParameterMap _map;
    private readonly bool _byStep;

    /// <summary>Kronecker-core K of a linearised chain (validates the sites).</summary>
    public KroneckerKernelOperator(ChainLinearization lin) : base(lin.StateShape, lin.StateShape)
    {
        _lin = lin;
        _map = new SiteParameterMap(lin);
        // Step by step (one sweep through a step for all its sites and LayerNorm gains) when a step
        // would otherwise be swept more than once: several sites in one step, or a J_rest term.
        _byStep = _map.RestSize > 0 || lin.Sites.Where(s => s.StateStep is not null).GroupBy(s => s.StateStep).Any(g => g.Count() > 1);
        foreach (var site in lin.Sites)
        {
            if (site.VariablesSingle.Length > 0) Float32.EnsureFinite(site.VariablesSingle.Span, $"site '{site.Name}' variables Û");
            else Numerics.EnsureFinite(site.Variables.Span, $"site '{site.Name}' variables Û");
        }
    }

    /// <inheritdoc/>
    public override string Name => "K (Kronecker core)";
    /// <inheritdoc/>
    public override bool IsSelfAdjoint => true;

    /// <summary>Whether K is applied step by step (<see cref="ChainLinearization.TryAddStepKernel(ReadOnlySpan{double}, Span{double}, int)"/>), so that NTK_S can fuse it with P and P*.</summary>
    internal bool ByStep => _byStep && _lin.HasStepKernel;

    /// <summary>Number of θ scalars handled by the generic J_rest J_rest* term.</summary>
    public int RestParameterCount => _map.RestSize;

    /// <inheritdoc/>
    protected override void ForwardBlock(ReadOnlySpan<double> x, Span<double> y, int count)
    {
        y.Clear();
        if (_byStep && _lin.TryAddStepKernel(x, y, count)) return;
        if (!_lin.TryAddSiteKernel(x, y, count))
            foreach (var site in _lin.Sites) AddSiteTerm(site, x, y, count);
        if (_map.RestSize > 0) AddRestTerm(x, y, count);
    }

    /// <inheritdoc/>
    protected override void AdjointBlock(ReadOnlySpan<double> x, Span<double> y, int count) => ForwardBlock(x, y, count);

    /// <summary>Float32 blocks stay float32 on a linearisation with float32 state maps (see the float32 <c>ForwardBlock</c>).</summary>
    internal override bool AppliesFloat32Natively => _lin.HasSingleStateMaps;

    /// <summary>
    /// On a float32 linearisation with float32 state maps, K on a float32 block: step by step in
    /// float32 where that path is taken, else the model's fused float32 site kernel when it has one
    /// (recurrent cells), else every site term in float32 (D_s*, the two Gram products, D_s); the
    /// J_rest term through the model's float32 restricted maps (or, without them, on the chunk
    /// widened to float64, added in float32).
    /// </summary>
    protected override void ForwardBlock(ReadOnlySpan<float> x, Span<float> y, int count)
    {
        if (!_lin.HasSingleStateMaps) { base.ForwardBlock(x, y, count); return; }
        y.Clear();
        if (_byStep && _lin.TryAddStepKernel(x, y, count)) return;
        if (!_lin.TryAddSiteKernel(x, y, count))
            foreach (var site in _lin.Sites) AddSiteTermSingle(site, x, y, count);
        if (_map.RestSize > 0) AddRestTerm(x, y, count);
    }

    /// <inheritdoc/>
    protected override void AdjointBlock(ReadOnlySpan<float> x, Span<float> y, int count) => ForwardBlock(x, y, count);

    /// <summary>y += D_s (Û Ûᵀ ⊗ I) D_s* x on float32 state blocks (the site has float32 maps: <see cref="ChainLinearization.HasSingleStateMaps"/>).</summary>
    private static void AddSiteTermSingle(WeightSite site, ReadOnlySpan<float> x, Span<float> y, int count)
    {
        int n = site.Rows, d = site.AugmentedWidth, m = site.OutDim;
        if (n == 0 || m == 0 || d == 0 || count == 0) return;
        int chunk = (int)Math.Clamp(SiteBlockBudget.Value / ((long)n * m), 1, count);
        if (!AddSiteTermSingle(site, x, y, count, chunk)) throw new InvalidOperationException($"Site '{site.Name}' has no float32 D*.");
    }

    /// <summary>
    /// The J_rest term on a float32 block. With float32 parameter maps: J_rest* and J_rest on float32
    /// chunks, added in float32 (an application, like the site terms: no float64 accumulation
    /// needed). Otherwise each chunk widened, J_rest J_rest* in float64, the result added rounded.
    /// </summary>
    private void AddRestTerm(ReadOnlySpan<float> x, Span<float> y, int count)
    {
        if (_lin.HasSingleParamMaps) { AddRestTermSingle(x, y, count); return; }
        int n = Domain.Size;
        int chunk = (int)Math.Clamp(SiteBlockBudget.Value / Math.Max(1, 2L * n + _map.RestSize), 1, Math.Max(1, count));
        using var wx = new BlockBuffer((long)chunk * n);
        using var wy = new BlockBuffer((long)chunk * n);
        for (int j0 = 0; j0 < count; j0 += chunk)
        {
            int cs = Math.Min(chunk, count - j0);
            var xs = wx.Span[..(cs * n)];
            var ys = wy.Span[..(cs * n)];
            Float32.Widen(x.Slice(j0 * n, cs * n), xs);
            ys.Clear();
            AddRestTerm(xs, ys, cs);
            var dst = y.Slice(j0 * n, cs * n);
            for (int i = 0; i < dst.Length; i++) dst[i] = (float)(dst[i] + ys[i]);
        }
    }

    /// <summary>
    /// Doubles per site-sized temporary block (64 MiB): a block of vectors is done in chunks that
    /// fit. Tests shrink it for their own call only, through <see cref="ScopedSetting{T}.Override"/>.
    /// </summary>
    internal static readonly ScopedSetting<long> SiteBlockBudget = new(MemoryBudget.SiteBlockElements);

    /// <summary>y += D_s (Û Ûᵀ ⊗ I) D_s* x, in chunks of vectors (memory bounded, not O(count·N·m_s)).</summary>
    private static void AddSiteTerm(WeightSite site, ReadOnlySpan<double> x, Span<double> y, int count)
    {
        int n = site.Rows, d = site.AugmentedWidth, m = site.OutDim, s = x.Length / Math.Max(1, count);
        if (n == 0 || m == 0 || d == 0 || count == 0) return;
        int blockSize = n * m;
        int chunk = (int)Math.Clamp(SiteBlockBudget.Value / blockSize, 1, count);
        if (site.VariablesSingle.Length > 0 && AddSiteTermSingle(site, x, y, count, chunk)) return;
        using var aBuf = new BlockBuffer((long)chunk * blockSize);
        using var cBuf = new BlockBuffer((long)chunk * d * m);
        var u = site.Variables.Span;
        for (int j0 = 0; j0 < count; j0 += chunk)
        {
            int cs = Math.Min(chunk, count - j0);
            var a = aBuf.Span[..(cs * blockSize)];
            var c = cBuf.Span[..(cs * d * m)];
            site.ApplyDAdjoint(x.Slice(j0 * s, cs * s), a, cs);
            // C_j = Ûᵀ A_j [d, m], then A_j = Û C_j [n, m]: Û shared across the batch (stride 0).
            Gemm.MultiplyBatched(Trans.Yes, Trans.No, cs, d, m, n, 1.0, u, d, 0, a, m, blockSize, 0.0, c, m, d * m);
            Gemm.MultiplyBatched(Trans.No, Trans.No, cs, n, m, d, 1.0, u, d, 0, c, m, d * m, 0.0, a, m, blockSize);
            site.ApplyDAdd(a, y.Slice(j0 * s, cs * s), cs);
        }
    }

    /// <summary>
    /// <see cref="AddSiteTerm"/> of a float32 site on a float64 or float32 state block (T): D_s*, the
    /// two Gram products and D_s on float32 blocks against the float32 Û (an application, not a Gram
    /// matrix or a trace: no float64 accumulation needed, docs/math.md#numerics). False when the site
    /// has no float32 maps (nothing is done then).
    /// </summary>
    private static bool AddSiteTermSingle<T>(WeightSite site, ReadOnlySpan<T> x, Span<T> y, int count, int chunk) where T : unmanaged
    {
        int n = site.Rows, d = site.AugmentedWidth, m = site.OutDim, s = x.Length / count, blockSize = n * m;
        using var aBuf = new Float32Buffer((long)chunk * blockSize);
        using var cBuf = new Float32Buffer((long)chunk * d * m);
        var u = site.VariablesSingle.Span;
        for (int j0 = 0; j0 < count; j0 += chunk)
        {
            int cs = Math.Min(chunk, count - j0);
            var a = aBuf.Span[..(cs * blockSize)];
            var c = cBuf.Span[..(cs * d * m)];
            var xs = x.Slice(j0 * s, cs * s);
            var ys = y.Slice(j0 * s, cs * s);
            bool adjoint = typeof(T) == typeof(double)
                ? site.TryApplyDAdjointSingle(MemoryMarshal.Cast<T, double>(xs), a, cs)
                : site.TryApplyDAdjointSingle(MemoryMarshal.Cast<T, float>(xs), a, cs);
            if (!adjoint) return false;
            Gemm.MultiplyBatched(Trans.Yes, Trans.No, cs, d, m, n, 1f, u, d, 0, a, m, blockSize, 0f, c, m, d * m);
            Gemm.MultiplyBatched(Trans.No, Trans.No, cs, n, m, d, 1f, u, d, 0, c, m, d * m, 0f, a, m, blockSize);
            bool applied = typeof(T) == typeof(double)
                ? site.TryApplyDAddSingle((ReadOnlySpan<float>)a, MemoryMarshal.Cast<T, double>(ys), cs)
                : site.TryApplyDAddSingle((ReadOnlySpan<float>)a, MemoryMarshal.Cast<T, float>(ys), cs);
            if (!applied) throw new InvalidOperationException($"Site '{site.Name}' has a float32 D* but no float32 D.");
        }
        return true;
    }

    /// <summary>y += J_rest J_rest* x on float32 blocks through the model's float32 restricted maps, in chunks as <see cref="AddRestTerm(ReadOnlySpan{double}, Span{double}, int)"/>.</summary>
    private void AddRestTermSingle(ReadOnlySpan<float> x, Span<float> y, int count)
    {
        int n = Domain.Size, k = _map.RestSize;
        int chunk = (int)Math.Clamp(SiteBlockBudget.Value / Math.Max(1, n + k), 1, Math.Max(1, count));
        using var g = new Float32Buffer((long)chunk * k);
        using var t = new Float32Buffer((long)chunk * n);
        for (int j0 = 0; j0 < count; j0 += chunk)
        {
            int cs = Math.Min(chunk, count - j0);
            var gs = g.Span[..(cs * k)];
            var ts = t.Span[..(cs * n)];
            if (!_lin.TryParamVjpSubset(_map.Rest, x.Slice(j0 * n, cs * n), gs, cs) || !_lin.TryParamJvpSubset(_map.Rest, gs, ts, cs))
                throw new InvalidOperationException("The linearisation declares float32 parameter maps but has no float32 J_rest.");
            var dst = y.Slice(j0 * n, cs * n);
            System.Numerics.Tensors.TensorPrimitives.Add(dst, ts, dst);
        }
    }

    /// <summary>
    /// y += J_rest J_rest* x (θ entries outside every site), through the model's restricted
    /// parameter JVP/VJP, in chunks of vectors so that the state-sized image block stays within
    /// <see cref="SiteBlockBudget"/> (not O(count·N)).
    /// </summary>
    private void AddRestTerm(ReadOnlySpan<double> x, Span<double> y, int count)
    {
        int n = Domain.Size, k = _map.RestSize;
        int chunk = (int)Math.Clamp(SiteBlockBudget.Value / Math.Max(1, n + k), 1, Math.Max(1, count));
        using var g = new BlockBuffer((long)chunk * k);
        using var t = new BlockBuffer((long)chunk * n);
        for (int j0 = 0; j0 < count; j0 += chunk)
        {
            int cs = Math.Min(chunk, count - j0);
            var gs = g.Span[..(cs * k)];
            var ts = t.Span[..(cs * n)];
            _lin.ParamVjpSubset(_map.Rest, x.Slice(j0 * n, cs * n), gs, cs);
            _lin.ParamJvpSubset(_map.Rest, gs, ts, cs);
            Numerics.Axpy(1.0, ts, y.Slice(j0 * n, cs * n));
        }
    }
}
