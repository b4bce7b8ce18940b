using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using GlobalNtk.Dense;
using Tensor = GlobalNtk.Dense.Tensor;

namespace GlobalNtk.Models.Recurrent;

/// <summary>
/// A stack of L recurrent layers, exactly as PyTorch's nn.RNN / nn.GRU / nn.LSTM with
/// <c>num_layers = L</c> build it, run over a batch and linearised (docs/math.md#global-ntk, #cells): at every time
/// step layer k reads the new h of layer k−1 (layer 0 reads x), biases are optional, and the
/// initial state may be a learnable parameter h0.
/// </summary>
/// <remarks>
/// <para>Chain state of one (trial, time): the layer-major concatenation [z_l0; z_l1; …] with
/// z_lk = h_lk ([h_lk; c_lk] for the LSTM), width L·S_c. The step map f_t is the whole stack, so
/// A_t = ∂z_t/∂z_{t−1} includes the within-step propagation through the upper layers, and
/// J_θ δθ at step t does too (z_{t−1} held fixed).</para>
/// <para>Each layer is the same cell math as the single-layer path (<see cref="RecurrentCell"/>'s
/// row hooks); every map runs layer by layer on blocks of count·B rows per step (one GEMM per
/// weight), and J_θ / J_θ* layer by layer on all B·T rows at once. A learnable h0 enters J_θ as
/// A_0 applied to δh0 (and J_θ* as its adjoint); c0 stays zero. Caches are state-sized: per layer
/// its input rows x_lk, recurrent variables v(h_lk,t−1) and gate caches. Scratch blocks come from
/// a pool, not fresh per call.</para>
/// <para>Precision (docs/math.md#numerics): as <see cref="RecurrentLinearization"/>. With
/// <see cref="Dense.Precision.F32"/> the forward pass, the caches, the weights and every product
/// (float32 GEMM, float32 cell math) are float32; vectors at the operator interface stay float64
/// (rounded on entry, widened and added in float64 on exit); bias and h0 gradients (sums over the
/// B·T or B rows) accumulate in float64. The trajectory is kept in float32 only
/// (<see cref="ChainLinearization.StatesSingle"/>); <see cref="ChainLinearization.States"/> and the sites'
/// <see cref="WeightSite.Variables"/> are the float32 values widened, on first use.</para>
/// </remarks>
public sealed class StackedRecurrentLinearization : RecurrentChainLinearization
{
    private readonly RecurrentStack _stack;
    private readonly ParameterSet _params;
    private readonly IEngine _engine;
    private readonly int _b, _t, _l, _sc, _s, _h, _gh, _p, _r;
    private readonly int[] _n;
    private readonly int[] _oBih, _oBhh;
    private readonly Lazy<WeightSite[]> _sites;

    internal StackedRecurrentLinearization(RecurrentStack stack, ParameterSet snapshot, Tensor inputs, ReadOnlySpan<double> initialState,
        Precision precision = Precision.F64)
        : base(new AxisShape(("trial", inputs.Shape.Sizes[0]), ("time", inputs.Shape.Sizes[1]), ("unit", stack.Layers * stack.Cells[0].StateSize)), precision)
    {
        _stack = stack; _params = snapshot;
        var c0 = stack.Cells[0];
        _b = inputs.Shape.Sizes[0]; _t = inputs.Shape.Sizes[1]; _l = stack.Layers;
        _h = c0.HiddenSize; _sc = c0.StateSize; _s = _l * _sc; _gh = c0.GateWidth; _p = c0.PreWidth;
        _r = _b * _t;
        _n = new int[_l]; _oBih = new int[_l]; _oBhh = new int[_l];
        for (int k = 0; k < _l; k++)
        {
            _n[k] = stack.Cells[k].InputSize;
            _oBih[k] = stack.HasBiasIh ? snapshot.OffsetOf(stack.BiasIh(k)) : -1;
            _oBhh[k] = stack.Bias ? snapshot.OffsetOf(stack.BiasHh(k)) : -1;
        }
        _engine = precision == Precision.F32
            ? new Engine<float>(this, inputs.Span, initialState)
            : new Engine<double>(this, inputs.Span, initialState);
        _engine.States.EnsureFinite($"{stack.Arch} states {StateShape} (forward pass overflowed{(precision == Precision.F32 ? " in float32" : "")})");
        _sites = new Lazy<WeightSite[]>(BuildSites);
    }

    /// <inheritdoc/>
    public override ParameterSet Parameters => _params;
    /// <inheritdoc/>
    public override IReadOnlyList<WeightSite> Sites => _sites.Value;
    private protected override IRecurrentMaps Maps => _engine;
    /// <summary>Number of layers L.</summary>
    public int Layers => _l;
    /// <summary>Units per layer in the state (H, or 2H for the LSTM).</summary>
    public int LayerStateSize => _sc;

    private int Off(int k) => k * _sc;

    /// <inheritdoc/>
    public override void ParamVjp(ReadOnlySpan<double> q, Span<double> dTheta, int count)
    {
        CheckParamVjp(q.Length, dTheta.Length, count);
        _engine.ParamVjp(q, dTheta, count);
    }

    /// <summary>
    /// J_θ* on float32 blocks: q is read in float32 in place; each dθ is formed in float64 (its bias
    /// and h0 entries are sums over B·T rows or B trials that cancel) and rounded once.
    /// </summary>
    internal override bool TryParamVjp(ReadOnlySpan<float> q, Span<float> dTheta, int count)
    {
        if (!HasSingleStateMaps) return false;
        CheckParamVjp(q.Length, dTheta.Length, count);
        int m = _params.TotalSize, size = StateShape.Size;
        // One θ-sized float64 row, pooled (not a fresh array per application).
        using var buffer = new Operators.BlockBuffer(m);
        var wide = buffer.Span;
        for (int j = 0; j < count; j++)
        {
            _engine.ParamVjp(q.Slice(j * size, size), wide, 1);
            Float32.Narrow(wide, dTheta.Slice(j * m, m));
        }
        return true;
    }

    /// <summary>The maps in the compute type; the public members check arguments and forward here.</summary>
    /// <remarks>
    /// A block element type TV (TA) is double (the interface's float64 vectors) or the engine's own T
    /// (float32 blocks on a float32 engine, read and written in place without conversion).
    /// </remarks>
    private interface IEngine : IRecurrentMaps
    {
        void ParamVjp<TV>(ReadOnlySpan<TV> q, Span<double> dTheta, int count) where TV : unmanaged;
        double[] Variables(int k, (string Name, bool Recurrent)[] weights, int width);
        float[]? VariablesSingle(int k, (string Name, bool Recurrent)[] weights, int width);
        void SiteDAdd<TA, TV>(int k, int preOffset, ReadOnlySpan<TA> a, Span<TV> dst, int count) where TA : unmanaged where TV : unmanaged;
        void SiteDAdjoint<TV, TA>(int k, int preOffset, ReadOnlySpan<TV> q, Span<TA> a, int count) where TV : unmanaged where TA : unmanaged;
    }

    /// <summary>Trajectory, caches, weights and every map in element type T (double or float).</summary>
    /// <remarks>
    /// The float64 instance runs exactly the operations of the former float64-only code, in the
    /// same order (the <c>sine</c> training test is sensitive to the last bit of the gradients):
    /// blocks at the interface are read and written in place through <see cref="MemoryMarshal.Cast{TFrom, TTo}(Span{TFrom})"/>.
    /// </remarks>
    private sealed class Engine<T> : EngineBlocks<T>, IEngine where T : unmanaged, IFloatingPointIeee754<T>
    {
        private static bool IsDouble => typeof(T) == typeof(double);

        private readonly StackedRecurrentLinearization _lin;
        private readonly RecurrentCell[] _cells;
        private readonly int _b, _t, _l, _sc, _s, _h, _gh, _p, _c, _hho, _r, _work;
        private readonly T[] _z, _z0;
        private readonly Trajectory<T> _states;   // z: its values are _z
        private readonly T[][] _x, _v, _cache, _wih, _whh;
        // The per-step weights packed once for the GEMM kernel (as op(B) = Wᵀ and W): the step products
        // have only count·B rows and cannot amortise packing W every step. Bit-identical products.
        private readonly Lazy<PackedOperand<T>>[] _whhT, _whhN, _wihT, _wihN;
        private readonly T[]?[] _bih, _bhh;
        private readonly int[] _n, _oWih, _oWhh, _oBih, _oBhh;
        private readonly int _oH0;

        public Engine(StackedRecurrentLinearization lin, ReadOnlySpan<double> inputs, ReadOnlySpan<double> initialState)
        {
            _lin = lin;
            var stack = lin._stack; var snapshot = lin._params;
            _cells = stack.Cells;
            _b = lin._b; _t = lin._t; _l = lin._l; _sc = lin._sc; _s = lin._s; _h = lin._h; _gh = lin._gh; _p = lin._p; _r = lin._r;
            _c = _cells[0].CacheWidth; _hho = _cells[0].HhOffset; _work = _cells[0].WorkWidth + 1;
            _states = new Trajectory<T>(checked(_r * _s));
            _z = _states.Values;
            _z0 = ToT(initialState);
            _x = new T[_l][]; _v = new T[_l][]; _cache = new T[_l][];
            _wih = new T[_l][]; _whh = new T[_l][]; _bih = new T[]?[_l]; _bhh = new T[]?[_l];
            _n = lin._n; _oBih = lin._oBih; _oBhh = lin._oBhh; _oWih = new int[_l]; _oWhh = new int[_l];
            for (int k = 0; k < _l; k++)
            {
                _wih[k] = Shared(snapshot[stack.WeightIh(k)].Data); _oWih[k] = snapshot.OffsetOf(stack.WeightIh(k));
                _whh[k] = Shared(snapshot[stack.WeightHh(k)].Data); _oWhh[k] = snapshot.OffsetOf(stack.WeightHh(k));
                _bih[k] = _oBih[k] >= 0 ? Shared(snapshot[stack.BiasIh(k)].Data) : null;
                _bhh[k] = _oBhh[k] >= 0 ? Shared(snapshot[stack.BiasHh(k)].Data) : null;
                _v[k] = new T[checked(_r * _h)];
                _cache[k] = new T[checked(_r * _c)];
            }
            _oH0 = stack.InitialStateName != null ? snapshot.OffsetOf(stack.InitialStateName) : -1;
            _whhT = Packs(_whh, Trans.Yes); _whhN = Packs(_whh, Trans.No);
            _wihT = Packs(_wih, Trans.Yes); _wihN = Packs(_wih, Trans.No);
            _x[0] = ToT(inputs);
            Forward();
        }

        public Trajectory States => _states;

        /// <summary>A copy in T (rounded for float32).</summary>
        private static T[] ToT(ReadOnlySpan<double> src)
        {
            var dst = new T[src.Length];
            Widening.Narrow(src, dst);
            return dst;
        }

        private static T[] Rent(int length) => ArrayPool<T>.Shared.Rent(Math.Max(1, length));
        private static void Return(T[] a) => ArrayPool<T>.Shared.Return(a);

        private int Off(int k) => k * _sc;

        private ReadOnlySpan<T> ZPrev(int k, int b, int t) =>
            t == 0 ? _z0.AsSpan(b * _s + Off(k), _sc) : _z.AsSpan((b * _t + t - 1) * _s + Off(k), _sc);

        private StepRow<T> Row(int k, int b, int t) =>
            new(_cache[k].AsSpan((b * _t + t) * _c, _c), ZPrev(k, b, t), _z.AsSpan((b * _t + t) * _s + Off(k), _sc));

        /// <summary>op(B) = Wᵀ (Trans.Yes) or W of each layer's [G·H × width] weight, packed on first use.</summary>
        private Lazy<PackedOperand<T>>[] Packs(T[][] w, Trans t) => Enumerable.Range(0, _l).Select(k =>
        {
            int width = w[k].Length / _gh;
            return new Lazy<PackedOperand<T>>(() => t == Trans.Yes
                ? new PackedOperand<T>(Trans.Yes, width, _gh, w[k], width)
                : new PackedOperand<T>(Trans.No, _gh, width, w[k], width));
        }).ToArray();

        private void Forward()
        {
            var pre = Rent(checked(_r * _p));
            try
            {
                for (int k = 0; k < _l; k++)
                {
                    var cell = _cells[k];
                    int n = _n[k];
                    if (k > 0)
                    {
                        // Layer k's input at (b, t) is the new h of layer k−1 at the same step.
                        _x[k] = new T[checked(_r * _h)];
                        for (int row = 0; row < _r; row++) _z.AsSpan(row * _s + Off(k - 1), _h).CopyTo(_x[k].AsSpan(row * _h, _h));
                    }
                    // a_ih for every (b, t) at once.
                    GemmGeneric.Multiply(Trans.No, Trans.Yes, _r, _gh, n, T.One, _x[k], n, _wih[k], n, T.Zero, pre, _p);
                    for (int b = 0; b < _b; b++) cell.RecurrentVariable<T>(_z0.AsSpan(b * _s + Off(k), _h), _v[k].AsSpan(b * _t * _h, _h));
                    for (int t = 0; t < _t; t++)
                    {
                        Gemm.MultiplyPacked(Trans.No, _b, T.One, _v[k].AsSpan(t * _h), _t * _h, _whhT[k].Value,
                            cell.SplitPreActivation ? T.Zero : T.One, pre.AsSpan(t * _p + _hho), _t * _p, Gemm.MaxDegreeOfParallelism);
                        for (int b = 0; b < _b; b++)
                        {
                            int row = b * _t + t;
                            var a = pre.AsSpan(row * _p, _p);
                            if (_bih[k] != null) TensorPrimitives.Add(a[.._gh], _bih[k]!, a[.._gh]);
                            if (_bhh[k] != null) TensorPrimitives.Add(a.Slice(_hho, _gh), _bhh[k]!, a.Slice(_hho, _gh));
                            var z = _z.AsSpan(row * _s + Off(k), _sc);
                            cell.ForwardRow<T>(a, ZPrev(k, b, t), z, _cache[k].AsSpan(row * _c, _c));
                            if (t + 1 < _t) cell.RecurrentVariable<T>(z[.._h], _v[k].AsSpan((row + 1) * _h, _h));
                        }
                    }
                }
            }
            finally { Return(pre); }
        }

        /// <summary>
        /// pre[r, hh block] (+)= W_hh,k (v' ⊙ δh)[r] for rows r = 0..rows−1 whose δh rows start at
        /// dh[r·ld] and whose v rows are v[vRow(r)]; <paramref name="beta"/> 0 overwrites.
        /// </summary>
        private void HhJvp(int k, int rows, ReadOnlySpan<T> dh, int ld, Func<int, int> vRow, Span<T> pre, T beta)
        {
            var cell = _cells[k];
            if (cell.RecurrentVariableIsState)
            {
                Gemm.MultiplyPacked(Trans.No, rows, T.One, dh, ld, _whhT[k].Value, beta, pre[_hho..], _p, Gemm.MaxDegreeOfParallelism);
                return;
            }
            var dv = Rent(rows * _h);
            try
            {
                var d = new T[_h];
                for (int r = 0; r < rows; r++)
                {
                    cell.RecurrentDerivative<T>(_v[k].AsSpan(vRow(r) * _h, _h), d);
                    TensorPrimitives.Multiply(d, dh.Slice(r * ld, _h), dv.AsSpan(r * _h, _h));
                }
                Gemm.MultiplyPacked(Trans.No, rows, T.One, dv, _h, _whhT[k].Value, beta, pre[_hho..], _p, Gemm.MaxDegreeOfParallelism);
            }
            finally { Return(dv); }
        }

        /// <summary>dst[r·ld + i] += (v' ⊙ W_hh,kᵀ g_hh[r])_i, the adjoint of <see cref="HhJvp"/>.</summary>
        private void HhVjpAdd(int k, int rows, ReadOnlySpan<T> g, Span<T> dst, int ld, Func<int, int> vRow)
        {
            var cell = _cells[k];
            if (cell.RecurrentVariableIsState)
            {
                Gemm.MultiplyPacked(Trans.No, rows, T.One, g[_hho..], _p, _whhN[k].Value, T.One, dst, ld, Gemm.MaxDegreeOfParallelism);
                return;
            }
            var tmp = Rent(rows * _h);
            try
            {
                Gemm.MultiplyPacked(Trans.No, rows, T.One, g[_hho..], _p, _whhN[k].Value, T.Zero, tmp, _h, Gemm.MaxDegreeOfParallelism);
                var d = new T[_h];
                for (int r = 0; r < rows; r++)
                {
                    cell.RecurrentDerivative<T>(_v[k].AsSpan(vRow(r) * _h, _h), d);
                    TensorPrimitives.Multiply(d, tmp.AsSpan(r * _h, _h), d);
                    var o = dst.Slice(r * ld, _h);
                    TensorPrimitives.MultiplyAdd(d, T.One, o, o);
                }
            }
            finally { Return(tmp); }
        }

        /// <summary>dst[j, b, t] += alpha · A_t src[j, b, t−1].</summary>
        public void StateJvpAdd<TV>(int t, ReadOnlySpan<TV> src, Span<TV> dst, int count, double alpha) where TV : unmanaged
        {
            int rows = count * _b, ts = _t * _s;
            // The rows of step t−1: a block in T is read in place (stride T·S), a float64 block on the
            // float32 engine is rounded into a copy (stride S).
            bool direct = typeof(TV) == typeof(T);
            var zs = direct ? null : Rent(rows * _s);
            var y = Rent(rows * _s);      // this application's A_t src, row r = (j, b)
            var pre = Rent(rows * _p);
            try
            {
                ReadOnlySpan<T> z; int ld;
                if (direct) { z = MemoryMarshal.Cast<TV, T>(src[((t - 1) * _s)..]); ld = ts; }
                else
                {
                    for (int r = 0; r < rows; r++) ToT(src.Slice(r * ts + (t - 1) * _s, _s), zs.AsSpan(r * _s, _s));
                    z = zs; ld = _s;
                }
                var work = new T[_work];
                for (int k = 0; k < _l; k++)
                {
                    var cell = _cells[k];
                    if (k > 0) Gemm.MultiplyPacked(Trans.No, rows, T.One, y.AsSpan(Off(k - 1)), _s, _wihT[k].Value, T.Zero, pre, _p, Gemm.MaxDegreeOfParallelism);
                    else if (cell.SplitPreActivation) Array.Clear(pre, 0, rows * _p);
                    HhJvp(k, rows, z[Off(k)..], ld, r => (r % _b) * _t + t, pre, k > 0 && !cell.SplitPreActivation ? T.One : T.Zero);
                    for (int r = 0; r < rows; r++)
                    {
                        int b = r % _b;
                        var row = Row(k, b, t);
                        var o = y.AsSpan(r * _s + Off(k), _sc);
                        cell.ApplyD(row, pre.AsSpan(r * _p, _p), o, work);
                        cell.ApplyEAdd(row, z.Slice(r * ld + Off(k), _sc), o, T.One, work);
                    }
                }
                for (int r = 0; r < rows; r++) AddScaled(y.AsSpan(r * _s, _s), alpha, dst.Slice(r * ts + t * _s, _s));
            }
            finally
            {
                if (zs != null) Return(zs);
                Return(y); Return(pre);
            }
        }

        /// <summary>dst[j, b, t−1] += alpha · A_tᵀ src[j, b, t].</summary>
        public void StateVjpAdd<TV>(int t, ReadOnlySpan<TV> src, Span<TV> dst, int count, double alpha) where TV : unmanaged
        {
            int rows = count * _b, ts = _t * _s;
            var o = Rent(rows * _s);       // A_tᵀ q, row r = (j, b), before alpha
            var q = Rent(rows * _sc);
            var g = Rent(rows * _p);
            var carry = Rent(rows * _h);   // W_ih,k+1ᵀ g_ih from the layer above
            try
            {
                Array.Clear(o, 0, rows * _s);
                for (int k = _l - 1; k >= 0; k--)
                {
                    var cell = _cells[k];
                    for (int r = 0; r < rows; r++)
                    {
                        var qr = q.AsSpan(r * _sc, _sc);
                        ToT(src.Slice(r * ts + t * _s + Off(k), _sc), qr);
                        if (k < _l - 1) TensorPrimitives.Add(qr[.._h], carry.AsSpan(r * _h, _h), qr[.._h]);
                    }
                    int kk = k;
                    RowLoop.For<T>(rows, 12L * _p, _work, (r, work) =>
                    {
                        var qr = q.AsSpan(r * _sc, _sc);
                        var row = Row(kk, r % _b, t);
                        cell.ApplyDTranspose(row, qr, g.AsSpan(r * _p, _p), work);
                        cell.ApplyETransposeAdd(row, qr, o.AsSpan(r * _s + Off(kk), _sc), T.One, work);
                    });
                    HhVjpAdd(k, rows, g, o.AsSpan(Off(k)), _s, r => (r % _b) * _t + t);
                    if (k > 0) Gemm.MultiplyPacked(Trans.No, rows, T.One, g, _p, _wihN[k].Value, T.Zero, carry, _h, Gemm.MaxDegreeOfParallelism);
                }
                for (int r = 0; r < rows; r++) AddScaled(o.AsSpan(r * _s, _s), alpha, dst.Slice(r * ts + (t - 1) * _s, _s));
            }
            finally { Return(o); Return(q); Return(g); Return(carry); }
        }

        /// <inheritdoc cref="IRecurrentMaps.ParamJvp"/>
        public void ParamJvp<TV>(ReadOnlySpan<TV> dTheta, Span<TV> result, int count) where TV : unmanaged
        {
            int m = _lin._params.TotalSize, size = _lin.StateShape.Size;
            bool direct = typeof(TV) == typeof(T);   // blocks in T are read and written in place
            var pre = Rent(checked(_r * _p));
            var th = direct ? null : Rent(m);
            var res32 = direct ? null : Rent(size);   // float64 blocks on the float32 engine: one result in T, widened at the end
            var dh = _oH0 >= 0 ? Rent(_b * _h) : null;
            var hh = _oH0 >= 0 ? Rent(_b * _p) : null;
            try
            {
                var work = new T[_work];
                var dz0 = new T[_sc];
                for (int j = 0; j < count; j++)
                {
                    ReadOnlySpan<T> tj;
                    if (direct) tj = MemoryMarshal.Cast<TV, T>(dTheta.Slice(j * m, m));
                    else { ToT(dTheta.Slice(j * m, m), th.AsSpan(0, m)); tj = th.AsSpan(0, m); }
                    Span<T> res = direct ? MemoryMarshal.Cast<TV, T>(result.Slice(j * size, size)) : res32.AsSpan(0, size);
                    for (int k = 0; k < _l; k++)
                    {
                        var cell = _cells[k];
                        int n = _n[k];
                        // δa_ih = δW_ih x + W_ih δx (δx = this step's δh of layer k−1) + δb_ih; δa_hh = δW_hh v + δb_hh.
                        GemmGeneric.Multiply(Trans.No, Trans.Yes, _r, _gh, n, T.One, _x[k], n, tj[_oWih[k]..], n, T.Zero, pre, _p);
                        if (k > 0) GemmGeneric.Multiply(Trans.No, Trans.Yes, _r, _gh, _h, T.One, res[Off(k - 1)..], _s, _wih[k], _h, T.One, pre, _p);
                        GemmGeneric.Multiply(Trans.No, Trans.Yes, _r, _gh, _h, T.One, _v[k], _h, tj[_oWhh[k]..], _h,
                            cell.SplitPreActivation ? T.Zero : T.One, pre.AsSpan(_hho), _p);
                        if (_oH0 >= 0)
                        {
                            // z_{−1} = h0: the t = 0 rows also move by A_0 [δh0; 0].
                            dz0.AsSpan().Clear();
                            tj.Slice(_oH0 + k * _h, _h).CopyTo(dz0);
                            for (int b = 0; b < _b; b++) dz0.AsSpan(0, _h).CopyTo(dh.AsSpan(b * _h, _h));
                            HhJvp(k, _b, dh, _h, b => b * _t, hh, T.Zero);
                            for (int b = 0; b < _b; b++)
                            {
                                var d = pre.AsSpan(b * _t * _p + _hho, _gh);
                                TensorPrimitives.Add(d, hh.AsSpan(b * _p + _hho, _gh), d);
                            }
                        }
                        for (int row = 0; row < _r; row++)
                        {
                            var a = pre.AsSpan(row * _p, _p);
                            if (_oBih[k] >= 0) TensorPrimitives.Add(a[.._gh], tj.Slice(_oBih[k], _gh), a[.._gh]);
                            if (_oBhh[k] >= 0) TensorPrimitives.Add(a.Slice(_hho, _gh), tj.Slice(_oBhh[k], _gh), a.Slice(_hho, _gh));
                            int b = row / _t, t = row % _t;
                            var sr = Row(k, b, t);
                            var o = res.Slice(row * _s + Off(k), _sc);
                            cell.ApplyD(sr, a, o, work);
                            if (_oH0 >= 0 && t == 0) cell.ApplyEAdd(sr, dz0, o, T.One, work);
                        }
                    }
                    if (!direct) FromT(res, result.Slice(j * size, size));
                }
            }
            finally
            {
                Return(pre);
                if (th != null) Return(th);
                if (res32 != null) Return(res32);
                if (dh != null) Return(dh);
                if (hh != null) Return(hh);
            }
        }

        /// <inheritdoc cref="IEngine.ParamVjp"/>
        /// <remarks>q is a float64 block or a block in T; dθ is float64 (its bias and h0 entries are sums that cancel).</remarks>
        public void ParamVjp<TV>(ReadOnlySpan<TV> q, Span<double> dTheta, int count) where TV : unmanaged
        {
            int m = _lin._params.TotalSize, size = _lin.StateShape.Size;
            dTheta[..(count * m)].Clear();
            var g = Rent(checked(_r * _p));
            var qk = Rent(checked(_r * _sc));
            var carry = Rent(checked(_r * _h));
            var wT = IsDouble ? null : Rent(_gh * Math.Max(_h, _n.Max()));   // float32: a weight gradient before widening
            var acc = _oH0 >= 0 ? Rent(_b * _h) : null;
            var g0 = _oH0 >= 0 ? Rent(_b * _p) : null;
            try
            {
                var work = new T[_work];
                var e = new T[_sc];
                for (int j = 0; j < count; j++)
                {
                    var qj = q.Slice(j * size, size);
                    var th = dTheta.Slice(j * m, m);
                    for (int k = _l - 1; k >= 0; k--)
                    {
                        var cell = _cells[k];
                        int n = _n[k];
                        for (int row = 0; row < _r; row++)
                        {
                            var qr = qk.AsSpan(row * _sc, _sc);
                            ToT(qj.Slice(row * _s + Off(k), _sc), qr);
                            if (k < _l - 1) TensorPrimitives.Add(qr[.._h], carry.AsSpan(row * _h, _h), qr[.._h]);
                        }
                        int kk = k;
                        RowLoop.For<T>(_r, 12L * _p, _work, (row, w) =>
                            cell.ApplyDTranspose(Row(kk, row / _t, row % _t), qk.AsSpan(row * _sc, _sc), g.AsSpan(row * _p, _p), w));
                        // δW = Σ_(b,t) g uᵀ (GEMM in T), δb = Σ_(b,t) g (float64 sums).
                        WeightGradient(g, 0, _x[k], n, th.Slice(_oWih[k], _gh * n), wT);
                        WeightGradient(g, _hho, _v[k], _h, th.Slice(_oWhh[k], _gh * _h), wT);
                        if (_oBih[k] >= 0) ColumnSums(g, 0, th.Slice(_oBih[k], _gh));
                        if (_oBhh[k] >= 0) ColumnSums(g, _hho, th.Slice(_oBhh[k], _gh));
                        if (_oH0 >= 0)
                        {
                            var dh0 = th.Slice(_oH0 + k * _h, _h);
                            Array.Clear(acc!, 0, _b * _h);
                            for (int b = 0; b < _b; b++) g.AsSpan(b * _t * _p, _p).CopyTo(g0.AsSpan(b * _p, _p));
                            HhVjpAdd(k, _b, g0, acc, _h, b => b * _t);
                            for (int b = 0; b < _b; b++)
                            {
                                Widening.AddScaled<T>(acc.AsSpan(b * _h, _h), 1.0, dh0);
                                e.AsSpan().Clear();
                                cell.ApplyETransposeAdd(Row(k, b, 0), qk.AsSpan(b * _t * _sc, _sc), e, T.One, work);
                                Widening.AddScaled<T>(e.AsSpan(0, _h), 1.0, dh0);
                            }
                        }
                        if (k > 0) GemmGeneric.Multiply(Trans.No, Trans.No, _r, _h, _gh, T.One, g, _p, _wih[k], _h, T.Zero, carry, _h);
                    }
                }
            }
            finally
            {
                Return(g); Return(qk); Return(carry);
                if (wT != null) Return(wT);
                if (acc != null) Return(acc);
                if (g0 != null) Return(g0);
            }
        }

        /// <summary>dst (G·H × w, row-major) = Σ_rows g[row, offset..]ᵀ u[row]: in place for float64, through scratch for float32.</summary>
        private void WeightGradient(T[] g, int offset, T[] u, int w, Span<double> dst, T[]? scratch)
        {
            Span<T> c = IsDouble ? MemoryMarshal.Cast<double, T>(dst) : scratch.AsSpan(0, _gh * w);
            GemmGeneric.Multiply(Trans.Yes, Trans.No, _gh, w, _r, T.One, g.AsSpan(offset), _p, u, w, T.Zero, c, w);
            if (!IsDouble) Widening.Widen<T>(c, dst);
        }

        /// <summary>sum = Σ_rows g[row, offset..offset+G·H], accumulated in float64.</summary>
        private void ColumnSums(T[] g, int offset, Span<double> sum)
        {
            sum.Clear();
            for (int r = 0; r < _r; r++) Widening.AddScaled<T>(g.AsSpan(r * _p + offset, _gh), 1.0, sum);
        }

        /// <inheritdoc cref="IEngine.Variables"/>
        public double[] Variables(int k, (string Name, bool Recurrent)[] weights, int width)
        {
            var u = VariablesT(k, weights, width);
            if (IsDouble) return (double[])(object)u;
            var wide = new double[u.Length];
            Widening.Widen<T>(u, wide);
            return wide;
        }

        /// <inheritdoc cref="IEngine.VariablesSingle"/>
        public float[]? VariablesSingle(int k, (string Name, bool Recurrent)[] weights, int width) =>
            typeof(T) == typeof(float) ? (float[])(object)VariablesT(k, weights, width) : null;

        /// <summary>Û of layer k's site in T.</summary>
        private T[] VariablesT(int k, (string Name, bool Recurrent)[] weights, int width)
        {
            int w = width, n = _n[k];
            var u = new T[checked(_r * w)];
            for (int r = 0; r < _r; r++)
            {
                var dst = u.AsSpan(r * w, w);
                int c = 0;
                foreach (var (_, recurrent) in weights)
                {
                    if (recurrent) { _v[k].AsSpan(r * _h, _h).CopyTo(dst.Slice(c, _h)); c += _h; }
                    else { _x[k].AsSpan(r * n, n).CopyTo(dst.Slice(c, n)); c += n; }
                }
                dst[c..].Fill(T.One);
            }
            return u;
        }

        /// <summary>
        /// dst[row] += the state change of layers k..L−1 at row (b, t) caused by pre-activation change
        /// a (width G·H at <paramref name="preOffset"/>) of layer k: D_k a, then up through W_ih of the
        /// layers above (same step). Rows are count·B·T; dst is a full-state block.
        /// </summary>
        public void SiteDAdd<TA, TV>(int k, int preOffset, ReadOnlySpan<TA> a, Span<TV> dst, int count) where TA : unmanaged where TV : unmanaged
        {
            // Rows are independent: chunks of rows keep the scratch small (RecurrentLinearization.RowChunkElements).
            int rows = count * _r, chunk = RowChunk(rows);
            var pre = Rent(checked(chunk * _p));
            var y = Rent(checked(chunk * _s));
            try
            {
                for (int r0 = 0; r0 < rows; r0 += chunk)
                {
                    int rc = Math.Min(chunk, rows - r0), start = r0;
                    Array.Clear(pre, 0, rc * _p);
                    for (int i = 0; i < rc; i++) ToT(a.Slice((r0 + i) * _gh, _gh), pre.AsSpan(i * _p + preOffset, _gh));
                    for (int j = k; j < _l; j++)
                    {
                        var cell = _cells[j];
                        if (j > k)
                        {
                            if (cell.SplitPreActivation) Array.Clear(pre, 0, rc * _p);
                            GemmGeneric.Multiply(Trans.No, Trans.Yes, rc, _gh, _h, T.One, y.AsSpan(Off(j - 1)), _s, _wih[j], _h, T.Zero, pre, _p);
                        }
                        int jj = j;
                        RowLoop.For<T>(rc, 12L * _p, _work, (i, work) =>
                        {
                            int row = (start + i) % _r;
                            cell.ApplyD(Row(jj, row / _t, row % _t), pre.AsSpan(i * _p, _p), y.AsSpan(i * _s + Off(jj), _sc), work);
                        });
                    }
                    for (int i = 0; i < rc; i++)
                        AddScaled(y.AsSpan(i * _s + Off(k), _s - Off(k)), 1.0, dst.Slice((r0 + i) * _s + Off(k), _s - Off(k)));
                }
            }
            finally { Return(pre); Return(y); }
        }

        /// <summary>The adjoint: a[row] = layer k's pre-activation gradient (width G·H at <paramref name="preOffset"/>) from a full-state block q.</summary>
        public void SiteDAdjoint<TV, TA>(int k, int preOffset, ReadOnlySpan<TV> q, Span<TA> a, int count) where TV : unmanaged where TA : unmanaged
        {
            int rows = count * _r, chunk = RowChunk(rows);
            var g = Rent(checked(chunk * _p));
            var carry = Rent(checked(chunk * _h));
            var qk = Rent(checked(chunk * _sc));   // layer j's rows of q (+ the carry from above), in T
            try
            {
                for (int r0 = 0; r0 < rows; r0 += chunk)
                {
                    int rc = Math.Min(chunk, rows - r0), start = r0;
                    for (int j = _l - 1; j >= k; j--)
                    {
                        var cell = _cells[j];
                        for (int i = 0; i < rc; i++)
                        {
                            var qr = qk.AsSpan(i * _sc, _sc);
                            ToT(q.Slice((r0 + i) * _s + Off(j), _sc), qr);
                            if (j < _l - 1) TensorPrimitives.Add(qr[.._h], carry.AsSpan(i * _h, _h), qr[.._h]);
                        }
                        int jj = j;
                        RowLoop.For<T>(rc, 12L * _p, _work, (i, work) =>
                        {
                            int row = (start + i) % _r;
                            cell.ApplyDTranspose(Row(jj, row / _t, row % _t), qk.AsSpan(i * _sc, _sc), g.AsSpan(i * _p, _p), work);
                        });
                        if (j > k) GemmGeneric.Multiply(Trans.No, Trans.No, rc, _h, _gh, T.One, g, _p, _wih[j], _h, T.Zero, carry, _h);
                    }
                    for (int i = 0; i < rc; i++) FromT(g.AsSpan(i * _p + preOffset, _gh), a.Slice((r0 + i) * _gh, _gh));
                }
            }
            finally { Return(g); Return(carry); Return(qk); }
        }

        /// <summary>Rows per chunk of the sites' D and D*: a [rows, P] block within <see cref="RecurrentLinearization.RowChunkElements"/>.</summary>
        private int RowChunk(int rows) => (int)Math.Clamp(RecurrentLinearization.RowChunkElements.Value / Math.Max(_p, _s), 1, Math.Max(1, rows));
    }

    // ---- weight sites ----

    private WeightSite[] BuildSites()
    {
        var list = new List<WeightSite>();
        for (int k = 0; k < _l; k++)
        {
            var cell = _stack.Cells[k];
            string ih = _stack.WeightIh(k), hh = _stack.WeightHh(k);
            var bih = _oBih[k] >= 0 ? new[] { _stack.BiasIh(k) } : [];
            var bhh = _oBhh[k] >= 0 ? new[] { _stack.BiasHh(k) } : [];
            if (cell.SplitPreActivation)
            {
                list.Add(new Site(this, k, $"ih_l{k}", [(ih, false)], bih, 0));
                list.Add(new Site(this, k, $"hh_l{k}", [(hh, true)], bhh, cell.HhOffset));
            }
            else list.Add(new Site(this, k, $"rnn_l{k}", [(hh, true), (ih, false)], [.. bih, .. bhh], 0));
        }
        return list.ToArray();
    }

    /// <summary>Layer k's site: Û = [v and/or x, 1…] at every (trial, time), D = the stack's response at that row.</summary>
    private sealed class Site : RecurrentSite
    {
        private readonly StackedRecurrentLinearization _lin;
        private readonly int _k, _preOffset;
        private readonly Lazy<double[]> _variables;
        private readonly Lazy<float[]?> _variablesSingle;

        public Site(StackedRecurrentLinearization lin, int k, string name, (string Name, bool Recurrent)[] weights, string[] biases, int preOffset)
        {
            _lin = lin; _k = k; Name = name; BiasParameters = biases; _preOffset = preOffset;
            WeightParameters = weights.Select(w => w.Name).ToArray();
            Width = weights.Sum(w => w.Recurrent ? lin._h : lin._n[k]);
            RowShape = new AxisShape(("trial", lin._b), ("time", lin._t));
            _variables = new Lazy<double[]>(() => lin._engine.Variables(k, weights, AugmentedWidth));
            _variablesSingle = new Lazy<float[]?>(() => lin._engine.VariablesSingle(k, weights, AugmentedWidth));
        }

        public override string Name { get; }
        public override IReadOnlyList<string> WeightParameters { get; }
        public override IReadOnlyList<string> BiasParameters { get; }
        public override int Rows => _lin._r;
        public override int Width { get; }
        public override int OutDim => _lin._gh;
        public override AxisShape RowShape { get; }
        public override ReadOnlyMemory<double> Variables => _variables.Value;

        /// <summary>Û in float32 on a float32 linearisation (K's site terms then run on it in float32), else empty.</summary>
        public override ReadOnlyMemory<float> VariablesSingle => _variablesSingle.Value ?? default(ReadOnlyMemory<float>);

        private protected override ChainLinearization Linearization => _lin;

        private protected override void SiteDAdd<TA, TV>(ReadOnlySpan<TA> a, Span<TV> dst, int count) =>
            _lin._engine.SiteDAdd(_k, _preOffset, a, dst, count);

        private protected override void SiteDAdjoint<TV, TA>(ReadOnlySpan<TV> q, Span<TA> a, int count) =>
            _lin._engine.SiteDAdjoint(_k, _preOffset, q, a, count);

        /// <summary>Row (b, t) reaches only layers k.. of state (b, t).</summary>
        public override bool TryGetRowSlice(int row, out int offset, out int length)
        {
            offset = row * _lin._s + _lin.Off(_k); length = _lin._s - _lin.Off(_k);
            return true;
        }
    }
}
