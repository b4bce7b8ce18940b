using System.Globalization;
using GlobalNtk.Models.Mlp;

namespace GlobalNtk.Models.Recurrent;

/// <summary>
/// Architecture and hyper-parameters of a <see cref="RecurrentModel"/> (docs/math.md#cells); round-trips
/// through string metadata (safetensors <c>__metadata__</c>).
/// </summary>
/// <param name="Arch">One of <see cref="Architectures"/>.</param>
/// <param name="InputSize">N_in, the input width.</param>
/// <param name="HiddenSize">H, the number of hidden units.</param>
/// <param name="OutputSize">O, the readout width.</param>
public sealed record RecurrentConfig(string Arch, int InputSize, int HiddenSize, int OutputSize)
{
    /// <summary>The valid architecture names.</summary>
    public static IReadOnlyList<string> Architectures { get; } = ["rnn-tanh", "rnn-relu", "gru", "lstm", "leaky-rnn"];

    /// <summary>Gain g multiplying the recurrent weights <c>weight_hh_l0</c> at initialisation.</summary>
    public double Gain { get; init; } = 1.0;
    /// <summary>Leaky RNN rate α = dt/τ in (0, 1] (leaky-rnn only).</summary>
    public double Alpha { get; init; } = 0.1;
    /// <summary>Leaky RNN nonlinearity φ (leaky-rnn only; rnn-tanh/rnn-relu fix theirs by name).</summary>
    public Activation Activation { get; init; } = Activation.Tanh;
    /// <summary>Seed of the initialisation RNG.</summary>
    public int Seed { get; init; }
    /// <summary>Number of stacked layers L (PyTorch <c>num_layers</c>).</summary>
    public int Layers { get; init; } = 1;
    /// <summary>Whether the layers have biases (PyTorch <c>bias</c>).</summary>
    public bool Bias { get; init; } = true;
    /// <summary>Whether the initial state h0 is a learnable parameter (else z_0 is zero or given).</summary>
    public bool LearnInitialState { get; init; }

    /// <summary>Number of stacked gates G (rows of weight_ih_l0 are G·H).</summary>
    public int GateCount => NormalizedArch switch { "gru" => 3, "lstm" => 4, _ => 1 };
    /// <summary>State size per layer: 2H for the LSTM ([h; c]), H otherwise.</summary>
    public int LayerStateSize => NormalizedArch == "lstm" ? 2 * HiddenSize : HiddenSize;
    /// <summary>State size S per (trial, step): every layer's state, L · <see cref="LayerStateSize"/>.</summary>
    public int StateSize => Layers * LayerStateSize;
    /// <summary>Whether this is the single-layer, biased, fixed-z_0 net that the fused cell path serves.</summary>
    internal bool IsPlainSingleLayer => Layers == 1 && Bias && !LearnInitialState;
    /// <summary><see cref="Arch"/> lower-cased and trimmed.</summary>
    public string NormalizedArch => (Arch ?? "").Trim().ToLowerInvariant();

    /// <summary>Throws a one-line <see cref="ArgumentException"/> if anything is out of range.</summary>
    public void Validate()
    {
        if (!Architectures.Contains(NormalizedArch))
            throw new ArgumentException($"Unknown recurrent arch '{Arch}' (valid: {string.Join(", ", Architectures)}).");
        if (InputSize <= 0) throw new ArgumentException($"Recurrent model: input size must be positive, got {InputSize}.");
        if (HiddenSize <= 0) throw new ArgumentException($"Recurrent model: hidden size must be positive, got {HiddenSize}.");
        if (OutputSize <= 0) throw new ArgumentException($"Recurrent model: output size must be positive, got {OutputSize}.");
        if (Layers < 1) throw new ArgumentException($"Recurrent model: layers must be ≥ 1, got {Layers}.");
        if (!double.IsFinite(Gain)) throw new ArgumentException($"Recurrent model: gain must be finite, got {Gain}.");
        if (NormalizedArch == "leaky-rnn" && !(Alpha > 0 && Alpha <= 1))
            throw new ArgumentException($"leaky-rnn: alpha must be in (0, 1], got {Alpha}.");
        if (NormalizedArch == "leaky-rnn" && Activation is not (Activation.Tanh or Activation.Relu))
            throw new ArgumentException($"leaky-rnn: activation must be tanh or relu, got {Activation.Name()}.");
    }

    /// <summary>Metadata strings: family, arch, input_size, hidden_size, output_size, gain, seed (+ layers, bias, h0 when not the defaults 1, true, false; alpha, activation for leaky-rnn).</summary>
    public IReadOnlyDictionary<string, string> ToMetadata()
    {
        var c = CultureInfo.InvariantCulture;
        var md = new Dictionary<string, string>
        {
            ["family"] = "recurrent",
            ["arch"] = NormalizedArch,
            ["input_size"] = InputSize.ToString(c),
            ["hidden_size"] = HiddenSize.ToString(c),
            ["output_size"] = OutputSize.ToString(c),
            ["gain"] = Gain.ToString("R", c),
            ["seed"] = Seed.ToString(c),
        };
        if (Layers != 1) md["layers"] = Layers.ToString(c);
        if (!Bias) md["bias"] = "false";
        if (LearnInitialState) md["h0"] = "true";
        if (NormalizedArch == "leaky-rnn")
        {
            md["alpha"] = Alpha.ToString("R", c);
            md["activation"] = Activation.Name();
        }
        return md;
    }

    /// <summary>
    /// Parses <see cref="ToMetadata"/>'s keys; <c>arch</c>, <c>input_size</c>, <c>hidden_size</c>,
    /// <c>output_size</c> are required, the rest default. Throws naming a missing or malformed key.
    /// </summary>
    public static RecurrentConfig FromMetadata(IReadOnlyDictionary<string, string> metadata)
    {
        string Get(string key) => metadata.TryGetValue(key, out var v) ? v
            : throw new ArgumentException($"Recurrent model metadata: missing key '{key}' (have: {string.Join(", ", metadata.Keys)}).");
        int Int(string key) => int.TryParse(Get(key), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v
            : throw new ArgumentException($"Recurrent model metadata: '{key}' = '{metadata[key]}' is not an integer.");
        double Real(string key, double fallback) => !metadata.ContainsKey(key) ? fallback
            : double.TryParse(metadata[key], NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v
            : throw new ArgumentException($"Recurrent model metadata: '{key}' = '{metadata[key]}' is not a number.");
        static bool Flag(string key, string v) => v.Trim().ToLowerInvariant() switch
        {
            "true" or "1" => true,
            "false" or "0" => false,
            _ => throw new ArgumentException($"Recurrent model metadata: '{key}' = '{v}' is not true or false."),
        };
        var config = new RecurrentConfig(Get("arch"), Int("input_size"), Int("hidden_size"), Int("output_size"))
        {
            Gain = Real("gain", 1.0),
            Alpha = Real("alpha", 0.1),
            Activation = metadata.TryGetValue("activation", out var a) ? Pointwise.Parse(a) : Activation.Tanh,
            Seed = metadata.ContainsKey("seed") ? Int("seed") : 0,
            Layers = metadata.ContainsKey("layers") ? Int("layers") : 1,
            Bias = !metadata.TryGetValue("bias", out var bias) || Flag("bias", bias),
            LearnInitialState = metadata.TryGetValue("h0", out var h0) && Flag("h0", h0),
        };
        config.Validate();
        return config;
    }
}
