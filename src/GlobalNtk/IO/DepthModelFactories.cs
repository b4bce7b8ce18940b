using System.Globalization;
using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Transformer;

namespace GlobalNtk.IO;

/// <summary>
/// Creates and loads <see cref="MlpModel"/>s (arch <c>mlp</c>). Options/metadata: <c>layers</c>
/// (default 2), <c>activation</c> (tanh | relu | gelu, default tanh). Loading finds
/// <c>layers.{k}.weight/bias</c> under any prefix (sizes from their shapes) and the readout pair.
/// </summary>
public sealed class MlpModelFactory : IModelFactory
{
    /// <summary>The shared instance (stateless).</summary>
    public static MlpModelFactory Instance { get; } = new();

    /// <inheritdoc/>
    public IChainModel Create(ModelSpec spec) =>
        MlpModel.Create(spec.InputSize, spec.HiddenSize, spec.Integer("layers", 2), spec.OutputSize,
            spec.Options.TryGetValue("activation", out var a) ? ActivationFunctions.Parse(a) : Activation.Tanh, spec.Seed);

    /// <inheritdoc/>
    public LoadedModel Load(TensorLookup t, string arch)
    {
        var first = t.Find(MlpModel.WeightName(0), "[H, N_in] of the first layer");
        if (first.Shape.Length != 2) throw t.Error($"tensor '{first.Name}' has shape {first.ShapeText}, expected [H, N_in].");
        int h = first.Shape[0], nIn = first.Shape[1];
        var ps = new List<Parameter>();
        for (int k = 0; ; k++)
        {
            var w = k == 0 ? first : t.TryFind(MlpModel.WeightName(k));
            if (w is null) break;
            t.RequireShape(w, [h, k == 0 ? nIn : h], $"layer {k} of an MLP with hidden {h}");
            var b = t.Find(MlpModel.BiasName(k), $"[{h}]");
            t.RequireShape(b, [h], $"layer {k} of an MLP with hidden {h}");
            ps.Add(new Parameter(MlpModel.WeightName(k), w.Shape, w.Data));
            ps.Add(new Parameter(MlpModel.BiasName(k), b.Shape, b.Data));
        }
        var readout = t.TryFindReadout(h);
        t.RequireAllClaimed($"mlp (hidden {h}, input {nIn}, {ps.Count / 2} layers)");
        return Build(t, readout, h, r =>
            new MlpModel(nIn, h, ps.Count / 2, t.Metadata.TryGetValue("activation", out var a) ? ActivationFunctions.Parse(a) : Activation.Tanh,
                new ParameterSet(ps), r));
    }

    /// <summary>Builds the model over the found readout (or a zero one), turning model errors into file errors.</summary>
    internal static LoadedModel Build(TensorLookup t, (Parameter Weight, Parameter Bias)? readout, int width, Func<Readout, IChainModel> make)
    {
        try
        {
            int o = readout?.Weight.Shape[0] ?? 1;
            var r = new Readout(new Parameter(Readout.WeightName, [o, width], readout?.Weight.Data),
                new Parameter(Readout.BiasName, [o], readout?.Bias.Data), lastStepOnly: true);
            return new LoadedModel(make(r), readout is not null, t.Metadata, t.Path);
        }
        catch (ArgumentException ex) { throw t.Error(ex.Message); }
    }
}

/// <summary>
/// Creates and loads <see cref="TransformerModel"/>s (arch <c>transformer</c>). Options/metadata:
/// <c>layers</c> (default 2), <c>heads</c> (default 4; required when loading), <c>dim_feedforward</c>
/// (default 4d), <c>activation</c> (gelu | relu; default gelu when creating, relu — PyTorch's default —
/// when a file does not say), <c>causal</c> (true | false, default false). Created models use a
/// linear input projection of the task's inputs; loading accepts <c>input_proj</c> or
/// <c>embedding</c> and finds every tensor by its PyTorch name under any prefix.
/// </summary>
public sealed class TransformerModelFactory : IModelFactory
{
    /// <summary>The shared instance (stateless).</summary>
    public static TransformerModelFactory Instance { get; } = new();

    /// <inheritdoc/>
    public IChainModel Create(ModelSpec spec)
    {
        int d = spec.HiddenSize;
        var config = new TransformerConfig(TransformerInput.Linear, spec.InputSize, d, spec.Integer("heads", 4), spec.Integer("layers", 2),
            spec.Integer("dim_feedforward", 4 * d),
            spec.Options.TryGetValue("activation", out var a) ? ActivationFunctions.Parse(a) : Activation.Gelu,
            ParseBool(spec.Options, "causal", "model option"));
        return TransformerModel.Create(config, spec.OutputSize, spec.Seed);
    }

    /// <inheritdoc/>
    public LoadedModel Load(TensorLookup t, string arch)
    {
        var md = t.Metadata;
        var inProj = t.TryFind(TransformerModel.InputWeight);
        var embedding = inProj is null ? t.Find(TransformerModel.EmbeddingWeight, "input_proj.weight [d, N_in] or embedding.weight [V, d]") : null;
        var input = (inProj ?? embedding)!;
        if (input.Shape.Length != 2) throw t.Error($"tensor '{input.Name}' has shape {input.ShapeText}, expected a matrix.");
        int d = inProj is null ? input.Shape[1] : input.Shape[0];
        int inputs = inProj is null ? input.Shape[0] : input.Shape[1];
        int layers = 0;
        while (t.File.Tensors.Any(p => p.Name == $"layers.{layers}.self_attn.in_proj_weight" || p.Name.EndsWith($".layers.{layers}.self_attn.in_proj_weight", StringComparison.Ordinal))) layers++;
        if (layers == 0) throw t.Error("missing tensor '*layers.0.self_attn.in_proj_weight' (no encoder block found).");
        var ff = t.File.Tensors.FirstOrDefault(p => p.Name.EndsWith("layers.0.linear1.weight", StringComparison.Ordinal));
        if (ff is null || ff.Shape.Length != 2) throw t.Error("missing tensor '*layers.0.linear1.weight' [d_ff, d].");
        if (!md.TryGetValue("heads", out var hs) || !int.TryParse(hs, NumberStyles.Integer, CultureInfo.InvariantCulture, out int heads))
            throw t.Error("metadata has no integer 'heads' (needed to split attention heads).");
        TransformerConfig config;
        try
        {
            config = new TransformerConfig(inProj is null ? TransformerInput.Embedding : TransformerInput.Linear, inputs, d, heads, layers, ff.Shape[0],
                md.TryGetValue("activation", out var a) ? ActivationFunctions.Parse(a) : Activation.Relu, ParseBool(md, "causal", "metadata"));
            config.Validate();
        }
        catch (ArgumentException ex) { throw t.Error(ex.Message); }

        var ps = new List<Parameter>();
        foreach (var (name, shape) in TransformerModel.Layout(config))
        {
            var p = t.Find(name, SafetensorsFile.ShapeText(shape));
            t.RequireShape(p, shape, $"transformer d {d}, d_ff {ff.Shape[0]}, {layers} layers");
            ps.Add(new Parameter(name, p.Shape, p.Data));
        }
        var readout = t.TryFindReadout(d);
        t.RequireAllClaimed($"transformer (d {d}, {layers} layers)");
        return MlpModelFactory.Build(t, readout, d, r => new TransformerModel(config, new ParameterSet(ps), r));
    }

    private static bool ParseBool(IReadOnlyDictionary<string, string> d, string key, string what) =>
        !d.TryGetValue(key, out var s) ? false
        : s.Trim().ToLowerInvariant() switch
        {
            "true" or "1" or "yes" => true,
            "false" or "0" or "no" => false,
            _ => throw new ArgumentException($"{what} '{key}' = '{s}' is not true or false."),
        };
}
