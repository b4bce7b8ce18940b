using System.Numerics;
using System.Runtime.InteropServices;
using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Blocks;
using GlobalNtk.Operators;

namespace GlobalNtk.Ntk;

/// <summary>
/// The model-level Kronecker core (docs/math.md#kronecker-core): every site's <see cref="SiteCore"/>, the rank
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
/// Sites also declare row-locality themselves (<see cref="WeightSite.TryGetRowSlice"/>: an MLP
/// layer, a transformer's token-local out_proj/linear1/linear2/input_proj), with each row's own
/// state slice. Other sites (Q, K, V reach every token of their layer through attention) apply
/// D_s to each mode ⊗ each unit: d̂·m_s applications of D_s, in blocks — exact but costly, so above
/// a cost threshold (d̂·m_s &gt; exactApplicationLimit) their traces are Hutchinson estimates,
/// seeded, with standard errors (<see cref="SiteCore.Method"/>, <see cref="TraceKStandardError"/>).
/// Traces are computed lazily, per site, on first use.
/// </remarks>
public sealed class KroneckerCore
{
    private const long BlockBudget = MemoryBudget.SiteBlockElements;

    /// <summary>
    /// Builds every site's core (Gram, spectrum, modes: cheap). The exact traces and mode
    /// contributions are computed per site on first use.
    /// </summary>
    /// <param name="lin">The linearisation.</param>
    /// <param name="exactApplicationLimit">
    /// A non-row-local site whose exact traces would cost more than this many applications of D_s
    /// (d̂·m_s) is estimated with Hutchinson probes instead (default <see cref="DefaultExactApplicationLimit"/>).
    /// </param>
    /// <param name="probes">Hutchinson probes per estimated site (≥ 2; default <see cref="DefaultProbes"/>).</param>
    /// <param name="seed">
    /// Seed of the Rademacher probes (reproducible estimates): site s draws from the key
    /// <c>RngKey.FromSeed(seed).Fold("site").Fold(s)</c>, the rest term from <c>Fold("rest")</c>. The
    /// analysis passes a key split from the user's seed.
    /// </param>
    /// <param name="restExactLimit">
    /// tr(J_rest J_rest*) of the θ scalars outside every site is exact when it costs at most this many
    /// JVPs (<see cref="RestGroups"/>); above it, a Hutchinson estimate with <paramref name="probes"/>
    /// Rademacher parameter probes and a standard error (default: always exact).
    /// </param>
    public KroneckerCore(ChainLinearization lin, long exactApplicationLimit = DefaultExactApplicationLimit, int probes = DefaultProbes, int seed = 0,
        long restExactLimit = long.MaxValue)
    {
        if (probes < 2) throw new ArgumentOutOfRangeException(nameof(probes), $"Kronecker core: {probes} Hutchinson probes; need at least 2 for a standard error.");
        var map = new SiteParameterMap(lin);
        StateDimension = lin.StateShape.Size;
        var siteKeys = RngKey.FromSeed(seed).Fold("site");
        Sites = lin.Sites.Select((site, idx) =>
        {
            var slices = RowSlices(lin, site);
            if (slices is { } sl) return new SiteCore(site, TraceMethod.RowLocal, c => RowLocalTraces(lin, c, sl.Offsets, sl.Lengths));
            bool exact = (long)site.AugmentedWidth * site.OutDim <= exactApplicationLimit;
            return exact
                ? new SiteCore(site, TraceMethod.Exact, c => GeneralTraces(lin, c))
                : new SiteCore(site, TraceMethod.Hutchinson, c => HutchinsonTraces(lin, c, probes, siteKeys.Fold(idx)));
        }).ToArray();
        RestParameterCount = map.RestSize;
        var restKey = RngKey.FromSeed(seed).Fold("rest");
        _restTrace = new(() => map.RestSize > 0 ? RestTraceOf(lin, map, restExactLimit, probes, restKey) : new RestTraceResult(0.0, 0, 0.0, TraceMethod.Exact));
        RankBound = RankBoundOf(lin, Sites, map.RestSize);
    }

    /// <summary>
    /// Default cost threshold (applications of D_s, = d̂·m_s) above which a non-row-local site's
    /// traces are estimated: exact up to e.g. a 64-wide attention site (65·192 = 12 480).
    /// </summary>
    public const long DefaultExactApplicationLimit = 16_384;
    /// <summary>Default Hutchinson probes per estimated site.</summary>
    public const int DefaultProbes = 64;

    /// <summary>Per-site cores, in the linearisation's site order.</summary>
    public IReadOnlyList<SiteCore> Sites { get; }
    /// <summary>Size of the state space (K is StateDimension × StateDimension).</summary>
    public int StateDimension { get; }
    /// <summary>
    /// rank K ≤ Σ_s rank(Ĝ_s)·m_s (+ the number of θ scalars outside every site, each adding at most
    /// one rank), with numerical ranks of Ĝ_s, sharpened by the range of D_s: the sites that declare
    /// one state step (<see cref="WeightSite.StateStep"/>, depth chains: K is block-diagonal across
    /// layers, docs/math.md#transformers) add min(that step's state size, their summed bounds), and the total is
    /// clamped at <see cref="StateDimension"/>.
    /// </summary>
    public long RankBound { get; }
    /// <summary>
    /// True when some site's traces or the rest term are Hutchinson estimates (then <see cref="TraceK"/>
    /// and c(r) are estimates; computes the rest term on first use).
    /// </summary>
    public bool IsEstimated => Sites.Any(s => s.Method == TraceMethod.Hutchinson) || RestTraceMethod == TraceMethod.Hutchinson;
    /// <summary>Standard error of <see cref="TraceK"/> (0 when every trace is exact).</summary>
    public double TraceKStandardError => Math.Sqrt(Sites.Sum(s => s.TraceStandardError * s.TraceStandardError) + RestTraceStandardError * RestTraceStandardError);
    /// <summary>Standard error of tr K_r (sites and the rest term are probed independently; 0 when exact).</summary>
    public double TruncatedTraceStandardError(int r) =>
        Math.Sqrt(Sites.Sum(s => { double e = s.CumulativeStandardError(r); return e * e; }) + RestTraceStandardError * RestTraceStandardError);
    /// <summary>θ scalars handled by the generic J_rest J_rest* term.</summary>
    public int RestParameterCount { get; }
    /// <summary>tr(J_rest J_rest*) (0 when every parameter belongs to a site; computed on first use).</summary>
    public double RestTrace => _restTrace.Value.Trace;
    /// <summary>JVP vectors spent on <see cref="RestTrace"/> (scalars of different steps share one; computes it on first use).</summary>
    public int RestApplications => _restTrace.Value.Applications;
    /// <summary>How <see cref="RestTrace"/> was computed: <see cref="TraceMethod.Exact"/>, or <see cref="TraceMethod.Hutchinson"/> above the rest limit.</summary>
    public TraceMethod RestTraceMethod => _restTrace.Value.Method;
    /// <summary>Standard error of <see cref="RestTrace"/> (0 when exact).</summary>
    public double RestTraceStandardError => _restTrace.Value.StandardError;
    /// <summary>tr K: exact unless <see cref="IsEstimated"/> (computed on first use).</summary>
    public double TraceK => Sites.Sum(s => s.TraceK) + RestTrace;
    private readonly Lazy<RestTraceResult> _restTrace;
    /// <summary>Largest d̂ over the sites: c(r) = 1 for r ≥ this.</summary>
    public int MaxRank => Sites.Count == 0 ? 0 : Sites.Max(s => s.AugmentedWidth);

    /// <summary>Mode capture c(r) = tr K_r / tr K (docs/math.md#mode-capture); r ≥ 0.</summary>
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

    /// <summary>D_s is row-local: declared by the site (<see cref="WeightSite.TryGetRowSlice"/>) or rows are the state's (trial, step) grid.</summary>
    internal static bool IsRowLocal(ChainLinearization lin, WeightSite site) => RowSlices(lin, site) is not null;

    /// <summary>
    /// The state slice of every row when D_s is row-local with disjoint slices inside the state:
    /// declared by the site, else detected when the rows are the state's own (trial, step) grid
    /// (by the chain structure, the pre-activation at (b, k) enters only f_k of trial b); null otherwise.
    /// </summary>
    private static (int[] Offsets, int[] Lengths)? RowSlices(ChainLinearization lin, WeightSite site)
    {
        int n = site.Rows, stateLen = lin.StateShape.Size;
        var off = new int[n]; var len = new int[n];
        bool declared = n > 0 && site.TryGetRowSlice(0, out off[0], out len[0]);
        if (declared)
        {
            for (int r = 1; r < n; r++)
                if (!site.TryGetRowSlice(r, out off[r], out len[r]))
                    throw new InvalidOperationException($"Site '{site.Name}': row 0 declares a state slice but row {r} does not.");
        }
        else
        {
            var rs = site.RowShape; var st = lin.StateShape;
            bool grid = rs.Rank == 2 && st.Rank >= 2 && n == lin.Trials * lin.Steps
                && rs.Names[0] == st.Names[0] && rs.Names[1] == st.Names[1]
                && rs.Sizes[0] == st.Sizes[0] && rs.Sizes[1] == st.Sizes[1];
            if (!grid) return null;
            for (int r = 0; r < n; r++) { off[r] = r * lin.StateSize; len[r] = lin.StateSize; }
        }
        var order = Enumerable.Range(0, n).OrderBy(r => off[r]).ToArray();
        for (int i = 0; i < n; i++)
        {
            int r = order[i];
            bool ok = off[r] >= 0 && len[r] > 0 && (long)off[r] + len[r] <= stateLen
                && (i + 1 == n || off[r] + len[r] <= off[order[i + 1]]);
            if (!ok) throw new InvalidOperationException(
                $"Site '{site.Name}': row {r}'s state slice [{off[r]}, {(long)off[r] + len[r]}) is empty, outside the state ({stateLen}) or overlaps another row's.");
        }
        return (off, len);
    }

    /// <summary>docs/math.md#kronecker-core: sites of one state step add at most that step's size; total ≤ state dimension.</summary>
    private static long RankBoundOf(ChainLinearization lin, IReadOnlyList<SiteCore> sites, int restSize)
    {
        long stepSize = (long)lin.Trials * lin.StateSize;
        long bound = restSize;
        foreach (var g in sites.GroupBy(s => s.Site.StateStep))
        {
            long sum = g.Sum(s => s.RankBound);
            bound += g.Key is null ? sum : Math.Min(stepSize, sum);
        }
        return Math.Min(bound, lin.StateShape.Size);
    }

    /// <summary>
    /// True when the site's Û is float32 and its D and D* take float32 blocks (a float32
    /// linearisation): the traces then apply D_s to float32 blocks. They hold the same values a
    /// float64 block would (D rounds its input to float32 on entry and forms its result in
    /// float32), and every norm, Gram and trace is still accumulated in float64 from them, so no
    /// state- or site-sized float64 block is made (docs/math.md#numerics).
    /// </summary>
    internal static bool AppliesSingle(WeightSite site) =>
        site.VariablesSingle.Length > 0
        && site.TryApplyDAdjointSingle(ReadOnlySpan<float>.Empty, Span<float>.Empty, 0)
        && site.TryApplyDAddSingle(ReadOnlySpan<float>.Empty, Span<float>.Empty, 0);

    /// <summary>a[j] = D_s* q[j] on blocks of T (double, or float on a site that <see cref="AppliesSingle"/>).</summary>
    private static void DAdjoint<T>(WeightSite site, ReadOnlySpan<T> q, Span<T> a, int count) where T : unmanaged
    {
        if (typeof(T) == typeof(double)) site.ApplyDAdjoint(MemoryMarshal.Cast<T, double>(q), MemoryMarshal.Cast<T, double>(a), count);
        else if (!site.TryApplyDAdjointSingle(MemoryMarshal.Cast<T, float>(q), MemoryMarshal.Cast<T, float>(a), count))
            throw new InvalidOperationException($"Site '{site.Name}' has no float32 D*.");
    }

    /// <summary>dst[j] += D_s a[j] on blocks of T (double, or float on a site that <see cref="AppliesSingle"/>).</summary>
    private static void DAdd<T>(WeightSite site, ReadOnlySpan<T> a, Span<T> dst, int count) where T : unmanaged
    {
        if (typeof(T) == typeof(double)) site.ApplyDAdd(MemoryMarshal.Cast<T, double>(a), MemoryMarshal.Cast<T, double>(dst), count);
        else if (!site.TryApplyDAddSingle(MemoryMarshal.Cast<T, float>(a), MemoryMarshal.Cast<T, float>(dst), count))
            throw new InvalidOperationException($"Site '{site.Name}' has no float32 D.");
    }

    /// <summary>
    /// Entries per float64 piece of a float32 probe block: <see cref="RandomProbes.Rademacher"/> draws
    /// 256 random bytes per 2048 entries, so pieces of 2048 continue one stream exactly as one call
    /// on the whole block does.
    /// </summary>
    internal const int RademacherPiece = 2048;

    /// <summary>Σ x_i² accumulated in float64 (float32 values squared exactly in float64).</summary>
    private static double SumSquares<T>(ReadOnlySpan<T> x) where T : unmanaged =>
        typeof(T) == typeof(double) ? Numerics.Dot(MemoryMarshal.Cast<T, double>(x), MemoryMarshal.Cast<T, double>(x))
            : Float32.DotWide(MemoryMarshal.Cast<T, float>(x), MemoryMarshal.Cast<T, float>(x));

    /// <summary>Row-local site: ‖D_n‖_F² per row, then Σ_n Ĝ[n,n]‖D_n‖² and per-mode Σ_n (Ûw_i)[n]²‖D_n‖².</summary>
    private static SiteTraces RowLocalTraces(ChainLinearization lin, SiteCore core, int[] off, int[] len)
    {
        var site = core.Site;
        var rowNorm = AppliesSingle(site) ? RowNorms<float>(lin, site, off, len) : RowNorms<double>(lin, site, off, len);
        int n = site.Rows, d = site.AugmentedWidth;
        double trace = 0;
        var contrib = new double[d];
        var rightModes = core.RightModesView;
        double[]? uw = null;   // [rows, d̂] of the chunk: Û W
        core.ForEachRowChunk((r0, rows, u) =>
        {
            for (int r = 0; r < rows; r++) { var ur = u.Slice(r * d, d); trace += Numerics.Dot(ur, ur) * rowNorm[r0 + r]; }
            if (uw is null || uw.Length < rows * d) uw = new double[(long)rows * d];
            Gemm.Multiply(Trans.No, Trans.Yes, rows, d, d, 1.0, u, d, rightModes, d, 0.0, uw, d);
            for (int r = 0; r < rows; r++)
                for (int i = 0; i < d; i++) { double x = uw[r * d + i]; contrib[i] += x * x * rowNorm[r0 + r]; }
        });
        return (contrib, trace, null);
    }

    /// <summary>
    /// ‖D_n‖_F² of every row n of a row-local site, from D* (or D) applied to unit blocks in T: the
    /// unit entries are exact in float32, and each squared norm accumulates in float64.
    /// </summary>
    private static double[] RowNorms<T>(ChainLinearization lin, WeightSite site, int[] off, int[] len) where T : unmanaged, INumberBase<T>
    {
        int n = site.Rows, m = site.OutDim, s = len.Max();
        int stateLen = lin.StateShape.Size;
        long siteLen = (long)n * m;
        var rowNorm = new double[n];
        bool viaAdjoint = s <= m;   // fewer applications: one per slice unit, or one per site output
        int basis = viaAdjoint ? s : m;
        // A declared colouring: one application per colour (sums of same-colour unit vectors) is exact.
        var colour = new int[s];
        int colours = viaAdjoint && len.All(l => l == s) ? site.SliceColouring(colour) : 0;
        if (colours is > 0 && colours < basis) basis = colours;
        else colours = 0;
        int chunk = (int)Math.Clamp(BlockBudget / Math.Max(1, stateLen + siteLen), 1, Math.Max(1, basis));
        using var qBuf = new ScratchBlock<T>((long)chunk * stateLen);
        using var aBuf = new ScratchBlock<T>(chunk * siteLen);
        for (int b0 = 0; b0 < basis; b0 += chunk)
        {
            int cs = Math.Min(chunk, basis - b0);
            var q = qBuf.Span[..(cs * stateLen)];
            var a = aBuf.Span[..(int)(cs * siteLen)];
            if (viaAdjoint)
            {
                // q_t = e_{b0+t} (or the sum of colour b0+t's unit vectors) in every row's slice;
                // (D* q_t)_n = D_nᵀ e_{b0+t} since D is row-local.
                q.Clear();
                for (int t = 0; t < cs; t++)
                    for (int r = 0; r < n; r++)
                    {
                        if (colours == 0) { if (b0 + t < len[r]) q[t * stateLen + off[r] + b0 + t] = T.One; continue; }
                        for (int i = 0; i < s; i++) if (colour[i] == b0 + t) q[t * stateLen + off[r] + i] = T.One;
                    }
                DAdjoint<T>(site, q, a, cs);
                for (int t = 0; t < cs; t++)
                    for (int r = 0; r < n; r++) rowNorm[r] += SumSquares<T>(a.Slice((int)(t * siteLen) + r * m, m));
            }
            else
            {
                a.Clear();
                for (int t = 0; t < cs; t++)
                    for (int r = 0; r < n; r++) a[(int)(t * siteLen) + r * m + b0 + t] = T.One;
                q.Clear();
                DAdd<T>(site, a, q, cs);
                for (int t = 0; t < cs; t++)
                    for (int r = 0; r < n; r++) rowNorm[r] += SumSquares<T>(q.Slice(t * stateLen + off[r], len[r]));
            }
        }
        return rowNorm;
    }

    /// <summary>General site: contribution_i = Σ_c ‖D((Ûw_i) ⊗ e_c)‖², in blocks of unit vectors e_c.</summary>
    internal static SiteTraces GeneralTraces(ChainLinearization lin, SiteCore core) =>
        AppliesSingle(core.Site) ? GeneralTraces<float>(lin, core) : GeneralTraces<double>(lin, core);

    /// <summary>
    /// <see cref="GeneralTraces(ChainLinearization, SiteCore)"/> on blocks of T: a float32 block holds
    /// (Ûw_i)[n] rounded, as D's float32 entry would round it, and ‖·‖² accumulates in float64.
    /// </summary>
    private static SiteTraces GeneralTraces<T>(ChainLinearization lin, SiteCore core) where T : unmanaged, INumberBase<T>
    {
        var site = core.Site;
        int n = site.Rows, m = site.OutDim, d = site.AugmentedWidth;
        int stateLen = lin.StateShape.Size;
        long siteLen = (long)n * m;
        var uw = core.UnnormalisedLeftModes(d);   // [N, d̂]
        var contrib = new double[d];
        int chunk = (int)Math.Clamp(BlockBudget / Math.Max(1, stateLen + siteLen), 1, Math.Max(1, m));
        // At most one body per core: each holds its own site- and state-sized blocks, and D's own
        // parallel loops block the body, so without a cap the thread pool keeps injecting bodies
        // (30 threads and 4.2 GB on the 8-sequence flip-flop transformer, against 1.5 GB).
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount };
        Parallel.For(0, d, parallel, () => (a: new T[chunk * siteLen], q: new T[(long)chunk * stateLen]), (i, _, buf) =>
        {
            var (a, q) = buf;
            double acc = 0;
            for (int c0 = 0; c0 < m; c0 += chunk)
            {
                int cs = Math.Min(chunk, m - c0);
                Array.Clear(a);
                for (int t = 0; t < cs; t++)
                    for (int r = 0; r < n; r++) a[t * siteLen + r * m + c0 + t] = T.CreateTruncating(uw[r * d + i]);
                Array.Clear(q);
                DAdd<T>(site, a.AsSpan(0, (int)(cs * siteLen)), q.AsSpan(0, cs * stateLen), cs);
                acc += SumSquares<T>(q.AsSpan(0, cs * stateLen));
            }
            contrib[i] = acc;
            return buf;
        }, _ => { });
        return (contrib, contrib.Sum(), null);   // Σ over a complete orthonormal basis W: exactly ‖D(Û ⊗ I)‖_F²
    }

    /// <summary>
    /// Hutchinson estimate of every mode's contribution ‖D((Ûw_i) ⊗ I)‖_F² = E‖((Ûw_i)ᵀ ⊗ I) D* q‖²
    /// over Rademacher q (E qqᵀ = I): one D* application per probe serves all d̂ modes. Returns the
    /// probe means and, per r, the standard error of Σ_{i≤r} (sample deviation of the per-probe
    /// partial sums / √probes).
    /// </summary>
    private static SiteTraces HutchinsonTraces(ChainLinearization lin, SiteCore core, int probes, RngKey key) =>
        AppliesSingle(core.Site) ? HutchinsonTraces<float>(lin, core, probes, key) : HutchinsonTraces<double>(lin, core, probes, key);

    /// <summary>
    /// <see cref="HutchinsonTraces(ChainLinearization, SiteCore, int, RngKey)"/> with D* on blocks of T
    /// (the ±1 probes are exact in float32); the projections (Ûw_i)ᵀ D* q accumulate in float64, a
    /// float32 D* q widened a few rows at a time.
    /// </summary>
    private static SiteTraces HutchinsonTraces<T>(ChainLinearization lin, SiteCore core, int probes, RngKey key) where T : unmanaged
    {
        var site = core.Site;
        int n = site.Rows, m = site.OutDim, d = site.AugmentedWidth;
        int stateLen = lin.StateShape.Size;
        long siteLen = (long)n * m;
        var uw = core.UnnormalisedLeftModes(d);   // [N, d̂]
        var perProbe = new double[(long)probes * d];
        int chunk = (int)Math.Clamp(BlockBudget / Math.Max(1, stateLen + siteLen), 1, probes);
        var rng = key.CreateRandom();

        using var qBuf = new ScratchBlock<T>((long)chunk * stateLen);
        using var aBuf = new ScratchBlock<T>(chunk * siteLen);
        var proj = new double[(long)d * m];
        bool single = typeof(T) == typeof(float);
        int wideRows = single ? (int)Math.Clamp(SiteCore.WideChunkElements.Value / Math.Max(1, m), 1, Math.Max(1, n)) : 0;
        using var wideBuf = new BlockBuffer(single ? (long)wideRows * m : 0);
        var wide = wideBuf.Span;
        // Probes drawn in float64 pieces of RademacherPiece entries, the same stream as one float64 block.
        var qd = single ? new double[RademacherPiece] : [];
        for (int p0 = 0; p0 < probes; p0 += chunk)
        {
            int cs = Math.Min(chunk, probes - p0);
            var q = qBuf.Span[..(cs * stateLen)];
            if (single)
            {
                var qf = MemoryMarshal.Cast<T, float>(q);
                for (int i0 = 0; i0 < qf.Length; i0 += RademacherPiece)
                {
                    var piece = qd.AsSpan(0, Math.Min(RademacherPiece, qf.Length - i0));
                    RandomProbes.Rademacher(rng, piece);
                    Float32.Narrow(piece, qf.Slice(i0, piece.Length));
                }
            }
            else RandomProbes.Rademacher(rng, MemoryMarshal.Cast<T, double>(q));
            var a = aBuf.Span[..(int)(cs * siteLen)];
            DAdjoint<T>(site, q, a, cs);
            for (int t = 0; t < cs; t++)
            {
                // proj = (Û W)ᵀ A_t: row i = ((Ûw_i)ᵀ ⊗ I) D* q_t.
                if (!single)
                    Gemm.Multiply(Trans.Yes, Trans.No, d, m, n, 1.0, uw, d, MemoryMarshal.Cast<T, double>(a).Slice((int)(t * siteLen), (int)siteLen), m, 0.0, proj, m);
                else
                {
                    var at = MemoryMarshal.Cast<T, float>(a).Slice((int)(t * siteLen), (int)siteLen);
                    for (int r0 = 0; r0 < n; r0 += wideRows)
                    {
                        int rows = Math.Min(wideRows, n - r0);
                        Float32.Widen(at.Slice(r0 * m, rows * m), wide[..(rows * m)]);
                        Gemm.Multiply(Trans.Yes, Trans.No, d, m, rows, 1.0, uw.AsSpan(r0 * d, rows * d), d, wide, m, r0 == 0 ? 0.0 : 1.0, proj, m);
                    }
                }
                for (int i = 0; i < d; i++) { var row = proj.AsSpan(i * m, m); perProbe[(long)(p0 + t) * d + i] = Numerics.Dot(row, row); }
            }
        }
        var contrib = new double[d];
        for (int p = 0; p < probes; p++) for (int i = 0; i < d; i++) contrib[i] += perProbe[(long)p * d + i] / probes;
        var se = new double[d];
        var partial = new double[probes];
        for (int i = 0; i < d; i++)
        {
            for (int p = 0; p < probes; p++) partial[p] += perProbe[(long)p * d + i];
            se[i] = SampleStatistics.MeanWithError(partial).StandardError;

        }
        return (contrib, contrib.Sum(), se);
    }

    /// <summary>
    /// tr(J_rest J_rest*) = Σ_{p outside sites} ‖J_θ e_p‖², in blocks of combined unit vectors of
    /// the compact rest layout. J_θ is the immediate Jacobian (z_{k−1} held fixed), so a tensor of
    /// a depth chain (one layer's LayerNorm, …) moves only its own step's state slice: scalars of
    /// tensors confined to different steps have orthogonal images, and one JVP of the sum
    /// e_p + e_p′ + … (one scalar per step) gives Σ‖J e_p‖² exactly. Tensors that reach several
    /// steps (shared recurrent weights) keep one JVP per scalar. Each tensor's steps are found by
    /// one JVP of a random direction on it (a slice of J that is not identically zero is missed
    /// with probability zero). Returns the trace and the number of JVP vectors used.
    /// </summary>
    internal static (double Trace, int Applications) RestTraceOf(ChainLinearization lin, SiteParameterMap map)
    {
        var r = RestTraceOf(lin, map, long.MaxValue, DefaultProbes, RngKey.FromSeed(0));
        return (r.Trace, r.Applications);
    }

    /// <summary>The rest term: exact when its groups cost at most <paramref name="exactLimit"/> JVPs, else Hutchinson.</summary>
    internal static RestTraceResult RestTraceOf(ChainLinearization lin, SiteParameterMap map, long exactLimit, int probes, RngKey key)
    {
        int k = map.RestSize, stateLen = lin.StateShape.Size;
        var groups = RestGroups(lin, map, out int probeApplications);
        if (groups.Count > exactLimit)
        {
            var (mean, se) = RestHutchinson(lin, map, probes, key);
            return new RestTraceResult(mean, probes + probeApplications, se, TraceMethod.Hutchinson);
        }
        int g = groups.Count;
        int chunk = (int)Math.Clamp(BlockBudget / Math.Max(1, stateLen + k), 1, Math.Max(1, g));
        using var images = new RestImages(lin, map, chunk);
        double total = 0;
        for (int p0 = 0; p0 < g; p0 += chunk)
        {
            int cs = Math.Min(chunk, g - p0);
            var e = images.Directions(cs);
            e.Clear();
            for (int t = 0; t < cs; t++) foreach (int p in groups[p0 + t]) e[t * k + p] = 1.0;
            images.Apply(cs);
            total += images.SquaredNorm(0, cs);
        }
        return new RestTraceResult(total, g + probeApplications, 0.0, TraceMethod.Exact);
    }

    /// <summary>
    /// Hutchinson estimate of tr(J_rest J_rest*) = tr(J_rest* J_rest) = E‖J_rest v‖² over Rademacher
    /// v on the rest scalars (unbiased; variance 2(‖J_rest* J_rest‖_F² − Σ_p ‖J_rest e_p‖⁴) per probe),
    /// with the standard error of the probe mean. Probe p draws from <c>key.Fold(p)</c>.
    /// </summary>
    internal static (double Mean, double StandardError) RestHutchinson(ChainLinearization lin, SiteParameterMap map, int probes, RngKey key)
    {
        int k = map.RestSize, stateLen = lin.StateShape.Size;
        int chunk = (int)Math.Clamp(BlockBudget / Math.Max(1, stateLen + k), 1, Math.Max(1, probes));
        using var images = new RestImages(lin, map, chunk);
        var samples = new double[probes];
        for (int p0 = 0; p0 < probes; p0 += chunk)
        {
            int cs = Math.Min(chunk, probes - p0);
            var e = images.Directions(cs);
            for (int t = 0; t < cs; t++) RandomProbes.Rademacher(key.Fold(p0 + t).CreateRandom(), e.Slice(t * k, k));
            images.Apply(cs);
            for (int t = 0; t < cs; t++) samples[p0 + t] = images.SquaredNorm(t, 1);
        }
        var stats = SampleStatistics.MeanWithError(samples);
        return (stats.Mean, stats.StandardError);
    }

    /// <summary>The rest term's trace, JVP vectors spent, standard error (0 when exact) and method.</summary>
    internal readonly record struct RestTraceResult(double Trace, int Applications, double StandardError, TraceMethod Method);

    /// <summary>
    /// Groups of compact rest scalars whose J_θ images lie in pairwise different steps (so their
    /// images are orthogonal): group j holds the j-th scalar of every single-step tensor set of
    /// each step; scalars of tensors reaching several (or no detectable) steps are groups of one.
    /// </summary>
    internal static List<int[]> RestGroups(ChainLinearization lin, SiteParameterMap map, out int applications)
    {
        var ps = lin.Parameters;
        int k = map.RestSize, stateLen = lin.StateShape.Size, steps = lin.Steps, perStep = lin.StateSize;
        int tensors = map.Rest.Count;
        var tensorStep = new int[tensors];
        applications = 0;
        if (steps > 1)
        {
            // One JVP per rest tensor: a Gaussian direction on that tensor only; the steps its image reaches.
            var rng = RngKey.FromSeed(0).Fold("rest steps").CreateRandom();
            int chunk = (int)Math.Clamp(BlockBudget / Math.Max(1, stateLen + k), 1, Math.Max(1, tensors));
            using var images = new RestImages(lin, map, chunk);
            for (int i0 = 0; i0 < tensors; i0 += chunk)
            {
                int cs = Math.Min(chunk, tensors - i0);
                var e = images.Directions(cs);
                e.Clear();
                int offset = 0;
                for (int i = 0; i < i0; i++) offset += ps[map.Rest[i]].Size;
                for (int t = 0; t < cs; t++)
                {
                    int size = ps[map.Rest[i0 + t]].Size;
                    RandomProbes.Gaussian(rng, e.Slice(t * k + offset, size));
                    offset += size;
                }
                images.Apply(cs);
                applications += cs;
                for (int t = 0; t < cs; t++)
                {
                    int found = -1;
                    for (int row = 0; row < stateLen / perStep && found != -2; row++)
                    {
                        if (images.IsZero(t, row * perStep, perStep)) continue;
                        int step = row % steps;
                        found = found == -1 || found == step ? step : -2;
                    }
                    tensorStep[i0 + t] = found >= 0 ? found : -1;
                }
            }
        }
        else Array.Fill(tensorStep, -1);

        var byStep = new Dictionary<int, List<int>>();
        var groups = new List<int[]>();
        int at = 0;
        for (int i = 0; i < tensors; i++)
        {
            int size = ps[map.Rest[i]].Size;
            if (tensorStep[i] < 0) for (int p = 0; p < size; p++) groups.Add([at + p]);
            else
            {
                if (!byStep.TryGetValue(tensorStep[i], out var list)) byStep[tensorStep[i]] = list = [];
                for (int p = 0; p < size; p++) list.Add(at + p);
            }
            at += size;
        }
        int longest = byStep.Count == 0 ? 0 : byStep.Values.Max(l => l.Count);
        for (int j = 0; j < longest; j++)
            groups.Add(byStep.Values.Where(l => j < l.Count).Select(l => l[j]).ToArray());
        return groups;
    }

    /// <summary>
    /// J_rest applied to chunks of directions e [count, rest size] (unit, ±1 or Gaussian, drawn in
    /// float64), for the rest term's traces. On a linearisation with float32 parameter maps the
    /// directions are rounded to float32 (exactly, for unit and ±1 entries; a Gaussian direction only
    /// locates the steps its image reaches) and the state-sized images are float32 blocks, squared
    /// and summed in float64: the values a float32 J_rest forms anyway, without a float64 image block
    /// (docs/math.md#numerics). Otherwise the float64 J_rest on float64 blocks.
    /// </summary>
    private sealed class RestImages : IDisposable
    {
        private readonly ChainLinearization _lin;
        private readonly SiteParameterMap _map;
        private readonly int _k, _stateLen;
        private readonly bool _single;
        private readonly BlockBuffer _e, _y;
        private readonly Float32Buffer _e32, _y32;

        public RestImages(ChainLinearization lin, SiteParameterMap map, int chunk)
        {
            _lin = lin; _map = map; _k = map.RestSize; _stateLen = lin.StateShape.Size;
            _single = lin.HasSingleParamMaps;
            _e = new BlockBuffer((long)chunk * _k);
            _y = new BlockBuffer(_single ? 0 : (long)chunk * _stateLen);
            _e32 = new Float32Buffer(_single ? (long)chunk * _k : 0);
            _y32 = new Float32Buffer(_single ? (long)chunk * _stateLen : 0);
        }

        /// <summary>The float64 directions of the next <paramref name="count"/> vectors, to fill.</summary>
        public Span<double> Directions(int count) => _e.Span[..(count * _k)];

        /// <summary>The images J_rest e of the first <paramref name="count"/> directions.</summary>
        public void Apply(int count)
        {
            if (!_single) { _lin.ParamJvpSubset(_map.Rest, _e.Span[..(count * _k)], _y.Span[..(count * _stateLen)], count); return; }
            var e = _e32.Span[..(count * _k)];
            Float32.Narrow(_e.Span[..(count * _k)], e);
            if (!_lin.TryParamJvpSubset(_map.Rest, e, _y32.Span[..(count * _stateLen)], count))
                throw new InvalidOperationException("The linearisation declares float32 parameter maps but has no float32 J_rest.");
        }

        /// <summary>Σ ‖J_rest e_t‖² over the <paramref name="count"/> images from t, accumulated in float64 (one sum over their entries).</summary>
        public double SquaredNorm(int t, int count)
        {
            if (!_single) { var y = _y.Span.Slice(t * _stateLen, count * _stateLen); return Numerics.Dot(y, y); }
            var y32 = _y32.Span.Slice(t * _stateLen, count * _stateLen);
            return Float32.DotWide(y32, y32);
        }

        /// <summary>Whether the image of direction t is zero on state entries [offset, offset + length).</summary>
        public bool IsZero(int t, int offset, int length) => _single
            ? _y32.Span.Slice(t * _stateLen + offset, length).IndexOfAnyExcept(0f) < 0
            : _y.Span.Slice(t * _stateLen + offset, length).IndexOfAnyExcept(0.0) < 0;

        public void Dispose() { _e.Dispose(); _y.Dispose(); _e32.Dispose(); _y32.Dispose(); }
    }
}
