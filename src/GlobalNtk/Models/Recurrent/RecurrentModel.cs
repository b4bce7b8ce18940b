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
    private double[]? _initialState;

    private RecurrentModel(RecurrentConfig config, RecurrentCell cell, Readout readout)
    {
        Config = config; Cell = cell; Readout = readout;
        AllParameters = new ParameterSet(cell.Parameters.Concat(readout.Parameters));
    }

    /// <summary>
    /// A freshly initialised model (PyTorch defaults, docs/math.md#cells): cell tensors uniform ±1/√H then
    /// readout as nn.Linear (±1/√H), all from the key <c>RngKey.FromSeed(config.Seed).Fold("init")</c>; W_hh × gain.
    /// </summary>
    public static RecurrentModel Create(RecurrentConfig config)
    {
        config.Validate();
        var rng = RngKey.FromSeed(config.Seed).Fold("init").CreateRandom();

        var cell = RecurrentCell.Create(config, RecurrentCell.Initialize(config, rng));
        return new RecurrentModel(config, cell, Readout.Initialize(config.HiddenSize, config.OutputSize, rng));
    }

    /// <summary>Shorthand for <see cref="Create(RecurrentConfig)"/>.</summary>
    public static RecurrentModel Create(string arch, int inputSize, int hiddenSize, int outputSize, int seed = 0, double gain = 1.0) =>
        Create(new RecurrentConfig(arch, inputSize, hiddenSize, outputSize) { Seed = seed, Gain = gain });

    /// <summary>
    /// A model over given tensors (e.g. from a checkpoint), in any order: the cell's
    /// (<c>rnn.weight_ih_l0</c>, …, see <see cref="RecurrentCell.ExpectedShapes"/>) and
    /// <c>readout.weight</c> [O, H], <c>readout.bias</c> [O]. Every shape is checked against the
    /// config; a missing, extra or mis-shaped tensor throws a one-line error naming it and the
    /// expected shape; NaN/Inf throws <see cref="NonFiniteException"/> naming the tensor.
    /// The tensors are owned by the model (not copied).
    /// </summary>
    public static RecurrentModel FromParameters(RecurrentConfig config, IEnumerable<Parameter> parameters)
    {
        config.Validate();
        var given = new Dictionary<string, Parameter>();
        foreach (var p in parameters)
            if (!given.TryAdd(p.Name, p)) throw new ArgumentException($"Tensor '{p.Name}' given twice.");
        var expected = RecurrentCell.ExpectedShapes(config).ToList();
        expected.Add((Readout.WeightName, [config.OutputSize, config.HiddenSize]));
        expected.Add((Readout.BiasName, [config.OutputSize]));
        string context = $"arch {config.NormalizedArch}, input {config.InputSize}, hidden {config.HiddenSize}, output {config.OutputSize}";
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
        var cellParams = new ParameterSet(RecurrentCell.ExpectedShapes(config).Select(e => given[e.Name]));
        var cell = RecurrentCell.Create(config, cellParams);
        return new RecurrentModel(config, cell, new Readout(given[Readout.WeightName], given[Readout.BiasName]));
    }

    /// <summary>Architecture and hyper-parameters.</summary>
    public RecurrentConfig Config { get; }
    /// <summary>The cell (its math and parameters).</summary>
    public RecurrentCell Cell { get; }
    /// <inheritdoc/>
    public Readout Readout { get; }
    /// <inheritdoc/>
    public string Arch => Config.NormalizedArch;
    /// <inheritdoc/>
    public ParameterSet Parameters => Cell.Parameters;
    /// <inheritdoc/>
    public ParameterSet AllParameters { get; }
    /// <inheritdoc/>
    public IReadOnlyDictionary<string, string> Metadata => Config.ToMetadata();
    /// <summary>N_in.</summary>
    public int InputSize => Config.InputSize;
    /// <summary>H.</summary>
    public int HiddenSize => Config.HiddenSize;
    /// <summary>S per (trial, time): 2H for the LSTM.</summary>
    public int StateSize => Config.StateSize;
    /// <summary>O.</summary>
    public int OutputSize => Config.OutputSize;

    /// <summary>Initial state z_0 [S] shared by every trial (LSTM: [h; c]); null means zero.</summary>
    public double[]? InitialState
    {
        get => _initialState;
        set
        {
            if (value != null)
            {
                if (value.Length != StateSize)
                    throw new ArgumentException($"Initial state has length {value.Length}, expected state size {StateSize} ({Arch}, hidden {HiddenSize}).");
                Numerics.EnsureFinite(value, "initial state");
            }
            _initialState = value == null ? null : (double[])value.Clone();
        }
    }

    /// <summary>The input shape (trial, time, input) this model takes.</summary>
    public AxisShape InputShape(int trials, int steps) => new(("trial", trials), ("time", steps), ("input", InputSize));

    /// <inheritdoc/>
    ChainLinearization IChainModel.Linearize(Tensor inputs) => Linearize(inputs);

    /// <summary>Runs the cell over inputs [trial, time, input] from <see cref="InitialState"/> and linearises it.</summary>
    public RecurrentLinearization Linearize(Tensor inputs) => Linearize(inputs, null);

    /// <summary>
    /// Runs the cell over inputs [trial, time, input] from a per-trial initial state
    /// [trial, unit] (null: <see cref="InitialState"/>, or zero), and linearises it.
    /// </summary>
    public RecurrentLinearization Linearize(Tensor inputs, Tensor? initialState)
    {
        var shape = inputs.Shape;
        if (shape.Rank != 3 || shape.Sizes[2] != InputSize || shape.Sizes[0] < 1 || shape.Sizes[1] < 1)
            throw new ArgumentException($"Inputs {shape} do not fit the {Arch} model: expected (trial, time, input={InputSize}) with trial, time ≥ 1.");
        inputs.EnsureFinite($"inputs {shape}");
        Cell.Parameters.EnsureFinite();
        int b = shape.Sizes[0];
        var z0 = new double[checked(b * StateSize)];
        if (initialState != null)
        {
            if (initialState.Length != z0.Length)
                throw new ArgumentException($"Initial state {initialState.Shape} does not fit: expected (trial={b}, unit={StateSize}).");
            initialState.EnsureFinite($"initial state {initialState.Shape}");
            initialState.Span.CopyTo(z0);
        }
        else if (_initialState != null)
            for (int i = 0; i < b; i++) _initialState.CopyTo(z0, i * StateSize);
        return new RecurrentLinearization(Cell, inputs, z0);
    }

    /// <summary>The states (trial, time, unit) for inputs [trial, time, input].</summary>
    public Tensor Forward(Tensor inputs) => Linearize(inputs).StatesTensor;

    /// <summary>The outputs (trial, time, output) for inputs [trial, time, input].</summary>
    public Tensor Predict(Tensor inputs)
    {
        var lin = Linearize(inputs);
        return Readout.Forward(lin.States.Span, lin.StateShape);
    }
}
