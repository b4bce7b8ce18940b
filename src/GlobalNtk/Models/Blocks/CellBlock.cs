using System.Numerics.Tensors;
using GlobalNtk.Dense;
using GlobalNtk.Models.Recurrent;
using GlobalNtk.Operators;

namespace GlobalNtk.Models.Blocks;

/// <summary>
/// One recurrent layer's step as a block (docs/math.md#cells): rows [z_prev, x] → z, where z is
/// the layer's state (h, or [h; c] for the LSTM) and x its input at this step (the net's input,
/// or the new h of the layer below). The cell maths is <see cref="RecurrentCell"/>'s (nn.RNN with
/// tanh or relu, the leaky RNN, nn.GRU, nn.LSTM); this block adds the row-block contract: state
/// and parameter JVP/VJP on blocks of <c>count</c> vectors with one GEMM per weight for the whole
/// block, and the affine weight sites (docs/math.md#kronecker-core).
/// </summary>
/// <remarks>
/// <para>Parameters in PyTorch's order: <c>{prefix}weight_ih_l{k}</c> [G·H, N],
/// <c>weight_hh_l{k}</c> [G·H, H], and with bias <c>bias_ih_l{k}</c> (not for the leaky RNN) and
/// <c>bias_hh_l{k}</c> [G·H].</para>
/// <para>Sites: where ih and hh enter the cell only through their sum (nn.RNN, leaky RNN, LSTM)
/// one site <c>rnn_l{k}</c> with W = [W_hh, W_ih], Û = [v(h), x, 1…] (v = h, or φ(h) for the leaky
/// RNN); for the GRU, whose reset gate multiplies the hh part, two sites <c>ih_l{k}</c>
/// (Û = [x, 1]) and <c>hh_l{k}</c> (Û = [h, 1]). D is the cell's ∂z/∂a.</para>
/// </remarks>
public sealed class CellBlock : StepBlock
{
    private readonly RecurrentCell _cell;

    internal CellBlock(RecurrentCell cell, int layer, bool bias, string prefix)
    {
        _cell = cell;
        Layer = layer;
        Bias = bias;
        Arch = cell.Arch;
        InputSize = cell.InputSize;
        HiddenSize = cell.HiddenSize;
        StateWidth = cell.StateSize;
        int gh = cell.GateWidth;
        WeightIh = new ParameterSpec($"{prefix}weight_ih_l{layer}", [gh, InputSize]);
        WeightHh = new ParameterSpec($"{prefix}weight_hh_l{layer}", [gh, HiddenSize]);
        BiasIh = bias && cell.HasBiasIh ? new ParameterSpec($"{prefix}bias_ih_l{layer}", [gh]) : null;
        BiasHh = bias ? new ParameterSpec($"{prefix}bias_hh_l{layer}", [gh]) : null;
        var specs = new List<ParameterSpec> { WeightIh, WeightHh };
        if (BiasIh != null) specs.Add(BiasIh);
        if (BiasHh != null) specs.Add(BiasHh);
        ParameterSpecs = specs;
    }

    /// <summary>
    /// Layer <paramref name="layer"/> of <paramref name="config"/>'s stack (arch, sizes, bias, and
    /// α and φ for the leaky RNN): it reads N_in inputs at layer 0 and H above, and names its
    /// tensors as PyTorch does under <paramref name="prefix"/>.
    /// </summary>
    public static CellBlock Create(RecurrentConfig config, int layer = 0, string prefix = RecurrentStack.DefaultPrefix)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        if (layer < 0 || layer >= config.Layers)
            throw new ArgumentOutOfRangeException(nameof(layer), $"Cell block: layer {layer} outside 0..{config.Layers - 1}.");
        var c = config with { InputSize = layer == 0 ? config.InputSize : config.HiddenSize };
        return new CellBlock(MathCell(c), layer, config.Bias, prefix);
    }

    /// <summary>
    /// Shorthand: a cell of <paramref name="arch"/> (<c>rnn-tanh | rnn-relu | gru | lstm | leaky-rnn</c>,
    /// the leaky RNN with α = 0.1 and tanh) reading <paramref name="inputs"/> inputs into
    /// <paramref name="hidden"/> units, its tensors named for layer <paramref name="layer"/>.
    /// </summary>
    public static CellBlock Create(string arch, int inputs, int hidden, bool bias = true, int layer = 0, string prefix = RecurrentStack.DefaultPrefix)
    {
        if (layer < 0) throw new ArgumentOutOfRangeException(nameof(layer), $"Cell block: layer {layer} must be ≥ 0.");
        return new CellBlock(MathCell(new RecurrentConfig(arch, inputs, hidden, 1)), layer, bias, prefix);
    }

    /// <summary>The cell maths of one layer of <paramref name="config"/>'s arch, α and φ.</summary>
    private static RecurrentCell MathCell(RecurrentConfig config)
    {
        var c = config with { Layers = 1, Bias = true, LearnInitialState = false };
        // The cell supplies only its maths; its own (zero) tensors are never read.
        return RecurrentCell.Create(c, new ParameterSet(RecurrentCell.ExpectedShapes(c).Select(e => new Parameter(e.Name, e.Shape))));
    }

    /// <summary>Architecture name.</summary>
    public string Arch { get; }
    /// <summary>Layer index k in the parameter names.</summary>
    public int Layer { get; }
    /// <summary>Whether the cell has biases.</summary>
    public bool Bias { get; }
    /// <summary>N: width of the input x.</summary>
    public int InputSize { get; }
    /// <summary>H: hidden units (the part of the state that the layer above and a readout read).</summary>
    public int HiddenSize { get; }
    /// <summary>S_c: the layer's state width (H, or 2H for the LSTM: [h; c]).</summary>
    public int StateWidth { get; }
    /// <summary>W_ih [G·H, N].</summary>
    public ParameterSpec WeightIh { get; }
    /// <summary>W_hh [G·H, H].</summary>
    public ParameterSpec WeightHh { get; }
    /// <summary>b_ih [G·H], or null.</summary>
    public ParameterSpec? BiasIh { get; }
    /// <summary>b_hh [G·H], or null.</summary>
    public ParameterSpec? BiasHh { get; }
    /// <inheritdoc/>
    public override int InputWidth => StateWidth + InputSize;
    /// <inheritdoc/>
    public override int OutputWidth => StateWidth;
    /// <inheritdoc/>
    public override IReadOnlyList<ParameterSpec> ParameterSpecs { get; }

    /// <inheritdoc/>
    public override BlockTrace Forward(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output)
    {
        var wih = Read(parameters, WeightIh);
        var whh = Read(parameters, WeightHh);
        var bih = BiasIh == null ? null : Read(parameters, BiasIh);
        var bhh = BiasHh == null ? null : Read(parameters, BiasHh);
        return new Trace(this, rows, input, output, wih, whh, bih, bhh);
    }

    private sealed class Trace : BlockTrace
    {
        private readonly CellBlock _blk;
        private readonly RecurrentCell _cell;
        private readonly double[] _wih, _whh, _zPrev, _z, _cache;
        // Û of the sites: split (GRU): _uIh = [x, 1?], _uHh = [h, 1?]; otherwise _uIh = _uHh = [v(h), x, 1…].
        private readonly double[] _uIh, _uHh;
        private readonly int _ldIh, _ldHh, _xCol, _vCol;
        private readonly int _s, _n, _h, _gh, _p, _hho, _in;
        private readonly bool _split;
        private readonly LocalSite[] _sites;

        public Trace(CellBlock blk, int rows, ReadOnlySpan<double> input, Span<double> output,
            double[] wih, double[] whh, double[]? bih, double[]? bhh) : base(blk, rows)
        {
            _blk = blk; _cell = blk._cell; _wih = wih; _whh = whh;
            _s = blk.StateWidth; _n = blk.InputSize; _h = blk.HiddenSize; _in = blk.InputWidth;
            _gh = _cell.GateWidth; _p = _cell.PreWidth; _hho = _cell.HhOffset; _split = _cell.SplitPreActivation;
            int nbIh = bih == null ? 0 : 1, nbHh = bhh == null ? 0 : 1;
            _zPrev = new double[checked(rows * _s)];
            _z = new double[checked(rows * _s)];
            _cache = new double[checked(rows * _cell.CacheWidth)];
            if (_split)
            {
                _ldIh = _n + nbIh; _ldHh = _h + nbHh;
                _uIh = new double[checked(rows * _ldIh)]; _uHh = new double[checked(rows * _ldHh)];
                _xCol = 0; _vCol = 0;
            }
            else
            {
                _ldIh = _ldHh = _h + _n + nbIh + nbHh;
                _uIh = _uHh = new double[checked(rows * _ldIh)];
                _vCol = 0; _xCol = _h;
            }
            for (int r = 0; r < rows; r++)
            {
                var row = input.Slice(r * _in, _in);
                row[.._s].CopyTo(_zPrev.AsSpan(r * _s, _s));
                _cell.RecurrentVariable(row[.._h], _uHh.AsSpan(r * _ldHh + _vCol, _h));
                row.Slice(_s, _n).CopyTo(_uIh.AsSpan(r * _ldIh + _xCol, _n));
                if (_split)
                {
                    if (nbIh == 1) _uIh[r * _ldIh + _n] = 1.0;
                    if (nbHh == 1) _uHh[r * _ldHh + _h] = 1.0;
                }
                else _uIh.AsSpan(r * _ldIh + _h + _n, nbIh + nbHh).Fill(1.0);
            }
            // a = [W_ih x + b_ih, W_hh v + b_hh] (summed into one block unless split): one GEMM per weight.
            using var pre = new BlockBuffer((long)rows * _p);
            var a = pre.Span;
            Gemm.Multiply(Trans.No, Trans.Yes, rows, _gh, _n, 1.0, _uIh.AsSpan(_xCol), _ldIh, wih, _n, 0.0, a, _p);
            Gemm.Multiply(Trans.No, Trans.Yes, rows, _gh, _h, 1.0, _uHh.AsSpan(_vCol), _ldHh, whh, _h, _split ? 0.0 : 1.0, a[_hho..], _p);
            for (int r = 0; r < rows; r++)
            {
                var ar = a.Slice(r * _p, _p);
                if (bih != null) TensorPrimitives.Add(ar[.._gh], bih, ar[.._gh]);
                if (bhh != null) TensorPrimitives.Add(ar.Slice(_hho, _gh), bhh, ar.Slice(_hho, _gh));
                _cell.ForwardRow(ar, _zPrev.AsSpan(r * _s, _s), _z.AsSpan(r * _s, _s), _cache.AsSpan(r * _cell.CacheWidth, _cell.CacheWidth));
            }
            _z.AsSpan().CopyTo(output);
            _sites = BuildSites(bih != null, bhh != null);
        }

        private StepRow Row(int r) => new(_cache.AsSpan(r * _cell.CacheWidth, _cell.CacheWidth), _zPrev.AsSpan(r * _s, _s), _z.AsSpan(r * _s, _s));

        private double[] Work() => new double[_cell.WorkWidth + 1];

        /// <summary>pre[:, hh block] (+)= (v' ⊙ δh) W_hhᵀ for n rows of δh (row r at dh[r·ld]).</summary>
        private void HhJvp(ReadOnlySpan<double> dh, int ld, int n, Span<double> pre, double beta)
        {
            if (_cell.RecurrentVariableIsState)
            {
                Gemm.Multiply(Trans.No, Trans.Yes, n, _gh, _h, 1.0, dh, ld, _whh, _h, beta, pre[_hho..], _p);
                return;
            }
            using var dvb = new BlockBuffer((long)n * _h);
            var dv = dvb.Span; var d = new double[_h];
            for (int r = 0; r < n; r++)
            {
                _cell.RecurrentDerivative(_uHh.AsSpan((r % Rows) * _ldHh + _vCol, _h), d);
                TensorPrimitives.Multiply(d, dh.Slice(r * ld, _h), dv.Slice(r * _h, _h));
            }
            Gemm.Multiply(Trans.No, Trans.Yes, n, _gh, _h, 1.0, dv, _h, _whh, _h, beta, pre[_hho..], _p);
        }

        /// <summary>dst[r·ld + i] += (v' ⊙ W_hhᵀ g_hh[r])_i, the adjoint of <see cref="HhJvp"/>.</summary>
        private void HhVjpAdd(ReadOnlySpan<double> g, int n, Span<double> dst, int ld)
        {
            if (_cell.RecurrentVariableIsState)
            {
                Gemm.Multiply(Trans.No, Trans.No, n, _h, _gh, 1.0, g[_hho..], _p, _whh, _h, 1.0, dst, ld);
                return;
            }
            using var tb = new BlockBuffer((long)n * _h);
            var t = tb.Span; var d = new double[_h];
            Gemm.Multiply(Trans.No, Trans.No, n, _h, _gh, 1.0, g[_hho..], _p, _whh, _h, 0.0, t, _h);
            for (int r = 0; r < n; r++)
            {
                _cell.RecurrentDerivative(_uHh.AsSpan((r % Rows) * _ldHh + _vCol, _h), d);
                TensorPrimitives.Multiply(d, t.Slice(r * _h, _h), d);
                var o = dst.Slice(r * ld, _h);
                TensorPrimitives.Add(o, d, o);
            }
        }

        public override void Jvp(ReadOnlySpan<double> dIn, Span<double> dOut, int count) =>
            JvpCore(dIn, _in, true, dIn[_s..], _in, true, dOut, count);

        public override void Vjp(ReadOnlySpan<double> dOut, Span<double> dIn, int count) =>
            VjpCore(dOut, dIn, _in, true, dIn[_s..], _in, true, count);

        /// <summary>The state part [z_prev] or the input part [x] alone skips the other weight's GEMM.</summary>
        public override void JvpPart(int offset, int width, ReadOnlySpan<double> dIn, Span<double> dOut, int count)
        {
            if (offset == 0 && width == _s) JvpCore(dIn, _s, true, default, 0, false, dOut, count);
            else if (offset == _s && width == _n) JvpCore(default, 0, false, dIn, _n, true, dOut, count);
            else base.JvpPart(offset, width, dIn, dOut, count);
        }

        /// <inheritdoc/>
        public override void VjpPart(int offset, int width, ReadOnlySpan<double> dOut, Span<double> dIn, int count)
        {
            if (offset == 0 && width == _s) VjpCore(dOut, dIn, _s, true, default, 0, false, count);
            else if (offset == _s && width == _n) VjpCore(dOut, default, 0, false, dIn, _n, true, count);
            else base.VjpPart(offset, width, dOut, dIn, count);
        }

        /// <summary>
        /// dOut = D (δa_ih + δa_hh) + E δz_prev with δa_ih = δx W_ihᵀ and δa_hh = (v' ⊙ δh) W_hhᵀ for all
        /// count·Rows rows at once (one GEMM per weight); a part that is absent is zero.
        /// </summary>
        private void JvpCore(ReadOnlySpan<double> dz, int ldz, bool hasState, ReadOnlySpan<double> dx, int ldx, bool hasInput, Span<double> dOut, int count)
        {
            int n = count * Rows;
            using var preb = new BlockBuffer((long)n * _p);
            var pre = preb.Span;
            if (hasInput) Gemm.Multiply(Trans.No, Trans.Yes, n, _gh, _n, 1.0, dx, ldx, _wih, _n, 0.0, pre, _p);
            if (hasState) HhJvp(dz, ldz, n, pre, _split || !hasInput ? 0.0 : 1.0);
            if (_split && hasInput != hasState)
            {
                int zero = hasInput ? _hho : 0;   // the block no GEMM wrote
                for (int r = 0; r < n; r++) pre.Slice(r * _p + zero, _gh).Clear();
            }
            else if (!hasInput && !hasState) pre.Clear();
            var work = Work();
            for (int r = 0; r < n; r++)
            {
                var row = Row(r % Rows);
                var o = dOut.Slice(r * _s, _s);
                _cell.ApplyD(row, pre.Slice(r * _p, _p), o, work);
                if (hasState) _cell.ApplyEAdd(row, dz.Slice(r * ldz, _s), o, 1.0, work);
            }
        }

        /// <summary>The adjoint of <see cref="JvpCore"/>: δz_prev (row stride ldz) and/or δx (ldx), overwritten.</summary>
        private void VjpCore(ReadOnlySpan<double> q, Span<double> dz, int ldz, bool wantState, Span<double> dx, int ldx, bool wantInput, int count)
        {
            int n = count * Rows;
            using var gb = new BlockBuffer((long)n * _p);
            var g = gb.Span;
            var work = Work();
            for (int r = 0; r < n; r++)
            {
                var row = Row(r % Rows);
                var qr = q.Slice(r * _s, _s);
                _cell.ApplyDTranspose(row, qr, g.Slice(r * _p, _p), work);
                if (!wantState) continue;
                var d = dz.Slice(r * ldz, _s);
                d.Clear();
                _cell.ApplyETransposeAdd(row, qr, d, 1.0, work);
            }
            if (wantInput) Gemm.Multiply(Trans.No, Trans.No, n, _n, _gh, 1.0, g, _p, _wih, _n, 0.0, dx, ldx);
            if (wantState) HhVjpAdd(g, n, dz, ldz);
        }

        // Compact δθ of the block: W_ih, W_hh, then b_ih, b_hh where present.
        private int OffWhh => _gh * _n;
        private int OffBih => OffWhh + _gh * _h;
        private int OffBhh => OffBih + (_blk.BiasIh == null ? 0 : _gh);

        public override void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> dOut, int count)
        {
            int m = _blk.ParameterSize;
            using var preb = new BlockBuffer((long)Rows * _p);
            var pre = preb.Span;
            var work = Work();
            for (int j = 0; j < count; j++)
            {
                var dt = dTheta.Slice(j * m, m);
                // δa = [x, 1] [δW_ih, δb_ih]ᵀ, [v, 1] [δW_hh, δb_hh]ᵀ (docs/math.md#kronecker-core).
                Gemm.Multiply(Trans.No, Trans.Yes, Rows, _gh, _n, 1.0, _uIh.AsSpan(_xCol), _ldIh, dt, _n, 0.0, pre, _p);
                Gemm.Multiply(Trans.No, Trans.Yes, Rows, _gh, _h, 1.0, _uHh.AsSpan(_vCol), _ldHh, dt[OffWhh..], _h, _split ? 0.0 : 1.0, pre[_hho..], _p);
                for (int r = 0; r < Rows; r++)
                {
                    var a = pre.Slice(r * _p, _p);
                    if (_blk.BiasIh != null) TensorPrimitives.Add(a[.._gh], dt.Slice(OffBih, _gh), a[.._gh]);
                    if (_blk.BiasHh != null) TensorPrimitives.Add(a.Slice(_hho, _gh), dt.Slice(OffBhh, _gh), a.Slice(_hho, _gh));
                    _cell.ApplyD(Row(r), a, dOut.Slice((j * Rows + r) * _s, _s), work);
                }
            }
        }

        public override void ParamVjp(ReadOnlySpan<double> dOut, Span<double> dTheta, int count)
        {
            int m = _blk.ParameterSize, n = count * Rows;
            using var gb = new BlockBuffer((long)n * _p);
            var g = gb.Span;
            var work = Work();
            for (int r = 0; r < n; r++) _cell.ApplyDTranspose(Row(r % Rows), dOut.Slice(r * _s, _s), g.Slice(r * _p, _p), work);
            for (int j = 0; j < count; j++)
            {
                var dt = dTheta.Slice(j * m, m);
                var gj = g.Slice(j * Rows * _p, Rows * _p);
                // [δW, δb] = gᵀ Û, summed over rows.
                Gemm.Multiply(Trans.Yes, Trans.No, _gh, _n, Rows, 1.0, gj, _p, _uIh.AsSpan(_xCol), _ldIh, 0.0, dt, _n);
                Gemm.Multiply(Trans.Yes, Trans.No, _gh, _h, Rows, 1.0, gj[_hho..], _p, _uHh.AsSpan(_vCol), _ldHh, 0.0, dt[OffWhh..], _h);
                if (_blk.BiasIh != null) ColumnSums(gj, 0, dt.Slice(OffBih, _gh));
                if (_blk.BiasHh != null) ColumnSums(gj, _hho, dt.Slice(OffBhh, _gh));
            }
        }

        private void ColumnSums(ReadOnlySpan<double> g, int offset, Span<double> sum)
        {
            sum.Clear();
            for (int r = 0; r < Rows; r++) TensorPrimitives.Add(sum, g.Slice(r * _p + offset, _gh), sum);
        }

        public override IReadOnlyList<LocalSite> Sites => _sites;

        private LocalSite[] BuildSites(bool hasBih, bool hasBhh)
        {
            var b = _blk;
            int k = b.Layer;
            if (!_split)
                return
                [
                    new LocalSite($"rnn_l{k}", b.WeightHh.Name, hasBih ? b.BiasIh!.Name : b.BiasHh?.Name, _h + _n, _gh, _uIh, RowLocal: true,
                        (a, dst, count) => ApplyD(a, dst, count, 0), (q, a, count) => ApplyDAdjoint(q, a, count, 0))
                    {
                        Weights = [b.WeightHh.Name, b.WeightIh.Name],
                        Biases = [.. hasBih ? [b.BiasIh!.Name] : Array.Empty<string>(), .. hasBhh ? [b.BiasHh!.Name] : Array.Empty<string>()],
                    },
                ];
            return
            [
                new LocalSite($"ih_l{k}", b.WeightIh.Name, b.BiasIh?.Name, _n, _gh, _uIh, RowLocal: true,
                    (a, dst, count) => ApplyD(a, dst, count, 0), (q, a, count) => ApplyDAdjoint(q, a, count, 0)),
                new LocalSite($"hh_l{k}", b.WeightHh.Name, b.BiasHh?.Name, _h, _gh, _uHh, RowLocal: true,
                    (a, dst, count) => ApplyD(a, dst, count, _hho), (q, a, count) => ApplyDAdjoint(q, a, count, _hho)),
            ];
        }

        /// <summary>dst = D a for the pre-activation block at <paramref name="offset"/> (the other block held at zero).</summary>
        private void ApplyD(ReadOnlySpan<double> a, Span<double> dst, int count, int offset)
        {
            int n = count * Rows;
            var work = Work();
            var full = _split ? new double[_p] : null;
            for (int r = 0; r < n; r++)
            {
                ReadOnlySpan<double> da = a.Slice(r * _gh, _gh);
                if (full != null)
                {
                    Array.Clear(full);
                    da.CopyTo(full.AsSpan(offset, _gh));
                    da = full;
                }
                _cell.ApplyD(Row(r % Rows), da, dst.Slice(r * _s, _s), work);
            }
        }

        /// <summary>a = D* q restricted to the pre-activation block at <paramref name="offset"/>.</summary>
        private void ApplyDAdjoint(ReadOnlySpan<double> q, Span<double> a, int count, int offset)
        {
            int n = count * Rows;
            var work = Work();
            var g = new double[_p];
            for (int r = 0; r < n; r++)
            {
                _cell.ApplyDTranspose(Row(r % Rows), q.Slice(r * _s, _s), g, work);
                g.AsSpan(offset, _gh).CopyTo(a.Slice(r * _gh, _gh));
            }
        }
    }
}
