namespace GlobalNtk.Models.Recurrent;

/// <summary>
/// The layout of a stacked recurrent net as PyTorch names it: per layer k
/// <c>{prefix}weight_ih_l{k}</c> [G·H, N_k] (N_0 = N_in, N_k = H above), <c>weight_hh_l{k}</c>
/// [G·H, H], and with bias <c>bias_ih_l{k}</c>, <c>bias_hh_l{k}</c> [G·H] (the leaky RNN has
/// only <c>bias_hh</c>); then an optional learnable initial state h0 [L, H] (or [H] for L = 1).
/// Holds one math-only cell per layer (sizes, not values).
/// </summary>
public sealed class RecurrentStack
{
    /// <summary>The prefix of the parameters this library creates.</summary>
    public const string DefaultPrefix = "rnn.";
    /// <summary>Name of the learnable initial state this library creates.</summary>
    public const string DefaultInitialStateName = "h0";

    /// <summary>The stack of <paramref name="config"/>; names under <paramref name="prefix"/>, h0 named <paramref name="initialStateName"/> when learnable.</summary>
    public RecurrentStack(RecurrentConfig config, string prefix = DefaultPrefix, string? initialStateName = DefaultInitialStateName, int[]? initialStateShape = null)
    {
        config.Validate();
        Config = config; Prefix = prefix;
        InitialStateName = config.LearnInitialState ? initialStateName ?? DefaultInitialStateName : null;
        InitialStateShape = initialStateShape ?? (config.Layers == 1 ? [config.HiddenSize] : [config.Layers, config.HiddenSize]);
        if (InitialStateShape.Aggregate(1, (a, b) => a * b) != config.Layers * config.HiddenSize)
            throw new ArgumentException($"Initial state h0 of shape [{string.Join(", ", InitialStateShape)}] does not fit {config.Layers} layer(s) of {config.HiddenSize} units (expected [{config.Layers}, {config.HiddenSize}]{(config.Layers == 1 ? $" or [{config.HiddenSize}]" : "")}).");
        Cells = Enumerable.Range(0, config.Layers).Select(k =>
        {
            var c = config with { InputSize = k == 0 ? config.InputSize : config.HiddenSize, Layers = 1, Bias = true, LearnInitialState = false };
            // The cell supplies only its math here; its own (zero) tensors are never read.
            return RecurrentCell.Create(c, new ParameterSet(RecurrentCell.ExpectedShapes(c).Select(e => new Parameter(e.Name, e.Shape))));
        }).ToArray();
    }

    /// <summary>Architecture and sizes.</summary>
    public RecurrentConfig Config { get; }
    /// <summary>Parameter-name prefix, e.g. <c>rnn.</c> (may be empty).</summary>
    public string Prefix { get; }
    /// <summary>Architecture name.</summary>
    public string Arch => Config.NormalizedArch;
    /// <summary>L.</summary>
    public int Layers => Config.Layers;
    /// <summary>Whether the layers have biases.</summary>
    public bool Bias => Config.Bias;
    /// <summary>Whether the layers have <c>bias_ih</c> (with bias, every arch but the leaky RNN).</summary>
    public bool HasBiasIh => Bias && Config.NormalizedArch != "leaky-rnn";
    /// <summary>Name of the learnable h0, or null when z_0 is fixed.</summary>
    public string? InitialStateName { get; }
    /// <summary>Shape of h0 as stored ([L, H], or [H]).</summary>
    public int[] InitialStateShape { get; }
    internal RecurrentCell[] Cells { get; }

    /// <summary>Name of W_ih of layer k.</summary>
    public string WeightIh(int k) => $"{Prefix}weight_ih_l{k}";
    /// <summary>Name of W_hh of layer k.</summary>
    public string WeightHh(int k) => $"{Prefix}weight_hh_l{k}";
    /// <summary>Name of b_ih of layer k.</summary>
    public string BiasIh(int k) => $"{Prefix}bias_ih_l{k}";
    /// <summary>Name of b_hh of layer k.</summary>
    public string BiasHh(int k) => $"{Prefix}bias_hh_l{k}";

    /// <summary>Every parameter (name, shape) in θ order: layer by layer as PyTorch's state dict, then h0.</summary>
    public IReadOnlyList<(string Name, int[] Shape)> ExpectedShapes()
    {
        int gh = Config.GateCount * Config.HiddenSize, h = Config.HiddenSize;
        var list = new List<(string, int[])>();
        for (int k = 0; k < Layers; k++)
        {
            list.Add((WeightIh(k), [gh, k == 0 ? Config.InputSize : h]));
            list.Add((WeightHh(k), [gh, h]));
            if (HasBiasIh) list.Add((BiasIh(k), [gh]));
            if (Bias) list.Add((BiasHh(k), [gh]));
        }
        if (InitialStateName != null) list.Add((InitialStateName, InitialStateShape));
        return list;
    }

    /// <summary>
    /// PyTorch default initialisation: every weight and bias uniform in ±1/√H in θ order from
    /// <paramref name="rng"/>, each W_hh times the gain; h0 zero.
    /// </summary>
    public ParameterSet Initialize(Random rng)
    {
        double bound = 1.0 / Math.Sqrt(Config.HiddenSize);
        var whh = Enumerable.Range(0, Layers).Select(WeightHh).ToHashSet();
        var ps = new List<Parameter>();
        foreach (var (name, shape) in ExpectedShapes())
        {
            var data = new double[shape.Aggregate(1, (a, b) => a * b)];
            if (name != InitialStateName)
                for (int i = 0; i < data.Length; i++) data[i] = (2 * rng.NextDouble() - 1) * bound;
            if (whh.Contains(name))
                for (int i = 0; i < data.Length; i++) data[i] *= Config.Gain;
            ps.Add(Parameter.Own(name, shape, data));
        }
        return new ParameterSet(ps);
    }
}
