using System.Numerics.Tensors;
using GlobalNtk.Dense;
using GlobalNtk.Models.Recurrent;
using GlobalNtk.Operators;
using Tensor = GlobalNtk.Dense.Tensor;

namespace GlobalNtk.Models.Blocks;

/// <summary>
/// A recurrent chain composed of step blocks (docs/math.md#models-as-chains, #cells): L layers
/// unrolled over time with θ shared by every step. At step t layer k maps the row
/// [z_k(t−1), x_k(t)] to z_k(t), where x_0(t) is the input and x_k(t) (k &gt; 0) is the new h of
/// layer k−1 at the same step. The chain state of one (trial, time) is the layer-major
/// concatenation [z_0; z_1; …] (for the LSTM [h_0; c_0; h_1; c_1; …]). The initial state is
/// fixed (zero or given per trial) or a learnable parameter h0 (the h part of every layer; c0 = 0).
/// <see cref="Linearize"/> derives the whole <see cref="ChainLinearization"/> — A_t, J_θ, J_θ*,
/// the weight sites and, through the base class, the J_rest term — from the blocks' traces.
/// </summary>
/// <remarks>
/// A layer is any <see cref="StepBlock"/> whose input row is [state, input] and whose output row
/// is the new state (a <see cref="CellBlock"/>, or e.g. an Elman cell composed of an
/// <see cref="AffineBlock"/> and an <see cref="ActivationBlock"/>). Its hidden part — what the
/// layer above reads and what h0 sets — is the first <see cref="CellBlock.HiddenSize"/> units of
/// a cell block's state, and the whole state of any other block.
/// </remarks>
/// <example>
/// A two-layer GRU as nn.GRU(num_layers=2) names it, with a learnable h0 [2, 16]:
/// <code>
/// var config = new RecurrentConfig("gru", 3, 16, 1) { Layers = 2 };
/// var chain = new RecurrentBlockChain(3, [CellBlock.Create(config, 0), CellBlock.Create(config, 1)], initialStateName: "h0");
/// var lin = chain.Linearize(chain.Initialize(seed: 1), x);   // x: (trial, time, input = 3)
/// </code>
/// </example>
public sealed class RecurrentBlockChain
{
    private readonly StepBlock[] _layers;
    private readonly int[] _hidden, _offsets;

    /// <summary>
    /// A chain of <paramref name="layers"/> on inputs of width <paramref name="inputWidth"/>; with
    /// <paramref name="initialStateName"/> the initial h of every layer is that parameter, of shape
    /// <paramref name="initialStateShape"/> (default [L, H], or [H] for one layer; any shape with
    /// Σ_k H_k scalars, layer-major).
    /// </summary>
    public RecurrentBlockChain(int inputWidth, IReadOnlyList<StepBlock> layers, string? initialStateName = null, int[]? initialStateShape = null)
    {
        ArgumentNullException.ThrowIfNull(layers);
        if (layers.Count == 0) throw new ArgumentException("A recurrent block chain needs at least one layer.");
        _layers = layers.ToArray();
        _hidden = new int[_layers.Length];
        _offsets = new int[_layers.Length + 1];
        for (int k = 0; k < _layers.Length; k++)
        {
            var l = _layers[k];
            _hidden[k] = l is CellBlock c ? c.HiddenSize : l.OutputWidth;
            int reads = k == 0 ? inputWidth : _hidden[k - 1];
            if (l.InputWidth != l.OutputWidth + reads)
                throw new ArgumentException($"Recurrent block chain: layer {k} maps rows of width {l.InputWidth} to {l.OutputWidth}, but its rows are [state {l.OutputWidth}, {(k == 0 ? "input" : $"h of layer {k - 1}")} {reads}] = {l.OutputWidth + reads}.");
            _offsets[k + 1] = _offsets[k] + l.OutputWidth;
        }
        var names = new HashSet<string>();
        foreach (var p in _layers.SelectMany(s => s.ParameterSpecs))
            if (!names.Add(p.Name)) throw new ArgumentException($"Recurrent block chain: parameter '{p.Name}' is declared by two layers.");
        InputWidth = inputWidth;
        int hsum = _hidden.Sum();
        if (initialStateName != null)
        {
            if (!names.Add(initialStateName)) throw new ArgumentException($"Recurrent block chain: the initial state '{initialStateName}' has the name of a layer parameter.");
            var shape = initialStateShape ?? (_layers.Length == 1 ? [hsum] : _hidden.Distinct().Count() == 1 ? [_layers.Length, _hidden[0]] : [hsum]);
            if (shape.Aggregate(1, (a, b) => a * b) != hsum)
                throw new ArgumentException($"Initial state '{initialStateName}' of shape [{string.Join(", ", shape)}] does not hold the {hsum} hidden units of {_layers.Length} layer(s) ({string.Join(" + ", _hidden)}).");
            InitialState = new ParameterSpec(initialStateName, shape);
        }
        ParameterSpecs = [.. _layers.SelectMany(s => s.ParameterSpecs), .. InitialState == null ? [] : new[] { InitialState }];
    }

    /// <summary>The chain of <paramref name="stack"/>: one <see cref="CellBlock"/> per layer, same names, same θ order, same h0.</summary>
    public static RecurrentBlockChain FromStack(RecurrentStack stack)
    {
        ArgumentNullException.ThrowIfNull(stack);
        var layers = stack.Cells.Select((c, k) => (StepBlock)new CellBlock(c, k, stack.Bias, stack.Prefix)).ToArray();
        return new RecurrentBlockChain(stack.Config.InputSize, layers, stack.InitialStateName, stack.InitialStateName == null ? null : stack.InitialStateShape);
    }

    /// <summary>Width of each input row.</summary>
    public int InputWidth { get; }
    /// <summary>The layers, bottom first.</summary>
    public IReadOnlyList<StepBlock> Layers => _layers;
    /// <summary>S: scalars of the chain state per (trial, time), every layer's state.</summary>
    public int StateWidth => _offsets[^1];
    /// <summary>Offset of layer k's state in the chain state.</summary>
    public int LayerOffset(int k) => _offsets[k];
    /// <summary>Width of layer k's hidden part (read by the layer above and set by h0).</summary>
    public int HiddenWidth(int k) => _hidden[k];
    /// <summary>The learnable initial state, or null when z_0 is fixed.</summary>
    public ParameterSpec? InitialState { get; }
    /// <summary>Every parameter: the layers' (bottom first, each in its own order), then h0.</summary>
    public IReadOnlyList<ParameterSpec> ParameterSpecs { get; }

    /// <summary>
    /// Fresh parameters from the key <c>RngKey.FromSeed(seed).Fold("init")</c>: every layer tensor
    /// uniform ±1/√H_k (PyTorch's recurrent default), h0 zero.
    /// </summary>
    public ParameterSet Initialize(int seed)
    {
        var rng = RngKey.FromSeed(seed).Fold("init").CreateRandom();
        var ps = new List<Parameter>();
        for (int k = 0; k < _layers.Length; k++)
        {
            double bound = 1.0 / Math.Sqrt(_hidden[k]);
            foreach (var spec in _layers[k].ParameterSpecs)
            {
                var data = new double[spec.Size];
                for (int i = 0; i < data.Length; i++) data[i] = (2 * rng.NextDouble() - 1) * bound;
                ps.Add(new Parameter(spec.Name, spec.Shape, data));
            }
        }
        if (InitialState != null) ps.Add(new Parameter(InitialState.Name, InitialState.Shape));
        return new ParameterSet(ps);
    }

    /// <summary>
    /// Runs the chain over <paramref name="inputs"/> (trial, time, input) with a snapshot of
    /// <paramref name="parameters"/> (exactly the chain's tensors, in any order; that order is θ's)
    /// from <paramref name="initialState"/> (trial, unit = <see cref="StateWidth"/>; null: h0 when
    /// learnable, else zero) and linearises it. The state is (trial, time, unit).
    /// </summary>
    public ChainLinearization Linearize(ParameterSet parameters, Tensor inputs, Tensor? initialState = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(inputs);
        var shape = inputs.Shape;
        if (shape.Rank != 3 || shape.Sizes[2] != InputWidth || shape.Sizes[0] < 1 || shape.Sizes[1] < 1)
            throw new ArgumentException($"Recurrent block chain: inputs must be (trial, time, input = {InputWidth}) with trial, time ≥ 1, got {shape}.");
        foreach (var p in parameters)
            if (!ParameterSpecs.Any(s => s.Name == p.Name))
                throw new ArgumentException($"Recurrent block chain: unexpected tensor '{p.Name}' {p.ShapeText} (expected: {string.Join(", ", ParameterSpecs.Select(s => s.Name))}).");
        foreach (var s in ParameterSpecs)
        {
            if (!parameters.Contains(s.Name))
                throw new ArgumentException($"Missing parameter '{s.Name}' of shape [{string.Join(", ", s.Shape)}].");
            if (!parameters[s.Name].Shape.SequenceEqual(s.Shape))
                throw new ArgumentException($"Parameter '{s.Name}' has shape {parameters[s.Name].ShapeText}, expected [{string.Join(", ", s.Shape)}].");
        }
        inputs.EnsureFinite($"inputs {shape}");
        parameters.EnsureFinite();
        int b = shape.Sizes[0];
        var z0 = new double[checked(b * StateWidth)];
        if (initialState != null)
        {
            if (InitialState != null)
                throw new ArgumentException($"This chain learns its initial state '{InitialState.Name}'; it takes no initial-state input.");
            if (initialState.Length != z0.Length)
                throw new ArgumentException($"Initial state {initialState.Shape} does not fit: expected (trial={b}, unit={StateWidth}).");
            initialState.EnsureFinite($"initial state {initialState.Shape}");
            initialState.Span.CopyTo(z0);
        }
        return new RecurrentBlockChainLinearization(this, parameters, inputs, z0);  // immutable: the set is the snapshot
    }
}

/// <summary>
/// A <see cref="RecurrentBlockChain"/> linearised on one batch: one trace per (time, layer) on the
/// B trials, and the state-space maps derived from them. In a block of vectors the rows of one
/// (time, layer) are gathered into [count·B, width], so each block map runs once per step and
/// layer on the whole block (one GEMM per weight for a cell block).
/// </summary>
internal sealed class RecurrentBlockChainLinearization : ChainLinearization
{
    private readonly RecurrentBlockChain _chain;
    private readonly ParameterSet _params;
    private readonly StepBlock[] _layers;
    private readonly int _b, _t, _l, _s;
    private readonly int[] _off, _sc, _hw, _win;
    private readonly double[] _z, _z0;
    private readonly BlockTrace[][] _traces;       // [time][layer]
    private readonly int[][] _paramIndex;          // per layer: indices in _params of its ParameterSpecs
    private readonly int _h0Index;                 // index of h0 in _params, or −1
    private readonly Lazy<WeightSite[]> _sites;
    private readonly Lazy<(int[] Covered, bool[] RestLayers, bool RestH0)> _split;

    public RecurrentBlockChainLinearization(RecurrentBlockChain chain, ParameterSet snapshot, Tensor inputs, double[] z0)
    {
        _chain = chain; _params = snapshot;
        _layers = chain.Layers.ToArray();
        _b = inputs.Shape.Sizes[0]; _t = inputs.Shape.Sizes[1]; _l = _layers.Length; _s = chain.StateWidth;
        _off = Enumerable.Range(0, _l).Select(chain.LayerOffset).ToArray();
        _sc = _layers.Select(x => x.OutputWidth).ToArray();
        _hw = Enumerable.Range(0, _l).Select(chain.HiddenWidth).ToArray();
        _win = _layers.Select(x => x.InputWidth).ToArray();
        StateShape = new AxisShape(("trial", _b), ("time", _t), ("unit", _s));
        _paramIndex = _layers.Select(x => x.ParameterSpecs.Select(p => snapshot.IndexOf(p.Name)).ToArray()).ToArray();
        _h0Index = chain.InitialState == null ? -1 : snapshot.IndexOf(chain.InitialState.Name);
        _z0 = z0;
        if (_h0Index >= 0)
        {
            // z_{−1} = [h0_0; (c = 0); h0_1; …] for every trial.
            var h0 = snapshot[_h0Index].Data;
            for (int bb = 0; bb < _b; bb++)
                for (int k = 0, o = 0; k < _l; o += _hw[k], k++) h0.AsSpan(o, _hw[k]).CopyTo(_z0.AsSpan(bb * _s + _off[k], _hw[k]));
        }
        _z = new double[checked(_b * _t * _s)];
        _traces = new BlockTrace[_t][];
        var x = inputs.Span;
        int n = chain.InputWidth;
        for (int t = 0; t < _t; t++)
        {
            _traces[t] = new BlockTrace[_l];
            for (int k = 0; k < _l; k++)
            {
                var rowsIn = new double[_b * _win[k]];
                var rowsOut = new double[_b * _sc[k]];
                for (int bb = 0; bb < _b; bb++)
                {
                    var dst = rowsIn.AsSpan(bb * _win[k], _win[k]);
                    (t == 0 ? _z0.AsSpan(bb * _s + _off[k], _sc[k]) : _z.AsSpan(((bb * _t) + t - 1) * _s + _off[k], _sc[k])).CopyTo(dst);
                    (k == 0 ? x.Slice((bb * _t + t) * n, n) : _z.AsSpan((bb * _t + t) * _s + _off[k - 1], _hw[k - 1])).CopyTo(dst[_sc[k]..]);
                }
                _traces[t][k] = _layers[k].Forward(snapshot, rowsIn, _b, rowsOut);
                for (int bb = 0; bb < _b; bb++) rowsOut.AsSpan(bb * _sc[k], _sc[k]).CopyTo(_z.AsSpan((bb * _t + t) * _s + _off[k], _sc[k]));
            }
        }
        Numerics.EnsureFinite(_z, $"recurrent block-chain states {StateShape} (forward pass overflowed)");
        _sites = new Lazy<WeightSite[]>(BuildSites);
        _split = new(SplitParameters);
    }

    public override AxisShape StateShape { get; }
    public override ParameterSet Parameters => _params;
    public override ReadOnlyMemory<double> States => _z;
    public override IReadOnlyList<WeightSite> Sites => _sites.Value;

    /// <summary>Offset of vector j, trial b, time t in a block of state vectors (row r = j·B + b).</summary>
    private int At(int r, int t) => (r * _t + t) * _s;

    /// <summary>
    /// y[r, layers from..] = the same-step response of layers from..L−1 when layer <paramref name="from"/>'s
    /// state changes by y[r, layer from] (already in y): each layer above reads the new h below.
    /// </summary>
    private void PropagateUp(int t, int from, Span<double> y, int count)
    {
        int rows = count * _b;
        for (int k = from + 1; k < _l; k++)
        {
            int w = _hw[k - 1];
            using var inb = new BlockBuffer((long)rows * w);
            using var outb = new BlockBuffer((long)rows * _sc[k]);
            var input = inb.Span;
            for (int r = 0; r < rows; r++) y.Slice(r * _s + _off[k - 1], w).CopyTo(input.Slice(r * w, w));
            _traces[t][k].JvpPart(_sc[k], w, input, outb.Span, count);
            for (int r = 0; r < rows; r++) outb.Span.Slice(r * _sc[k], _sc[k]).CopyTo(y.Slice(r * _s + _off[k], _sc[k]));
        }
    }

    /// <summary>
    /// The adjoint of <see cref="PropagateUp"/> from the top down to layer <paramref name="to"/>:
    /// returns in qk [count·B, S_to] the cotangent of layer <paramref name="to"/>'s state, q's own
    /// plus what the layers above send down (q rows read at step t of a full-state block).
    /// </summary>
    private void PropagateDown(int t, int to, ReadOnlySpan<double> q, Span<double> qk, int count)
    {
        int rows = count * _b;
        using var carryb = new BlockBuffer((long)rows * Math.Max(1, _hw.Max()));
        var carry = carryb.Span;
        for (int k = _l - 1; k >= to; k--)
        {
            using var qb = new BlockBuffer((long)rows * _sc[k]);
            var qq = k == to ? qk : qb.Span;
            for (int r = 0; r < rows; r++)
            {
                var d = qq.Slice(r * _sc[k], _sc[k]);
                q.Slice(At(r, t) + _off[k], _sc[k]).CopyTo(d);
                if (k < _l - 1) TensorPrimitives.Add(d[.._hw[k]], carry.Slice(r * _hw[k], _hw[k]), d[.._hw[k]]);
            }
            if (k == to) return;
            _traces[t][k].VjpPart(_sc[k], _hw[k - 1], qq, carry, count);
        }
    }

    public override void StateJvpAdd(int step, ReadOnlySpan<double> src, Span<double> dst, int count, double alpha = 1.0)
    {
        CheckStep(step, "StateJvpAdd");
        CheckStateBlocks(src.Length, dst.Length, count, "StateJvpAdd");
        if (count == 0) return;
        int rows = count * _b, t = step;
        using var yb = new BlockBuffer((long)rows * _s);
        var y = yb.Span;
        for (int k = 0; k < _l; k++)
        {
            int w = k == 0 ? _sc[0] : _win[k];   // x is fixed: layer 0 sees its state part only
            using var inb = new BlockBuffer((long)rows * w);
            using var outb = new BlockBuffer((long)rows * _sc[k]);
            var input = inb.Span;
            for (int r = 0; r < rows; r++)
            {
                var d = input.Slice(r * w, w);
                src.Slice(At(r, t - 1) + _off[k], _sc[k]).CopyTo(d);
                if (k > 0) y.Slice(r * _s + _off[k - 1], _hw[k - 1]).CopyTo(d[_sc[k]..]);
            }
            if (k == 0) _traces[t][0].JvpPart(0, w, input, outb.Span, count);
            else _traces[t][k].Jvp(input, outb.Span, count);
            for (int r = 0; r < rows; r++) outb.Span.Slice(r * _sc[k], _sc[k]).CopyTo(y.Slice(r * _s + _off[k], _sc[k]));
        }
        for (int r = 0; r < rows; r++)
        {
            var d = dst.Slice(At(r, t), _s);
            TensorPrimitives.MultiplyAdd(y.Slice(r * _s, _s), alpha, d, d);
        }
    }

    public override void StateVjpAdd(int step, ReadOnlySpan<double> src, Span<double> dst, int count, double alpha = 1.0)
    {
        CheckStep(step, "StateVjpAdd");
        CheckStateBlocks(src.Length, dst.Length, count, "StateVjpAdd");
        if (count == 0) return;
        int rows = count * _b, t = step;
        using var ob = new BlockBuffer((long)rows * _s);
        using var carryb = new BlockBuffer((long)rows * Math.Max(1, _hw.Max()));
        var o = ob.Span; var carry = carryb.Span;
        for (int k = _l - 1; k >= 0; k--)
        {
            int w = k == 0 ? _sc[0] : _win[k];   // layer 0's x part is not wanted
            using var qb = new BlockBuffer((long)rows * _sc[k]);
            using var dinb = new BlockBuffer((long)rows * w);
            var q = qb.Span; var din = dinb.Span;
            for (int r = 0; r < rows; r++)
            {
                var d = q.Slice(r * _sc[k], _sc[k]);
                src.Slice(At(r, t) + _off[k], _sc[k]).CopyTo(d);
                if (k < _l - 1) TensorPrimitives.Add(d[.._hw[k]], carry.Slice(r * _hw[k], _hw[k]), d[.._hw[k]]);
            }
            if (k == 0) _traces[t][0].VjpPart(0, w, q, din, count);
            else _traces[t][k].Vjp(q, din, count);
            for (int r = 0; r < rows; r++)
            {
                din.Slice(r * w, _sc[k]).CopyTo(o.Slice(r * _s + _off[k], _sc[k]));
                if (k > 0) din.Slice(r * w + _sc[k], _hw[k - 1]).CopyTo(carry.Slice(r * _hw[k - 1], _hw[k - 1]));
            }
        }
        for (int r = 0; r < rows; r++)
        {
            var d = dst.Slice(At(r, t - 1), _s);
            TensorPrimitives.MultiplyAdd(o.Slice(r * _s, _s), alpha, d, d);
        }
    }

    /// <summary>J_θ δθ step by step: each layer's own ∂f/∂θ, carried up through the layers above (see <see cref="ParamJvpCore"/>).</summary>
    public override void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> result, int count) =>
        ParamJvpCore(dTheta, result, count, Enumerable.Repeat(true, _l).ToArray(), _h0Index >= 0);

    /// <summary>
    /// J_θ* q = Σ_s (D_s* q)ᵀ Û_s + J_rest* q (docs/math.md#kronecker-core): a site's gradient is one
    /// GEMM over all B·T rows (not T GEMMs over B rows); only the tensors in no site (h0, or e.g. a
    /// LayerNorm inside a layer) go step by step.
    /// </summary>
    public override void ParamVjp(ReadOnlySpan<double> q, Span<double> dTheta, int count)
    {
        int m = _params.TotalSize;
        CheckParamVjp(q.Length, dTheta.Length, count);
        var (covered, restLayers, restH0) = _split.Value;
        // Step by step for the rest only; the covered tensors are then replaced by their site gradients.
        ParamVjpCore(q, dTheta, count, restLayers, restH0);
        for (int j = 0; j < count; j++)
            foreach (int i in covered) dTheta.Slice(j * m + _params.OffsetOf(i), _params[i].Size).Clear();
        foreach (var site in Sites) SiteVjpAdd(site, q, dTheta, count);
    }

    /// <summary>The tensors some site covers, and which layers (and h0) own a tensor no site covers.</summary>
    private (int[] Covered, bool[] RestLayers, bool RestH0) SplitParameters()
    {
        var covered = Sites.SelectMany(st => st.WeightParameters.Concat(st.BiasParameters)).Select(_params.IndexOf).Distinct().ToArray();
        var rest = Enumerable.Range(0, _params.Count).Except(covered).ToArray();
        var (layers, h0) = Active(rest);
        return (covered, layers, h0);
    }

    /// <summary>Vectors of a site-sized block [count, rows, OutDim] done at once (64 MiB of scratch at most).</summary>
    private static int SiteChunk(WeightSite site, int count) =>
        (int)Math.Clamp((1L << 23) / Math.Max(1L, (long)site.Rows * site.OutDim), 1, Math.Max(1, count));

    /// <summary>
    /// Visits Ŵ_s = [W_1 … W_w, b_1 … b_nb] of a site as (θ offset, columns, column in Û): a weight
    /// tensor [OutDim, w] is a column block, a bias one column.
    /// </summary>
    private IEnumerable<(int Offset, int Columns, int Column)> SiteBlocks(WeightSite site)
    {
        int col = 0;
        foreach (var w in site.WeightParameters)
        {
            int i = _params.IndexOf(w), cols = _params[i].Shape[1];
            yield return (_params.OffsetOf(i), cols, col);
            col += cols;
        }
        foreach (var b in site.BiasParameters) yield return (_params.OffsetOf(_params.IndexOf(b)), 1, col++);
    }

    /// <summary>dθ += (D_s* q)ᵀ Û scattered into the site's tensors, for every vector.</summary>
    private void SiteVjpAdd(WeightSite site, ReadOnlySpan<double> q, Span<double> dTheta, int count)
    {
        int m = _params.TotalSize, size = StateShape.Size, n = site.Rows, od = site.OutDim, aw = site.AugmentedWidth;
        int chunk = SiteChunk(site, count);
        using var wb = new BlockBuffer((long)od * aw);
        using var ab = new BlockBuffer((long)chunk * n * od);
        var w = wb.Span; var a = ab.Span;
        var u = site.Variables.Span;
        var blocks = SiteBlocks(site).ToArray();
        for (int j0 = 0; j0 < count; j0 += chunk)
        {
            int cs = Math.Min(chunk, count - j0);
            site.ApplyDAdjoint(q.Slice(j0 * size, cs * size), a[..(cs * n * od)], cs);
            for (int j = 0; j < cs; j++)
            {
                Gemm.Multiply(Trans.Yes, Trans.No, od, aw, n, 1.0, a.Slice(j * n * od, n * od), od, u, aw, 0.0, w, aw);
                var th = dTheta.Slice((j0 + j) * m, m);
                foreach (var (off, cols, col) in blocks)
                    for (int o = 0; o < od; o++)
                    {
                        var d = th.Slice(off + o * cols, cols);
                        TensorPrimitives.Add(d, w.Slice(o * aw + col, cols), d);
                    }
            }
        }
    }

    /// <summary>Which layers (and h0) own a tensor of the subset: only those contribute to J_θ E.</summary>
    private (bool[] Layers, bool H0) Active(IReadOnlyList<int> parameterIndices)
    {
        var set = parameterIndices.ToHashSet();
        return (_paramIndex.Select(ix => ix.Any(set.Contains)).ToArray(), _h0Index >= 0 && set.Contains(_h0Index));
    }

    /// <inheritdoc/>
    /// <remarks>Only the layers that own a tensor of the subset run (the h0-only J_rest term: step 0 only).</remarks>
    public override void ParamJvpSubset(IReadOnlyList<int> parameterIndices, ReadOnlySpan<double> dThetaSubset, Span<double> result, int count)
    {
        var offsets = SubsetLayout(parameterIndices, out int sub);
        int m = _params.TotalSize;
        using var full = new BlockBuffer((long)count * m);
        var f = full.Span;
        f.Clear();
        for (int j = 0; j < count; j++)
            for (int i = 0; i < _params.Count; i++)
                if (offsets[i] >= 0) dThetaSubset.Slice(j * sub + offsets[i], _params[i].Size).CopyTo(f.Slice(j * m + _params.OffsetOf(i), _params[i].Size));
        var (layers, h0) = Active(parameterIndices);
        ParamJvpCore(f, result, count, layers, h0);
    }

    /// <inheritdoc/>
    public override void ParamVjpSubset(IReadOnlyList<int> parameterIndices, ReadOnlySpan<double> q, Span<double> dThetaSubset, int count)
    {
        var offsets = SubsetLayout(parameterIndices, out int sub);
        int m = _params.TotalSize;
        using var full = new BlockBuffer((long)count * m);
        var f = full.Span;
        var (layers, h0) = Active(parameterIndices);
        ParamVjpCore(q, f, count, layers, h0);
        for (int j = 0; j < count; j++)
            for (int i = 0; i < _params.Count; i++)
                if (offsets[i] >= 0) f.Slice(j * m + _params.OffsetOf(i), _params[i].Size).CopyTo(dThetaSubset.Slice(j * sub + offsets[i], _params[i].Size));
    }

    /// <summary>
    /// J_θ δθ at every step with z_{t−1} held fixed: each layer's own ∂f/∂θ, carried up through the
    /// layers above at the same step; a learnable h0 enters as A_0 [δh0; 0] at step 0. Layers not
    /// <paramref name="active"/> have δθ = 0 (skipped).
    /// </summary>
    private void ParamJvpCore(ReadOnlySpan<double> dTheta, Span<double> result, int count, bool[] active, bool h0Active)
    {
        int m = _params.TotalSize, size = StateShape.Size, rows = count * _b;
        CheckParamJvp(dTheta.Length, result.Length, count);
        result[..(count * size)].Clear();
        if (count == 0) return;
        var compact = new double[_l][];
        for (int k = 0; k < _l; k++)
            if (active[k]) compact[k] = Compact(dTheta, k, count);
        using var yb = new BlockBuffer((long)rows * _s);
        var y = yb.Span;
        for (int t = 0; t < _t; t++)
        {
            bool init = t == 0 && h0Active;
            if (!init && !active.Any(a => a)) break;
            y.Clear();
            bool below = false;   // whether layer k−1's row in y is non-zero
            for (int k = 0; k < _l; k++)
            {
                if (!active[k] && !init && !below) continue;
                using var outb = new BlockBuffer((long)rows * _sc[k]);
                var o = outb.Span;
                if (active[k]) _traces[t][k].ParamJvp(compact[k], o, count);
                else o.Clear();
                if (init || below)
                {
                    // The row [δz_prev, δx]: δz_prev = [δh0; 0] at step 0, δx = the new δh below.
                    int from = init ? 0 : _sc[k], w = (below ? _win[k] : _sc[k]) - from;
                    using var inb = new BlockBuffer((long)rows * w);
                    using var tb = new BlockBuffer((long)rows * _sc[k]);
                    var input = inb.Span;
                    input.Clear();
                    for (int r = 0; r < rows; r++)
                    {
                        var d = input.Slice(r * w, w);
                        if (init) dTheta.Slice((r / _b) * m + _params.OffsetOf(_h0Index) + H0Offset(k), _hw[k]).CopyTo(d);
                        if (below) y.Slice(r * _s + _off[k - 1], _hw[k - 1]).CopyTo(d[(_sc[k] - from)..]);
                    }
                    if (init && below) _traces[t][k].Jvp(input, tb.Span, count);
                    else _traces[t][k].JvpPart(from, w, input, tb.Span, count);
                    TensorPrimitives.Add(o, tb.Span, o);
                }
                for (int r = 0; r < rows; r++) o.Slice(r * _sc[k], _sc[k]).CopyTo(y.Slice(r * _s + _off[k], _sc[k]));
                below = true;
            }
            for (int r = 0; r < rows; r++) y.Slice(r * _s, _s).CopyTo(result.Slice(At(r, t), _s));
        }
    }

    /// <summary>The adjoint of <see cref="ParamJvpCore"/>: dθ = Σ_t (∂f_t/∂θ)ᵀ q_t, summed over trials.</summary>
    private void ParamVjpCore(ReadOnlySpan<double> q, Span<double> dTheta, int count, bool[] active, bool h0Active)
    {
        int m = _params.TotalSize, size = StateShape.Size, rows = count * _b;
        CheckParamVjp(q.Length, dTheta.Length, count);
        dTheta[..(count * m)].Clear();
        if (count == 0) return;
        int lowest = Array.IndexOf(active, true);
        using var carryb = new BlockBuffer((long)rows * Math.Max(1, _hw.Max()));
        var carry = carryb.Span;
        for (int t = 0; t < _t; t++)
        {
            bool init = t == 0 && h0Active;
            if (!init && lowest < 0) break;
            int bottom = init ? 0 : lowest;   // layers below this one receive nothing
            for (int k = _l - 1; k >= bottom; k--)
            {
                using var qb = new BlockBuffer((long)rows * _sc[k]);
                var qk = qb.Span;
                for (int r = 0; r < rows; r++)
                {
                    var d = qk.Slice(r * _sc[k], _sc[k]);
                    q.Slice(At(r, t) + _off[k], _sc[k]).CopyTo(d);
                    if (k < _l - 1) TensorPrimitives.Add(d[.._hw[k]], carry.Slice(r * _hw[k], _hw[k]), d[.._hw[k]]);
                }
                if (active[k])
                {
                    int mk = _layers[k].ParameterSize;
                    using var dk = new BlockBuffer((long)count * mk);
                    _traces[t][k].ParamVjp(qk, dk.Span, count);
                    Expand(dk.Span, k, count, dTheta);
                }
                if (k > bottom && !init) _traces[t][k].VjpPart(_sc[k], _hw[k - 1], qk, carry, count);   // only the carry down
                else if (init)
                {
                    using var dinb = new BlockBuffer((long)rows * _win[k]);
                    var din = dinb.Span;
                    _traces[t][k].Vjp(qk, din, count);
                    if (k > 0)
                        for (int r = 0; r < rows; r++) din.Slice(r * _win[k] + _sc[k], _hw[k - 1]).CopyTo(carry.Slice(r * _hw[k - 1], _hw[k - 1]));
                    if (init)
                        for (int r = 0; r < rows; r++)
                        {
                            var g = dTheta.Slice((r / _b) * m + _params.OffsetOf(_h0Index) + H0Offset(k), _hw[k]);
                            TensorPrimitives.Add(g, din.Slice(r * _win[k], _hw[k]), g);
                        }
                }
            }
        }
    }

    private int H0Offset(int k)
    {
        int o = 0;
        for (int i = 0; i < k; i++) o += _hw[i];
        return o;
    }

    /// <summary>Layer k's compact δθ [count, m_k] gathered from a full δθ block.</summary>
    private double[] Compact(ReadOnlySpan<double> dTheta, int k, int count)
    {
        int m = _params.TotalSize, mk = _layers[k].ParameterSize;
        var dk = new double[count * mk];
        for (int j = 0; j < count; j++)
        {
            int o = 0;
            foreach (int i in _paramIndex[k])
            {
                dTheta.Slice(j * m + _params.OffsetOf(i), _params[i].Size).CopyTo(dk.AsSpan(j * mk + o));
                o += _params[i].Size;
            }
        }
        return dk;
    }

    /// <summary>dθ += layer k's compact gradient dk [count, m_k].</summary>
    private void Expand(ReadOnlySpan<double> dk, int k, int count, Span<double> dTheta)
    {
        int m = _params.TotalSize, mk = _layers[k].ParameterSize;
        for (int j = 0; j < count; j++)
        {
            int o = 0;
            foreach (int i in _paramIndex[k])
            {
                var d = dTheta.Slice(j * m + _params.OffsetOf(i), _params[i].Size);
                TensorPrimitives.Add(d, dk.Slice(j * mk + o, d.Length), d);
                o += d.Length;
            }
        }
    }

    private WeightSite[] BuildSites()
    {
        var list = new List<WeightSite>();
        for (int k = 0; k < _l; k++)
        {
            var local = _traces[0][k].Sites;
            for (int i = 0; i < local.Count; i++) list.Add(new Site(this, k, i, local[i]));
        }
        return list.ToArray();
    }

    /// <summary>
    /// A layer's local site over every (trial, time) row b·T + t: Û is the steps' Û stacked, D maps
    /// row (b, t) through the block's own D and then up through the layers above at step t.
    /// </summary>
    private sealed class Site(RecurrentBlockChainLinearization lin, int k, int index, LocalSite first) : WeightSite
    {
        private readonly Lazy<double[]> _variables = new(() => lin.StackVariables(k, index, first));
        private readonly bool _rowLocal = first.RowLocal && lin._layers.Skip(k + 1).All(l => l.RowLocal);

        public override string Name => first.Name;
        public override IReadOnlyList<string> WeightParameters => first.Weights;
        public override IReadOnlyList<string> BiasParameters => first.Biases;
        public override int Rows => lin._b * lin._t;
        public override int Width => first.Width;
        public override int OutDim => first.OutDim;
        public override AxisShape RowShape { get; } = new(("trial", lin._b), ("time", lin._t));
        public override ReadOnlyMemory<double> Variables => _variables.Value;

        public override void ApplyDAdd(ReadOnlySpan<double> a, Span<double> dst, int count)
        {
            int rows = count * lin._b, od = OutDim, s = lin._s, t0 = lin._t;
            using var ab = new BlockBuffer((long)rows * od);
            using var ob = new BlockBuffer((long)rows * lin._sc[k]);
            using var yb = new BlockBuffer((long)rows * s);
            var at = ab.Span; var o = ob.Span; var y = yb.Span;
            for (int t = 0; t < t0; t++)
            {
                // Row (j, b) of step t is row j·B·T + b·T + t of a.
                for (int r = 0; r < rows; r++) a.Slice((r * t0 + t) * od, od).CopyTo(at.Slice(r * od, od));
                lin._traces[t][k].Sites[index].ApplyD(at, o, count);
                for (int r = 0; r < rows; r++) o.Slice(r * lin._sc[k], lin._sc[k]).CopyTo(y.Slice(r * s + lin._off[k], lin._sc[k]));
                lin.PropagateUp(t, k, y, count);
                int from = lin._off[k];
                for (int r = 0; r < rows; r++)
                {
                    var d = dst.Slice(lin.At(r, t) + from, s - from);
                    TensorPrimitives.Add(d, y.Slice(r * s + from, s - from), d);
                }
            }
        }

        public override void ApplyDAdjoint(ReadOnlySpan<double> q, Span<double> a, int count)
        {
            int rows = count * lin._b, od = OutDim, t0 = lin._t;
            using var ab = new BlockBuffer((long)rows * od);
            using var qb = new BlockBuffer((long)rows * lin._sc[k]);
            var at = ab.Span;
            for (int t = 0; t < t0; t++)
            {
                lin.PropagateDown(t, k, q, qb.Span, count);
                lin._traces[t][k].Sites[index].ApplyDAdjoint(qb.Span, at, count);
                for (int r = 0; r < rows; r++) at.Slice(r * od, od).CopyTo(a.Slice((r * t0 + t) * od, od));
            }
        }

        /// <summary>Row (b, t) reaches only layers k.. of state (b, t) when the blocks are row-local.</summary>
        public override bool TryGetRowSlice(int row, out int offset, out int length)
        {
            offset = 0; length = 0;
            if (!_rowLocal) return false;
            offset = row * lin._s + lin._off[k]; length = lin._s - lin._off[k];
            return true;
        }
    }

    /// <summary>Û of layer k's site <paramref name="index"/> at every (trial, time): row b·T + t is step t's row b.</summary>
    private double[] StackVariables(int k, int index, LocalSite first)
    {
        int aw = first.Width + first.Biases.Count;
        var u = new double[checked(_b * _t * aw)];
        for (int t = 0; t < _t; t++)
        {
            var v = _traces[t][k].Sites[index].Variables;
            for (int bb = 0; bb < _b; bb++) v.AsSpan(bb * aw, aw).CopyTo(u.AsSpan((bb * _t + t) * aw, aw));
        }
        return u;
    }
}
