using GlobalNtk.Dense;
using GlobalNtk.Models.Blocks;
using GlobalNtk.Operators;

namespace GlobalNtk.Models.Mlp;

/// <summary>
/// A multilayer perceptron as a depth chain (docs/math.md#models-as-chains): z_l = φ(W_l z_{l−1} + b_l), l = 1..L,
/// equal hidden widths H, z_0 = the input x (so layer 1's weight is [H, N_in]). The state is
/// every layer's activity, axes (sample, layer, unit); chain step k (0-based) is layer k+1.
/// </summary>
/// <remarks>
/// Parameter names follow a PyTorch <c>nn.ModuleList</c> of <c>nn.Linear</c> called <c>layers</c>:
/// <c>layers.{k}.weight</c> [H, N_in] for k = 0 and [H, H] after, <c>layers.{k}.bias</c> [H].
/// The linear readout on the last layer is separate (see the model's readout).
/// </remarks>
public sealed class MlpModel : IChainModel
{
    /// <summary>Wraps existing tensors (validated against the sizes); the readout reads the last layer [O, H].</summary>
    public MlpModel(int inputs, int hidden, int layers, Activation activation, ParameterSet parameters, Readout readout)
    {
        if (inputs < 1 || hidden < 1 || layers < 1)
            throw new ArgumentException($"MLP: inputs ({inputs}), hidden ({hidden}) and layers ({layers}) must all be ≥ 1.");
        Inputs = inputs; Hidden = hidden; Layers = layers; Activation = activation;
        for (int k = 0; k < layers; k++)
        {
            Expect(parameters, WeightName(k), [hidden, k == 0 ? inputs : hidden]);
            Expect(parameters, BiasName(k), [hidden]);
        }
        if (parameters.Count != 2 * layers)
            throw new ArgumentException($"MLP: expected {2 * layers} parameter tensors, got {parameters.Count} ({string.Join(", ", parameters.Select(p => p.Name))}).");
        if (readout.InputSize != hidden || readout.FeatureOffset != 0 || !readout.LastStepOnly)
            throw new ArgumentException($"MLP: the readout must read the {hidden} units of the last layer, got '{readout.Weight.Name}' {readout.Weight.ShapeText}.");
        Parameters = parameters;
        Readout = readout;
        Chain = new BlockChain(inputs, Enumerable.Range(0, layers).Select(k => (StepBlock)new SequentialBlock(
            new AffineBlock($"layers.{k}", k == 0 ? inputs : hidden, hidden, WeightName(k), BiasName(k)),
            new ActivationBlock(hidden, activation))).ToArray());
        AllParameters = new ParameterSet(parameters.Concat(readout.Parameters));
    }

    /// <summary>
    /// A freshly initialised MLP with an <paramref name="outputs"/>-wide readout on the last layer
    /// (PyTorch nn.Linear default for every layer and the readout: uniform ±1/√fan_in), from the
    /// key <c>RngKey.FromSeed(seed).Fold("init")</c>.
    /// </summary>
    public static MlpModel Create(int inputs, int hidden, int layers, int outputs, Activation activation, int seed)
    {
        var rng = RngKey.FromSeed(seed).Fold("init").CreateRandom();
        var ps = new List<Parameter>();
        for (int k = 0; k < layers; k++)
        {
            int fanIn = k == 0 ? inputs : hidden;
            double bound = 1.0 / Math.Sqrt(fanIn);
            ps.Add(Parameter.Own(WeightName(k), [hidden, fanIn], Uniform(rng, hidden * fanIn, bound)));
            ps.Add(Parameter.Own(BiasName(k), [hidden], Uniform(rng, hidden, bound)));
        }
        var readout = Readout.Initialize(hidden, outputs, rng, lastStepOnly: true);
        return new MlpModel(inputs, hidden, layers, activation, new ParameterSet(ps), readout);
    }

    /// <summary>Name of layer k's weight (0-based), e.g. <c>layers.0.weight</c>.</summary>
    public static string WeightName(int k) => $"layers.{k}.weight";
    /// <summary>Name of layer k's bias (0-based), e.g. <c>layers.0.bias</c>.</summary>
    public static string BiasName(int k) => $"layers.{k}.bias";

    /// <inheritdoc/>
    public string Arch => "mlp";
    /// <summary>The MLP as a chain of blocks: step k = nn.Linear then φ.</summary>
    public BlockChain Chain { get; }
    /// <summary>Input width N_in.</summary>
    public int Inputs { get; }
    /// <summary>Hidden width H (every layer).</summary>
    public int Hidden { get; }
    /// <summary>Number of layers L (chain steps).</summary>
    public int Layers { get; }
    /// <summary>The nonlinearity φ.</summary>
    public Activation Activation { get; }
    /// <inheritdoc/>
    public ParameterSet Parameters { get; }
    /// <summary>The readout y = W z_L + b on the last layer (outputs (sample, output)).</summary>
    public Readout Readout { get; }
    /// <inheritdoc/>
    public ParameterSet AllParameters { get; }
    /// <summary>Keys <c>family, arch, input_size, hidden_size, output_size, layers, activation</c>.</summary>
    public IReadOnlyDictionary<string, string> Metadata => new Dictionary<string, string>
    {
        ["family"] = "mlp", ["arch"] = Arch,
        ["input_size"] = Inputs.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["hidden_size"] = Hidden.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["output_size"] = Readout.OutputSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["layers"] = Layers.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["activation"] = Activation.Name(),
    };

    /// <inheritdoc/>
    IChainModel IChainModel.WithParameters(ParameterSet allParameters) => WithParameters(allParameters);

    /// <summary>This MLP with new values for every tensor (names and shapes of <see cref="AllParameters"/>); this one is unchanged.</summary>
    public MlpModel WithParameters(ParameterSet allParameters)
    {
        AllParameters.RequireSameLayout(allParameters);
        return new MlpModel(Inputs, Hidden, Layers, Activation, allParameters.Take(Parameters), Readout.WithParameters(allParameters));
    }

    /// <summary>Runs the forward pass on inputs (sample, input) = [B, N_in] and linearises it.</summary>
    public ChainLinearization Linearize(Tensor inputs) => Linearize(inputs, Precision.F64);

    /// <summary>
    /// Runs the forward pass and linearises it in <paramref name="precision"/>: with
    /// <see cref="Precision.F32"/> the affine, activation and LayerNorm traces keep float32 caches
    /// and the affine products run as sgemm (see <see cref="BlockChain.Linearize(ParameterSet, Tensor, Precision)"/>).
    /// </summary>
    public ChainLinearization Linearize(Tensor inputs, Precision precision)
    {
        if (inputs.Shape.Rank != 2 || inputs.Shape.Sizes[1] != Inputs)
            throw new ArgumentException($"MLP: inputs must be (sample, input) with input = {Inputs}, got {inputs.Shape}.");
        inputs.EnsureFinite("MLP inputs");
        return Chain.Linearize(Parameters, inputs, precision);
    }

    /// <summary>The hand-fused linearisation (kept to measure the generic block path against).</summary>
    internal ChainLinearization LinearizeFused(Tensor inputs)
    {
        inputs.EnsureFinite("MLP inputs");
        Parameters.EnsureFinite();
        return new MlpLinearization(this, inputs);
    }

    internal static double[] Uniform(Random rng, int n, double bound)
    {
        var a = new double[n];
        RandomProbes.Uniform(rng, a, bound);
        return a;

    }

    private static void Expect(ParameterSet ps, string name, int[] shape)
    {
        if (!ps.Contains(name)) throw new ArgumentException($"MLP: missing parameter '{name}' of shape [{string.Join(", ", shape)}].");
        var p = ps[name];
        if (!p.Shape.SequenceEqual(shape))
            throw new ArgumentException($"MLP: parameter '{name}' has shape {p.ShapeText}, expected [{string.Join(", ", shape)}].");
    }
}
