using System.Numerics.Tensors;
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
/// its input rows x_lk, recurrent variables v(h_lk,t−1) and gate caches.</para>
/// </remarks>
public sealed class StackedRecurrentLinearization : ChainLinearization
{
    private readonly RecurrentStack _stack;
    private readonly RecurrentCell[] _cells;
    private readonly ParameterSet _params;
    private readonly int _b, _t, _l, _sc, _s, _h, _gh, _p, _c, _hho, _r;
    private readonly double[] _z, _z0;
    private readonly double[][] _x, _v, _cache, _wih, _whh;
    private readonly double[]?[] _bih, _bhh;
    private readonly int[] _n, _oWih, _oWhh, _oBih, _oBhh;
    private readonly int _oH0;
    private readonly Lazy<WeightSite[]> _sites;

    internal StackedRecurrentLinearization(RecurrentStack stack, ParameterSet snapshot, Tensor inputs, ReadOnlySpan<double> initialState)
    {
        _stack = stack; _params = snapshot;
        _cells = stack.Cells;
        var c0 = _cells[0];
        _b = inputs.Shape.Sizes[0]; _t = inputs.Shape.Sizes[1]; _l = stack.Layers;
        _h = c0.HiddenSize; _sc = c0.StateSize; _s = _l * _sc; _gh = c0.GateWidth; _p = c0.PreWidth; _c = c0.CacheWidth; _hho = c0.HhOffset;
        _r = _b * _t;
        StateShape = new AxisShape(("trial", _b), ("time", _t), ("unit", _s));
        _z = new double[checked(_r * _s)];
        _z0 = initialState.ToArray();
        _x = new double[_l][]; _v = new double[_l][]; _cache = new double[_l][];
        _wih = new double[_l][]; _whh = new double[_l][]; _bih = new double[]?[_l]; _bhh = new double[]?[_l];
        _n = new int[_l]; _oWih = new int[_l]; _oWhh = new int[_l]; _oBih = new int[_l]; _oBhh = new int[_l];
        for (int k = 0; k < _l; k++)
        {
            _n[k] = _cells[k].InputSize;
            _wih[k] = snapshot[stack.WeightIh(k)].Data; _oWih[k] = snapshot.OffsetOf(stack.WeightIh(k));
            _whh[k] = snapshot[stack.WeightHh(k)].Data; _oWhh[k] = snapshot.OffsetOf(stack.WeightHh(k));
            _oBih[k] = stack.HasBiasIh ? snapshot.OffsetOf(stack.BiasIh(k)) : -1;
            _oBhh[k] = stack.Bias ? snapshot.OffsetOf(stack.BiasHh(k)) : -1;
            _bih[k] = _oBih[k] >= 0 ? snapshot[stack.BiasIh(k)].Data : null;
            _bhh[k] = _oBhh[k] >= 0 ? snapshot[stack.BiasHh(k)].Data : null;
            _v[k] = new double[checked(_r * _h)];
            _cache[k] = new double[checked(_r * _c)];
        }
        _oH0 = stack.InitialStateName != null ? snapshot.OffsetOf(stack.InitialStateName) : -1;
        _x[0] = inputs.Span.ToArray();
        Forward();
        Numerics.EnsureFinite(_z, $"{stack.Arch} states {StateShape} (forward pass overflowed)");
        _sites = new Lazy<WeightSite[]>(BuildSites);
    }

    /// <inheritdoc/>
    public override AxisShape StateShape { get; }
    /// <inheritdoc/>
    public override ParameterSet Parameters => _params;
    /// <inheritdoc/>
    public override ReadOnlyMemory<double> States => _z;
    /// <inheritdoc/>
    public override IReadOnlyList<WeightSite> Sites => _sites.Value;
    /// <summary>Number of layers L.</summary>
    public int Layers => _l;
    /// <summary>Units per layer in the state (H, or 2H for the LSTM).</summary>
    public int LayerStateSize => _sc;

    private int Off(int k) => k * _sc;

    private ReadOnlySpan<double> ZPrev(int k, int b, int t) =>
        t == 0 ? _z0.AsSpan(b * _s + Off(k), _sc) : _z.AsSpan((b * _t + t - 1) * _s + Off(k), _sc);

    private StepRow Row(int k, int b, int t) =>
        new(_cache[k].AsSpan((b * _t + t) * _c, _c), ZPrev(k, b, t), _z.AsSpan((b * _t + t) * _s + Off(k), _sc));

    private void Forward()
    {
        var pre = new double[checked(_r * _p)];
        for (int k = 0; k < _l; k++)
        {
            var cell = _cells[k];
            int n = _n[k];
            if (k > 0)
            {
                // Layer k's input at (b, t) is the new h of layer k−1 at the same step.
                _x[k] = new double[checked(_r * _h)];
                for (int row = 0; row < _r; row++) _z.AsSpan(row * _s + Off(k - 1), _h).CopyTo(_x[k].AsSpan(row * _h, _h));
            }
            // a_ih for every (b, t) at once.
            Gemm.Multiply(Trans.No, Trans.Yes, _r, _gh, n, 1.0, _x[k], n, _wih[k], n, 0.0, pre, _p);
            for (int b = 0; b < _b; b++) cell.RecurrentVariable(_z0.AsSpan(b * _s + Off(k), _h), _v[k].AsSpan(b * _t * _h, _h));
            for (int t = 0; t < _t; t++)
            {
                Gemm.Multiply(Trans.No, Trans.Yes, _b, _gh, _h, 1.0, _v[k].AsSpan(t * _h), _t * _h, _whh[k], _h,
                    cell.SplitPreActivation ? 0.0 : 1.0, pre.AsSpan(t * _p + _hho), _t * _p);
                for (int b = 0; b < _b; b++)
                {
                    int row = b * _t + t;
                    var a = pre.AsSpan(row * _p, _p);
                    if (_bih[k] != null) TensorPrimitives.Add(a[.._gh], _bih[k]!, a[.._gh]);
                    if (_bhh[k] != null) TensorPrimitives.Add(a.Slice(_hho, _gh), _bhh[k]!, a.Slice(_hho, _gh));
                    var z = _z.AsSpan(row * _s + Off(k), _sc);
                    cell.ForwardRow(a, ZPrev(k, b, t), z, _cache[k].AsSpan(row * _c, _c));
                    if (t + 1 < _t) cell.RecurrentVariable(z[.._h], _v[k].AsSpan((row + 1) * _h, _h));
                }
            }
        }
    }

    private void CheckStep(int step, int srcLength, int dstLength, int count, string what)
    {
        if (step < 1 || step >= _t)
            throw new ArgumentOutOfRangeException(nameof(step), $"{what}: step {step} outside 1..{_t - 1} for {StateShape}.");
        long need = (long)count * StateShape.Size;
        if (count < 0 || srcLength < need || dstLength < need)
            throw new ArgumentException($"{what}: blocks of length {srcLength}/{dstLength} cannot hold {count} × {StateShape}.");
    }

    /// <summary>
    /// pre[r, hh block] (+)= W_hh,k (v' ⊙ δh)[r] for rows r = 0..rows−1 whose δh rows start at
    /// dh[r·ld] and whose v rows are v[vRow(r)]; <paramref name="beta"/> 0 overwrites.
    /// </summary>
    private void HhJvp(int k, int rows, ReadOnlySpan<double> dh, int ld, Func<int, int> vRow, Span<double> pre, double beta)
    {
        var cell = _cells[k];
        if (cell.RecurrentVariableIsState)
        {
            Gemm.Multiply(Trans.No, Trans.Yes, rows, _gh, _h, 1.0, dh, ld, _whh[k], _h, beta, pre[_hho..], _p);
            return;
        }
        var dv = new double[rows * _h];
        var d = new double[_h];
        for (int r = 0; r < rows; r++)
        {
            cell.RecurrentDerivative(_v[k].AsSpan(vRow(r) * _h, _h), d);
            TensorPrimitives.Multiply(d, dh.Slice(r * ld, _h), dv.AsSpan(r * _h, _h));
        }
        Gemm.Multiply(Trans.No, Trans.Yes, rows, _gh, _h, 1.0, dv, _h, _whh[k], _h, beta, pre[_hho..], _p);
    }

    /// <summary>dst[r·ld + i] += alpha · (v' ⊙ W_hh,kᵀ g_hh[r])_i, the adjoint of <see cref="HhJvp"/>.</summary>
    private void HhVjpAdd(int k, int rows, ReadOnlySpan<double> g, Span<double> dst, int ld, Func<int, int> vRow, double alpha)
    {
        var cell = _cells[k];
        if (cell.RecurrentVariableIsState)
        {
            Gemm.Multiply(Trans.No, Trans.No, rows, _h, _gh, alpha, g[_hho..], _p, _whh[k], _h, 1.0, dst, ld);
            return;
        }
        var tmp = new double[rows * _h];
        Gemm.Multiply(Trans.No, Trans.No, rows, _h, _gh, 1.0, g[_hho..], _p, _whh[k], _h, 0.0, tmp, _h);
        var d = new double[_h];
        for (int r = 0; r < rows; r++)
        {
            cell.RecurrentDerivative(_v[k].AsSpan(vRow(r) * _h, _h), d);
            TensorPrimitives.Multiply(d, tmp.AsSpan(r * _h, _h), d);
            var o = dst.Slice(r * ld, _h);
            TensorPrimitives.MultiplyAdd(d, alpha, o, o);
        }
    }

    /// <inheritdoc/>
    public override void StateJvpAdd(int step, ReadOnlySpan<double> src, Span<double> dst, int count, double alpha = 1.0)
    {
        CheckStep(step, src.Length, dst.Length, count, "StateJvpAdd");
        if (count == 0) return;
        int rows = count * _b, ts = _t * _s, t = step;
        var y = new double[rows * _s];      // this application's A_t src, row r = (j, b)
        var pre = new double[rows * _p];
        var work = new double[_cells[0].WorkWidth + 1];
        for (int k = 0; k < _l; k++)
        {
            var cell = _cells[k];
            if (k > 0) Gemm.Multiply(Trans.No, Trans.Yes, rows, _gh, _h, 1.0, y.AsSpan(Off(k - 1)), _s, _wih[k], _h, 0.0, pre, _p);
            else if (cell.SplitPreActivation) Array.Clear(pre);
            HhJvp(k, rows, src[((t - 1) * _s + Off(k))..], ts, r => (r % _b) * _t + t, pre, k > 0 && !cell.SplitPreActivation ? 1.0 : 0.0);
            for (int r = 0; r < rows; r++)
            {
                int b = r % _b;
                var row = Row(k, b, t);
                var o = y.AsSpan(r * _s + Off(k), _sc);
                cell.ApplyD(row, pre.AsSpan(r * _p, _p), o, work);
                cell.ApplyEAdd(row, src.Slice(r * ts + (t - 1) * _s + Off(k), _sc), o, 1.0, work);
            }
        }
        for (int r = 0; r < rows; r++)
        {
            var d = dst.Slice(r * ts + t * _s, _s);
            TensorPrimitives.MultiplyAdd(y.AsSpan(r * _s, _s), alpha, d, d);
        }
    }

    /// <inheritdoc/>
    public override void StateVjpAdd(int step, ReadOnlySpan<double> src, Span<double> dst, int count, double alpha = 1.0)
    {
        CheckStep(step, src.Length, dst.Length, count, "StateVjpAdd");
        if (count == 0) return;
        int rows = count * _b, ts = _t * _s, t = step;
        var o = new double[rows * _s];       // A_tᵀ q, row r = (j, b), before alpha
        var q = new double[rows * _sc];
        var g = new double[rows * _p];
        var carry = new double[rows * _h];   // W_ih,k+1ᵀ g_ih from the layer above
        var work = new double[_cells[0].WorkWidth + 1];
        for (int k = _l - 1; k >= 0; k--)
        {
            var cell = _cells[k];
            for (int r = 0; r < rows; r++)
            {
                var qr = q.AsSpan(r * _sc, _sc);
                src.Slice(r * ts + t * _s + Off(k), _sc).CopyTo(qr);
                if (k < _l - 1) TensorPrimitives.Add(qr[.._h], carry.AsSpan(r * _h, _h), qr[.._h]);
                var row = Row(k, r % _b, t);
                cell.ApplyDTranspose(row, qr, g.AsSpan(r * _p, _p), work);
                cell.ApplyETransposeAdd(row, qr, o.AsSpan(r * _s + Off(k), _sc), 1.0, work);
            }
            HhVjpAdd(k, rows, g, o.AsSpan(Off(k)), _s, r => (r % _b) * _t + t, 1.0);
            if (k > 0) Gemm.Multiply(Trans.No, Trans.No, rows, _h, _gh, 1.0, g, _p, _wih[k], _h, 0.0, carry, _h);
        }
        for (int r = 0; r < rows; r++)
        {
            var d = dst.Slice(r * ts + (t - 1) * _s, _s);
            TensorPrimitives.MultiplyAdd(o.AsSpan(r * _s, _s), alpha, d, d);
        }
    }

    /// <summary>δz_{−1} for layer k: [δh0_k; 0] when h0 is learnable.</summary>
    private void InitialTangent(ReadOnlySpan<double> th, int k, Span<double> dz0)
    {
        dz0.Clear();
        th.Slice(_oH0 + k * _h, _h).CopyTo(dz0);
    }

    /// <inheritdoc/>
    public override void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> result, int count)
    {
        int m = _params.TotalSize, size = StateShape.Size;
        if (dTheta.Length < (long)count * m || result.Length < (long)count * size)
            throw new ArgumentException($"ParamJvp: blocks of length {dTheta.Length}/{result.Length} cannot hold {count} × (m={m}) / {count} × {StateShape}.");
        var pre = new double[_r * _p];
        var work = new double[_cells[0].WorkWidth + 1];
        var dz0 = new double[_sc];
        for (int j = 0; j < count; j++)
        {
            var th = dTheta.Slice(j * m, m);
            var res = result.Slice(j * size, size);
            for (int k = 0; k < _l; k++)
            {
                var cell = _cells[k];
                int n = _n[k];
                // δa_ih = δW_ih x + W_ih δx (δx = this step's δh of layer k−1) + δb_ih; δa_hh = δW_hh v + δb_hh.
                Gemm.Multiply(Trans.No, Trans.Yes, _r, _gh, n, 1.0, _x[k], n, th[_oWih[k]..], n, 0.0, pre, _p);
                if (k > 0) Gemm.Multiply(Trans.No, Trans.Yes, _r, _gh, _h, 1.0, res[Off(k - 1)..], _s, _wih[k], _h, 1.0, pre, _p);
                Gemm.Multiply(Trans.No, Trans.Yes, _r, _gh, _h, 1.0, _v[k], _h, th[_oWhh[k]..], _h, cell.SplitPreActivation ? 0.0 : 1.0, pre.AsSpan(_hho), _p);
                if (_oH0 >= 0)
                {
                    // z_{−1} = h0: the t = 0 rows also move by A_0 [δh0; 0].
                    InitialTangent(th, k, dz0);
                    var dh = new double[_b * _h];
                    for (int b = 0; b < _b; b++) dz0.AsSpan(0, _h).CopyTo(dh.AsSpan(b * _h, _h));
                    HhJvpStrided(k, _b, dh, _h, b => b * _t, pre.AsSpan(_hho), _t * _p, 1.0);
                }
                for (int row = 0; row < _r; row++)
                {
                    var a = pre.AsSpan(row * _p, _p);
                    if (_oBih[k] >= 0) TensorPrimitives.Add(a[.._gh], th.Slice(_oBih[k], _gh), a[.._gh]);
                    if (_oBhh[k] >= 0) TensorPrimitives.Add(a.Slice(_hho, _gh), th.Slice(_oBhh[k], _gh), a.Slice(_hho, _gh));
                    int b = row / _t, t = row % _t;
                    var sr = Row(k, b, t);
                    var o = res.Slice(row * _s + Off(k), _sc);
                    cell.ApplyD(sr, a, o, work);
                    if (_oH0 >= 0 && t == 0) cell.ApplyEAdd(sr, dz0, o, 1.0, work);
                }
            }
        }
    }

    private void HhJvpStrided(int k, int rows, ReadOnlySpan<double> dh, int ld, Func<int, int> vRow, Span<double> preHh, int preLd, double beta)
    {
        // Variant writing rows with a custom stride (t = 0 rows of [B·T, P]).
        var tmp = new double[rows * _p];
        HhJvp(k, rows, dh, ld, vRow, tmp, 0.0);
        for (int r = 0; r < rows; r++)
        {
            var d = preHh.Slice(r * preLd, _gh);
            if (beta == 0) tmp.AsSpan(r * _p + _hho, _gh).CopyTo(d);
            else TensorPrimitives.Add(d, tmp.AsSpan(r * _p + _hho, _gh), d);
        }
    }

    /// <inheritdoc/>
    public override void ParamVjp(ReadOnlySpan<double> q, Span<double> dTheta, int count)
    {
        int m = _params.TotalSize, size = StateShape.Size;
        if (q.Length < (long)count * size || dTheta.Length < (long)count * m)
            throw new ArgumentException($"ParamVjp: blocks of length {q.Length}/{dTheta.Length} cannot hold {count} × {StateShape} / {count} × (m={m}).");
        dTheta[..(count * m)].Clear();
        var g = new double[_r * _p];
        var qk = new double[_r * _sc];
        var carry = new double[_r * _h];
        var work = new double[_cells[0].WorkWidth + 1];
        var e = new double[_sc];
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
                    qj.Slice(row * _s + Off(k), _sc).CopyTo(qr);
                    if (k < _l - 1) TensorPrimitives.Add(qr[.._h], carry.AsSpan(row * _h, _h), qr[.._h]);
                    cell.ApplyDTranspose(Row(k, row / _t, row % _t), qr, g.AsSpan(row * _p, _p), work);
                }
                // δW = Σ_(b,t) g uᵀ, δb = Σ_(b,t) g.
                Gemm.Multiply(Trans.Yes, Trans.No, _gh, n, _r, 1.0, g, _p, _x[k], n, 0.0, th[_oWih[k]..], n);
                Gemm.Multiply(Trans.Yes, Trans.No, _gh, _h, _r, 1.0, g.AsSpan(_hho), _p, _v[k], _h, 0.0, th[_oWhh[k]..], _h);
                if (_oBih[k] >= 0) ColumnSums(g, 0, th.Slice(_oBih[k], _gh));
                if (_oBhh[k] >= 0) ColumnSums(g, _hho, th.Slice(_oBhh[k], _gh));
                if (_oH0 >= 0)
                {
                    var dh0 = th.Slice(_oH0 + k * _h, _h);
                    var acc = new double[_b * _h];
                    var g0 = new double[_b * _p];
                    for (int b = 0; b < _b; b++) g.AsSpan(b * _t * _p, _p).CopyTo(g0.AsSpan(b * _p, _p));
                    HhVjpAdd(k, _b, g0, acc, _h, b => b * _t, 1.0);
                    for (int b = 0; b < _b; b++)
                    {
                        TensorPrimitives.Add(dh0, acc.AsSpan(b * _h, _h), dh0);
                        e.AsSpan().Clear();
                        cell.ApplyETransposeAdd(Row(k, b, 0), qk.AsSpan(b * _t * _sc, _sc), e, 1.0, work);
                        TensorPrimitives.Add(dh0, e.AsSpan(0, _h), dh0);
                    }
                }
                if (k > 0) Gemm.Multiply(Trans.No, Trans.No, _r, _h, _gh, 1.0, g, _p, _wih[k], _h, 0.0, carry, _h);
            }
        }
    }

    private void ColumnSums(double[] g, int offset, Span<double> sum)
    {
        sum.Clear();
        for (int r = 0; r < _r; r++) TensorPrimitives.Add(sum, g.AsSpan(r * _p + offset, _gh), sum);
    }

    // ---- weight sites ----

    private WeightSite[] BuildSites()
    {
        var list = new List<WeightSite>();
        for (int k = 0; k < _l; k++)
        {
            var cell = _cells[k];
            string ih = _stack.WeightIh(k), hh = _stack.WeightHh(k);
            var bih = _oBih[k] >= 0 ? new[] { _stack.BiasIh(k) } : [];
            var bhh = _oBhh[k] >= 0 ? new[] { _stack.BiasHh(k) } : [];
            if (cell.SplitPreActivation)
            {
                list.Add(new Site(this, k, $"ih_l{k}", [(ih, false)], bih, 0));
                list.Add(new Site(this, k, $"hh_l{k}", [(hh, true)], bhh, _hho));
            }
            else list.Add(new Site(this, k, $"rnn_l{k}", [(hh, true), (ih, false)], [.. bih, .. bhh], 0));
        }
        return list.ToArray();
    }

    /// <summary>
    /// dst[row] += the state change of layers k..L−1 at row (b, t) caused by pre-activation change
    /// da (width P) of layer k: D_k da, then up through W_ih of the layers above (same step).
    /// Rows are count·B·T; dst is a full-state block.
    /// </summary>
    private void PropagateUpAdd(int k, double[] pre, int rows, Span<double> dst)
    {
        var work = new double[_cells[0].WorkWidth + 1];
        var y = new double[rows * _s];
        for (int j = k; j < _l; j++)
        {
            var cell = _cells[j];
            if (j > k)
            {
                if (cell.SplitPreActivation) Array.Clear(pre);
                Gemm.Multiply(Trans.No, Trans.Yes, rows, _gh, _h, 1.0, y.AsSpan(Off(j - 1)), _s, _wih[j], _h, 0.0, pre, _p);
            }
            for (int r = 0; r < rows; r++)
            {
                int row = r % _r;
                cell.ApplyD(Row(j, row / _t, row % _t), pre.AsSpan(r * _p, _p), y.AsSpan(r * _s + Off(j), _sc), work);
            }
        }
        for (int r = 0; r < rows; r++)
        {
            var d = dst.Slice(r * _s + Off(k), _s - Off(k));
            TensorPrimitives.Add(d, y.AsSpan(r * _s + Off(k), _s - Off(k)), d);
        }
    }

    /// <summary>The adjoint: g (width P) of layer k at every row from a full-state block q.</summary>
    private void PropagateDown(int k, ReadOnlySpan<double> q, int rows, double[] g)
    {
        var work = new double[_cells[0].WorkWidth + 1];
        var qk = new double[_sc];
        var carry = new double[rows * _h];
        for (int j = _l - 1; j >= k; j--)
        {
            var cell = _cells[j];
            for (int r = 0; r < rows; r++)
            {
                int row = r % _r;
                q.Slice(r * _s + Off(j), _sc).CopyTo(qk);
                if (j < _l - 1) TensorPrimitives.Add(qk.AsSpan(0, _h), carry.AsSpan(r * _h, _h), qk.AsSpan(0, _h));
                cell.ApplyDTranspose(Row(j, row / _t, row % _t), qk, g.AsSpan(r * _p, _p), work);
            }
            if (j > k) Gemm.Multiply(Trans.No, Trans.No, rows, _h, _gh, 1.0, g, _p, _wih[j], _h, 0.0, carry, _h);
        }
    }

    /// <summary>Layer k's site: Û = [v and/or x, 1…] at every (trial, time), D = the stack's response at that row.</summary>
    private sealed class Site : WeightSite
    {
        private readonly StackedRecurrentLinearization _lin;
        private readonly int _k, _preOffset;
        private readonly (string Name, bool Recurrent)[] _weights;
        private readonly Lazy<double[]> _variables;

        public Site(StackedRecurrentLinearization lin, int k, string name, (string Name, bool Recurrent)[] weights, string[] biases, int preOffset)
        {
            _lin = lin; _k = k; Name = name; _weights = weights; BiasParameters = biases; _preOffset = preOffset;
            WeightParameters = weights.Select(w => w.Name).ToArray();
            Width = weights.Sum(w => w.Recurrent ? lin._h : lin._n[k]);
            RowShape = new AxisShape(("trial", lin._b), ("time", lin._t));
            _variables = new Lazy<double[]>(Build);
        }

        public override string Name { get; }
        public override IReadOnlyList<string> WeightParameters { get; }
        public override IReadOnlyList<string> BiasParameters { get; }
        public override int Rows => _lin._r;
        public override int Width { get; }
        public override int OutDim => _lin._gh;
        public override AxisShape RowShape { get; }
        public override ReadOnlyMemory<double> Variables => _variables.Value;

        private double[] Build()
        {
            int w = AugmentedWidth, h = _lin._h, n = _lin._n[_k];
            var u = new double[checked(Rows * w)];
            for (int r = 0; r < Rows; r++)
            {
                var dst = u.AsSpan(r * w, w);
                int c = 0;
                foreach (var (_, recurrent) in _weights)
                {
                    if (recurrent) { _lin._v[_k].AsSpan(r * h, h).CopyTo(dst.Slice(c, h)); c += h; }
                    else { _lin._x[_k].AsSpan(r * n, n).CopyTo(dst.Slice(c, n)); c += n; }
                }
                dst[c..].Fill(1.0);
            }
            return u;
        }

        public override void ApplyDAdd(ReadOnlySpan<double> a, Span<double> dst, int count)
        {
            int rows = count * Rows, p = _lin._p;
            var pre = new double[rows * p];
            for (int r = 0; r < rows; r++) a.Slice(r * OutDim, OutDim).CopyTo(pre.AsSpan(r * p + _preOffset, OutDim));
            _lin.PropagateUpAdd(_k, pre, rows, dst);
        }

        public override void ApplyDAdjoint(ReadOnlySpan<double> q, Span<double> a, int count)
        {
            int rows = count * Rows, p = _lin._p;
            var g = new double[rows * p];
            _lin.PropagateDown(_k, q, rows, g);
            for (int r = 0; r < rows; r++) g.AsSpan(r * p + _preOffset, OutDim).CopyTo(a.Slice(r * OutDim, OutDim));
        }

        /// <summary>Row (b, t) reaches only layers k.. of state (b, t).</summary>
        public override bool TryGetRowSlice(int row, out int offset, out int length)
        {
            offset = row * _lin._s + _lin.Off(_k); length = _lin._s - _lin.Off(_k);
            return true;
        }
    }
}
