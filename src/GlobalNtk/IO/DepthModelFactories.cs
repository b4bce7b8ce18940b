using System.Globalization;
using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Transformer;

namespace GlobalNtk.IO;

/// <summary>
/// Creates and loads <see cref="MlpModel"/>s (arch <c>mlp</c>). Options: <c>layers</c> (default 2),
/// <c>activation</c> (tanh | relu | gelu, default tanh). Loading finds <c>layers.{k}.weight/bias</c>
/// under any prefix (sizes from their shapes), the readout as the one other weight/bias pair
/// [O, H], [O] (optional), and the activation from the metadata.
/// </summary>
public sealed class MlpModelFactory : IModelFactory
{
    /// <summary>The shared instance (stateless).</summary>
    public static MlpModelFactory Instance { get; } = new();

    /// <inheritdoc/>
    public IChainModel Create(ModelSpec spec) =>
        MlpModel.Create(spec.InputSize, spec.HiddenSize, spec.Integer("layers", 2), spec.OutputSize,
            ActivationFunctions.Parse(spec.Options.TryGetValue("activation", out var a) ? a : "tanh"), spec.Seed);

    /// <inheritdoc/>
    public LoadedModel Load(TensorLookup t, string arch)
    {
        var w0 = t.Find(MlpModel.WeightName(0), "[H, N_in], the first layer of an MLP");
        if (w0.Shape.Length != 2 || w0.Shape[0] < 1 || w0.Shape[1] < 1)
            throw t.Error($"tensor '{w0.Name}' has shape {w0.ShapeText}, expected [H, N_in].");
        int h = w0.Shape[0], nIn = w0.Shape[1];
        var ps = new List<Parameter> { new(MlpModel.WeightName(0), w0.Shape, w0.Data) };
        for (int k = 0; ; k++)
        {
            if (k > 0)
            {
                var w = t.TryFind(MlpModel.WeightName(k));
                if (w is null) break;
                t.RequireShape(w, [h, h], $"hidden layer {k} of width {h}");
                ps.Add(new Parameter(MlpModel.WeightName(k), w.Shape, w.Data));
            }
            var b = t.Find(MlpModel.BiasName(k), $"[{h}] for layer {k}");
            t.RequireShape(b, [h], $"layer {k} of width {h}");
            ps.Add(new Parameter(MlpModel.BiasName(k), b.Shape, b.Data));
        }
        int layers = ps.Count / 2;
        var readout = t.TryFindReadout(h);
        t.RequireAllClaimed($"MLP (input {nIn}, hidden {h}, {layers} layers)");
        try
        {
            var act = ActivationFunctions.Parse(t.Metadata.TryGetValue("activation", out var a) ? a : "tanh");
            int outputs = readout?.Weight.Shape[0] ?? 1;
            var r = new Readout(new Parameter(Readout.WeightName, [outputs, h], readout?.Weight.Data),
                new Parameter(Readout.BiasName, [outputs], readout?.Bias.Data), lastStepOnly: true);
            var model = new MlpModel(nIn, h, layers, act, new ParameterSet(ps), r);
            model.Parameters.EnsureFinite();
            return new LoadedModel(model, readout is not null, t.Metadata, t.Path);
        }
        catch (Exception ex) when (ex is ArgumentException or Dense.NonFiniteException)
        {
            throw t.Error(ex.Message);
        }
    }
}

/// <summary>
/// Creates and loads <see cref="TransformerModel"/>s (arch <c>transformer</c>). Options (and
/// metadata keys): <c>layers</c> (default 2), <c>heads</c> (default 4), <c>dim_feedforward</c>
/// (default 4d), <c>activation</c> (gelu | relu; creation default gelu, loading default relu as
/// PyTorch's), <c>causal</c> (true | false; creation default true, loading default false),
/// <c>input</c> (linear | embedding; with an embedding the input size is the vocabulary).
/// Loading finds PyTorch's <c>nn.TransformerEncoderLayer</c> names under any prefix.
/// </summary>
public sealed class TransformerModelFactory : IModelFactory
{
    /// <summary>The shared instance (stateless).</summary>
    public static TransformerModelFactory Instance { get; } = new();

    /// <inheritdoc/>
    public IChainModel Create(ModelSpec spec)
    {
        int d = spec.HiddenSize;
        var config = new TransformerConfig(
            Flag(spec.Options, "input", "linear", "embedding") ? TransformerInput.Embedding : TransformerInput.Linear,
            spec.InputSize, d, spec.Integer("heads", 4), spec.Integer("layers", 2), spec.Integer("dim_feedforward", 4 * d),
            ActivationFunctions.Parse(spec.Options.TryGetValue("activation", out var a) ? a : "gelu"),
            !Flag(spec.Options, "causal", "true", "false"));
        return TransformerModel.Create(config, spec.OutputSize, spec.Seed);
    }

    /// <inheritdoc/>
    public LoadedModel Load(TensorLookup t, string arch)
    {
        var md = t.Metadata;
        Parameter? proj = t.TryFind(TransformerModel.InputWeight);
        Parameter? emb = proj is null ? t.Find(TransformerModel.EmbeddingWeight, $"[V, d] or '{TransformerModel.InputWeight}' [d, N_in]") : null;
        var first = proj ?? emb!;
        if (first.Shape.Length != 2 || first.Shape[0] < 1 || first.Shape[1] < 1)
            throw t.Error($"tensor '{first.Name}' has shape {first.ShapeText}, expected a matrix.");
        int d = proj is not null ? proj.Shape[0] : emb!.Shape[1];
        int inputs = proj is not null ? proj.Shape[1] : emb!.Shape[0];
        int layers = 0;
        while (t.TryFind(new BlockNames(layers).InProjWeight) is not null) layers++;
        if (layers == 0) throw t.Error($"missing tensor '*{new BlockNames(0).InProjWeight}' [{3 * d}, {d}]: no encoder layer found.");
        var ff = t.Find(new BlockNames(0).Linear1Weight, $"[d_ff, {d}]");
        int f = ff.Shape.Length == 2 && ff.Shape[0] > 0 ? ff.Shape[0] : throw t.Error($"tensor '{ff.Name}' has shape {ff.ShapeText}, expected [d_ff, {d}].");
        if (!md.TryGetValue("heads", out var hs) || !int.TryParse(hs, NumberStyles.Integer, CultureInfo.InvariantCulture, out int heads))
            throw t.Error("metadata key 'heads' (number of attention heads) is missing or not an integer; the tensors do not determine it.");
        TransformerConfig config;
        try
        {
            config = new TransformerConfig(proj is not null ? TransformerInput.Linear : TransformerInput.Embedding, inputs, d, heads, layers, f,
                ActivationFunctions.Parse(md.TryGetValue("activation", out var a) ? a : "relu"), Flag(md, "causal", "false", "true"));
            config.Validate();
        }
        catch (ArgumentException ex) { throw t.Error(ex.Message); }

        var ps = new List<Parameter>();
        foreach (var (name, shape) in TransformerModel.Layout(config))
        {
            var p = t.Find(name, $"[{string.Join(", ", shape)}]");
            t.RequireShape(p, shape, $"transformer d = {d}, d_ff = {f}");
            ps.Add(new Parameter(name, shape, p.Data));
        }
        var readout = t.TryFindReadout(d);
        t.RequireAllClaimed($"transformer (d {d}, {layers} layers)");
        try
        {
            int outputs = readout?.Weight.Shape[0] ?? 1;
            var r = new Readout(new Parameter(Readout.WeightName, [outputs, d], readout?.Weight.Data),
                new Parameter(Readout.BiasName, [outputs], readout?.Bias.Data), lastStepOnly: true);
            var model = new TransformerModel(config, new ParameterSet(ps), r);
            model.Parameters.EnsureFinite();
            return new LoadedModel(model, readout is not null, md, t.Path);
        }
        catch (Exception ex) when (ex is ArgumentException or Dense.NonFiniteException)
        {
            throw t.Error(ex.Message);
        }
    }

    /// <summary>Whether options[key] equals <paramref name="other"/> (else <paramref name="fallback"/>, which must be one of the two).</summary>
    private static bool Flag(IReadOnlyDictionary<string, string> options, string key, string fallback, string other)
    {
        string v = options.TryGetValue(key, out var s) ? s.Trim().ToLowerInvariant() : fallback;
        if (v != fallback && v != other) throw new ArgumentException($"Model option '{key}' = '{s}' must be {fallback} or {other}.");
        return v == other;
    }
}
