using System.Buffers;
using System.Numerics.Tensors;
using GlobalNtk.Dense;
using Tensor = GlobalNtk.Dense.Tensor;

namespace GlobalNtk.Models.Recurrent;

/// <summary>
/// A recurrent cell run forward over a batch [trial, time, input] and linearised on that
/// trajectory (docs/math.md#global-ntk): A_k = E_k + D_hh,k W_hh diag(v'(h_{k−1})), J_θ through the
/// pre-activations a_ih = W_ih x + b_ih and a_hh = W_hh v(h) + b_hh, and the weight sites.
/// </summary>
/// <remarks>
/// Stores only state-sized arrays: the states [B, T, S], the site variables v(h_{k−1}) [B·T, H],
/// the cell's gate cache [B·T, cache], a copy of the inputs, and a snapshot of the parameters (so
/// later parameter updates do not change this linearisation). Row (b, k) of every per-row array is
/// b·T + k. Block operations treat the rows of one step of a [count, B, T, S] block as
/// count·B rows with stride T·S, so each step is one GEMM per weight matrix.
/// </remarks>
public sealed unsafe class RecurrentLinearization : ChainLinearization
{
    private readonly RecurrentCell _cell;
    private readonly ParameterSet _params; // snapshot: later training does not change this linearisation
    private readonly int _b, _t, _s, _h, _n, _gh, _p, _c;
    private readonly double[] _x, _states, _initial, _v, _cache, _whh;
    private readonly int _offWih, _offWhh, _offBih, _offBhh;
    private readonly Lazy<IReadOnlyList<WeightSite>> _sites;

    internal RecurrentLinearization(RecurrentCell cell, Tensor inputs, ReadOnlySpan<double> initialState)
    {
        _cell = cell;
        _b = inputs.Shape.Sizes[0]; _t = inputs.Shape.Sizes[1]; _n = cell.InputSize;
        _s = cell.StateSize; _h = cell.HiddenSize; _gh = cell.GateWidth; _p = cell.PreWidth; _c = cell.CacheWidth;
        StateShape = new AxisShape(("trial", _b), ("time", _t), ("unit", _s));
        _x = inputs.Span.ToArray();
        _initial = initialState.ToArray();
        _states = new double[checked(_b * _t * _s)];
        _v = new double[checked(_b * _t * _h)];
        _cache = new double[checked(_b * _t * _c)];
        var ps = _params = cell.Parameters.Clone();
        _whh = ps[RecurrentCell.WeightHhName].Data;
        _offWih = ps.OffsetOf(RecurrentCell.WeightIhName);
        _offWhh = ps.OffsetOf(RecurrentCell.WeightHhName);
        _offBih = cell.HasBiasIh ? ps.OffsetOf(RecurrentCell.BiasIhName) : -1;
        _offBhh = ps.OffsetOf(RecurrentCell.BiasHhName);
        Forward();
        Numerics.EnsureFinite(_states, $"{cell.Arch} states {StateShape} (forward pass overflowed)");
        _sites = new Lazy<IReadOnlyList<WeightSite>>(BuildSites);
    }

    /// <inheritdoc/>
    public override AxisShape StateShape { get; }
    /// <inheritdoc/>
    public override ParameterSet Parameters => _params;
    /// <inheritdoc/>
    public override ReadOnlyMemory<double> States => _states;
    /// <summary>The states as a (trial, time, unit) tensor (a view of <see cref="States"/>; do not modify).</summary>
    public Tensor StatesTensor => new(_states, StateShape);
    /// <summary>The cell this linearisation belongs to.</summary>
    public RecurrentCell Cell => _cell;
    /// <summary>The inputs [trial, time, input] (a copy).</summary>
    public ReadOnlyMemory<double> Inputs => _x;
    /// <summary>The initial state z_0 [trial, unit].</summary>
    public ReadOnlyMemory<double> InitialState => _initial;
    /// <inheritdoc/>
    public override IReadOnlyList<WeightSite> Sites => _sites.Value;

    /// <summary>Recurrent site variables v(h_{k−1}) as [B·T, H] rows b·T + k.</summary>
    internal ReadOnlySpan<double> RecurrentVariables => _v;
    internal RecurrentCell CellInternal => _cell;
    internal int PreWidth => _p;

    private ReadOnlySpan<double> ZPrev(int b, int k) =>
        k == 0 ? _initial.AsSpan(b * _s, _s) : _states.AsSpan((b * _t + k - 1) * _s, _s);

    internal StepRow Row(int b, int k)
    {
        int row = b * _t + k;
        return new StepRow(_cache.AsSpan(row * _c, _c), ZPrev(b, k), _states.AsSpan(row * _s, _s));
    }

    private void Forward()
    {
        var ps = _params;
        var wih = ps[RecurrentCell.WeightIhName].Data;
        var bih = _cell.HasBiasIh ? ps[RecurrentCell.BiasIhName].Data : null;
        var bhh = ps[RecurrentCell.BiasHhName].Data;
        int rows = _b * _t, hho = _cell.HhOffset, tp = _t * _p;
        var pre = ArrayPool<double>.Shared.Rent(rows * _p);
        try
        {
            // a_ih for every (b, k) at once; docs/math.md#cells.
            Gemm.Multiply(Trans.No, Trans.Yes, rows, _gh, _n, 1.0, _x, _n, wih, _n, 0.0, pre, _p);
            for (int b = 0; b < _b; b++) _cell.RecurrentVariable(_initial.AsSpan(b * _s, _h), _v.AsSpan(b * _t * _h, _h));
            for (int k = 0; k < _t; k++)
            {
                // a_hh for the B rows of step k (stride T·H in v, T·P in pre), accumulated onto a_ih when they share D.
                Gemm.Multiply(Trans.No, Trans.Yes, _b, _gh, _h, 1.0, _v.AsSpan(k * _h), _t * _h, _whh, _h,
                    _cell.SplitPreActivation ? 0.0 : 1.0, pre.AsSpan(k * _p + hho), tp);
                int kk = k;
                RowLoop.For(_b, 8L * _p, 0, (b, _) =>
                {
                    int row = b * _t + kk;
                    var a = pre.AsSpan(row * _p, _p);
                    if (bih != null) TensorPrimitives.Add(a[.._gh], bih, a[.._gh]);
                    TensorPrimitives.Add(a.Slice(hho, _gh), bhh, a.Slice(hho, _gh));
                    var z = _states.AsSpan(row * _s, _s);
                    _cell.ForwardRow(a, ZPrev(b, kk), z, _cache.AsSpan(row * _c, _c));
                    if (kk + 1 < _t) _cell.RecurrentVariable(z[.._h], _v.AsSpan((row + 1) * _h, _h));
                });
            }
        }
        finally { ArrayPool<double>.Shared.Return(pre); }
    }

    private void CheckStep(int step, int srcLength, int dstLength, int count, string what)
    {
        if (step < 1 || step >= _t)
            throw new ArgumentOutOfRangeException(nameof(step), $"{what}: step {step} outside 1..{_t - 1} for {StateShape}.");
        long need = (long)count * StateShape.Size;
        if (count < 0 || srcLength < need || dstLength < need)
            throw new ArgumentException($"{what}: blocks of length {srcLength}/{dstLength} cannot hold {count} × {StateShape}.");
    }

    /// <inheritdoc/>
    public override void StateJvpAdd(int step, ReadOnlySpan<double> src, Span<double> dst, int count, double alpha = 1.0)
    {
        CheckStep(step, src.Length, dst.Length, count, "StateJvpAdd");
        if (count == 0) return;
        int rows = count * _b, ts = _t * _s, k = step, hho = _cell.HhOffset;
        var pre = ArrayPool<double>.Shared.Rent(rows * _p);
        double[]? dv = null;
        try
        {
            fixed (double* ps = src, pd = dst)
            {
                nint isrc = (nint)ps, idst = (nint)pd;
                if (_cell.SplitPreActivation) Array.Clear(pre, 0, rows * _p);
                if (_cell.RecurrentVariableIsState)
                {
                    // δa_hh = W_hh δh_{k−1}: the h parts of step k−1 of all count·B rows, stride T·S.
                    Gemm.Multiply(Trans.No, Trans.Yes, rows, _gh, _h, 1.0, src[((k - 1) * _s)..], ts, _whh, _h, 0.0, pre.AsSpan(hho), _p);
                }
                else
                {
                    dv = ArrayPool<double>.Shared.Rent(rows * _h);
                    var dvArr = dv;
                    RowLoop.For(rows, 2L * _h, _h, (r, w) =>
                    {
                        int b = r % _b;
                        var d = w[.._h];
                        _cell.RecurrentDerivative(_v.AsSpan((b * _t + k) * _h, _h), d);
                        TensorPrimitives.Multiply(d, new ReadOnlySpan<double>((double*)isrc + (long)r * ts + (k - 1) * _s, _h), dvArr.AsSpan(r * _h, _h));
                    });
                    Gemm.Multiply(Trans.No, Trans.Yes, rows, _gh, _h, 1.0, dv, _h, _whh, _h, 0.0, pre.AsSpan(hho), _p);
                }
                RowLoop.For(rows, 12L * _p, _s + _cell.WorkWidth, (r, w) =>
                {
                    int b = r % _b;
                    var row = Row(b, k);
                    var tmp = w[.._s]; var work = w[_s..];
                    var dz = new Span<double>((double*)idst + (long)r * ts + k * _s, _s);
                    var zPrevDir = new ReadOnlySpan<double>((double*)isrc + (long)r * ts + (k - 1) * _s, _s);
                    _cell.ApplyD(row, pre.AsSpan(r * _p, _p), tmp, work);
                    TensorPrimitives.MultiplyAdd(tmp, alpha, dz, dz);
                    _cell.ApplyEAdd(row, zPrevDir, dz, alpha, work);
                });
            }
        }
        finally
        {
            ArrayPool<double>.Shared.Return(pre);
            if (dv != null) ArrayPool<double>.Shared.Return(dv);
        }
    }

    /// <inheritdoc/>
    public override void StateVjpAdd(int step, ReadOnlySpan<double> src, Span<double> dst, int count, double alpha = 1.0)
    {
        CheckStep(step, src.Length, dst.Length, count, "StateVjpAdd");
        if (count == 0) return;
        int rows = count * _b, ts = _t * _s, k = step, hho = _cell.HhOffset;
        var g = ArrayPool<double>.Shared.Rent(rows * _p);
        double[]? tmp = null;
        try
        {
            fixed (double* ps = src, pd = dst)
            {
                nint isrc = (nint)ps, idst = (nint)pd;
                RowLoop.For(rows, 12L * _p, _cell.WorkWidth, (r, work) =>
                {
                    int b = r % _b;
                    var row = Row(b, k);
                    var q = new ReadOnlySpan<double>((double*)isrc + (long)r * ts + k * _s, _s);
                    _cell.ApplyDTranspose(row, q, g.AsSpan(r * _p, _p), work);
                    _cell.ApplyETransposeAdd(row, q, new Span<double>((double*)idst + (long)r * ts + (k - 1) * _s, _s), alpha, work);
                });
                if (_cell.RecurrentVariableIsState)
                {
                    // δh_{k−1} += alpha W_hhᵀ g_hh, written straight into the h parts of step k−1.
                    Gemm.Multiply(Trans.No, Trans.No, rows, _h, _gh, alpha, g.AsSpan(hho), _p, _whh, _h, 1.0, dst[((k - 1) * _s)..], ts);
                }
                else
                {
                    tmp = ArrayPool<double>.Shared.Rent(rows * _h);
                    var tArr = tmp;
                    Gemm.Multiply(Trans.No, Trans.No, rows, _h, _gh, 1.0, g.AsSpan(hho), _p, _whh, _h, 0.0, tmp, _h);
                    RowLoop.For(rows, 3L * _h, _h, (r, w) =>
                    {
                        int b = r % _b;
                        var d = w[.._h];
                        _cell.RecurrentDerivative(_v.AsSpan((b * _t + k) * _h, _h), d);
                        TensorPrimitives.Multiply(d, tArr.AsSpan(r * _h, _h), d);
                        var dh = new Span<double>((double*)idst + (long)r * ts + (k - 1) * _s, _h);
                        TensorPrimitives.MultiplyAdd(d, alpha, dh, dh);
                    });
                }
            }
        }
        finally
        {
            ArrayPool<double>.Shared.Return(g);
            if (tmp != null) ArrayPool<double>.Shared.Return(tmp);
        }
    }

    /// <inheritdoc/>
    public override void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> result, int count)
    {
        int m = Parameters.TotalSize, rows = _b * _t, size = StateShape.Size, hho = _cell.HhOffset;
        if (dTheta.Length < (long)count * m || result.Length < (long)count * size)
            throw new ArgumentException($"ParamJvp: blocks of length {dTheta.Length}/{result.Length} cannot hold {count} × (m={m}) / {count} × {StateShape}.");
        var pre = ArrayPool<double>.Shared.Rent(rows * _p);
        try
        {
            fixed (double* pr = result)
            {
                nint ires = (nint)pr;
                for (int j = 0; j < count; j++)
                {
                    var th = dTheta.Slice(j * m, m);
                    // δa_ih = δW_ih x + δb_ih and δa_hh = δW_hh v + δb_hh at every (b, k); docs/math.md#global-ntk.
                    Gemm.Multiply(Trans.No, Trans.Yes, rows, _gh, _n, 1.0, _x, _n, th[_offWih..], _n, 0.0, pre, _p);
                    Gemm.Multiply(Trans.No, Trans.Yes, rows, _gh, _h, 1.0, _v, _h, th[_offWhh..], _h,
                        _cell.SplitPreActivation ? 0.0 : 1.0, pre.AsSpan(hho), _p);
                    var bih = _offBih >= 0 ? th.Slice(_offBih, _gh).ToArray() : null;
                    var bhh = th.Slice(_offBhh, _gh).ToArray();
                    long jOff = (long)j * size;
                    RowLoop.For(rows, 12L * _p, _cell.WorkWidth, (row, work) =>
                    {
                        var a = pre.AsSpan(row * _p, _p);
                        if (bih != null) TensorPrimitives.Add(a[.._gh], bih, a[.._gh]);
                        TensorPrimitives.Add(a.Slice(hho, _gh), bhh, a.Slice(hho, _gh));
                        _cell.ApplyD(Row(row / _t, row % _t), a, new Span<double>((double*)ires + jOff + (long)row * _s, _s), work);
                    });
                }
            }
        }
        finally { ArrayPool<double>.Shared.Return(pre); }
    }

    /// <inheritdoc/>
    public override void ParamVjp(ReadOnlySpan<double> q, Span<double> dTheta, int count)
    {
        int m = Parameters.TotalSize, rows = _b * _t, size = StateShape.Size, hho = _cell.HhOffset;
        if (q.Length < (long)count * size || dTheta.Length < (long)count * m)
            throw new ArgumentException($"ParamVjp: blocks of length {q.Length}/{dTheta.Length} cannot hold {count} × {StateShape} / {count} × (m={m}).");
        var g = ArrayPool<double>.Shared.Rent(rows * _p);
        try
        {
            fixed (double* pq = q)
            {
                nint iq = (nint)pq;
                for (int j = 0; j < count; j++)
                {
                    long jOff = (long)j * size;
                    RowLoop.For(rows, 12L * _p, _cell.WorkWidth, (row, work) =>
                        _cell.ApplyDTranspose(Row(row / _t, row % _t), new ReadOnlySpan<double>((double*)iq + jOff + (long)row * _s, _s), g.AsSpan(row * _p, _p), work));
                    // δW = Σ_(b,k) g uᵀ, δb = Σ_(b,k) g; docs/math.md#kronecker-core.
                    var th = dTheta.Slice(j * m, m);
                    Gemm.Multiply(Trans.Yes, Trans.No, _gh, _n, rows, 1.0, g, _p, _x, _n, 0.0, th[_offWih..], _n);
                    Gemm.Multiply(Trans.Yes, Trans.No, _gh, _h, rows, 1.0, g.AsSpan(hho), _p, _v, _h, 0.0, th[_offWhh..], _h);
                    if (_offBih >= 0) ColumnSums(g, rows, 0, th.Slice(_offBih, _gh));
                    ColumnSums(g, rows, hho, th.Slice(_offBhh, _gh));
                }
            }
        }
        finally { ArrayPool<double>.Shared.Return(g); }
    }

    private void ColumnSums(double[] g, int rows, int offset, Span<double> sum)
    {
        sum.Clear();
        for (int r = 0; r < rows; r++) TensorPrimitives.Add(sum, g.AsSpan(r * _p + offset, _gh), sum);
    }

    private IReadOnlyList<WeightSite> BuildSites()
    {
        var rowShape = new AxisShape(("trial", _b), ("time", _t));
        var biasIh = _cell.HasBiasIh ? new[] { RecurrentCell.BiasIhName } : [];
        if (_cell.SplitPreActivation)
            return
            [
                new RecurrentWeightSite(this, "ih", rowShape, [(RecurrentCell.WeightIhName, false)], biasIh, 0),
                new RecurrentWeightSite(this, "hh", rowShape, [(RecurrentCell.WeightHhName, true)], [RecurrentCell.BiasHhName], _cell.HhOffset),
            ];
        return
        [
            new RecurrentWeightSite(this, "rnn", rowShape, [(RecurrentCell.WeightHhName, true), (RecurrentCell.WeightIhName, false)],
                [.. biasIh, RecurrentCell.BiasHhName], 0),
        ];
    }
}
