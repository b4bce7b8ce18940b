using GlobalNtk.Dense;
using GlobalNtk.Models;

namespace GlobalNtk.Ntk;

/// <summary>
/// K in Kronecker-core form (MATH.md §3): K = Σ_s D_s (Ĝ_s ⊗ I_{m_s}) D_s* + J_rest J_rest*.
/// The Gram Ĝ_s = Û Ûᵀ is applied as Û (Ûᵀ A) with two GEMMs per vector ([N, m_s] blocks),
/// never as an N × N matrix; parameters not covered by any site (LayerNorm gains, …) go
/// through the generic parameter JVP/VJP restricted to them. Self-adjoint.
/// </summary>
public sealed class KroneckerKernelOperator : CheckedOperator
{
    private readonly ChainLinearization _lin;
    private readonly SiteParameterMap _map;

    /// <summary>Kronecker-core K of a linearised chain (validates the sites).</summary>
    public KroneckerKernelOperator(ChainLinearization lin) : base(lin.StateShape, lin.StateShape)
    {
        _lin = lin;
        _map = new SiteParameterMap(lin);
        foreach (var site in lin.Sites) Numerics.EnsureFinite(site.Variables.Span, $"site '{site.Name}' variables Û");
    }

    /// <inheritdoc/>
    public override string Name => "K (Kronecker core)";

    /// <summary>Number of θ scalars handled by the generic J_rest J_rest* term.</summary>
    public int RestParameterCount => _map.RestSize;

    /// <inheritdoc/>
    protected override void Forward(ReadOnlySpan<double> x, Span<double> y, int count)
    {
        y.Clear();
        foreach (var site in _lin.Sites) AddSiteTerm(site, x, y, count);
        if (_map.RestSize > 0) AddRestTerm(x, y, count);
    }

    /// <inheritdoc/>
    protected override void Adjoint(ReadOnlySpan<double> x, Span<double> y, int count) => Forward(x, y, count);

    /// <summary>y += D_s (Û Ûᵀ ⊗ I) D_s* x.</summary>
    private static void AddSiteTerm(WeightSite site, ReadOnlySpan<double> x, Span<double> y, int count)
    {
        int n = site.Rows, d = site.AugmentedWidth, m = site.OutDim;
        if (n == 0 || m == 0 || d == 0) return;
        int blockSize = n * m;
        using var aBuf = Scratch.Rent((long)count * blockSize);
        site.ApplyDAdjoint(x, aBuf.Span, count);
        var a = aBuf.Buffer;
        var u = site.Variables;
        // Vectors of a block are independent: split them over cores (each with its own [d, m] core block).
        Parallel.For(0, count, () => new double[(long)d * m], (j, _, c) =>
        {
            var aj = a.AsSpan(j * blockSize, blockSize);
            Gemm.Multiply(Trans.Yes, Trans.No, d, m, n, 1.0, u.Span, d, aj, m, 0.0, c, m);   // C = Ûᵀ A_j   [d, m]
            Gemm.Multiply(Trans.No, Trans.No, n, m, d, 1.0, u.Span, d, c, m, 0.0, aj, m);    // A_j = Û C    [n, m]
            return c;
        }, _ => { });
        site.ApplyDAdd(aBuf.Span, y, count);
    }

    /// <summary>y += J_rest J_rest* x (θ entries outside every site).</summary>
    private void AddRestTerm(ReadOnlySpan<double> x, Span<double> y, int count)
    {
        var ps = _lin.Parameters;
        using var g = Scratch.Rent((long)count * ps.TotalSize);
        _lin.ParamVjp(x, g.Span, count);
        _map.KeepRest(ps, g.Span, count);
        using var t = Scratch.Rent((long)count * Domain.Size);
        _lin.ParamJvp(g.Span, t.Span, count);
        Numerics.Axpy(1.0, t.Span, y);
    }
}
