using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using GlobalNtk.Dense;
using Tensor = GlobalNtk.Dense.Tensor;

namespace GlobalNtk.Models.Recurrent;

/// <summary>
/// A recurrent cell run forward over a batch [trial, time, input] and linearised on that
/// trajectory (docs/math.md#global-ntk): A_k = E_k + D_hh,k W_hh diag(v'(h_{k−1})), J_θ through the
/// pre-activations a_ih = W_ih x + b_ih and a_hh = W_hh v(h) + b_hh, and the weight sites.
/// </summary>
/// <remarks>
/// <para>Stores only state-sized arrays, in its compute precision: the states [B, T, S], the site
/// variables v(h_{k−1}) [B·T, H], the cell's gate cache [B·T, cache] and a copy of the inputs; the
/// parameters are the cell's own (immutable values, so nothing can change this linearisation). Row (b, k) of every per-row array is
/// b·T + k. Block operations treat the rows of one step of a [count, B, T, S] block as
/// count·B rows, so each step is one GEMM per weight matrix.</para>
/// <para>Precision (docs/math.md#numerics): with <see cref="Dense.Precision.F32"/> the forward pass, the caches and every
/// product run in float32 (float32 GEMM, float32 cell math); vectors at the operator interface stay
/// float64 and are rounded to float32 on entry and widened on exit, where the results are added
/// in float64. float32 vectors (the operators' float32 block overloads) run natively: the state maps,
/// J_θ, J_θ*, the sites' D/D* and K's fused site kernel read and write float32 blocks in place, so
/// an f32 NTK_S application holds no float64 state block. The trajectory is kept in float32
/// (<see cref="ChainLinearization.StatesSingle"/>); <see cref="ChainLinearization.States"/> widens it on first use. Bias gradients (column sums
/// over the B·T rows) accumulate in float64 and are rounded once.</para>
/// </remarks>
public sealed class RecurrentLinearization : RecurrentChainLinearization
{
    private readonly RecurrentCell _cell;
    private readonly ParameterSet _params; // immutable values: later training does not change this linearisation
    private readonly double[] _x, _initial;
    private readonly IEngine _engine;
    private readonly SiteLayout[] _layout;
    private readonly Lazy<IReadOnlyList<WeightSite>> _sites;

    internal RecurrentLinearization(RecurrentCell cell, Tensor inputs, ReadOnlySpan<double> initialState, Precision precision = Precision.F64)
        : base(new AxisShape(("trial", inputs.Shape.Sizes[0]), ("time", inputs.Shape.Sizes[1]), ("unit", cell.StateSize)), precision)
    {
        _cell = cell;
        int b = inputs.Shape.Sizes[0], t = inputs.Shape.Sizes[1];
        _x = inputs.Span.ToArray();
        _initial = initialState.ToArray();
        _params = cell.Parameters;
        _layout = BuildLayout(cell);
        _engine = precision == Precision.F32
            ? new Engine<float>(this, b, t)
            : new Engine<double>(this, b, t);
        _engine.States.EnsureFinite($"{cell.Arch} states {StateShape} (forward pass overflowed{(precision == Precision.F32 ? " in float32" : "")})");
        _sites = new Lazy<IReadOnlyList<WeightSite>>(() => _layout.Select((l, i) =>
            (WeightSite)new RecurrentWeightSite(this, i, l.Name, new AxisShape(("trial", b), ("time", t)),
                l.Weights, l.Biases, l.Width, cell.GateWidth)).ToArray());
    }

    /// <inheritdoc/>
    public override ParameterSet Parameters => _params;
    /// <summary>The states as a (trial, time, unit) tensor (a view of <see cref="ChainLinearization.States"/>; do not modify).</summary>
    public Tensor StatesTensor => new(_engine.States.Wide, StateShape);
    /// <summary>The cell this linearisation belongs to.</summary>
    public RecurrentCell Cell => _cell;
    /// <summary>The inputs [trial, time, input] (a copy).</summary>
    public ReadOnlyMemory<double> Inputs => _x;
    /// <summary>The initial state z_0 [trial, unit].</summary>
    public ReadOnlyMemory<double> InitialState => _initial;
    /// <inheritdoc/>
    public override IReadOnlyList<WeightSite> Sites => _sites.Value;

    internal RecurrentCell CellInternal => _cell;
    private protected override IRecurrentMaps Maps => _engine;
    internal int PreWidth => _cell.PreWidth;

    /// <summary>
    /// Most values per row-chunk scratch block of the maps over all B·T rows (J_θ, J_θ*, K's site
    /// kernel, the sites' D and D*): <see cref="MemoryBudget.ScratchBlockElements"/>; the chunks are
    /// normally the smaller <see cref="KernelChunkBytes"/>. Tests shrink it for their own call only,
    /// through <see cref="ScopedSetting{T}.Override"/>.
    /// </summary>
    internal static readonly ScopedSetting<long> RowChunkElements = new(MemoryBudget.ScratchBlockElements);

    /// <summary>
    /// Bytes per row chunk of K's site kernel, J_θ, J_θ* and the sites' D and D* (at most
    /// <see cref="RowChunkElements"/> values): about two cores' L2 caches, so the D* rows are still
    /// cached when the Ûᵀ GEMM packs them and the Û C rows when D reads them (a whole-budget chunk,
    /// 33 MB, ran K at half its GEMMs' speed). For J_θ and J_θ* it keeps the pooled scratch small:
    /// whole-budget chunks left 16–33 MB arrays in the pool after one application. Tests shrink it
    /// for their own call only, through <see cref="ScopedSetting{T}.Override"/>.
    /// </summary>
    internal static readonly ScopedSetting<long> KernelChunkBytes = new(3L << 20);

    /// <summary>One weight site: its tensors (U's column blocks), biases, width and pre-activation block.</summary>
    private sealed record SiteLayout(string Name, (string Name, bool Recurrent)[] Weights, string[] Biases, int Width, int PreOffset);

    private static SiteLayout[] BuildLayout(RecurrentCell cell)
    {
        var biasIh = cell.HasBiasIh ? new[] { RecurrentCell.BiasIhName } : [];
        int h = cell.HiddenSize, n = cell.InputSize;
        if (cell.SplitPreActivation)
            return
            [
                new("ih", [(RecurrentCell.WeightIhName, false)], biasIh, n, 0),
                new("hh", [(RecurrentCell.WeightHhName, true)], [RecurrentCell.BiasHhName], h, cell.HhOffset),
            ];
        return [new("rnn", [(RecurrentCell.WeightHhName, true), (RecurrentCell.WeightIhName, false)], [.. biasIh, RecurrentCell.BiasHhName], h + n, 0)];
    }

    /// <inheritdoc/>
    public override void ParamVjp(ReadOnlySpan<double> q, Span<double> dTheta, int count) => RunParamVjp(q, dTheta, count);

    /// <summary>
    /// Every site shares one per-row pre-activation [a_ih | a_hh] and one cell derivative D, so the
    /// site part of K is one D* pass, the Gram products Û_s(Û_sᵀ ·) on each site's column block, and
    /// one D pass (instead of a D* and a D pass per site).
    /// </summary>
    public override bool TryAddSiteKernel(ReadOnlySpan<double> x, Span<double> y, int count) => RunSiteKernel(x, y, count);

    // float32 blocks on a float32 linearisation: read and written in float32, no float64 block.

    /// <inheritdoc/>
    internal override bool TryAddSiteKernel(ReadOnlySpan<float> x, Span<float> y, int count) => HasSingleStateMaps && RunSiteKernel(x, y, count);

    /// <inheritdoc/>
    internal override bool TryParamVjp(ReadOnlySpan<float> q, Span<float> dTheta, int count) => HasSingleStateMaps && RunParamVjp(q, dTheta, count);

    private bool RunParamVjp<TV>(ReadOnlySpan<TV> q, Span<TV> dTheta, int count) where TV : unmanaged
    {
        CheckParamVjp(q.Length, dTheta.Length, count);
        _engine.ParamVjp(q, dTheta, count);
        return true;
    }

    private bool RunSiteKernel<TV>(ReadOnlySpan<TV> x, Span<TV> y, int count) where TV : unmanaged
    {
        long need = (long)count * StateShape.Size;
        if (count < 0 || x.Length < need || y.Length < need)
            throw new ArgumentException($"Site kernel: blocks of length {x.Length}/{y.Length} cannot hold {count} × {StateShape}.");
        if (count > 0) _engine.AddSiteKernel(x, y, count);
        return true;
    }

    // ---- what the sites read (RecurrentWeightSite) ----

    internal double[] SiteVariables(int site) => _engine.Variables(site);
    /// <summary>Û of a site in float32 (the float32 engine's own array), null on a float64 linearisation.</summary>
    internal float[]? SiteVariablesSingle(int site) => _engine.VariablesSingle(site);
    /// <summary>dst[j] += D a[j]; a and dst each float64 or, on a float32 linearisation only, float32.</summary>
    internal void SiteDAdd<TA, TV>(int site, ReadOnlySpan<TA> a, Span<TV> dst, int count) where TA : unmanaged where TV : unmanaged =>
        _engine.SiteDAdd(_layout[site].PreOffset, a, dst, count);
    /// <summary>a[j] = the site's block of Dᵀ q[j]; q and a each float64 or, on a float32 linearisation only, float32.</summary>
    internal void SiteDAdjoint<TV, TA>(int site, ReadOnlySpan<TV> q, Span<TA> a, int count) where TV : unmanaged where TA : unmanaged =>
        _engine.SiteDAdjoint(_layout[site].PreOffset, q, a, count);

    /// <summary>The maps in the compute type; the public members check arguments and forward here.</summary>
    /// <remarks>
    /// Every block element type TV (TA) is either double (the operator interface's float64 vectors)
    /// or the engine's own compute type T (float32 vectors on a float32 engine: read and written in
    /// place, no conversion). Rows of a double block on a float32 engine are rounded on entry and
    /// widened on exit.
    /// </remarks>
    private interface IEngine : IRecurrentMaps
    {
        void ParamVjp<TV>(ReadOnlySpan<TV> q, Span<TV> dTheta, int count) where TV : unmanaged;
        void AddSiteKernel<TV>(ReadOnlySpan<TV> x, Span<TV> y, int count) where TV : unmanaged;
        double[] Variables(int site);
        float[]? VariablesSingle(int site);
        void SiteDAdd<TA, TV>(int preOffset, ReadOnlySpan<TA> a, Span<TV> dst, int count) where TA : unmanaged where TV : unmanaged;
        void SiteDAdjoint<TV, TA>(int preOffset, ReadOnlySpan<TV> q, Span<TA> a, int count) where TV : unmanaged where TA : unmanaged;
    }

    /// <summary>Trajectory, caches, weights and every map in element type T (double or float).</summary>
    private sealed unsafe class Engine<T> : EngineBlocks<T>, IEngine where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly RecurrentLinearization _lin;
        private readonly RecurrentCell _cell;
        private readonly int _b, _t, _s, _h, _n, _gh, _p, _c, _hho, _rows;
        private readonly T[] _x, _z, _z0, _v, _cache, _wih, _whh;
        private readonly T[]? _bih;
        private readonly T[] _bhh;
        private readonly int _offWih, _offWhh, _offBih, _offBhh;
        private readonly PackedOperand<T> _whhT;            // op(B) = W_hhᵀ of a_hh = v W_hhᵀ (forward, P), packed once
        private readonly Lazy<PackedOperand<T>> _whhN;      // op(B) = W_hh of W_hhᵀ g_hh (P*)
        private readonly Lazy<T[]>[] _u;             // Û per site in T
        private readonly Lazy<double[]>[] _uDouble;  // Û per site in float64 (the public Variables)
        private readonly Trajectory<T> _states;      // z: its values are _z

        public Engine(RecurrentLinearization lin, int b, int t)
        {
            _lin = lin; _cell = lin._cell;
            _b = b; _t = t; _n = _cell.InputSize; _s = _cell.StateSize; _h = _cell.HiddenSize;
            _gh = _cell.GateWidth; _p = _cell.PreWidth; _c = _cell.CacheWidth; _hho = _cell.HhOffset; _rows = b * t;
            var ps = lin._params;
            _x = Shared(lin._x);
            _z0 = Shared(lin._initial);
            _states = new Trajectory<T>(checked(_rows * _s));
            _z = _states.Values;
            _v = new T[checked(_rows * _h)];
            _cache = new T[checked(_rows * _c)];
            _wih = Shared(ps[RecurrentCell.WeightIhName].Data);
            _whh = Shared(ps[RecurrentCell.WeightHhName].Data);
            _bih = _cell.HasBiasIh ? Shared(ps[RecurrentCell.BiasIhName].Data) : null;
            _bhh = Shared(ps[RecurrentCell.BiasHhName].Data);
            _offWih = ps.OffsetOf(RecurrentCell.WeightIhName);
            _offWhh = ps.OffsetOf(RecurrentCell.WeightHhName);
            _offBih = _cell.HasBiasIh ? ps.OffsetOf(RecurrentCell.BiasIhName) : -1;
            _offBhh = ps.OffsetOf(RecurrentCell.BiasHhName);
            _whhT = new PackedOperand<T>(Trans.Yes, _h, _gh, _whh, _h);
            _whhN = new Lazy<PackedOperand<T>>(() => new PackedOperand<T>(Trans.No, _gh, _h, _whh, _h));
            Forward();
            _u = lin._layout.Select(l => new Lazy<T[]>(() => BuildVariables(l))).ToArray();
            _uDouble = _u.Select(u => new Lazy<double[]>(() => Widened(u.Value))).ToArray();
        }

        /// <summary>The array in float64: itself (float64), or a widened copy (exact).</summary>
        private static double[] Widened(T[] src)
        {
            if (typeof(T) == typeof(double)) return (double[])(object)src;
            var d = new double[src.Length];
            Widening.Widen<T>(src, d);
            return d;
        }

        public Trajectory States => _states;

        private ReadOnlySpan<T> ZPrev(int b, int k) =>
            k == 0 ? _z0.AsSpan(b * _s, _s) : _z.AsSpan((b * _t + k - 1) * _s, _s);

        private StepRow<T> Row(int b, int k)
        {
            int row = b * _t + k;
            return new StepRow<T>(_cache.AsSpan(row * _c, _c), ZPrev(b, k), _z.AsSpan(row * _s, _s));
        }

        /// <summary>
        /// The forward pass, one step at a time on a [B, P] pre-activation block (it stays in cache):
        /// a_ih = x_k W_ihᵀ and a_hh = v(h_{k−1}) W_hhᵀ (W_hh packed once), one GEMM each, then the
        /// cell row by row; each part of the rows does its own GEMMs and rows (one fork per step).
        /// </summary>
        private void Forward()
        {
            var pre = ArrayPool<T>.Shared.Rent(_b * _p);
            var wihT = new PackedOperand<T>(Trans.Yes, _n, _gh, _wih, _n); // packed too, so no part's rows change a result bit
            try
            {
                for (int b = 0; b < _b; b++) _cell.RecurrentVariable<T>(_z0.AsSpan(b * _s, _h), _v.AsSpan(b * _t * _h, _h));
                for (int k = 0; k < _t; k++)
                {
                    int kk = k;
                    StepParts(_b, (r0, r1, threads) =>
                    {
                        int n = r1 - r0, tn = _t * _n, th = _t * _h;
                        var preRows = pre.AsSpan(r0 * _p, n * _p);
                        // Rows b·T + k of x and v have stride T·N and T·H; docs/math.md#cells.
                        Gemm.MultiplyPacked(Trans.No, n, T.One, _x.AsSpan(r0 * tn + kk * _n), tn, wihT, T.Zero, preRows, _p, threads);
                        Gemm.MultiplyPacked(Trans.No, n, T.One, _v.AsSpan(r0 * th + kk * _h), th, _whhT,
                            _cell.SplitPreActivation ? T.Zero : T.One, preRows[_hho..], _p, threads);
                        for (int b = r0; b < r1; b++)
                        {
                            int row = b * _t + kk;
                            var a = pre.AsSpan(b * _p, _p);
                            if (_bih != null) TensorPrimitives.Add(a[.._gh], _bih, a[.._gh]);
                            TensorPrimitives.Add(a.Slice(_hho, _gh), _bhh, a.Slice(_hho, _gh));
                            var z = _z.AsSpan(row * _s, _s);
                            _cell.ForwardRow<T>(a, ZPrev(b, kk), z, _cache.AsSpan(row * _c, _c));
                            if (kk + 1 < _t) _cell.RecurrentVariable<T>(z[.._h], _v.AsSpan((row + 1) * _h, _h));
                        }
                    });
                }
            }
            finally { ArrayPool<T>.Shared.Return(pre); }
        }

        /// <summary>
        /// Runs one step's rows as parts of whole 8-row groups (the GEMM kernels' MR), in parallel when
        /// the step's work (a [rows × H]·[H × G·H] product plus the cell rows) is large: each part does
        /// its own GEMM on the pre-packed W_hh and then its own cell rows, so a step costs one fork and
        /// its element-wise passes run on every thread. <paramref name="body"/> gets the row range and
        /// the threads its GEMMs may use (all of them when the step runs as one part).
        /// </summary>
        private void StepParts(int rows, Action<int, int, int> body)
        {
            int threads = Math.Min(Environment.ProcessorCount, Gemm.MaxDegreeOfParallelism);
            int groups = (rows + 7) / 8;
            // A few parts per thread once the rows are many: balance on a shared machine; each part
            // re-packs only its own rows of A.
            int parts = Math.Min(groups, Math.Min(4 * threads, Math.Max(threads, rows / 96)));
            long cost = (long)rows * ((long)_gh * _h + 12L * _p);
            if (parts < 2 || cost < RowLoop.ParallelThreshold.Value)
            {
                body(0, rows, Gemm.MaxDegreeOfParallelism);
                return;
            }
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = threads }, part =>
            {
                int r0 = (int)((long)groups * part / parts) * 8, r1 = Math.Min(rows, (int)((long)groups * (part + 1) / parts) * 8);
                body(r0, r1, 1);
            });
        }

        // Spans cannot be captured by the row lambdas; the blocks are pinned and passed as addresses.
        private static Span<double> At(nint p, long offset, int length) => new((double*)p + offset, length);

        /// <summary>Row <paramref name="offset"/>.. of a pinned block in T (float64: the interface block itself).</summary>
        private static Span<T> AtT(nint p, long offset, int length) => new((T*)p + offset, length);

        /// <summary>Row <paramref name="offset"/>.. of a pinned interface block of element type TV.</summary>
        private static Span<TV> AtV<TV>(nint p, long offset, int length) where TV : unmanaged => new((TV*)p + offset, length);


        /// <summary>dst[j, b, k] += alpha · A_k src[j, b, k−1].</summary>
        public void StateJvpAdd<TV>(int k, ReadOnlySpan<TV> src, Span<TV> dst, int count, double alpha) where TV : unmanaged
        {
            int rows = count * _b, ts = _t * _s;
            // Blocks in T (float64, or float32 blocks on the float32 engine) are read in place (src rows of
            // step k−1, stride T·S) and accumulated into in place; float64 blocks on the float32 engine round a copy.
            bool direct = typeof(TV) == typeof(T);
            var zs = direct ? null : ArrayPool<T>.Shared.Rent(rows * _s);
            var pre = ArrayPool<T>.Shared.Rent(rows * _gh);   // hh pre-activations only: the ih part of a state JVP is zero
            try
            {
                fixed (TV* ps = src, pd = dst)
                {
                    nint isrc = (nint)ps, id = (nint)pd;
                    StepParts(rows, (r0, r1, threads) =>
                    {
                        int n = r1 - r0;
                        Span<T> z; int ldz;
                        if (zs == null)
                        {
                            z = AtT(isrc, (long)r0 * ts + (k - 1) * _s, (n - 1) * ts + _s);
                            ldz = ts;
                        }
                        else
                        {
                            for (int r = r0; r < r1; r++) Widening.Narrow(At(isrc, (long)r * ts + (k - 1) * _s, _s), zs.AsSpan(r * _s, _s));
                            z = zs.AsSpan(r0 * _s, n * _s);
                            ldz = _s;
                        }
                        var preRows = pre.AsSpan(r0 * _gh, n * _gh);
                        HhJvp(k, r0, n, z, ldz, preRows, threads);
                        var w = ArrayPool<T>.Shared.Rent(_s + _cell.WorkWidth);
                        try
                        {
                            var tmp = w.AsSpan(0, _s); var work = w.AsSpan(_s, _cell.WorkWidth);
                            for (int r = r0; r < r1; r++)
                            {
                                var row = Row(r % _b, k);
                                var zr = z.Slice((r - r0) * ldz, _s);
                                _cell.ApplyDHh(row, pre.AsSpan(r * _gh, _gh), tmp, work);
                                if (direct)
                                {
                                    // In T, D·δa and E·δz are added straight into the output row, one after the other.
                                    var d = AtT(id, (long)r * ts + k * _s, _s);
                                    T a = T.CreateTruncating(alpha);
                                    TensorPrimitives.MultiplyAdd(tmp, a, d, d);
                                    _cell.ApplyEAdd(row, zr, d, a, work);
                                    continue;
                                }
                                _cell.ApplyEAdd(row, zr, tmp, T.One, work);
                                Widening.AddScaled<T>(tmp, alpha, At(id, (long)r * ts + k * _s, _s));
                            }
                        }
                        finally { ArrayPool<T>.Shared.Return(w); }
                    });
                }
            }
            finally
            {
                if (zs != null) ArrayPool<T>.Shared.Return(zs);
                ArrayPool<T>.Shared.Return(pre);
            }
        }

        /// <summary>preRows[i] = W_hh (v' ⊙ δh), the hh pre-activations (stride G·H) of rows r0 + i (δh: rows of <paramref name="z"/>, stride <paramref name="ldz"/>).</summary>
        private void HhJvp(int k, int r0, int n, ReadOnlySpan<T> z, int ldz, Span<T> preRows, int threads)
        {
            // A state JVP has no ih part: the hh product overwrites even a shared block (beta = 0).
            if (_cell.RecurrentVariableIsState)
            {
                Gemm.MultiplyPacked(Trans.No, n, T.One, z, ldz, _whhT, T.Zero, preRows, _gh, threads);
                return;
            }
            var dv = ArrayPool<T>.Shared.Rent(n * _h + _h);
            try
            {
                var d = dv.AsSpan(n * _h, _h);
                for (int i = 0; i < n; i++)
                {
                    _cell.RecurrentDerivative<T>(_v.AsSpan((((r0 + i) % _b) * _t + k) * _h, _h), d);
                    TensorPrimitives.Multiply(d, z.Slice(i * ldz, _h), dv.AsSpan(i * _h, _h));
                }
                Gemm.MultiplyPacked(Trans.No, n, T.One, dv, _h, _whhT, T.Zero, preRows, _gh, threads);
            }
            finally { ArrayPool<T>.Shared.Return(dv); }
        }

        /// <summary>dst[j, b, k−1] += alpha · A_kᵀ src[j, b, k].</summary>
        public void StateVjpAdd<TV>(int k, ReadOnlySpan<TV> src, Span<TV> dst, int count, double alpha) where TV : unmanaged
        {
            int rows = count * _b, ts = _t * _s;
            bool direct = typeof(TV) == typeof(T);   // blocks in T: q is read and dst accumulated into in place
            var qs = direct ? null : ArrayPool<T>.Shared.Rent(rows * _s);   // src rows of step k, in T
            var o = direct ? null : ArrayPool<T>.Shared.Rent(rows * _s);    // A_kᵀ q per row, before alpha
            var g = ArrayPool<T>.Shared.Rent(rows * _gh);   // the hh block of Dᵀq per row: all W_hhᵀ reads
            try
            {
                fixed (TV* ps = src, pd = dst)
                {
                    nint isrc = (nint)ps, id = (nint)pd;
                    StepParts(rows, (r0, r1, threads) =>
                    {
                        var w = ArrayPool<T>.Shared.Rent(_cell.WorkWidth);
                        try
                        {
                            var work = w.AsSpan(0, _cell.WorkWidth);
                            if (qs == null)
                            {
                                // In T, Eᵀq and W_hhᵀ g_hh are accumulated straight into the output rows of step k−1.
                                T a = T.CreateTruncating(alpha);
                                for (int r = r0; r < r1; r++)
                                {
                                    var row = Row(r % _b, k);
                                    var q = AtT(isrc, (long)r * ts + k * _s, _s);
                                    _cell.ApplyDTransposeHh(row, q, g.AsSpan(r * _gh, _gh), work);
                                    _cell.ApplyETransposeAdd(row, q, AtT(id, (long)r * ts + (k - 1) * _s, _s), a, work);
                                }
                                HhVjpAdd(k, r0, r1 - r0, g, AtT(id, (long)r0 * ts + (k - 1) * _s, (r1 - r0 - 1) * ts + _s), ts, a, threads);
                                return;
                            }
                            for (int r = r0; r < r1; r++)
                            {
                                var row = Row(r % _b, k);
                                var q = qs.AsSpan(r * _s, _s);
                                Widening.Narrow(At(isrc, (long)r * ts + k * _s, _s), q);
                                var or = o!.AsSpan(r * _s, _s);
                                or.Clear();
                                _cell.ApplyDTransposeHh(row, q, g.AsSpan(r * _gh, _gh), work);
                                _cell.ApplyETransposeAdd(row, q, or, T.One, work);
                            }
                            HhVjpAdd(k, r0, r1 - r0, g, o.AsSpan(r0 * _s, (r1 - r0) * _s), _s, T.One, threads);
                            for (int r = r0; r < r1; r++) Widening.AddScaled<T>(o.AsSpan(r * _s, _s), alpha, At(id, (long)r * ts + (k - 1) * _s, _s));
                        }
                        finally { ArrayPool<T>.Shared.Return(w); }
                    });
                }
            }
            finally
            {
                if (qs != null) ArrayPool<T>.Shared.Return(qs);
                if (o != null) ArrayPool<T>.Shared.Return(o);
                ArrayPool<T>.Shared.Return(g);
            }
        }

        /// <summary>
        /// out[i, h part] += alpha · v' ⊙ W_hhᵀ g_hh[r0 + i] (the adjoint of <see cref="HhJvp"/>; g holds
        /// hh blocks, stride G·H), rows of <paramref name="dst"/> with stride <paramref name="ld"/>.
        /// </summary>
        private void HhVjpAdd(int k, int r0, int n, T[] g, Span<T> dst, int ld, T alpha, int threads)
        {
            if (_cell.RecurrentVariableIsState)
            {
                Gemm.MultiplyPacked(Trans.No, n, alpha, g.AsSpan(r0 * _gh), _gh, _whhN.Value, T.One, dst, ld, threads);
                return;
            }
            var tmp = ArrayPool<T>.Shared.Rent(n * _h + _h);
            try
            {
                Gemm.MultiplyPacked(Trans.No, n, T.One, g.AsSpan(r0 * _gh), _gh, _whhN.Value, T.Zero, tmp, _h, threads);
                var d = tmp.AsSpan(n * _h, _h);
                for (int i = 0; i < n; i++)
                {
                    _cell.RecurrentDerivative<T>(_v.AsSpan((((r0 + i) % _b) * _t + k) * _h, _h), d);
                    var dh = dst.Slice(i * ld, _h);
                    if (typeof(T) == typeof(double) || alpha != T.One)
                    {
                        // float64 (and float32 with alpha ≠ 1): the product rounded first, then the axpy into the output row.
                        TensorPrimitives.Multiply(d, tmp.AsSpan(i * _h, _h), d);
                        TensorPrimitives.MultiplyAdd(d, alpha, dh, dh);
                    }
                    else TensorPrimitives.MultiplyAdd(d, tmp.AsSpan(i * _h, _h), dh, dh); // alpha = 1 (or applied by the caller)
                }
            }
            finally { ArrayPool<T>.Shared.Return(tmp); }
        }

        /// <summary>
        /// Rows of a [rows, P] pre-activation scratch block per chunk: row-local maps over all B·T rows
        /// run in chunks of at most <see cref="RowChunkElements"/> values, so their scratch stays
        /// small (a whole [B·T, P] block is 315 MB for B=64, T=200, GRU H=512) and in cache.
        /// </summary>
        private int RowChunk => (int)Math.Clamp(RowChunkElements.Value / _p, 1, Math.Max(1, _rows));

        /// <summary>result[j] = J_θ dθ[j]: δa_ih = δW_ih x + δb_ih, δa_hh = δW_hh v + δb_hh at every (b, k), then D; in row chunks.</summary>
        public void ParamJvp<TV>(ReadOnlySpan<TV> dTheta, Span<TV> result, int count) where TV : unmanaged
        {
            int m = _lin._params.TotalSize, size = _lin.StateShape.Size, chunk = KernelChunkRows;
            var pre = ArrayPool<T>.Shared.Rent(chunk * _p);
            var th = ArrayPool<T>.Shared.Rent(m);
            try
            {
                fixed (TV* pr = result)
                {
                    nint ires = (nint)pr;
                    for (int j = 0; j < count; j++)
                    {
                        ToT(dTheta.Slice(j * m, m), th.AsSpan(0, m));
                        long jOff = (long)j * size;
                        for (int r0 = 0; r0 < _rows; r0 += chunk)
                        {
                            int rc = Math.Min(chunk, _rows - r0), start = r0;
                            // docs/math.md#global-ntk.
                            GemmGeneric.Multiply(Trans.No, Trans.Yes, rc, _gh, _n, T.One, _x.AsSpan(r0 * _n), _n, th.AsSpan(_offWih), _n, T.Zero, pre, _p);
                            GemmGeneric.Multiply(Trans.No, Trans.Yes, rc, _gh, _h, T.One, _v.AsSpan(r0 * _h), _h, th.AsSpan(_offWhh), _h,
                                _cell.SplitPreActivation ? T.Zero : T.One, pre.AsSpan(_hho), _p);
                            RowLoop.For<T>(rc, 12L * _p, _s + _cell.WorkWidth, (i, w) =>
                            {
                                int row = start + i;
                                var a = pre.AsSpan(i * _p, _p);
                                if (_offBih >= 0) TensorPrimitives.Add(a[.._gh], th.AsSpan(_offBih, _gh), a[.._gh]);
                                TensorPrimitives.Add(a.Slice(_hho, _gh), th.AsSpan(_offBhh, _gh), a.Slice(_hho, _gh));
                                var tmp = w[.._s];
                                _cell.ApplyD(Row(row / _t, row % _t), a, tmp, w[_s..]);
                                FromT<TV>(tmp, AtV<TV>(ires, jOff + (long)row * _s, _s));
                            });
                        }
                    }
                }
            }
            finally
            {
                ArrayPool<T>.Shared.Return(pre);
                ArrayPool<T>.Shared.Return(th);
            }
        }

        /// <summary>
        /// dθ[j] = J_θ* q[j]: δW = Σ_(b,k) g uᵀ (GEMMs in T accumulated over row chunks), δb = Σ_(b,k) g
        /// (float64 sums: a bias gradient sums B·T rows whose terms cancel, so it is accumulated in float64
        /// and rounded once even for a float32 dθ block).
        /// </summary>
        public void ParamVjp<TV>(ReadOnlySpan<TV> q, Span<TV> dTheta, int count) where TV : unmanaged
        {
            int m = _lin._params.TotalSize, size = _lin.StateShape.Size, chunk = KernelChunkRows;
            var g = ArrayPool<T>.Shared.Rent(chunk * _p);
            var wIh = ArrayPool<T>.Shared.Rent(_gh * _n);
            var wHh = ArrayPool<T>.Shared.Rent(_gh * _h);
            // float64 dθ: the bias sums go straight into it; otherwise into this float64 scratch, rounded once.
            var bias = typeof(TV) == typeof(double) ? null : new double[2 * _gh];
            try
            {
                fixed (TV* pq = q)
                {
                    nint iq = (nint)pq;
                    for (int j = 0; j < count; j++)
                    {
                        long jOff = (long)j * size;
                        var th = dTheta.Slice(j * m, m);
                        Span<double> sumIh = bias == null ? (_offBih >= 0 ? MemoryMarshal.Cast<TV, double>(th.Slice(_offBih, _gh)) : default) : bias.AsSpan(0, _gh);
                        Span<double> sumHh = bias == null ? MemoryMarshal.Cast<TV, double>(th.Slice(_offBhh, _gh)) : bias.AsSpan(_gh, _gh);
                        if (_offBih >= 0) sumIh.Clear();
                        sumHh.Clear();
                        for (int r0 = 0; r0 < _rows; r0 += chunk)
                        {
                            int rc = Math.Min(chunk, _rows - r0), start = r0;
                            RowLoop.For<T>(rc, 12L * _p, _s + _cell.WorkWidth, (i, w) =>
                            {
                                int row = start + i;
                                var qr = w[.._s];
                                ToT<TV>(AtV<TV>(iq, jOff + (long)row * _s, _s), qr);
                                _cell.ApplyDTranspose(Row(row / _t, row % _t), qr, g.AsSpan(i * _p, _p), w[_s..]);
                            });
                            // docs/math.md#kronecker-core.
                            T beta = r0 == 0 ? T.Zero : T.One;
                            GemmGeneric.Multiply(Trans.Yes, Trans.No, _gh, _n, rc, T.One, g, _p, _x.AsSpan(r0 * _n), _n, beta, wIh, _n);
                            GemmGeneric.Multiply(Trans.Yes, Trans.No, _gh, _h, rc, T.One, g.AsSpan(_hho), _p, _v.AsSpan(r0 * _h), _h, beta, wHh, _h);
                            if (_offBih >= 0) ColumnSumsAdd(g, rc, 0, sumIh);
                            ColumnSumsAdd(g, rc, _hho, sumHh);
                        }
                        FromT<TV>(wIh.AsSpan(0, _gh * _n), th.Slice(_offWih, _gh * _n));
                        FromT<TV>(wHh.AsSpan(0, _gh * _h), th.Slice(_offWhh, _gh * _h));
                        if (bias != null)
                        {
                            if (_offBih >= 0) Float32.Narrow(sumIh, MemoryMarshal.Cast<TV, float>(th.Slice(_offBih, _gh)));
                            Float32.Narrow(sumHh, MemoryMarshal.Cast<TV, float>(th.Slice(_offBhh, _gh)));
                        }
                    }
                }
            }
            finally
            {
                ArrayPool<T>.Shared.Return(g);
                ArrayPool<T>.Shared.Return(wIh);
                ArrayPool<T>.Shared.Return(wHh);
            }
        }

        /// <summary>sum += Σ over the first <paramref name="rows"/> rows of g[row, offset..offset+G·H], accumulated in float64.</summary>
        private void ColumnSumsAdd(T[] g, int rows, int offset, Span<double> sum)
        {
            for (int r = 0; r < rows; r++) Widening.AddScaled<T>(g.AsSpan(r * _p + offset, _gh), 1.0, sum);
        }

        private T[] BuildVariables(SiteLayout l)
        {
            int w = l.Width + l.Biases.Length;
            var u = new T[checked(_rows * w)];
            for (int r = 0; r < _rows; r++)
            {
                var dst = u.AsSpan(r * w, w);
                int c = 0;
                foreach (var (_, recurrent) in l.Weights)
                {
                    if (recurrent) { _v.AsSpan(r * _h, _h).CopyTo(dst.Slice(c, _h)); c += _h; }
                    else { _x.AsSpan(r * _n, _n).CopyTo(dst.Slice(c, _n)); c += _n; }
                }
                dst[c..].Fill(T.One);
            }
            return u;
        }

        public double[] Variables(int site) => _uDouble[site].Value;

        public float[]? VariablesSingle(int site) => typeof(T) == typeof(float) ? (float[])(object)_u[site].Value : null;

        /// <summary>g[r − r0] = Dᵀ q[r] for rows r0 ≤ r &lt; r0 + rc of one state vector q: whole pre-activation rows in T.</summary>
        private void DAdjointRows<TV>(ReadOnlySpan<TV> q, T[] g, int r0, int rc) where TV : unmanaged
        {
            fixed (TV* pq = q)
            {
                nint iq = (nint)pq;
                RowLoop.For<T>(rc, 12L * _p, _s + _cell.WorkWidth, (i, w) =>
                {
                    int row = r0 + i;
                    var qr = w[.._s];
                    ToT<TV>(AtV<TV>(iq, (long)row * _s, _s), qr);
                    _cell.ApplyDTranspose(Row(row / _t, row % _t), qr, g.AsSpan(i * _p, _p), w[_s..]);
                });
            }
        }

        /// <summary>dst[r] += D a[r − r0] for rows r0 ≤ r &lt; r0 + rc of one state vector.</summary>
        private void DRowsAdd<TV>(T[] a, Span<TV> dst, int r0, int rc) where TV : unmanaged
        {
            fixed (TV* pd = dst)
            {
                nint id = (nint)pd;
                RowLoop.For<T>(rc, 12L * _p, _s + _cell.WorkWidth, (i, w) =>
                {
                    int row = r0 + i;
                    var tmp = w[.._s];
                    _cell.ApplyD(Row(row / _t, row % _t), a.AsSpan(i * _p, _p), tmp, w[_s..]);
                    AddScaled<TV>(tmp, 1.0, AtV<TV>(id, (long)row * _s, _s));
                });
            }
        }

        /// <summary>
        /// y[j] += Σ_s D_s (Û_s Û_sᵀ ⊗ I) D_s* x[j], one vector at a time in two passes over chunks of
        /// rows that stay in cache (docs/math.md#kronecker-core). Pass 1 forms g = D* x on a chunk (its
        /// rows split over threads), then accumulates C_s = Û_sᵀ g_s (the columns split over threads,
        /// one serial GEMM each). Pass 2 forms A_s = Û_s C_s and applies D, each thread on its own rows
        /// of the chunk, so a row goes from the GEMM to D while it is in that thread's cache; C_s is
        /// packed once per vector for it. A site's columns of ones (its biases) stay out of the GEMMs:
        /// their rows of C_s all equal the column sums S_s of g_s, so pass 2 adds (biases)·S_s to every
        /// row, and the GEMMs keep k = the site's width (H = 256: one k-slice instead of two for 257).
        /// </summary>
        public void AddSiteKernel<TV>(ReadOnlySpan<TV> x, Span<TV> y, int count) where TV : unmanaged
        {
            int size = _lin.StateShape.Size, sites = _lin._layout.Length, chunk = KernelChunkRows;
            int threads = Math.Min(Environment.ProcessorCount, Gemm.MaxDegreeOfParallelism);
            long rowCost = 12L * _p;
            for (int s = 0; s < sites; s++) rowCost += 4L * SiteWidth(s) * _gh;
            int parts = threads > 1 && chunk * rowCost >= RowLoop.ParallelThreshold.Value ? threads : 1;
            var g = ArrayPool<T>.Shared.Rent(chunk * _p);
            var c = new T[sites][];     // C_s: all d̂ rows for a narrow site, the weight rows for a GEMM site
            var sums = new T[sites][];  // S_s: a GEMM site's column sums of g_s, if it has biases
            var packed = new PackedOperand<T>?[sites];
            var scratch = PinnedScratch<T>.Rent();
            try
            {
                for (int s = 0; s < sites; s++)
                {
                    c[s] = ArrayPool<T>.Shared.Rent(CRows(s) * _gh);   // pooled: no garbage per call
                    if (UsesGemm(s) && _lin._layout[s].Biases.Length > 0) sums[s] = ArrayPool<T>.Shared.Rent(_gh);
                }
                fixed (TV* px = x, py = y)
                {
                    for (int j = 0; j < count; j++)
                    {
                        nint xj = (nint)(px + (long)j * size), yj = (nint)(py + (long)j * size);
                        for (int s = 0; s < sites; s++)
                        {
                            if (!UsesGemm(s)) Array.Clear(c[s], 0, CRows(s) * _gh);   // a GEMM site's first chunk overwrites C_s
                            if (sums[s] is { } sum) Array.Clear(sum, 0, _gh);
                        }
                        for (int r0 = 0; r0 < _rows; r0 += chunk)
                        {
                            int rc = Math.Min(chunk, _rows - r0), start = r0;
                            SplitRange(parts, rc, 8, (lo, hi) => DAdjointRange<TV>(xj, start, lo, hi, g));
                            SplitRange(parts, _gh, 48, (lo, hi) => AccumulateColumns(start, rc, lo, hi, g, c, sums));
                        }
                        for (int s = 0; s < sites; s++)
                        {
                            if (!UsesGemm(s)) continue;
                            int w = _lin._layout[s].Width;
                            packed[s] = new PackedOperand<T>(Trans.No, w, _gh, c[s], _gh, scratch.Get(s, PackedOperand<T>.StorageLength(w, _gh)));
                        }
                        for (int r0 = 0; r0 < _rows; r0 += chunk)
                        {
                            int rc = Math.Min(chunk, _rows - r0), start = r0;
                            SplitRange(parts, rc, 8, (lo, hi) => FormAndApplyD<TV>(start, lo, hi, g, c, sums, packed, yj));
                        }
                    }
                }
            }
            finally
            {
                ArrayPool<T>.Shared.Return(g);
                foreach (var cs in c) if (cs is not null) ArrayPool<T>.Shared.Return(cs);
                foreach (var ss in sums) if (ss is not null) ArrayPool<T>.Shared.Return(ss);
                PinnedScratch<T>.Return(scratch);
            }
        }

        /// <summary>
        /// Rows per chunk of the row maps (K's site kernel, J_θ, J_θ*, the sites' D and D*):
        /// <see cref="KernelChunkBytes"/> of pre-activation rows, in whole 8-row groups (the kernels'
        /// MR), and never more than <see cref="RowChunk"/>.
        /// </summary>
        private int KernelChunkRows
        {
            get
            {
                long rows = KernelChunkBytes.Value / ((long)_p * sizeof(T));
                if (rows >= 16) rows -= rows % 8;
                return (int)Math.Clamp(rows, 1, Math.Min(RowChunk, Math.Max(1, _rows)));
            }
        }

        private int SiteWidth(int s) => _lin._layout[s].Width + _lin._layout[s].Biases.Length;

        /// <summary>Whether site s runs its Û products as GEMMs (else, for a few inputs, as streaming axpys).</summary>
        private bool UsesGemm(int s) => SiteWidth(s) > NarrowWidth;

        /// <summary>Rows of C_s kept: every column of Û for a narrow site, the weight columns for a GEMM site.</summary>
        private int CRows(int s) => UsesGemm(s) ? _lin._layout[s].Width : SiteWidth(s);

        /// <summary>
        /// Runs body(lo, hi) on up to <paramref name="parts"/> ranges that split [0, length) at multiples
        /// of <paramref name="unit"/>, one per thread (one part: on the calling thread).
        /// </summary>
        private static void SplitRange(int parts, int length, int unit, Action<int, int> body)
        {
            int tiles = (length + unit - 1) / unit;
            parts = Math.Min(parts, tiles);
            if (parts <= 1) { body(0, length); return; }
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part =>
                body((int)((long)tiles * part / parts) * unit, Math.Min(length, (int)((long)tiles * (part + 1) / parts) * unit)));
        }

        /// <summary>g[i] = Dᵀ q[r0 + i] for chunk rows lo ≤ i &lt; hi of the state vector at <paramref name="q"/> (elements TV: double, or T).</summary>
        private void DAdjointRange<TV>(nint q, int r0, int lo, int hi, T[] g) where TV : unmanaged
        {
            var work = ArrayPool<T>.Shared.Rent(_s + _cell.WorkWidth);
            try
            {
                var qr = work.AsSpan(0, _s);
                for (int i = lo; i < hi; i++)
                {
                    int row = r0 + i;
                    // A block in T is read in place; a float64 block on the float32 engine is rounded first.
                    Span<T> src = typeof(TV) == typeof(T) ? AtT(q, (long)row * _s, _s) : qr;
                    if (typeof(TV) != typeof(T)) ToT<TV>(AtV<TV>(q, (long)row * _s, _s), qr);
                    _cell.ApplyDTranspose(Row(row / _t, row % _t), src, g.AsSpan(i * _p, _p), work.AsSpan(_s, _cell.WorkWidth));
                }
            }
            finally { ArrayPool<T>.Shared.Return(work); }
        }

        /// <summary>
        /// Pass 1 on columns [lo, hi) of every site block, for chunk rows r0 ≤ r &lt; r0 + rc held in g:
        /// C_s += Û_s[rows]ᵀ g_s (a GEMM over the weight columns, or axpys for a narrow site) and
        /// S_s += the column sums of g_s. Each element's sum runs in row order, whatever the split.
        /// </summary>
        private void AccumulateColumns(int r0, int rc, int lo, int hi, T[] g, T[][] c, T[][] sums)
        {
            int w = hi - lo;
            for (int s = 0; s < c.Length; s++)
            {
                int d = SiteWidth(s), offset = _lin._layout[s].PreOffset + lo;
                var u = _u[s].Value;
                if (!UsesGemm(s))
                {
                    NarrowSite.Accumulate<T>(g, _p, _lin._layout[s].PreOffset, rc, u.AsSpan(r0 * d, rc * d), d, c[s], _gh, lo, w);
                    continue;
                }
                Gemm.Multiply<T>(Trans.Yes, Trans.No, _lin._layout[s].Width, w, rc, T.One, u.AsSpan(r0 * d), d,
                    g.AsSpan(offset), _p, r0 == 0 ? T.Zero : T.One, c[s].AsSpan(lo), _gh, 1);
                if (sums[s] is { } sum)
                {
                    var sr = sum.AsSpan(lo, w);
                    for (int r = 0; r < rc; r++) TensorPrimitives.Add(sr, g.AsSpan(r * _p + offset, w), sr);
                }
            }
        }

        /// <summary>
        /// Pass 2 on chunk rows r0 + lo ≤ r &lt; r0 + hi: A_s = Û_s C_s into g (a GEMM on the packed weight
        /// rows of C_s plus (biases)·S_s, or axpys for a narrow site), then y[r] += D A[r], row by row.
        /// </summary>
        private void FormAndApplyD<TV>(int r0, int lo, int hi, T[] g, T[][] c, T[][] sums, PackedOperand<T>?[] packed, nint y) where TV : unmanaged
        {
            for (int s = 0; s < c.Length; s++)
                if (packed[s] is { } pc)
                    Gemm.MultiplyPacked<T>(Trans.No, hi - lo, T.One, _u[s].Value.AsSpan((r0 + lo) * SiteWidth(s)), SiteWidth(s), pc,
                        T.Zero, g.AsSpan(lo * _p + _lin._layout[s].PreOffset), _p, 1);
            var work = ArrayPool<T>.Shared.Rent(_s + _cell.WorkWidth);
            try
            {
                var tmp = work.AsSpan(0, _s);
                for (int i = lo; i < hi; i++)
                {
                    int row = r0 + i;
                    var a = g.AsSpan(i * _p, _p);
                    for (int s = 0; s < c.Length; s++)
                    {
                        var block = a.Slice(_lin._layout[s].PreOffset, _gh);
                        if (UsesGemm(s))
                        {
                            if (sums[s] is { } sum) TensorPrimitives.MultiplyAdd(sum.AsSpan(0, _gh), T.CreateTruncating(_lin._layout[s].Biases.Length), block, block);
                            continue;
                        }
                        int d = SiteWidth(s);
                        NarrowSite.Combine<T>(c[s], _gh, _u[s].Value.AsSpan(row * d, d), d, block, _gh);
                    }
                    _cell.ApplyD(Row(row / _t, row % _t), a, tmp, work.AsSpan(_s, _cell.WorkWidth));
                    AddScaled<TV>(tmp, 1.0, AtV<TV>(y, (long)row * _s, _s));
                }
            }
            finally { ArrayPool<T>.Shared.Return(work); }
        }

        private const int NarrowWidth = 8;

        /// <summary>dst[j] += D (a[j] in the site's pre-activation block), in row chunks.</summary>
        public void SiteDAdd<TA, TV>(int preOffset, ReadOnlySpan<TA> a, Span<TV> dst, int count) where TA : unmanaged where TV : unmanaged
        {
            int size = _lin.StateShape.Size, chunk = KernelChunkRows;
            var pre = ArrayPool<T>.Shared.Rent(chunk * _p);
            try
            {
                for (int j = 0; j < count; j++)
                    for (int r0 = 0; r0 < _rows; r0 += chunk)
                    {
                        int rc = Math.Min(chunk, _rows - r0);
                        Array.Clear(pre, 0, rc * _p);
                        for (int i = 0; i < rc; i++)
                            ToT(a.Slice((j * _rows + r0 + i) * _gh, _gh), pre.AsSpan(i * _p + preOffset, _gh));
                        DRowsAdd(pre, dst.Slice(j * size, size), r0, rc);
                    }
            }
            finally { ArrayPool<T>.Shared.Return(pre); }
        }

        /// <summary>a[j] = the site's pre-activation block of Dᵀ q[j], in row chunks.</summary>
        public void SiteDAdjoint<TV, TA>(int preOffset, ReadOnlySpan<TV> q, Span<TA> a, int count) where TV : unmanaged where TA : unmanaged
        {
            int size = _lin.StateShape.Size, chunk = KernelChunkRows;
            var g = ArrayPool<T>.Shared.Rent(chunk * _p);
            try
            {
                for (int j = 0; j < count; j++)
                    for (int r0 = 0; r0 < _rows; r0 += chunk)
                    {
                        int rc = Math.Min(chunk, _rows - r0);
                        DAdjointRows(q.Slice(j * size, size), g, r0, rc);
                        for (int i = 0; i < rc; i++)
                            FromT<TA>(g.AsSpan(i * _p + preOffset, _gh), a.Slice((j * _rows + r0 + i) * _gh, _gh));
                    }
            }
            finally { ArrayPool<T>.Shared.Return(g); }
        }
    }
}
