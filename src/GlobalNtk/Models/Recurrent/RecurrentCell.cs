using System.Numerics;
using GlobalNtk.Operators;
using GlobalNtk.Models.Mlp;

namespace GlobalNtk.Models.Recurrent;

/// <summary>
/// One recurrent cell with PyTorch's equations and parameter names (docs/math.md#cells). A step is
/// written as z' = g(a, z) with the affine pre-activations a = [W_ih x + b_ih, W_hh v(h) + b_hh]
/// (v = h, or φ(h) for the leaky RNN); the cell supplies g, its derivative D = ∂g/∂a and the
/// direct state derivative E = ∂g/∂z, from which <see cref="RecurrentLinearization"/> builds
/// A_k = E + D_hh W_hh diag(v'), J_θ and the weight sites (docs/math.md#global-ntk).
/// </summary>
/// <remarks>
/// Pre-activation row layout (width <see cref="PreWidth"/>): when ih and hh enter g only through
/// their sum (nn.RNN, LSTM, leaky RNN) both are accumulated in one G·H block, so D_ih = D_hh = D;
/// otherwise (GRU, where r multiplies the hh n-part) the ih block comes first, then the hh block.
/// </remarks>
public abstract class RecurrentCell
{
    /// <summary>PyTorch name of W_ih [G·H, N_in].</summary>
    public const string WeightIhName = "rnn.weight_ih_l0";
    /// <summary>PyTorch name of W_hh [G·H, H].</summary>
    public const string WeightHhName = "rnn.weight_hh_l0";
    /// <summary>PyTorch name of b_ih [G·H].</summary>
    public const string BiasIhName = "rnn.bias_ih_l0";
    /// <summary>PyTorch name of b_hh [G·H].</summary>
    public const string BiasHhName = "rnn.bias_hh_l0";

    private protected RecurrentCell(RecurrentConfig config, ParameterSet parameters, bool hasBiasIh, bool splitPreActivation)
    {
        Config = config;
        HasBiasIh = hasBiasIh;
        SplitPreActivation = splitPreActivation;
        ValidateParameters(parameters);
        Parameters = parameters;
    }

    /// <summary>Architecture and sizes.</summary>
    public RecurrentConfig Config { get; }
    /// <summary>Architecture name (lower case).</summary>
    public string Arch => Config.NormalizedArch;
    /// <summary>N_in.</summary>
    public int InputSize => Config.InputSize;
    /// <summary>H.</summary>
    public int HiddenSize => Config.HiddenSize;
    /// <summary>G.</summary>
    public int GateCount => Config.GateCount;
    /// <summary>S (2H for the LSTM).</summary>
    public int StateSize => Config.StateSize;
    /// <summary>The cell's parameters in PyTorch order (weight_ih, weight_hh, bias_ih, bias_hh).</summary>
    public ParameterSet Parameters { get; }
    /// <summary>Whether the cell has <c>bias_ih_l0</c> (the leaky RNN has only one bias).</summary>
    public bool HasBiasIh { get; }
    /// <summary>Whether ih and hh pre-activations are kept apart (GRU): two weight sites instead of one.</summary>
    public bool SplitPreActivation { get; }

    internal int GateWidth => GateCount * HiddenSize;
    internal int PreWidth => SplitPreActivation ? 2 * GateWidth : GateWidth;
    internal int HhOffset => SplitPreActivation ? GateWidth : 0;

    /// <summary>Expected (name, shape) of every parameter, in θ order.</summary>
    public static IReadOnlyList<(string Name, int[] Shape)> ExpectedShapes(RecurrentConfig config)
    {
        int gh = config.GateCount * config.HiddenSize, h = config.HiddenSize;
        var list = new List<(string, int[])> { (WeightIhName, [gh, config.InputSize]), (WeightHhName, [gh, h]) };
        if (config.NormalizedArch != "leaky-rnn") list.Add((BiasIhName, [gh]));
        list.Add((BiasHhName, [gh]));
        return list;
    }

    /// <summary>Creates the cell of <paramref name="config"/>'s arch over the given (validated) parameters.</summary>
    public static RecurrentCell Create(RecurrentConfig config, ParameterSet parameters)
    {
        config.Validate();
        return config.NormalizedArch switch
        {
            "rnn-tanh" => new ElmanCell(config, parameters, Activation.Tanh),
            "rnn-relu" => new ElmanCell(config, parameters, Activation.Relu),
            "gru" => new GruCell(config, parameters),
            "lstm" => new LstmCell(config, parameters),
            "leaky-rnn" => new LeakyRnnCell(config, parameters),
            _ => throw new ArgumentException($"Unknown recurrent arch '{config.Arch}' (valid: {string.Join(", ", RecurrentConfig.Architectures)})."),
        };
    }

    /// <summary>
    /// PyTorch default initialisation: every tensor uniform in ±1/√H, drawn in θ order from
    /// <paramref name="rng"/>; then W_hh is multiplied by the gain g.
    /// </summary>
    public static ParameterSet Initialize(RecurrentConfig config, Random rng)
    {
        config.Validate();
        double bound = 1.0 / Math.Sqrt(config.HiddenSize);
        var ps = new List<Parameter>();
        foreach (var (name, shape) in ExpectedShapes(config))
        {
            var data = new double[shape.Aggregate(1, (a, b) => a * b)];
            RandomProbes.Uniform(rng, data, bound);
            if (name == WeightHhName)
                for (int i = 0; i < data.Length; i++) data[i] *= config.Gain;
            ps.Add(Parameter.Own(name, shape, data));
        }
        return new ParameterSet(ps);
    }

    private void ValidateParameters(ParameterSet parameters)
    {
        var expected = ExpectedShapes(Config);
        string context = $"arch {Arch}, input {InputSize}, hidden {HiddenSize}";
        foreach (var (name, shape) in expected)
        {
            if (!parameters.Contains(name))
                throw new ArgumentException($"Missing tensor '{name}' (expected shape [{string.Join(", ", shape)}] for {context}).");
            var p = parameters[name];
            if (!p.Shape.SequenceEqual(shape))
                throw new ArgumentException($"Tensor '{name}' has shape {p.ShapeText}, expected [{string.Join(", ", shape)}] ({context}).");
        }
        foreach (var p in parameters)
            if (!expected.Any(e => e.Name == p.Name))
                throw new ArgumentException($"Unexpected tensor '{p.Name}' {p.ShapeText} for {context} (expected: {string.Join(", ", expected.Select(e => e.Name))}).");
        for (int i = 0; i < expected.Count; i++)
            if (parameters[i].Name != expected[i].Name)
                throw new ArgumentException($"Parameters out of order: position {i} holds '{parameters[i].Name}', expected '{expected[i].Name}'.");
        parameters.EnsureFinite();
    }

    // ---- cell math hooks, all per (trial, step) row; spans of width H, S, PreWidth as named ----
    // Each hook is generic over the element type (float64, or float32 for Precision.F32): the JIT
    // specialises it per type, so the float64 code is the same as a hand-written one. The
    // double-typed overloads below the abstract hooks are the original signatures, kept for callers.

    /// <summary>Scalars cached per (trial, step) by <see cref="ForwardRow{T}"/> (gate activations; state-sized).</summary>
    internal abstract int CacheWidth { get; }
    /// <summary>Scratch needed by the hooks, per thread.</summary>
    internal abstract int WorkWidth { get; }
    /// <summary>Whether the recurrent site variable v is h itself (true) or φ(h) (leaky RNN).</summary>
    internal virtual bool RecurrentVariableIsState => true;

    /// <summary>
    /// Whether D acts unit by unit: the row of D for state entry t has non-zeros only in
    /// pre-activation columns j with j ≡ t (mod H) (gates g·H + i of unit i = t mod H). True for
    /// the elementwise cells here; the Kronecker core then colours a row's state positions by
    /// t / H (<see cref="WeightSite.SliceColouring"/>).
    /// </summary>
    internal virtual bool UnitLocal => false;
    /// <summary>v = v(h).</summary>
    internal virtual void RecurrentVariable<T>(ReadOnlySpan<T> h, Span<T> v) where T : unmanaged, IFloatingPointIeee754<T> => h.CopyTo(v);
    /// <summary>d = v'(h) computed from v.</summary>
    internal virtual void RecurrentDerivative<T>(ReadOnlySpan<T> v, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T> => d.Fill(T.One);

    /// <summary>z = g(a, zPrev) with a = pre (biases included); fills the row's cache.</summary>
    internal abstract void ForwardRow<T>(ReadOnlySpan<T> pre, ReadOnlySpan<T> zPrev, Span<T> z, Span<T> cache) where T : unmanaged, IFloatingPointIeee754<T>;
    /// <summary>dz = D·da (overwrite), da of width PreWidth.</summary>
    internal abstract void ApplyD<T>(in StepRow<T> row, ReadOnlySpan<T> da, Span<T> dz, Span<T> work) where T : unmanaged, IFloatingPointIeee754<T>;
    /// <summary>g = Dᵀ·q (overwrite), g of width PreWidth.</summary>
    internal abstract void ApplyDTranspose<T>(in StepRow<T> row, ReadOnlySpan<T> q, Span<T> g, Span<T> work) where T : unmanaged, IFloatingPointIeee754<T>;
    /// <summary>
    /// dz = D·da for a row whose ih pre-activations are zero (a state JVP), given only its hh block
    /// <paramref name="daHh"/> (width G·H): the same result as <see cref="ApplyD{T}"/> on the whole row.
    /// Cells whose ih and hh share one block (all but the GRU) use <see cref="ApplyD{T}"/> as it is.
    /// </summary>
    internal virtual void ApplyDHh<T>(in StepRow<T> row, ReadOnlySpan<T> daHh, Span<T> dz, Span<T> work) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (SplitPreActivation) throw new InvalidOperationException($"{GetType().Name} keeps ih and hh apart and must override {nameof(ApplyDHh)}.");
        ApplyD(row, daHh, dz, work);
    }

    /// <summary>
    /// gHh = the hh block of Dᵀ·q (width G·H), all a state VJP reads: the same values as that block of
    /// <see cref="ApplyDTranspose{T}"/>.
    /// </summary>
    internal virtual void ApplyDTransposeHh<T>(in StepRow<T> row, ReadOnlySpan<T> q, Span<T> gHh, Span<T> work) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (SplitPreActivation) throw new InvalidOperationException($"{GetType().Name} keeps ih and hh apart and must override {nameof(ApplyDTransposeHh)}.");
        ApplyDTranspose(row, q, gHh, work);
    }

    /// <summary>dst += alpha·E·src (E = ∂g/∂z with a held fixed).</summary>
    internal abstract void ApplyEAdd<T>(in StepRow<T> row, ReadOnlySpan<T> src, Span<T> dst, T alpha, Span<T> work) where T : unmanaged, IFloatingPointIeee754<T>;
    /// <summary>dst += alpha·Eᵀ·q.</summary>
    internal abstract void ApplyETransposeAdd<T>(in StepRow<T> row, ReadOnlySpan<T> q, Span<T> dst, T alpha, Span<T> work) where T : unmanaged, IFloatingPointIeee754<T>;

    /// <summary>float64 form of <see cref="ApplyD{T}"/>.</summary>
    internal void ApplyD(in StepRow row, ReadOnlySpan<double> da, Span<double> dz, Span<double> work) => ApplyD(row.Generic, da, dz, work);
    /// <summary>float64 form of <see cref="ApplyDTranspose{T}"/>.</summary>
    internal void ApplyDTranspose(in StepRow row, ReadOnlySpan<double> q, Span<double> g, Span<double> work) => ApplyDTranspose(row.Generic, q, g, work);
    /// <summary>float64 form of <see cref="ApplyEAdd{T}"/>.</summary>
    internal void ApplyEAdd(in StepRow row, ReadOnlySpan<double> src, Span<double> dst, double alpha, Span<double> work) => ApplyEAdd(row.Generic, src, dst, alpha, work);
    /// <summary>float64 form of <see cref="ApplyETransposeAdd{T}"/>.</summary>
    internal void ApplyETransposeAdd(in StepRow row, ReadOnlySpan<double> q, Span<double> dst, double alpha, Span<double> work) => ApplyETransposeAdd(row.Generic, q, dst, alpha, work);
}

/// <summary>What the derivative hooks see of one (trial, step): its cache, previous and current state (float64).</summary>
internal readonly ref struct StepRow(ReadOnlySpan<double> cache, ReadOnlySpan<double> zPrev, ReadOnlySpan<double> z)
{
    public ReadOnlySpan<double> Cache { get; } = cache;
    public ReadOnlySpan<double> ZPrev { get; } = zPrev;
    public ReadOnlySpan<double> Z { get; } = z;
    /// <summary>The same row as a <see cref="StepRow{T}"/>.</summary>
    public StepRow<double> Generic => new(Cache, ZPrev, Z);
}

/// <summary>What the derivative hooks see of one (trial, step), in the linearisation's element type.</summary>
internal readonly ref struct StepRow<T>(ReadOnlySpan<T> cache, ReadOnlySpan<T> zPrev, ReadOnlySpan<T> z)
{
    public ReadOnlySpan<T> Cache { get; } = cache;
    public ReadOnlySpan<T> ZPrev { get; } = zPrev;
    public ReadOnlySpan<T> Z { get; } = z;
}
