using GlobalNtk.Dense;
using GlobalNtk.Operators;
using GlobalNtk.Models.Mlp;

namespace GlobalNtk.Models.Transformer;

/// <summary>How tokens enter the transformer.</summary>
public enum TransformerInput
{
    /// <summary>A linear projection <c>input_proj</c> (nn.Linear N_in → d) of real-valued inputs (sequence, token, input).</summary>
    Linear,
    /// <summary>A token embedding table <c>embedding.weight</c> [V, d] indexed by integer ids (sequence, token).</summary>
    Embedding,
}

/// <summary>The positional encoding added to the embedding (step 0).</summary>
public enum TransformerPositional
{
    /// <summary>None: z₀ = c·embed(x).</summary>
    None,
    /// <summary>The fixed sinusoid PE[t, 2i] = sin(t/10000^{2i/d}), PE[t, 2i+1] = cos(…) (Vaswani et al.).</summary>
    Sinusoidal,
    /// <summary>A learned table <c>pos_embedding</c> [max_positions, d], a parameter like any other.</summary>
    Learned,
}

/// <summary>Sizes and options of a <see cref="TransformerModel"/>.</summary>
/// <param name="Input">Linear projection or embedding table.</param>
/// <param name="Inputs">N_in for <see cref="TransformerInput.Linear"/>, the vocabulary size V for an embedding.</param>
/// <param name="Model">Model width d.</param>
/// <param name="Heads">Attention heads (must divide d).</param>
/// <param name="Layers">Number of encoder blocks L.</param>
/// <param name="FeedForward">MLP width d_ff (PyTorch's dim_feedforward).</param>
/// <param name="Activation">MLP nonlinearity: GELU (exact or tanh-approximated) or ReLU.</param>
/// <param name="Causal">Whether token t attends only to tokens ≤ t.</param>
public sealed record TransformerConfig(TransformerInput Input, int Inputs, int Model, int Heads, int Layers, int FeedForward,
    Activation Activation = Activation.Gelu, bool Causal = false)
{
    /// <summary>PyTorch's <c>norm_first</c>: pre-LN blocks (true) or post-LN blocks (false, PyTorch's default).</summary>
    public bool NormFirst { get; init; } = true;
    /// <summary>The blocks' LayerNorm epsilon (PyTorch's <c>layer_norm_eps</c>).</summary>
    public double LayerNormEps { get; init; } = 1e-5;
    /// <summary>Whether a final LayerNorm <c>norm</c> follows the last block (<c>nn.TransformerEncoder(norm=…)</c>).</summary>
    public bool FinalNorm { get; init; }
    /// <summary>The final LayerNorm's epsilon (used when <see cref="FinalNorm"/>).</summary>
    public double FinalNormEps { get; init; } = 1e-5;
    /// <summary>The positional encoding added at step 0.</summary>
    public TransformerPositional Positional { get; init; } = TransformerPositional.Sinusoidal;
    /// <summary>Rows of the learned positional table (the longest sequence); used when <see cref="Positional"/> is learned.</summary>
    public int MaxPositions { get; init; }
    /// <summary>Whether the embedding is multiplied by √d before the positional encoding is added.</summary>
    public bool ScaleEmbedding { get; init; }

    /// <summary>Head width d / heads.</summary>
    public int HeadDim => Model / Heads;

    /// <summary>The factor c in z₀ = c·embed(x) + PE: √d or 1.</summary>
    public double EmbeddingScale => ScaleEmbedding ? Math.Sqrt(Model) : 1.0;

    /// <summary>Throws naming the first inconsistent size.</summary>
    public void Validate()
    {
        if (Inputs < 1) throw new ArgumentException($"Transformer: {(Input == TransformerInput.Linear ? "input width" : "vocabulary")} must be ≥ 1, got {Inputs}.");
        if (Model < 1 || Heads < 1 || Layers < 1 || FeedForward < 1)
            throw new ArgumentException($"Transformer: d ({Model}), heads ({Heads}), layers ({Layers}) and d_ff ({FeedForward}) must all be ≥ 1.");
        if (Model % Heads != 0) throw new ArgumentException($"Transformer: d = {Model} is not divisible by heads = {Heads}.");
        if (Activation == Activation.Tanh) throw new ArgumentException("Transformer: activation must be gelu or relu (as nn.TransformerEncoderLayer).");
        if (!(LayerNormEps > 0) || !(FinalNormEps > 0) || double.IsInfinity(LayerNormEps) || double.IsInfinity(FinalNormEps))
            throw new ArgumentException($"Transformer: LayerNorm eps must be positive and finite, got {LayerNormEps} (blocks) and {FinalNormEps} (final norm).");
        if (Positional == TransformerPositional.Learned && MaxPositions < 1)
            throw new ArgumentException($"Transformer: a learned positional table needs max_positions ≥ 1, got {MaxPositions}.");
    }
}

/// <summary>
/// A transformer encoder as a depth chain (docs/math.md#transformers), with PyTorch's
/// <c>nn.TransformerEncoderLayer(batch_first=True, dropout=0)</c> equations and names. Step 0 is
/// the embedding z₀ = c·input_proj(x) + PE (or c·embedding[x] + PE; c = √d or 1; PE none, the
/// fixed sinusoid or a learned table); step l+1 is block l, pre-LN (<c>norm_first=True</c>):
/// z' = z + out_proj(MHA(LN₁(z))), z'' = z' + linear2(φ(linear1(LN₂(z')))), or post-LN
/// (<c>norm_first=False</c>): z' = LN₁(z + out_proj(MHA(z))), z'' = LN₂(z' + linear2(φ(linear1(z')))).
/// With a final encoder norm the last step is norm(z''). State axes (sequence, layer, token,
/// feature) = [S, L+1, N, d].
/// </summary>
/// <remarks>
/// Parameter names: <c>input_proj.weight</c> [d, N_in], <c>input_proj.bias</c> [d] (or
/// <c>embedding.weight</c> [V, d]); per block l: <c>layers.{l}.self_attn.in_proj_weight</c> [3d, d],
/// <c>.in_proj_bias</c> [3d], <c>.self_attn.out_proj.weight</c> [d, d], <c>.bias</c> [d],
/// <c>.linear1.weight</c> [d_ff, d], <c>.bias</c> [d_ff], <c>.linear2.weight</c> [d, d_ff], <c>.bias</c> [d],
/// <c>.norm1.weight/.bias</c>, <c>.norm2.weight/.bias</c> [d]; optionally <c>pos_embedding</c>
/// [max_positions, d] and the final <c>norm.weight/.bias</c> [d]. The readout on every token of
/// the last layer is separate.
/// </remarks>
public sealed class TransformerModel : IChainModel
{
    /// <summary>Wraps existing tensors (validated against the config); the readout reads every token of the last layer [O, d].</summary>
    public TransformerModel(TransformerConfig config, ParameterSet parameters, Readout readout)
    {
        config.Validate();
        Config = config;
        var expected = Layout(config);
        foreach (var (name, shape) in expected)
        {
            if (!parameters.Contains(name)) throw new ArgumentException($"Transformer: missing parameter '{name}' of shape [{string.Join(", ", shape)}].");
            var p = parameters[name];
            if (!p.Shape.SequenceEqual(shape))
                throw new ArgumentException($"Transformer: parameter '{name}' has shape {p.ShapeText}, expected [{string.Join(", ", shape)}].");
        }
        if (parameters.Count != expected.Count)
            throw new ArgumentException($"Transformer: expected {expected.Count} parameter tensors, got {parameters.Count}.");
        if (readout.InputSize != config.Model || readout.FeatureOffset != 0 || !readout.LastStepOnly)
            throw new ArgumentException($"Transformer: the readout must read the d = {config.Model} features of the last layer, got '{readout.Weight.Name}' {readout.Weight.ShapeText}.");
        Parameters = parameters;
        Readout = readout;
        AllParameters = new ParameterSet(parameters.Concat(readout.Parameters));
    }

    /// <summary>Parameter names and shapes in θ order (PyTorch state_dict order within a block).</summary>
    public static IReadOnlyList<(string Name, int[] Shape)> Layout(TransformerConfig c)
    {
        int d = c.Model, f = c.FeedForward;
        var list = new List<(string, int[])>();
        if (c.Input == TransformerInput.Linear) { list.Add((InputWeight, [d, c.Inputs])); list.Add((InputBias, [d])); }
        else list.Add((EmbeddingWeight, [c.Inputs, d]));
        if (c.Positional == TransformerPositional.Learned) list.Add((PositionalWeight, [c.MaxPositions, d]));
        for (int l = 0; l < c.Layers; l++)
        {
            var n = new BlockNames(l);
            list.Add((n.InProjWeight, [3 * d, d])); list.Add((n.InProjBias, [3 * d]));
            list.Add((n.OutProjWeight, [d, d])); list.Add((n.OutProjBias, [d]));
            list.Add((n.Linear1Weight, [f, d])); list.Add((n.Linear1Bias, [f]));
            list.Add((n.Linear2Weight, [d, f])); list.Add((n.Linear2Bias, [d]));
            list.Add((n.Norm1Weight, [d])); list.Add((n.Norm1Bias, [d]));
            list.Add((n.Norm2Weight, [d])); list.Add((n.Norm2Bias, [d]));
        }
        if (c.FinalNorm) { list.Add((FinalNormWeight, [d])); list.Add((FinalNormBias, [d])); }
        return list;
    }

    /// <summary>
    /// A freshly initialised transformer, seeded, as PyTorch initialises it: Linear layers
    /// uniform ±1/√fan_in (weights and biases), in_proj_weight Xavier-uniform with zero
    /// in_proj_bias and out_proj.bias, LayerNorm gain 1 and bias 0, embedding N(0, 1); then an
    /// <paramref name="outputs"/>-wide readout on every token of the last layer (nn.Linear init).
    /// </summary>
    public static TransformerModel Create(TransformerConfig config, int outputs, int seed)
    {
        config.Validate();
        var rng = RngKey.FromSeed(seed).Fold("init").CreateRandom();
        int d = config.Model, f = config.FeedForward;
        var ps = new List<Parameter>();
        foreach (var (name, shape) in Layout(config))
        {
            int size = shape.Aggregate(1, (a, b) => a * b);
            double[] data;
            if (name is EmbeddingWeight or PositionalWeight) data = RandomProbes.Gaussian(rng, size);
            else if (name.EndsWith("in_proj_weight")) data = MlpModel.Uniform(rng, size, Math.Sqrt(6.0 / (d + 3 * d)));
            else if (name.EndsWith("in_proj_bias") || name.EndsWith("out_proj.bias") || name.Contains("norm") && name.EndsWith(".bias")) data = new double[size];
            else if (name.Contains("norm")) data = Enumerable.Repeat(1.0, size).ToArray();
            else
            {
                // nn.Linear: weight [out, in] and bias both uniform ±1/√in.
                int fanIn = name.StartsWith("input_proj.") ? config.Inputs : name.Contains("linear2") ? f : d;
                data = MlpModel.Uniform(rng, size, 1.0 / Math.Sqrt(fanIn));
            }
            ps.Add(Parameter.Own(name, shape, data));
        }
        var readout = Readout.Initialize(d, outputs, rng, lastStepOnly: true);
        return new TransformerModel(config, new ParameterSet(ps), readout);
    }

    /// <summary><c>input_proj.weight</c>.</summary>
    public const string InputWeight = "input_proj.weight";
    /// <summary><c>input_proj.bias</c>.</summary>
    public const string InputBias = "input_proj.bias";
    /// <summary><c>embedding.weight</c>.</summary>
    public const string EmbeddingWeight = "embedding.weight";
    /// <summary><c>pos_embedding</c>: the learned positional table [max_positions, d].</summary>
    public const string PositionalWeight = "pos_embedding";
    /// <summary><c>norm.weight</c>: the final encoder norm's gain.</summary>
    public const string FinalNormWeight = "norm.weight";
    /// <summary><c>norm.bias</c>: the final encoder norm's bias.</summary>
    public const string FinalNormBias = "norm.bias";

    /// <inheritdoc/>
    public string Arch => "transformer";
    /// <summary>Sizes and options.</summary>
    public TransformerConfig Config { get; }
    /// <inheritdoc/>
    public ParameterSet Parameters { get; }
    /// <summary>The readout y = W z_L + b on every token of the last layer (outputs (sequence, token, output)).</summary>
    public Readout Readout { get; }
    /// <inheritdoc/>
    public ParameterSet AllParameters { get; }
    /// <summary>
    /// Keys <c>family, arch, input, input_size, hidden_size</c> (d), <c>output_size, layers, heads,
    /// dim_feedforward, activation, gelu_approximate, causal, norm_first, layer_norm_eps,
    /// positional, max_positions, scale_embedding, final_norm, final_norm_eps</c>: every setting
    /// that changes the mathematics, so that the file loads without guessing.
    /// </summary>
    public IReadOnlyDictionary<string, string> Metadata
    {
        get
        {
            var ci = System.Globalization.CultureInfo.InvariantCulture;
            var md = new Dictionary<string, string>
            {
                ["family"] = "transformer", ["arch"] = Arch,
                ["input"] = Config.Input == TransformerInput.Linear ? "linear" : "embedding",
                ["input_size"] = Config.Inputs.ToString(ci), ["hidden_size"] = Config.Model.ToString(ci),
                ["output_size"] = Readout.OutputSize.ToString(ci), ["layers"] = Config.Layers.ToString(ci),
                ["heads"] = Config.Heads.ToString(ci), ["dim_feedforward"] = Config.FeedForward.ToString(ci),
                ["activation"] = Config.Activation == Activation.Relu ? "relu" : "gelu",
                ["causal"] = Config.Causal ? "true" : "false",
                ["norm_first"] = Config.NormFirst ? "true" : "false",
                ["layer_norm_eps"] = Config.LayerNormEps.ToString("R", ci),
                ["positional"] = PositionalName(Config.Positional),
                ["scale_embedding"] = Config.ScaleEmbedding ? "true" : "false",
                ["final_norm"] = Config.FinalNorm ? "true" : "false",
            };
            if (Config.Activation != Activation.Relu) md["gelu_approximate"] = Config.Activation == Activation.GeluTanh ? "tanh" : "none";
            if (Config.Positional == TransformerPositional.Learned) md["max_positions"] = Config.MaxPositions.ToString(ci);
            if (Config.FinalNorm) md["final_norm_eps"] = Config.FinalNormEps.ToString("R", ci);
            return md;
        }
    }
    /// <inheritdoc/>
    IChainModel IChainModel.WithParameters(ParameterSet allParameters) => WithParameters(allParameters);

    /// <summary>This transformer with new values for every tensor (names and shapes of <see cref="AllParameters"/>); this one is unchanged.</summary>
    public TransformerModel WithParameters(ParameterSet allParameters)
    {
        AllParameters.RequireSameLayout(allParameters);
        return new TransformerModel(Config, allParameters.Take(Parameters), Readout.WithParameters(allParameters)) { ChunkRows = ChunkRows };
    }

    /// <summary>The metadata / command-line spelling of a positional encoding: none, sinusoidal, learned.</summary>
    public static string PositionalName(TransformerPositional p) => p.ToString().ToLowerInvariant();

    /// <summary>(sequence, token) rows per chunk of the fused path's derivative maps: bounds their workspace (tests lower it to exercise chunking).</summary>
    internal int ChunkRows { get; set; } = 4096;

    /// <summary>
    /// Runs the forward pass and linearises it. Inputs: (sequence, token, input) = [S, N, N_in]
    /// for a linear input projection; (sequence, token) = [S, N] of integer token ids in [0, V)
    /// for an embedding (a trailing axis of size 1 is accepted too).
    /// </summary>
    public ChainLinearization Linearize(Tensor inputs) => Linearize(inputs, Precision.F64);

    /// <summary>
    /// <see cref="Linearize(Tensor)"/> in <paramref name="precision"/>: with <see cref="Precision.F32"/>
    /// the affine, attention, activation and LayerNorm traces keep float32 caches and run their
    /// products as sgemm; softmax and LayerNorm statistics stay float64 (see
    /// <see cref="Blocks.BlockChain.Linearize(ParameterSet, Tensor, Precision)"/>).
    /// </summary>
    public ChainLinearization Linearize(Tensor inputs, Precision precision)
    {
        var rows = Rows(inputs);
        return TransformerChain.Build(Config, rows.Shape.Sizes[1]).Linearize(Parameters, rows, precision);
    }

    /// <summary>The hand-fused linearisation (<see cref="TransformerLinearization"/>), kept to measure the block chain against.</summary>
    internal ChainLinearization LinearizeFused(Tensor inputs)
    {
        Rows(inputs);
        return new TransformerLinearization(this, inputs);
    }

    /// <summary>Checks the inputs and parameters; returns the inputs as (sequence, token, input) rows (token ids are one input column).</summary>
    private Tensor Rows(Tensor inputs)
    {
        var s = inputs.Shape;
        if (Config.Input == TransformerInput.Linear)
        {
            if (s.Rank != 3 || s.Sizes[2] != Config.Inputs)
                throw new ArgumentException($"Transformer: inputs must be (sequence, token, input) with input = {Config.Inputs}, got {s}.");
        }
        else
        {
            if (!(s.Rank == 2 || (s.Rank == 3 && s.Sizes[2] == 1)))
                throw new ArgumentException($"Transformer: token inputs must be (sequence, token) ids, got {s}.");
            var span = inputs.Span;
            for (int i = 0; i < span.Length; i++)
                if (span[i] != Math.Floor(span[i]) || span[i] < 0 || span[i] >= Config.Inputs)
                    throw new ArgumentException($"Transformer: token id {span[i]} at position {i} is not an integer in [0, {Config.Inputs}).");
        }
        if (s.Sizes[0] < 1 || s.Sizes[1] < 1) throw new ArgumentException($"Transformer: inputs {s} are empty.");
        if (Config.Positional == TransformerPositional.Learned && s.Sizes[1] > Config.MaxPositions)
            throw new ArgumentException($"Transformer: {s.Sizes[1]} tokens per sequence but the learned positional table '{PositionalWeight}' has {Config.MaxPositions} rows.");
        inputs.EnsureFinite("transformer inputs");
        Parameters.EnsureFinite();
        return new Tensor(inputs.Span.ToArray(), new AxisShape(("sequence", s.Sizes[0]), ("token", s.Sizes[1]), ("input", s.Rank == 3 ? s.Sizes[2] : 1)));
    }

    /// <summary>The fixed sinusoidal positional encoding PE[t, 2i] = sin(t/10000^{2i/d}), PE[t, 2i+1] = cos(…), as [N, d].</summary>
    public static double[] PositionalEncoding(int tokens, int d) => Blocks.PositionalEncodingBlock.Sinusoid(tokens, d);


}

/// <summary>PyTorch names of encoder block l's parameters.</summary>
public readonly record struct BlockNames(int Layer)
{
    private string P => $"layers.{Layer}.";
    /// <summary>Packed W_Q, W_K, W_V [3d, d].</summary>
    public string InProjWeight => P + "self_attn.in_proj_weight";
    /// <summary>Packed biases [3d].</summary>
    public string InProjBias => P + "self_attn.in_proj_bias";
    /// <summary>W_O [d, d].</summary>
    public string OutProjWeight => P + "self_attn.out_proj.weight";
    /// <summary>b_O [d].</summary>
    public string OutProjBias => P + "self_attn.out_proj.bias";
    /// <summary>W₁ [d_ff, d].</summary>
    public string Linear1Weight => P + "linear1.weight";
    /// <summary>b₁ [d_ff].</summary>
    public string Linear1Bias => P + "linear1.bias";
    /// <summary>W₂ [d, d_ff].</summary>
    public string Linear2Weight => P + "linear2.weight";
    /// <summary>b₂ [d].</summary>
    public string Linear2Bias => P + "linear2.bias";
    /// <summary>LN₁ gain.</summary>
    public string Norm1Weight => P + "norm1.weight";
    /// <summary>LN₁ bias.</summary>
    public string Norm1Bias => P + "norm1.bias";
    /// <summary>LN₂ gain.</summary>
    public string Norm2Weight => P + "norm2.weight";
    /// <summary>LN₂ bias.</summary>
    public string Norm2Bias => P + "norm2.bias";
}
