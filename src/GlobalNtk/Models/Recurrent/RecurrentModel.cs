using GlobalNtk.Dense;
using GlobalNtk.Operators;
using Tensor = GlobalNtk.Dense.Tensor;

namespace GlobalNtk.Models.Recurrent;

/// <summary>
/// A recurrent network: one cell (<c>rnn-tanh | rnn-relu | gru | lstm | leaky-rnn</c>, docs/math.md#cells)
/// unrolled over time, plus a readout y = W_out h + b_out at every time step (on h only for the
/// LSTM), from an initial state that is zero or given.
/// </summary>
public sealed class RecurrentModel : IChainModel
{
    private double[]? _initialState;  // never written after construction

    private RecurrentModel(RecurrentConfig config, RecurrentStack stack, ParameterSet parameters, RecurrentCell? cell, Readout readout)
    {
        Config = config; Stack = stack; Parameters = parameters; _cell = cell; Readout = readout;
        AllParameters = new ParameterSet(parameters.Concat(readout.Parameters));
    }

    private readonly RecurrentCell? _cell;

    /// <summary>
    /// A freshly initialised model (PyTorch defaults, docs/math.md#cells): cell tensors uniform ±1/√H then
    /// readout as nn.Linear (±1/√H) on the top layer's h, all from the key
    /// <c>RngKey.FromSeed(config.Seed).Fold("init")</c>; every W_hh × gain; a learnable h0 starts at zero.
    /// </summary>
    public static RecurrentModel Create(RecurrentConfig config)
    {
        config.Validate();
        var rng = RngKey.FromSeed(config.Seed).Fold("init").CreateRandom();
        var stack = new RecurrentStack(config);
        var ps = stack.Initialize(rng);
        var readout = Readout.Initialize(config.HiddenSize, config.OutputSize, rng, featureOffset: TopOffset(config));
        return new RecurrentModel(config, stack, ps, config.IsPlainSingleLayer ? RecurrentCell.Create(config, ps) : null, readout);
    }

    /// <summary>Shorthand for <see cref="Create(RecurrentConfig)"/>.</summary>
    public static RecurrentModel Create(string arch, int inputSize, int hiddenSize, int outputSize, int seed = 0, double gain = 1.0) =>
        Create(new RecurrentConfig(arch, inputSize, hiddenSize, outputSize) { Seed = seed, Gain = gain });

    /// <summary>Offset of the top layer's h in the chain state (the readout's input).</summary>
    public static int TopOffset(RecurrentConfig config) => (config.Layers - 1) * config.LayerStateSize;

    /// <summary>
    /// A model over given tensors (e.g. from a checkpoint), in any order: the stack's
    /// (<c>rnn.weight_ih_l0</c>, …, see <see cref="RecurrentStack.ExpectedShapes"/>) and
    /// <c>readout.weight</c> [O, H], <c>readout.bias</c> [O] (optional: absent for nn.Linear(bias=False)). Every shape is checked against the
    /// config; a missing, extra or mis-shaped tensor throws a one-line error naming it and the
    /// expected shape; NaN/Inf throws <see cref="NonFiniteException"/> naming the tensor.
    /// The tensors are shared, not copied (they are immutable values).
    /// </summary>
    public static RecurrentModel FromParameters(RecurrentConfig config, IEnumerable<Parameter> parameters) =>
        FromParameters(config, parameters, RecurrentStack.DefaultPrefix, RecurrentStack.DefaultInitialStateName);

    /// <summary>
    /// As <see cref="FromParameters(RecurrentConfig, IEnumerable{Parameter})"/>, with the stack's
    /// tensors named under <paramref name="prefix"/> and a learnable h0 named
    /// <paramref name="initialStateName"/> (shape [L, H] or [H]).
    /// </summary>
    public static RecurrentModel FromParameters(RecurrentConfig config, IEnumerable<Parameter> parameters, string prefix, string? initialStateName)
    {
        config.Validate();
        var given = new Dictionary<string, Parameter>();
        foreach (var p in parameters)
            if (!given.TryAdd(p.Name, p)) throw new ArgumentException($"Tensor '{p.Name}' given twice.");
        int[]? h0Shape = initialStateName != null && given.TryGetValue(initialStateName, out var h0p) ? h0p.Shape : null;
        var stack = new RecurrentStack(config, prefix, initialStateName, h0Shape);
        var expected = stack.ExpectedShapes().ToList();
        expected.Add((Readout.WeightName, [config.OutputSize, config.HiddenSize]));
        // The readout bias is optional: without it the readout is nn.Linear(bias=False).
        bool readoutBias = given.ContainsKey(Readout.BiasName);
        if (readoutBias) expected.Add((Readout.BiasName, [config.OutputSize]));
        string context = $"arch {config.NormalizedArch}, layers {config.Layers}, input {config.InputSize}, hidden {config.HiddenSize}, output {config.OutputSize}";
        foreach (var name in given.Keys)
            if (!expected.Any(e => e.Name == name))
                throw new ArgumentException($"Unexpected tensor '{name}' {given[name].ShapeText} for {context} (expected: {string.Join(", ", expected.Select(e => e.Name))}).");
        foreach (var (name, shape) in expected)
        {
            if (!given.TryGetValue(name, out var p))
                throw new ArgumentException($"Missing tensor '{name}' (expected shape [{string.Join(", ", shape)}] for {context}).");
            if (!p.Shape.SequenceEqual(shape))
                throw new ArgumentException($"Tensor '{name}' has shape {p.ShapeText}, expected [{string.Join(", ", shape)}] ({context}).");
            Numerics.EnsureFinite(p.Data, $"tensor '{name}' {p.ShapeText}");
        }
        var ps = new ParameterSet(stack.ExpectedShapes().Select(e => given[e.Name]));
        bool plain = config.IsPlainSingleLayer && prefix == RecurrentStack.DefaultPrefix;
        var readout = new Readout(given[Readout.WeightName], readoutBias ? given[Readout.BiasName] : null, TopOffset(config));
        return new RecurrentModel(config, stack, ps, plain ? RecurrentCell.Create(config, ps) : null, readout);
    }

    /// <inheritdoc/>
    IChainModel IChainModel.WithParameters(ParameterSet allParameters) => WithParameters(allParameters);

    /// <summary>
    /// This net with new values for every tensor (names and shapes of <see cref="AllParameters"/>)
    /// and the same fixed initial state; this one is unchanged.
    /// </summary>
    public RecurrentModel WithParameters(ParameterSet allParameters)
    {
        AllParameters.RequireSameLayout(allParameters);
        var ps = allParameters.Take(Parameters);
        return new RecurrentModel(Config, Stack, ps, _cell == null ? null : RecurrentCell.Create(Config, ps), Readout.WithParameters(allParameters))
        {
            _initialState = _initialState,
        };
    }

    /// <summary>
    /// This net with the fixed initial state z_0 <paramref name="initialState"/> [S] shared by every
    /// trial (copied; null: zero); this one is unchanged. Not available when h0 is learnable.
    /// </summary>
    public RecurrentModel WithInitialState(double[]? initialState)
    {
        if (initialState != null)
        {
            if (Config.LearnInitialState)
                throw new ArgumentException($"This {Arch} model learns its initial state '{Stack.InitialStateName}'; give that parameter new values instead.");
            if (initialState.Length != StateSize)
                throw new ArgumentException($"Initial state has length {initialState.Length}, expected state size {StateSize} ({Arch}, hidden {HiddenSize}).");
            Numerics.EnsureFinite(initialState, "initial state");
        }
        return new RecurrentModel(Config, Stack, Parameters, _cell, Readout) { _initialState = (double[]?)initialState?.Clone() };
    }

    /// <summary>Architecture and hyper-parameters.</summary>
    public RecurrentConfig Config { get; }
    /// <summary>The layer layout and names (PyTorch's state-dict names).</summary>
    public RecurrentStack Stack { get; }
    /// <summary>
    /// The fused single-layer cell (its math and parameters) when the net is one biased layer
    /// with a fixed z_0; null otherwise (the stacked path serves it).
    /// </summary>
    public RecurrentCell? Cell => _cell;
    /// <summary>L.</summary>
    public int Layers => Config.Layers;
    /// <inheritdoc/>
    public Readout Readout { get; }
    /// <inheritdoc/>
    public string Arch => Config.NormalizedArch;
    /// <inheritdoc/>
    public ParameterSet Parameters { get; }
    /// <inheritdoc/>
    public ParameterSet AllParameters { get; }
    /// <inheritdoc/>
    public IReadOnlyDictionary<string, string> Metadata => Config.ToMetadata();
    /// <summary>N_in.</summary>
    public int InputSize => Config.InputSize;
    /// <summary>H.</summary>
    public int HiddenSize => Config.HiddenSize;
    /// <summary>S per (trial, time): every layer's state (2H per layer for the LSTM).</summary>
    public int StateSize => Config.StateSize;
    /// <summary>O.</summary>
    public int OutputSize => Config.OutputSize;

    /// <summary>
    /// Fixed initial state z_0 [S] shared by every trial (layer-major; LSTM: [h; c] per layer);
    /// empty means zero (see <see cref="WithInitialState"/>).
    /// </summary>
    public ReadOnlySpan<double> InitialState => _initialState;

    /// <summary>The input shape (trial, time, input) this model takes.</summary>
    public AxisShape InputShape(int trials, int steps) => new(("trial", trials), ("time", steps), ("input", InputSize));

    /// <inheritdoc/>
    ChainLinearization IChainModel.Linearize(Tensor inputs) => Linearize(inputs);

    /// <summary>Runs the net over inputs [trial, time, input] from its initial state and linearises it.</summary>
    public ChainLinearization Linearize(Tensor inputs) => Linearize(inputs, null);

    /// <summary>
    /// Runs the net over inputs [trial, time, input] from a per-trial initial state
    /// [trial, unit] (null: the learnable h0, <see cref="InitialState"/>, or zero), and linearises
    /// it. The linearisation holds a snapshot of the parameters.
    /// </summary>
    public ChainLinearization Linearize(Tensor inputs, Tensor? initialState) => Linearize(inputs, initialState, Precision.F64);

    /// <summary>
    /// Runs the net and returns a linearisation that computes in <paramref name="precision"/>
    /// (<see cref="Precision.F32"/>: float32 forward pass, caches and products; see <see cref="RecurrentLinearization"/>
    /// and, for stacked, bias-free or learnable-h0 nets, <see cref="StackedRecurrentLinearization"/>).
    /// </summary>
    public ChainLinearization Linearize(Tensor inputs, Precision precision) => Linearize(inputs, null, precision);

    /// <summary>As <see cref="Linearize(Tensor, Tensor?)"/>, computing in <paramref name="precision"/>.</summary>
    public ChainLinearization Linearize(Tensor inputs, Tensor? initialState, Precision precision)
    {
        var shape = inputs.Shape;
        if (shape.Rank != 3 || shape.Sizes[2] != InputSize || shape.Sizes[0] < 1 || shape.Sizes[1] < 1)
            throw new ArgumentException($"Inputs {shape} do not fit the {Arch} model: expected (trial, time, input={InputSize}) with trial, time ≥ 1.");
        inputs.EnsureFinite($"inputs {shape}");
        Parameters.EnsureFinite();
        int b = shape.Sizes[0];
        var z0 = new double[checked(b * StateSize)];
        if (initialState != null && Config.LearnInitialState)
            throw new ArgumentException($"This {Arch} model learns its initial state '{Stack.InitialStateName}'; it takes no initial-state input.");
        if (initialState != null)
        {
            if (initialState.Length != z0.Length)
                throw new ArgumentException($"Initial state {initialState.Shape} does not fit: expected (trial={b}, unit={StateSize}).");
            initialState.EnsureFinite($"initial state {initialState.Shape}");
            initialState.Span.CopyTo(z0);
        }
        else if (_initialState != null)
            for (int i = 0; i < b; i++) _initialState.CopyTo(z0, i * StateSize);
        else if (Config.LearnInitialState)
        {
            // z_0 = [h0_l0; (c = 0); h0_l1; …] for every trial.
            var h0 = Parameters[Stack.InitialStateName!].Data;
            int h = HiddenSize, sc = Config.LayerStateSize;
            for (int i = 0; i < b; i++)
                for (int k = 0; k < Layers; k++) h0.AsSpan(k * h, h).CopyTo(z0.AsSpan(i * StateSize + k * sc, h));
        }
        if (_cell != null) return new RecurrentLinearization(_cell, inputs, z0, precision);
        return new StackedRecurrentLinearization(Stack, Parameters, inputs, z0, precision);  // immutable: the set is the snapshot
    }

    /// <summary>The stacked (generic) linearisation even for a plain single-layer net (to compare with the fused path).</summary>
    internal ChainLinearization LinearizeStacked(Tensor inputs)
    {
        var z0 = new double[inputs.Shape.Sizes[0] * StateSize];
        if (_initialState != null) for (int i = 0; i < inputs.Shape.Sizes[0]; i++) _initialState.CopyTo(z0, i * StateSize);
        return new StackedRecurrentLinearization(Stack, Parameters, inputs, z0);  // immutable: the set is the snapshot
    }

    /// <summary>
    /// The same net as a generic <see cref="Blocks.RecurrentBlockChain"/> of <see cref="Blocks.CellBlock"/>s:
    /// the same tensor names, θ order and learnable h0.
    /// </summary>
    public Blocks.RecurrentBlockChain BlockChain => _blockChain ??= Blocks.RecurrentBlockChain.FromStack(Stack);
    private Blocks.RecurrentBlockChain? _blockChain;

    /// <summary>
    /// As <see cref="Linearize(Tensor, Tensor?)"/>, on the generic block path: every derivative map
    /// derived from the cell blocks' traces (docs/math.md#models-as-chains). Equal to the default
    /// (fused) linearisation to rounding; the fused paths stay the default because they were
    /// measured faster (<c>bench blocks rnn</c>).
    /// </summary>
    public ChainLinearization LinearizeBlocks(Tensor inputs, Tensor? initialState = null)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (initialState == null && _initialState != null && inputs.Shape.Rank == 3)
        {
            int b = inputs.Shape.Sizes[0];
            var z0 = new double[checked(b * StateSize)];
            for (int i = 0; i < b; i++) _initialState.CopyTo(z0, i * StateSize);
            initialState = new Tensor(z0, new AxisShape(("trial", b), ("unit", StateSize)));
        }
        return BlockChain.Linearize(Parameters, inputs, initialState);
    }

    /// <summary>The states (trial, time, unit) for inputs [trial, time, input].</summary>
    public Tensor Forward(Tensor inputs)
    {
        var lin = Linearize(inputs);
        return new Tensor(lin.States.ToArray(), lin.StateShape);
    }

    /// <summary>The outputs (trial, time, output) for inputs [trial, time, input].</summary>
    public Tensor Predict(Tensor inputs)
    {
        var lin = Linearize(inputs);
        return Readout.Forward(lin.States.Span, lin.StateShape);
    }
}
