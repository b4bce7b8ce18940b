using GlobalNtk.Dense;
using GlobalNtk.Models;

using GlobalNtk.Operators;

namespace GlobalNtk.Ntk;

/// <summary>
/// The model-level Kronecker core (MATH.md §3, §6): every site's <see cref="SiteCore"/>, the rank
/// bound rank K ≤ Σ_s rank(Ĝ_s)·m_s, the exact tr K and the mode capture c(r) = tr K_r / tr K,
/// where K_r truncates every Ĝ_s to its top r activity modes (the generic term of parameters
/// outside every site is kept whole in K_r: it has no activity modes).
/// </summary>
/// <remarks>
/// Traces are exact, computed through the modes: tr K_{s,r} = Σ_{i≤r} ‖D_s((Û w_i) ⊗ I)‖_F²
/// (= σ_i² ‖D_s(v_i ⊗ I)‖_F²). A site whose rows are the state's own (trial, step) grid is
/// row-local — by the chain structure, its pre-activation at (b, k) enters only f_k of trial b —
/// so D_s*D_s is block-diagonal over rows and tr K_{s,r} = Σ_n Ĝ_r[n,n]·‖D_{s,n}‖_F², with the
/// row norms ‖D_{s,n}‖_F² from min(S, m_s) applications of D_s or D_s* to constant unit blocks.
/// Other sites (a transformer token reaches every token of its layer through attention) apply
/// D_s to each mode ⊗ each unit: d̂·m_s applications of D_s, in blocks — exact but costly for big
/// attention sites, which is why traces are computed lazily, per site, on first use.
/// </remarks>
public sealed class KroneckerCore
{
    private const long BlockBudget = 1L << 23;   // doubles per temporary block (64 MiB)

    /// <summary>
    /// Builds every site's core (Gram, spectrum, modes: cheap). The exact traces and mode
    /// contributions are computed per site on first use.
    /// </summary>
    public KroneckerCore(ChainLinearization lin)
    {
        var map = new SiteParameterMap(lin);
        StateDimension = lin.StateShape.Size;
        Sites = lin.Sites.Select(site => new SiteCore(site, IsRowLocal(lin, site) ? c => RowLocalTraces(lin, c) : c => GeneralTraces(lin, c))).ToArray();
        RestParameterCount = map.RestSize;
        _restTrace = new(() => map.RestSize > 0 ? RestTraceOf(lin, map) : 0.0);
        RankBound = Sites.Sum(s => s.RankBound) + map.RestSize;
    }

    /// <summary>Per-site cores, in the linearisation's site order.</summary>
    public IReadOnlyList<SiteCore> Sites { get; }
    /// <summary>Size of the state space (K is StateDimension × StateDimension).</summary>
    public int StateDimension { get; }
    /// <summary>
    /// rank K ≤ Σ_s rank(Ĝ_s)·m_s (+ the number of θ scalars outside every site, each adding at most
    /// one rank), with numerical ranks of Ĝ_s; compare with <see cref="StateDimension"/>.
    /// </summary>
    public long RankBound { get; }
    /// <summary>θ scalars handled by the generic J_rest J_rest* term.</summary>
    public int RestParameterCount { get; }
    /// <summary>tr(J_rest J_rest*) (0 when every parameter belongs to a site; computed on first use).</summary>
    public double RestTrace => _restTrace.Value;
    /// <summary>Exact tr K (computed on first use).</summary>
    public double TraceK => Sites.Sum(s => s.TraceK) + RestTrace;
    private readonly Lazy<double> _restTrace;
    /// <summary>Largest d̂ over the sites: c(r) = 1 for r ≥ this.</summary>
    public int MaxRank => Sites.Count == 0 ? 0 : Sites.Max(s => s.AugmentedWidth);

    /// <summary>Mode capture c(r) = tr K_r / tr K (MATH.md §6); r ≥ 0.</summary>
    public double ModeCapture(int r)
    {
        if (r < 0) throw new ArgumentOutOfRangeException(nameof(r), $"Mode capture: r = {r} must be ≥ 0.");
        double total = TraceK;
        if (total <= 0) return 0.0;
        double t = RestTrace;
        foreach (var s in Sites)
            for (int i = 0; i < Math.Min(r, s.Contributions.Length); i++) t += s.Contributions[i];
        return t / total;
    }

    /// <summary>c(1), …, c(<paramref name="maxRank"/>) (default: up to <see cref="MaxRank"/>).</summary>
    public double[] ModeCaptureCurve(int? maxRank = null)
    {
        int rMax = maxRank ?? MaxRank;
        return Enumerable.Range(1, rMax).Select(ModeCapture).ToArray();
    }

    /// <summary>Rows are the state's (trial, step) grid in the same order: D_s is row-local.</summary>
    internal static bool IsRowLocal(ChainLinearization lin, WeightSite site)
    {
        var rs = site.RowShape;
        var st = lin.StateShape;
        return rs.Rank == 2 && st.Rank >= 2 && site.Rows == lin.Trials * lin.Steps
            && rs.Names[0] == st.Names[0] && rs.Names[1] == st.Names[1]
            && rs.Sizes[0] == st.Sizes[0] && rs.Sizes[1] == st.Sizes[1];
    }

    /// <summary>Row-local site: ‖D_n‖_F² per row, then Σ_n Ĝ[n,n]‖D_n‖² and per-mode Σ_n (Ûw_i)[n]²‖D_n‖².</summary>
    private static (double[], double) RowLocalTraces(ChainLinearization lin, SiteCore core)
    {
        var site = core.Site;
        int n = site.Rows, m = site.OutDim, s = lin.StateSize, d = site.AugmentedWidth;
        int stateLen = lin.StateShape.Size;
        long siteLen = (long)n * m;
        var rowNorm = new double[n];
        bool viaAdjoint = s <= m;   // fewer applications: one per state unit, or one per site output
        int basis = viaAdjoint ? s : m;
        int chunk = (int)Math.Clamp(BlockBudget / Math.Max(1, stateLen + siteLen), 1, Math.Max(1, basis));
        using var qBuf = new BlockBuffer((long)chunk * stateLen);
        using var aBuf = new BlockBuffer(chunk * siteLen);
        for (int b0 = 0; b0 < basis; b0 += chunk)
        {
            int cs = Math.Min(chunk, basis - b0);
            var q = qBuf.Span[..(cs * stateLen)];
            var a = aBuf.Span[..(int)(cs * siteLen)];
            if (viaAdjoint)
            {
                // q_t = e_{b0+t} at every row; (D* q_t)_n = D_nᵀ e_{b0+t} since D is row-local.
                q.Clear();
                for (int t = 0; t < cs; t++)
                    for (int r = 0; r < n; r++) q[t * stateLen + r * s + b0 + t] = 1.0;
                site.ApplyDAdjoint(q, a, cs);
                for (int t = 0; t < cs; t++)
                    for (int r = 0; r < n; r++) { var row = a.Slice((int)(t * siteLen) + r * m, m); rowNorm[r] += Numerics.Dot(row, row); }
            }
            else
            {
                a.Clear();
                for (int t = 0; t < cs; t++)
                    for (int r = 0; r < n; r++) a[(int)(t * siteLen) + r * m + b0 + t] = 1.0;
                q.Clear();
                site.ApplyDAdd(a, q, cs);
                for (int t = 0; t < cs; t++)
                    for (int r = 0; r < n; r++) { var row = q.Slice(t * stateLen + r * s, s); rowNorm[r] += Numerics.Dot(row, row); }
            }
        }
        var u = site.Variables.Span;
        double trace = 0;
        for (int r = 0; r < n; r++) { var ur = u.Slice(r * d, d); trace += Numerics.Dot(ur, ur) * rowNorm[r]; }
        var uw = core.UnnormalisedLeftModes(d);   // [N, d̂]
        var contrib = new double[d];
        for (int r = 0; r < n; r++)
            for (int i = 0; i < d; i++) { double x = uw[r * d + i]; contrib[i] += x * x * rowNorm[r]; }
        return (contrib, trace);
    }

    /// <summary>General site: contribution_i = Σ_c ‖D((Ûw_i) ⊗ e_c)‖², in blocks of unit vectors e_c.</summary>
    private static (double[], double) GeneralTraces(ChainLinearization lin, SiteCore core)
    {
        var site = core.Site;
        int n = site.Rows, m = site.OutDim, d = site.AugmentedWidth;
        int stateLen = lin.StateShape.Size;
        long siteLen = (long)n * m;
        var uw = core.UnnormalisedLeftModes(d);   // [N, d̂]
        var contrib = new double[d];
        int chunk = (int)Math.Clamp(BlockBudget / Math.Max(1, stateLen + siteLen), 1, Math.Max(1, m));
        Parallel.For(0, d, () => (a: new double[chunk * siteLen], q: new double[(long)chunk * stateLen]), (i, _, buf) =>
        {
            var (a, q) = buf;
            double acc = 0;
            for (int c0 = 0; c0 < m; c0 += chunk)
            {
                int cs = Math.Min(chunk, m - c0);
                Array.Clear(a);
                for (int t = 0; t < cs; t++)
                    for (int r = 0; r < n; r++) a[t * siteLen + r * m + c0 + t] = uw[r * d + i];
                Array.Clear(q);
                site.ApplyDAdd(a.AsSpan(0, (int)(cs * siteLen)), q.AsSpan(0, cs * stateLen), cs);
                var qs = q.AsSpan(0, cs * stateLen);
                acc += Numerics.Dot(qs, qs);
            }
            contrib[i] = acc;
            return buf;
        }, _ => { });
        return (contrib, contrib.Sum());   // Σ over a complete orthonormal basis W: exactly ‖D(Û ⊗ I)‖_F²
    }

    /// <summary>tr(J_rest J_rest*) = Σ_{p outside sites} ‖J_θ e_p‖², in blocks of unit vectors.</summary>
    private static double RestTraceOf(ChainLinearization lin, SiteParameterMap map)
    {
        var ps = lin.Parameters;
        int m = ps.TotalSize, stateLen = lin.StateShape.Size;
        var indices = map.Rest.SelectMany(i => Enumerable.Range(ps.OffsetOf(i), ps[i].Size)).ToArray();
        int chunk = (int)Math.Clamp(BlockBudget / Math.Max(1, stateLen + m), 1, Math.Max(1, indices.Length));
        using var eBuf = new BlockBuffer((long)chunk * m);
        using var yBuf = new BlockBuffer((long)chunk * stateLen);
        double total = 0;
        for (int p0 = 0; p0 < indices.Length; p0 += chunk)
        {
            int cs = Math.Min(chunk, indices.Length - p0);
            var e = eBuf.Span[..(cs * m)];
            e.Clear();
            for (int t = 0; t < cs; t++) e[t * m + indices[p0 + t]] = 1.0;
            var y = yBuf.Span[..(cs * stateLen)];
            lin.ParamJvp(e, y, cs);
            total += Numerics.Dot(y, y);
        }
        return total;
    }
}
