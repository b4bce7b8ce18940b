using System.Runtime.InteropServices;
using GlobalNtk.Dense;
using GlobalNtk.Operators;

namespace GlobalNtk.Models.Blocks;

/// <summary>
/// A depth chain composed of step blocks (docs/math.md#models-as-chains): z_0 = f_0(x), z_k = f_k(z_{k−1}), one
/// <see cref="StepBlock"/> per step, each with its own weights. Every step maps rows of the same
/// width, so the state is [trial, layer, (row axes…), unit]. <see cref="Linearize(ParameterSet, Tensor)"/> derives the
/// whole <see cref="ChainLinearization"/> (A_k, J_θ, J_θ*, the weight sites and, through the
/// base class, the J_rest term) from the blocks.
/// </summary>
/// <example>
/// A two-layer tanh MLP with a bias-free second layer:
/// <code>
/// var chain = new BlockChain(inputWidth: 2,
///     new SequentialBlock(AffineBlock.Linear("layers.0", 2, 8), new ActivationBlock(8, Activation.Tanh)),
///     new SequentialBlock(AffineBlock.Linear("layers.1", 8, 8, bias: false), new ActivationBlock(8, Activation.Tanh)));
/// var lin = chain.Linearize(chain.Initialize(seed: 1), x);
/// </code>
/// </example>
public sealed class BlockChain
{
    private readonly StepBlock[] _steps;

    /// <summary>A chain of <paramref name="steps"/> on inputs of width <paramref name="inputWidth"/>.</summary>
    public BlockChain(int inputWidth, params StepBlock[] steps)
    {
        if (steps.Length == 0) throw new ArgumentException("A block chain needs at least one step.");
        if (steps[0].InputWidth != inputWidth)
            throw new ArgumentException($"Block chain: step 0 takes width {steps[0].InputWidth}, but the input width is {inputWidth}.");
        for (int k = 1; k < steps.Length; k++)
        {
            if (steps[k].InputWidth != steps[k - 1].OutputWidth)
                throw new ArgumentException($"Block chain: step {k} takes width {steps[k].InputWidth}, but step {k - 1} gives {steps[k - 1].OutputWidth}.");
            if (steps[k].OutputWidth != steps[0].OutputWidth)
                throw new ArgumentException($"Block chain: every step must give the same state width; step {k} gives {steps[k].OutputWidth}, step 0 {steps[0].OutputWidth}.");
        }
        var names = new HashSet<string>();
        foreach (var p in steps.SelectMany(s => s.ParameterSpecs))
            if (!names.Add(p.Name)) throw new ArgumentException($"Block chain: parameter '{p.Name}' is declared by two blocks (steps have their own weights).");
        InputWidth = inputWidth;
        _steps = steps;
    }

    /// <summary>Width of each input row.</summary>
    public int InputWidth { get; }
    /// <summary>Width of each state row.</summary>
    public int Width => _steps[0].OutputWidth;
    /// <summary>The step blocks.</summary>
    public IReadOnlyList<StepBlock> Steps => _steps;
    /// <summary>Every parameter of the chain, step by step.</summary>
    public IReadOnlyList<ParameterSpec> ParameterSpecs => _steps.SelectMany(s => s.ParameterSpecs).ToArray();

    /// <summary>
    /// Fresh parameters from the key <c>RngKey.FromSeed(seed).Fold("init")</c>: weights and biases
    /// uniform ±1/√fan_in (nn.Linear), LayerNorm γ = 1, β = 0 (nn.LayerNorm); attention as
    /// nn.MultiheadAttention (in_proj weight Xavier-uniform, in_proj and out_proj biases 0);
    /// embedding and learned positional tables N(0, 1) (nn.Embedding).
    /// </summary>
    public ParameterSet Initialize(int seed)
    {
        var rng = RngKey.FromSeed(seed).Fold("init").CreateRandom();
        var ps = new List<Parameter>();
        foreach (var spec in ParameterSpecs)
        {
            var data = new double[spec.Size];
            bool ln = spec.Shape.Length == 1 && _steps.Any(s => Find<LayerNormBlock>(s).Any(b => b.ParameterSpecs.Contains(spec)));
            var attn = _steps.SelectMany(Find<AttentionBlock>).FirstOrDefault(a => a.ParameterSpecs.Contains(spec));
            if (ln) { if (spec.Name.EndsWith(".weight", StringComparison.Ordinal)) Array.Fill(data, 1.0); }
            else if (attn != null)
            {
                // nn.MultiheadAttention._reset_parameters: xavier_uniform_(in_proj_weight), zero biases; out_proj.weight as nn.Linear.
                bool outWeight = spec == attn.OutProj.WeightSpec, inWeight = spec == attn.InProj.WeightSpec;
                double bound = inWeight ? Math.Sqrt(6.0 / (attn.Width + 3 * attn.Width)) : outWeight ? 1.0 / Math.Sqrt(attn.Width) : 0.0;
                if (bound > 0) for (int i = 0; i < data.Length; i++) data[i] = (2 * rng.NextDouble() - 1) * bound;
            }
            else if (_steps.Any(s => Find<EmbeddingBlock>(s).Concat<StepBlock>(Find<PositionalEncodingBlock>(s)).Any(b => b.ParameterSpecs.Contains(spec))))
                data = RandomProbes.Gaussian(rng, spec.Size);
            else
            {
                var owner = _steps.SelectMany(Find<AffineBlock>).First(a => a.ParameterSpecs.Contains(spec));
                double bound = 1.0 / Math.Sqrt(owner.InputWidth);
                for (int i = 0; i < data.Length; i++) data[i] = (2 * rng.NextDouble() - 1) * bound;
            }
            ps.Add(Parameter.Own(spec.Name, spec.Shape, data));
        }
        return new ParameterSet(ps);
    }

    private static IEnumerable<T> Find<T>(StepBlock b) where T : StepBlock => b switch
    {
        T t => [t],
        SequentialBlock s => s.Children.SelectMany(Find<T>),
        ResidualBlock r => Find<T>(r.Inner),
        AttentionBlock a => Find<T>(a.Inner),
        _ => [],
    };

    /// <summary>
    /// Runs the chain on <paramref name="inputs"/> — (trial, input) or (trial, row axes…, input),
    /// e.g. (sequence, token, input) — with a snapshot of <paramref name="parameters"/>, and
    /// linearises it. The state is (trial, layer, row axes…, unit).
    /// </summary>
    public ChainLinearization Linearize(ParameterSet parameters, Tensor inputs) => Linearize(parameters, inputs, Precision.F64);

    /// <summary>
    /// <see cref="Linearize(ParameterSet, Tensor)"/> computing in <paramref name="precision"/>:
    /// with <see cref="Precision.F32"/> every block's trace keeps float32 caches and runs float32
    /// products, and the forward pass keeps its rows float32 from block to block and from step to step
    /// (no float64 row scratch); the states are kept in float32
    /// (<see cref="ChainLinearization.StatesSingle"/>; <see cref="ChainLinearization.States"/> widens
    /// them on first use); the vectors the linearisation takes and returns are float64, except on its
    /// float32 state and parameter maps (which the NTK operators use for float32 blocks of vectors).
    /// </summary>
    /// <exception cref="NotSupportedException">A block of the chain has no path in <paramref name="precision"/> (the message names it).</exception>
    public ChainLinearization Linearize(ParameterSet parameters, Tensor inputs, Precision precision)
    {
        foreach (var step in _steps)
            if (!step.Supports(precision)) throw Unsupported(step, precision).Unsupported(precision);
        var shape = inputs.Shape;
        if (shape.Rank < 2 || shape.Sizes[^1] != InputWidth)
            throw new ArgumentException($"Block chain: inputs must be (trial, …, input) with input = {InputWidth}, got {shape}.");
        // Attention and positions group rows into sequences: their token count must be the inputs' last row axis.
        int? tokens = shape.Rank > 2 ? shape.Sizes[^2] : null;
        foreach (var (what, n) in _steps.SelectMany(s => Find<AttentionBlock>(s).Select(a => ($"attention '{a.Prefix}'", a.Tokens))
                     .Concat(Find<PositionalEncodingBlock>(s).Select(p => ("the positional encoding", p.Tokens)))))
            if (tokens != n)
                throw new ArgumentException($"Block chain: {what} works on sequences of {n} tokens, but the inputs {shape} have {(tokens is null ? "no token axis" : $"{tokens} tokens per sequence")}.");
        inputs.EnsureFinite($"inputs {shape}");
        parameters.EnsureFinite();
        return new BlockChainLinearization(this, parameters, inputs, precision); // immutable: the set is the snapshot
    }

    /// <summary>The innermost block under <paramref name="b"/> that refuses <paramref name="precision"/> (b itself if none of its children does).</summary>
    private static StepBlock Unsupported(StepBlock b, Precision precision)
    {
        var children = b switch
        {
            SequentialBlock s => s.Children,
            ResidualBlock r => [r.Inner],
            _ => (IReadOnlyList<StepBlock>)[],
        };
        var inner = children.FirstOrDefault(c => !c.Supports(precision));
        return inner == null ? b : Unsupported(inner, precision);
    }
}

/// <summary>
/// A <see cref="BlockChain"/> linearised on one batch: the traces of every step, and the
/// state-space maps derived from them. A step's rows are the (trial, row) pairs; in a block of
/// vectors the rows of one step are gathered into [count·B·R, width], so each block map runs once
/// per step on the whole block (one GEMM for an affine block).
/// </summary>
internal sealed class BlockChainLinearization : ChainLinearization
{
    private readonly BlockChain _chain;
    private readonly ParameterSet _params;
    private readonly int _b, _r, _t, _w;
    private readonly Trajectory _states;   // z, stored in the compute precision
    private readonly BlockTrace[] _traces;
    private readonly int[][] _paramIndex; // per step: indices in _params of its ParameterSpecs
    private readonly Lazy<WeightSite[]> _sites;
    private readonly AxisShape _rowShape;

    public BlockChainLinearization(BlockChain chain, ParameterSet snapshot, Tensor inputs, Precision precision = Precision.F64)
    {
        _chain = chain; _params = snapshot; Precision = precision;
        var shape = inputs.Shape;
        _b = shape.Sizes[0]; _t = chain.Steps.Count; _w = chain.Width;
        _r = 1;
        for (int i = 1; i < shape.Rank - 1; i++) _r = checked(_r * shape.Sizes[i]);
        var axes = new List<(string, int)> { (shape.Names[0], _b), ("layer", _t) };
        for (int i = 1; i < shape.Rank - 1; i++) axes.Add((shape.Names[i], shape.Sizes[i]));
        axes.Add((shape.Rank > 2 ? "feature" : "unit", _w));
        StateShape = new AxisShape(axes.ToArray());
        _rowShape = new AxisShape(axes.Where((_, i) => i != 1 && i != axes.Count - 1).ToArray());
        Trajectory states = precision == Precision.F32 ? new Trajectory<float>(StateShape.Size) : new Trajectory<double>(StateShape.Size);
        _states = states;
        _traces = new BlockTrace[_t];
        _paramIndex = chain.Steps.Select(s => s.ParameterSpecs.Select(p => snapshot.IndexOf(p.Name)).ToArray()).ToArray();
        int rows = _b * _r;
        if (states is Trajectory<double> z64)
        {
            double[] x = inputs.Span.ToArray(), y = new double[checked(rows * _w)];
            for (int k = 0; k < _t; k++)
            {
                _traces[k] = chain.Steps[k].Forward(snapshot, x, rows, y);
                Scatter(y, z64.Values, k, 1, 1.0, overwrite: true);
                (x, y) = (y, k == 0 ? new double[rows * _w] : x);
            }
        }
        else
        {
            // float32 rows from step to step (each step's output is its state, stored as is); the
            // first step reads the float64 inputs.
            var z32 = ((Trajectory<float>)states).Values;
            float[] x = new float[checked(rows * _w)], y = new float[rows * _w];
            _traces[0] = chain.Steps[0].Forward32(snapshot, inputs.Span, rows, y);
            ScatterCore<float, float>(y, z32, 0, 1, 1.0, overwrite: true);
            for (int k = 1; k < _t; k++)
            {
                (x, y) = (y, x);
                _traces[k] = chain.Steps[k].Forward32(snapshot, x, rows, y);
                ScatterCore<float, float>(y, z32, k, 1, 1.0, overwrite: true);
            }
        }
        states.EnsureFinite($"block-chain states {StateShape} (forward pass overflowed)");
        _sites = new Lazy<WeightSite[]>(BuildSites);
        long perVector = (long)rows * chain.Steps.Max(st => st.ScratchWidth);
        _chunk = (int)Math.Clamp(ScratchBudget / Math.Max(1, perVector), 1, int.MaxValue);
    }

    /// <summary>
    /// Doubles of one scratch row block: a block of vectors is cut into chunks of
    /// <see cref="_chunk"/> vectors so that the scratch memory of a step stays bounded.
    /// </summary>
    private const long ScratchBudget = 1L << 23;
    private readonly int _chunk;

    public override AxisShape StateShape { get; }
    public override Precision Precision { get; }
    public override ParameterSet Parameters => _params;
    /// <summary>
    /// The states in float64: on a float32 linearisation the float32 trajectory widened (exactly) on first
    /// use, so that the NTK operators on float32 blocks hold no float64 trajectory.
    /// </summary>
    public override ReadOnlyMemory<double> States => _states.Wide;
    /// <summary>The trajectory in float32 on a float32 linearisation (each step's float32 output rows), else empty.</summary>
    public override ReadOnlyMemory<float> StatesSingle => _states.Single;
    /// <summary>The stored trajectory (what <see cref="States"/> and <see cref="StatesSingle"/> read).</summary>
    internal Trajectory Trajectory => _states;
    public override IReadOnlyList<WeightSite> Sites => _sites.Value;

    private int Group => _r * _w; // scalars of one (vector, trial) at one step

    /// <summary>rows[j, b, :] = block[j, b, step, :] for j &lt; count.</summary>
    private void Gather(ReadOnlySpan<double> block, int step, int count, Span<double> rows) => GatherCore(block, step, count, rows);

    /// <summary>block[j, b, step, :] (+)= alpha · rows[j, b, :].</summary>
    private void Scatter(ReadOnlySpan<double> rows, Span<double> block, int step, int count, double alpha, bool overwrite = false) =>
        ScatterCore(rows, block, step, count, alpha, overwrite);

    /// <summary>rows[j, b, :] = (float)block[j, b, step, :] for j &lt; count.</summary>
    private void Gather32(ReadOnlySpan<double> block, int step, int count, Span<float> rows) => GatherCore(block, step, count, rows);

    /// <summary>block[j, b, step, :] += alpha · rows[j, b, :] (float32 rows, sums in float64).</summary>
    private void Scatter32(ReadOnlySpan<float> rows, Span<double> block, int step, int count, double alpha) =>
        ScatterCore(rows, block, step, count, alpha, false);

    /// <summary>block[j, b, step, :] += rows[j, b, :] for a float64 or float32 block (float32 rows).</summary>
    private void AddRows<T>(ReadOnlySpan<float> rows, Span<T> block, int step, int count) where T : unmanaged =>
        ScatterCore(rows, block, step, count, 1.0, false);

    /// <summary>rows[j, b, :] = block[j, b, step, :] (rounded to float32) from a float64 or float32 block.</summary>
    private void GatherRows<T>(ReadOnlySpan<T> block, int step, int count, Span<float> rows) where T : unmanaged =>
        GatherCore(block, step, count, rows);

    /// <summary>rows[j, b, :] = block[j, b, step, :] for float32 blocks.</summary>
    private void Gather(ReadOnlySpan<float> block, int step, int count, Span<float> rows) => GatherCore(block, step, count, rows);

    /// <summary>block[j, b, step, :] += alpha · rows[j, b, :] for float32 blocks.</summary>
    private void Scatter(ReadOnlySpan<float> rows, Span<float> block, int step, int count, float alpha) =>
        ScatterCore(rows, block, step, count, alpha, false);

    /// <summary>
    /// rows[j, b, :] = block[j, b, step, :] for j &lt; count (S, R: float or double; rounded when
    /// narrowing). The (vector, trial) groups are copied in parallel parts on large blocks: a
    /// state-sized memory pass that would otherwise run on one thread.
    /// </summary>
    private unsafe void GatherCore<S, R>(ReadOnlySpan<S> block, int step, int count, Span<R> rows) where S : unmanaged where R : unmanaged
    {
        int g = Group, t = _t, groups = count * _b;
        if (block.Length < (long)((groups - 1) * t + step + 1) * g || rows.Length < (long)groups * g)
            throw new ArgumentException($"Block chain: a block of {count} vectors does not fit the spans ({block.Length}, {rows.Length}).");
        fixed (S* pb = block) fixed (R* pr = rows)
        {
            nint ib = (nint)pb, ir = (nint)pr;
            Elementwise.For(groups, (long)groups * g, (j0, j1) =>
            {
                for (int jb = j0; jb < j1; jb++)
                {
                    var src = new ReadOnlySpan<S>((S*)ib + (long)(jb * t + step) * g, g);
                    var dst = new Span<R>((R*)ir + (long)jb * g, g);
                    if (typeof(S) == typeof(R)) MemoryMarshal.Cast<S, R>(src).CopyTo(dst);
                    else if (typeof(S) == typeof(double)) Float32.Narrow(MemoryMarshal.Cast<S, double>(src), MemoryMarshal.Cast<R, float>(dst));
                    else throw new NotSupportedException($"Block chain: no gather from {typeof(S).Name} to {typeof(R).Name}.");
                }
            });
        }
    }

    /// <summary>
    /// block[j, b, step, :] = rows[j, b, :] (<paramref name="overwrite"/>) or += alpha · rows[j, b, :]
    /// (R, S: float or double; float rows add into a double block widened, in float64), the groups in
    /// parallel parts on large blocks.
    /// </summary>
    private unsafe void ScatterCore<R, S>(ReadOnlySpan<R> rows, Span<S> block, int step, int count, double alpha, bool overwrite) where R : unmanaged where S : unmanaged
    {
        int g = Group, t = _t, groups = count * _b;
        if (block.Length < (long)((groups - 1) * t + step + 1) * g || rows.Length < (long)groups * g)
            throw new ArgumentException($"Block chain: a block of {count} vectors does not fit the spans ({rows.Length}, {block.Length}).");
        fixed (R* pr = rows) fixed (S* pb = block)
        {
            nint ib = (nint)pb, ir = (nint)pr;
            Elementwise.For(groups, (long)groups * g, (j0, j1) =>
            {
                for (int jb = j0; jb < j1; jb++)
                {
                    var src = new ReadOnlySpan<R>((R*)ir + (long)jb * g, g);
                    var dst = new Span<S>((S*)ib + (long)(jb * t + step) * g, g);
                    if (typeof(R) == typeof(S) && overwrite) MemoryMarshal.Cast<R, S>(src).CopyTo(dst);
                    else if (typeof(R) == typeof(double) && typeof(S) == typeof(double))
                    {
                        var d = MemoryMarshal.Cast<S, double>(dst);
                        System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(MemoryMarshal.Cast<R, double>(src), alpha, d, d);
                    }
                    else if (typeof(R) == typeof(float) && typeof(S) == typeof(float))
                    {
                        var d = MemoryMarshal.Cast<S, float>(dst);
                        System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(MemoryMarshal.Cast<R, float>(src), (float)alpha, d, d);
                    }
                    else if (typeof(R) == typeof(float) && typeof(S) == typeof(double) && !overwrite)
                        Float32.AddWidened(MemoryMarshal.Cast<R, float>(src), alpha, MemoryMarshal.Cast<S, double>(dst));
                    else throw new NotSupportedException($"Block chain: no scatter from {typeof(R).Name} to {typeof(S).Name}.");
                }
            });
        }
    }

    internal override bool HasSingleStateMaps => _single ??= Precision == Precision.F32 && _traces.Skip(1).All(t => t.IsSingle) && Sites.All(s => s.VariablesSingle.Length > 0);
    private bool? _single;

    internal override void StateJvpAdd(int step, ReadOnlySpan<float> src, Span<float> dst, int count, double alpha = 1.0) =>
        StateMapAdd(adjoint: false, step, src, dst, count, alpha);

    internal override void StateVjpAdd(int step, ReadOnlySpan<float> src, Span<float> dst, int count, double alpha = 1.0) =>
        StateMapAdd(adjoint: true, step, src, dst, count, alpha);

    /// <summary>
    /// On float32 blocks: dst += alpha · A_step src, from the rows of step − 1 into those of step, or
    /// (<paramref name="adjoint"/>) dst += alpha · A_stepᵀ src, from step into step − 1; in float32
    /// chunk by chunk when the step runs in float32, else the converting default.
    /// </summary>
    private void StateMapAdd(bool adjoint, int step, ReadOnlySpan<float> src, Span<float> dst, int count, double alpha)
    {
        string what = adjoint ? "StateVjpAdd" : "StateJvpAdd";
        CheckStep(step, what);
        if (!Single(step))
        {
            if (adjoint) base.StateVjpAdd(step, src, dst, count, alpha);
            else base.StateJvpAdd(step, src, dst, count, alpha);
            return;
        }
        int size = StateShape.Size, from = adjoint ? step : step - 1, to = adjoint ? step - 1 : step;
        for (int j0 = 0; j0 < count; j0 += _chunk)
        {
            int cs = Math.Min(_chunk, count - j0);
            long n = (long)cs * _b * Group;
            using var a = new Float32Buffer(n); using var b = new Float32Buffer(n);
            Gather(src[(j0 * size)..], from, cs, a.Span);
            if (adjoint) _traces[step].Vjp32(a.Span, b.Span, cs);
            else _traces[step].Jvp32(a.Span, b.Span, cs);
            Scatter(b.Span, dst[(j0 * size)..], to, cs, (float)alpha);
        }
    }

    /// <summary>Whether step k's trace runs its input maps in float32 (a float32 linearisation): A_k then runs on float32 rows.</summary>
    private bool Single(int k) => _traces[k].IsSingle;

    public override void StateJvpAdd(int step, ReadOnlySpan<double> src, Span<double> dst, int count, double alpha = 1.0) =>
        StateMapAdd(adjoint: false, step, src, dst, count, alpha);

    public override void StateVjpAdd(int step, ReadOnlySpan<double> src, Span<double> dst, int count, double alpha = 1.0) =>
        StateMapAdd(adjoint: true, step, src, dst, count, alpha);

    /// <summary>
    /// dst += alpha · A_step src, from the rows of step − 1 into those of step, or (<paramref name="adjoint"/>)
    /// dst += alpha · A_stepᵀ src, from step into step − 1; at most a chunk of vectors at a time, through
    /// float32 rows (summed into dst in float64) when the step runs in float32.
    /// </summary>
    private void StateMapAdd(bool adjoint, int step, ReadOnlySpan<double> src, Span<double> dst, int count, double alpha)
    {
        CheckStep(step, adjoint ? "StateVjpAdd" : "StateJvpAdd");
        int size = StateShape.Size, from = adjoint ? step : step - 1, to = adjoint ? step - 1 : step;
        if (count > _chunk)
        {
            for (int j0 = 0; j0 < count; j0 += _chunk)
                StateMapAdd(adjoint, step, src[(j0 * size)..], dst[(j0 * size)..], Math.Min(_chunk, count - j0), alpha);
            return;
        }
        long n = (long)count * _b * Group;
        var trace = _traces[step];
        if (Single(step))
        {
            using var a32 = new Float32Buffer(n); using var b32 = new Float32Buffer(n);
            Gather32(src, from, count, a32.Span);
            if (adjoint) trace.Vjp32(a32.Span, b32.Span, count);
            else trace.Jvp32(a32.Span, b32.Span, count);
            Scatter32(b32.Span, dst, to, count, alpha);
            return;
        }
        using var a = new BlockBuffer(n); using var b = new BlockBuffer(n);
        Gather(src, from, count, a.Span);
        if (adjoint) trace.Vjp(a.Span, b.Span, count);
        else trace.Jvp(a.Span, b.Span, count);
        Scatter(b.Span, dst, to, count, alpha);
    }

    public override void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> result, int count) =>
        ParamJvpCore(FullLayout(), _params.TotalSize, dTheta, result, count);

    public override void ParamVjp(ReadOnlySpan<double> q, Span<double> dTheta, int count) =>
        ParamVjpCore(FullLayout(), _params.TotalSize, q, dTheta, count);

    /// <summary>
    /// Only the listed tensors are injected (e.g. the LayerNorm gains of the Kronecker core's
    /// J_rest term, docs/math.md#kronecker-core): steps without one are skipped, and inside a step
    /// the blocks without one (e.g. the weight sites' δW û products) are skipped too.
    /// </summary>
    public override void ParamJvpSubset(IReadOnlyList<int> parameterIndices, ReadOnlySpan<double> dThetaSubset, Span<double> result, int count) =>
        ParamJvpCore(SubsetLayout(parameterIndices, out int k), k, dThetaSubset, result, count);

    /// <inheritdoc/>
    public override void ParamVjpSubset(IReadOnlyList<int> parameterIndices, ReadOnlySpan<double> q, Span<double> dThetaSubset, int count) =>
        ParamVjpCore(SubsetLayout(parameterIndices, out int k), k, q, dThetaSubset, count);

    /// <summary>Step k's flags (one per parameter of the step: in <paramref name="layout"/> or not) and whether any is set.</summary>
    private bool[] Active(int[] layout, int k, out bool any)
    {
        var flags = _paramIndex[k].Select(i => layout[i] >= 0).ToArray();
        any = flags.Contains(true);
        return flags;
    }

    internal override bool HasSingleParamMaps => HasSingleStateMaps;

    /// <summary>
    /// J_θ on float32 blocks, step by step in float32 (<see cref="ParamJvpCore{T}"/>), so the generic
    /// K = J_θ J_θ* of a float32 linearisation keeps δθ and the state blocks in float32.
    /// </summary>
    internal override bool TryParamJvp(ReadOnlySpan<float> dTheta, Span<float> result, int count)
    {
        if (!HasSingleParamMaps) return false;
        CheckParamBlocks(dTheta.Length, result.Length, count, "TryParamJvp");
        ParamJvpCore(FullLayout(), _params.TotalSize, dTheta, result, count);
        return true;
    }

    /// <summary>J_θ* on float32 blocks, step by step in float32 (<see cref="ParamVjpCore{T}"/>).</summary>
    internal override bool TryParamVjp(ReadOnlySpan<float> q, Span<float> dTheta, int count)
    {
        if (!HasSingleParamMaps) return false;
        CheckParamBlocks(dTheta.Length, q.Length, count, "TryParamVjp");
        ParamVjpCore(FullLayout(), _params.TotalSize, q, dTheta, count);
        return true;
    }

    /// <summary>The restricted J_θ on float32 blocks (the Kronecker core's J_rest term): only the steps and blocks with a listed tensor run.</summary>
    internal override bool TryParamJvpSubset(IReadOnlyList<int> parameterIndices, ReadOnlySpan<float> dThetaSubset, Span<float> result, int count)
    {
        if (!HasSingleParamMaps) return false;
        var layout = SubsetLayout(parameterIndices, out int k);
        CheckParamBlocks(dThetaSubset.Length, result.Length, count, "TryParamJvpSubset", k);
        ParamJvpCore(layout, k, dThetaSubset, result, count);
        return true;
    }

    /// <summary>The restricted J_θ* on float32 blocks.</summary>
    internal override bool TryParamVjpSubset(IReadOnlyList<int> parameterIndices, ReadOnlySpan<float> q, Span<float> dThetaSubset, int count)
    {
        if (!HasSingleParamMaps) return false;
        var layout = SubsetLayout(parameterIndices, out int k);
        CheckParamBlocks(dThetaSubset.Length, q.Length, count, "TryParamVjpSubset", k);
        ParamVjpCore(layout, k, q, dThetaSubset, count);
        return true;
    }

    /// <summary>Throws when dθ (<paramref name="m"/> scalars per vector, default all of θ) and state blocks cannot hold <paramref name="count"/> vectors.</summary>
    private void CheckParamBlocks(int thetaLength, int stateLength, int count, string what, int m = -1)
    {
        if (m < 0) m = _params.TotalSize;
        if (count < 0 || thetaLength < (long)count * m || stateLength < (long)count * StateShape.Size)
            throw new ArgumentException($"Block chain {what}: blocks of {thetaLength} parameters / {stateLength} state values cannot hold {count} vectors of θ ({m}) / {StateShape}.");
    }

    /// <summary>
    /// J_θ over a δθ laid out by <paramref name="layout"/> (tensor offsets, −1 = absent; <paramref name="m"/> scalars per vector);
    /// T is double, or float on a float32 linearisation (each step through its float32 map).
    /// </summary>
    private void ParamJvpCore<T>(int[] layout, int m, ReadOnlySpan<T> dTheta, Span<T> result, int count) where T : unmanaged
    {
        int size = StateShape.Size;
        if (count > _chunk)
        {
            for (int j0 = 0; j0 < count; j0 += _chunk)
                ParamJvpCore(layout, m, dTheta[(j0 * m)..], result[(j0 * size)..], Math.Min(_chunk, count - j0));
            return;
        }
        result[..(count * size)].Clear();
        using var rows = new ScratchBlock<T>((long)count * _b * Group);
        for (int k = 0; k < _t; k++)
        {
            int mk = _chain.Steps[k].ParameterSize;
            var flags = Active(layout, k, out bool any);
            if (!any) continue;
            using var dk = new ScratchBlock<T>((long)count * mk);
            for (int j = 0; j < count; j++)
            {
                int o = 0;
                for (int p = 0; p < flags.Length; p++)
                {
                    int i = _paramIndex[k][p], n = _params[i].Size;
                    var d = dk.Span.Slice(j * mk + o, n);
                    if (flags[p]) dTheta.Slice(j * m + layout[i], n).CopyTo(d); else d.Clear();
                    o += n;
                }
            }
            if (typeof(T) == typeof(double)) _traces[k].ParamJvpActive(Cast<T, double>(dk.Span), Cast<T, double>(rows.Span), count, flags);
            else _traces[k].ParamJvpActive32(Cast<T, float>(dk.Span), Cast<T, float>(rows.Span), count, flags);
            ScatterCore<T, T>(rows.Span, result, k, count, 1.0, overwrite: true);
        }
    }

    /// <summary>J_θ* into a δθ laid out by <paramref name="layout"/> (the exact adjoint of <see cref="ParamJvpCore{T}"/>).</summary>
    private void ParamVjpCore<T>(int[] layout, int m, ReadOnlySpan<T> q, Span<T> dTheta, int count) where T : unmanaged
    {
        int size = StateShape.Size;
        if (count > _chunk)
        {
            for (int j0 = 0; j0 < count; j0 += _chunk)
                ParamVjpCore(layout, m, q[(j0 * size)..], dTheta[(j0 * m)..], Math.Min(_chunk, count - j0));
            return;
        }
        dTheta[..(count * m)].Clear();
        using var rows = new ScratchBlock<T>((long)count * _b * Group);
        for (int k = 0; k < _t; k++)
        {
            int mk = _chain.Steps[k].ParameterSize;
            var flags = Active(layout, k, out bool any);
            if (!any) continue;
            using var dk = new ScratchBlock<T>((long)count * mk);
            GatherCore<T, T>(q, k, count, rows.Span);
            if (typeof(T) == typeof(double)) _traces[k].ParamVjpActive(Cast<T, double>(rows.Span), Cast<T, double>(dk.Span), count, flags);
            else _traces[k].ParamVjpActive32(Cast<T, float>(rows.Span), Cast<T, float>(dk.Span), count, flags);
            for (int j = 0; j < count; j++)
            {
                int o = 0;
                for (int p = 0; p < flags.Length; p++)
                {
                    int i = _paramIndex[k][p], n = _params[i].Size;
                    if (flags[p]) AddInPlace(dTheta.Slice(j * m + layout[i], n), dk.Span.Slice(j * mk + o, n));
                    o += n;
                }
            }
        }
    }

    private static Span<TTo> Cast<TFrom, TTo>(Span<TFrom> x) where TFrom : unmanaged where TTo : unmanaged => MemoryMarshal.Cast<TFrom, TTo>(x);

    /// <summary>d += x elementwise (double or float).</summary>
    private static void AddInPlace<T>(Span<T> d, ReadOnlySpan<T> x) where T : unmanaged
    {
        if (typeof(T) == typeof(double))
        {
            var dd = MemoryMarshal.Cast<T, double>(d);
            System.Numerics.Tensors.TensorPrimitives.Add(dd, MemoryMarshal.Cast<T, double>(x), dd);
        }
        else
        {
            var df = MemoryMarshal.Cast<T, float>(d);
            System.Numerics.Tensors.TensorPrimitives.Add(df, MemoryMarshal.Cast<T, float>(x), df);
        }
    }

    internal override bool HasStepKernel => true;

    internal override bool TryAddStepKernel(ReadOnlySpan<double> x, Span<double> y, int count) { AddStepKernel(x, y, count); return true; }

    internal override bool TryAddStepKernel(ReadOnlySpan<float> x, Span<float> y, int count)
    {
        if (!HasSingleStateMaps) return false;
        AddStepKernel(x, y, count);
        return true;
    }

    /// <summary>
    /// y += Σ_k E_k J_θ,k J_θ,k* E_kᵀ x: per chunk of vectors and step, one cotangent sweep from the
    /// step's rows into every parameter of the step and one tangent sweep back (T: float on a
    /// float32 linearisation, each step natively in float32; double otherwise).
    /// </summary>
    private void AddStepKernel<T>(ReadOnlySpan<T> x, Span<T> y, int count) where T : unmanaged
    {
        // Half the linearisation's chunk: the sweeps nest several scratch blocks of count·rows·width
        // (measured on bench transformer: f64 peak 1471-1479 -> 1417 MB, f32 802 -> 712 MB, same CPU).
        int size = StateShape.Size, chunk = Math.Max(1, _chunk / 2);
        for (int j0 = 0; j0 < count; j0 += chunk)
        {
            int cs = Math.Min(chunk, count - j0);
            long n = (long)cs * _b * Group;
            using var rows = new ScratchBlock<T>(n);
            for (int k = 0; k < _t; k++)
            {
                int mk = _chain.Steps[k].ParameterSize;
                if (mk == 0) continue;
                using var dk = new ScratchBlock<T>((long)cs * mk);
                GatherSame(x[(j0 * size)..], k, cs, rows.Span);
                _traces[k].CotangentActive<T>(rows.Span, default, dk.Span, cs, default);
                _traces[k].TangentActive<T>(default, dk.Span, rows.Span, cs, default);
                AddRowsSame(rows.Span, y[(j0 * size)..], k, cs);
            }
        }
    }

    internal override bool TryApplyStateNtk(ReadOnlySpan<double> x, Span<double> y, int count) { ApplyStateNtk(x, y, count); return true; }

    internal override bool TryApplyStateNtk(ReadOnlySpan<float> x, Span<float> y, int count)
    {
        if (!HasSingleStateMaps) return false;
        ApplyStateNtk(x, y, count);
        return true;
    }

    /// <summary>
    /// y = P K P* x with K = Σ_k E_k J_θ,k J_θ,k* E_kᵀ, in place on y, per chunk of vectors: back
    /// through the steps, one cotangent sweep of w_k (complete once step k is reached) gives
    /// δθ_k = J_θ,k* w_k and A_kᵀ w_k, added into w_{k−1}; then forward, one tangent sweep gives
    /// v_k = A_k v_{k−1} + J_θ,k δθ_k over w_k (T: float on a float32 linearisation, else double).
    /// The same sums as P* (BPTT), the step kernel and P (docs/math.md#global-ntk).
    /// </summary>
    private void ApplyStateNtk<T>(ReadOnlySpan<T> x, Span<T> y, int count) where T : unmanaged
    {
        int size = StateShape.Size, chunk = Math.Max(1, _chunk / 2);
        var offsets = new int[_t + 1];
        for (int k = 0; k < _t; k++) offsets[k + 1] = offsets[k] + _chain.Steps[k].ParameterSize;
        int m = offsets[_t];
        x[..(count * size)].CopyTo(y);
        for (int j0 = 0; j0 < count; j0 += chunk)
        {
            int cs = Math.Min(chunk, count - j0);
            var yc = y[(j0 * size)..];
            long n = (long)cs * _b * Group;
            using var rows = new ScratchBlock<T>(n); using var inRows = new ScratchBlock<T>(n);
            using var dTheta = new ScratchBlock<T>((long)cs * m);
            for (int k = _t - 1; k >= 0; k--)
            {
                int mk = offsets[k + 1] - offsets[k];
                if (mk == 0 && k == 0) continue;
                GatherSame(yc, k, cs, rows.Span);
                _traces[k].CotangentActive<T>(rows.Span, k > 0 ? inRows.Span : default, dTheta.Span.Slice(cs * offsets[k], cs * mk), cs, default);
                if (k > 0) AddRowsSame(inRows.Span, yc, k - 1, cs);
            }
            for (int k = 0; k < _t; k++)
            {
                int mk = offsets[k + 1] - offsets[k];
                if (k > 0) GatherSame(yc, k - 1, cs, inRows.Span);
                _traces[k].TangentActive<T>(k > 0 ? inRows.Span : default, dTheta.Span.Slice(cs * offsets[k], cs * mk), rows.Span, cs, default);
                ScatterCore(rows.Span, yc, k, cs, 1.0, overwrite: true);
            }
        }
    }

    /// <summary>rows[j, b, :] = block[j, b, step, :] for a block and rows of one element type.</summary>
    private void GatherSame<T>(ReadOnlySpan<T> block, int step, int count, Span<T> rows) where T : unmanaged => GatherCore(block, step, count, rows);

    /// <summary>block[j, b, step, :] += rows[j, b, :] for a block and rows of one element type.</summary>
    private void AddRowsSame<T>(ReadOnlySpan<T> rows, Span<T> block, int step, int count) where T : unmanaged =>
        ScatterCore(rows, block, step, count, 1.0, false);

    private WeightSite[] BuildSites() =>
        Enumerable.Range(0, _t).SelectMany(k => _traces[k].Sites.Select(s => (WeightSite)new Site(this, k, s))).ToArray();

    /// <summary>A block's local site placed at step k of the state.</summary>
    private sealed class Site(BlockChainLinearization lin, int k, LocalSite s) : WeightSite
    {
        public override string Name => s.Name;
        public override IReadOnlyList<string> WeightParameters => s.Weights;
        public override IReadOnlyList<string> BiasParameters => s.Biases;
        public override int Rows => lin._b * lin._r;
        public override int Width => s.Width;
        public override int OutDim => s.OutDim;
        public override ReadOnlyMemory<double> Variables => s.Variables;
        public override ReadOnlyMemory<float> VariablesSingle => s.Variables32;
        public override AxisShape RowShape => lin._rowShape;
        public override int? StateStep => k;

        public override void ApplyDAdd(ReadOnlySpan<double> a, Span<double> dst, int count)
        {
            int n = Rows * OutDim, size = lin.StateShape.Size;
            if (count > lin._chunk)
            {
                for (int j0 = 0; j0 < count; j0 += lin._chunk)
                    ApplyDAdd(a[(j0 * n)..], dst[(j0 * size)..], Math.Min(lin._chunk, count - j0));
                return;
            }
            using var t = new BlockBuffer((long)count * lin._b * lin.Group);
            s.ApplyD(a, t.Span, count);
            lin.Scatter(t.Span, dst, k, count, 1.0);
        }

        public override void ApplyDAdjoint(ReadOnlySpan<double> q, Span<double> a, int count)
        {
            int n = Rows * OutDim, size = lin.StateShape.Size;
            if (count > lin._chunk)
            {
                for (int j0 = 0; j0 < count; j0 += lin._chunk)
                    ApplyDAdjoint(q[(j0 * size)..], a[(j0 * n)..], Math.Min(lin._chunk, count - j0));
                return;
            }
            using var t = new BlockBuffer((long)count * lin._b * lin.Group);
            lin.Gather(q, k, count, t.Span);
            s.ApplyDAdjoint(t.Span, a, count);
        }

        internal override bool TryApplyDAddSingle(ReadOnlySpan<float> a, Span<double> dst, int count) => DAddSingle(a, dst, count);
        internal override bool TryApplyDAdjointSingle(ReadOnlySpan<double> q, Span<float> a, int count) => DAdjointSingle(q, a, count);
        internal override bool TryApplyDAddSingle(ReadOnlySpan<float> a, Span<float> dst, int count) => DAddSingle(a, dst, count);
        internal override bool TryApplyDAdjointSingle(ReadOnlySpan<float> q, Span<float> a, int count) => DAdjointSingle(q, a, count);

        // The float32 D of the site added into a float64 or float32 state block, chunked through float32 rows.
        private bool DAddSingle<T>(ReadOnlySpan<float> a, Span<T> dst, int count) where T : unmanaged
        {
            if (s.ApplyD32 is not { } d32) return false;
            int n = Rows * OutDim, size = lin.StateShape.Size;
            for (int j0 = 0; j0 < count; j0 += lin._chunk)
            {
                int cs = Math.Min(lin._chunk, count - j0);
                using var t = new Float32Buffer((long)cs * lin._b * lin.Group);
                d32(a.Slice(j0 * n, cs * n), t.Span, cs);
                lin.AddRows(t.Span, dst[(j0 * size)..], k, cs);
            }
            return true;
        }

        // The float32 D* of the site from a float64 or float32 state block, chunked through float32 rows.
        private bool DAdjointSingle<T>(ReadOnlySpan<T> q, Span<float> a, int count) where T : unmanaged
        {
            if (s.ApplyDAdjoint32 is not { } da32) return false;
            int n = Rows * OutDim, size = lin.StateShape.Size;
            for (int j0 = 0; j0 < count; j0 += lin._chunk)
            {
                int cs = Math.Min(lin._chunk, count - j0);
                using var t = new Float32Buffer((long)cs * lin._b * lin.Group);
                lin.GatherRows(q[(j0 * size)..], k, cs, t.Span);
                da32(t.Span, a.Slice(j0 * n, cs * n), cs);
            }
            return true;
        }

        /// <summary>Row n = b·R + r lands in state (b, k, r, :) when D is row-local.</summary>
        public override bool TryGetRowSlice(int row, out int offset, out int length)
        {
            offset = 0; length = 0;
            if (!s.RowLocal) return false;
            int b = row / lin._r, r = row % lin._r;
            offset = (b * lin._t + k) * lin.Group + r * lin._w; length = lin._w;
            return true;
        }
    }
}
