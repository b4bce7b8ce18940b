using System.Globalization;
using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Transformer;

namespace GlobalNtk.IO;

/// <summary>
/// Creates and loads <see cref="MlpModel"/>s (arch <c>mlp</c>). Options: <c>layers</c> (default 2),
/// <c>activation</c> (tanh | relu | gelu | gelu_tanh, default tanh when creating). Loading finds
/// either an <c>nn.ModuleList</c> <c>layers.{k}.weight/bias</c> (consecutive indices; the readout is
/// the one other weight/bias pair [O, H], optional) or an <c>nn.Sequential</c> of Linear and
/// activation modules (<c>0.weight</c>, <c>2.weight</c>, … under any prefix; its last Linear is the
/// readout unless another weight/bias pair is, and may have no bias: <c>nn.Linear(H, O,
/// bias=False)</c> is a bias-free readout), sizes from the shapes. The activation is a
/// required setting (metadata or <c>--option activation=…</c>): never assumed.
/// </summary>
public sealed class MlpModelFactory : IModelFactory
{
    /// <summary>The shared instance (stateless).</summary>
    public static MlpModelFactory Instance { get; } = new();

    private static readonly System.Text.RegularExpressions.Regex Numbered = new(@"^(?<prefix>(?:.*\.)?)(?<i>\d+)\.(?<leaf>weight|bias)$");

    /// <inheritdoc/>
    public IChainModel Create(ModelSpec spec) =>
        MlpModel.Create(spec.InputSize, spec.HiddenSize, spec.Integer("layers", 2), spec.OutputSize,
            ActivationFunctions.Parse(spec.Options.TryGetValue("activation", out var a) ? a : "tanh"), spec.Seed);

    /// <inheritdoc/>
    public LoadedModel Load(TensorLookup t, string arch)
    {
        var st = t.Settings;
        // Numbered Linear modules: (index, weight, bias) under one prefix.
        var numbered = t.File.Tensors.Select(p => (P: p, M: Numbered.Match(p.Name))).Where(x => x.M.Success).ToList();
        var prefixes = numbered.Select(x => x.M.Groups["prefix"].Value).Distinct().ToList();
        if (prefixes.Count == 0)
            throw t.Error($"no MLP layers: expected '*{MlpModel.WeightName(0)}' [H, N_in] (nn.ModuleList 'layers') or an nn.Sequential's '0.weight'; the file has: {TensorLookup.Listing(t.File.Tensors.Select(x => $"{x.Name} {x.ShapeText}"))}.");
        if (prefixes.Count > 1)
            throw t.Error($"several groups of numbered layers ({TensorLookup.Listing(prefixes.Select(p => $"'{p}0.weight'"))}); cannot tell which is the MLP.");
        string prefix = prefixes[0];
        var indices = numbered.Select(x => int.Parse(x.M.Groups["i"].Value, CultureInfo.InvariantCulture)).Distinct().Order().ToList();
        var linears = new List<(int Index, Parameter W, Parameter? B)>();
        foreach (int i in indices)
        {
            var w = t.TryFind($"{prefix}{i}.weight") ?? throw t.Error($"tensor '{prefix}{i}.bias' has no weight '{prefix}{i}.weight'.");
            if (w.Shape.Length != 2 || w.Shape[0] < 1 || w.Shape[1] < 1)
                throw t.Error($"tensor '{w.Name}' has shape {w.ShapeText}, expected a matrix [out, in].");
            // Only the last Linear may lack a bias (a bias-free readout); a hidden layer's is checked below.
            linears.Add((i, w, t.TryFind($"{prefix}{i}.bias")));
        }
        // A ModuleList numbers its Linears 0, 1, 2, …; an nn.Sequential interleaves parameter-free
        // modules (the activation, perhaps Dropout), so its Linears have gaps.
        bool sequential = indices.Zip(indices.Skip(1)).Any(p => p.Second - p.First > 1);
        if (sequential && indices.Zip(indices.Skip(1)).Any(p => p.Second - p.First == 1))
            throw t.Error($"Linear modules '{prefix}{indices.Zip(indices.Skip(1)).First(p => p.Second - p.First == 1).First}' and the next follow each other with no activation between; not an MLP of this form.");
        if (indices[0] != 0) throw t.Error($"the first numbered layer is '{prefix}{indices[0]}.weight'; expected '{prefix}0.weight'.");

        (Parameter Weight, Parameter? Bias)? readout = t.TryFindReadout(linears[^1].W.Shape[0], allowBiasFree: true);
        string readoutFrom = readout is null ? "" : readout.Value.Bias is null ? "a separate bias-free weight" : "a separate weight/bias pair";
        if (readout is null && sequential)
        {
            readout = (linears[^1].W, linears[^1].B);
            readoutFrom = "the Sequential's last Linear";
            linears.RemoveAt(linears.Count - 1);
            if (linears.Count == 0) throw t.Error($"nn.Sequential '{prefix}' has a single Linear: no hidden layer before the readout.");
        }
        int h = linears[0].W.Shape[0], nIn = linears[0].W.Shape[1];
        var ps = new List<Parameter>();
        for (int k = 0; k < linears.Count; k++)
        {
            var (i, w, b) = linears[k];
            if (b is null)
                throw t.Error($"missing tensor '*{prefix}{i}.bias' (the bias of hidden Linear '{prefix}{i}' [{w.Shape[0]}]; only the readout may be bias-free); the file has: {TensorLookup.Listing(t.File.Tensors.Select(x => $"{x.Name} {x.ShapeText}"))}.");
            if (k > 0) t.RequireShape(w, [h, h], $"hidden layer {k} of width {h}");
            t.RequireShape(b, [h], $"layer {k} of width {h}");
            ps.Add(Parameter.Own(MlpModel.WeightName(k), w.Shape, w.Data));
            ps.Add(Parameter.Own(MlpModel.BiasName(k), b.Shape, b.Data));
        }
        if (readout is { } ro && readoutFrom.StartsWith("the Sequential", StringComparison.Ordinal))
        {
            if (ro.Weight.Shape[1] != h) throw t.Error($"readout '{ro.Weight.Name}' has shape {ro.Weight.ShapeText}, expected [O, {h}].");
            if (ro.Bias is { } rb && (rb.Shape.Length != 1 || rb.Shape[0] != ro.Weight.Shape[0]))
                throw t.Error($"readout '{rb.Name}' has shape {rb.ShapeText}, expected [{ro.Weight.Shape[0]}].");
        }
        int layers = linears.Count;
        t.RequireAllClaimed($"MLP (input {nIn}, hidden {h}, {layers} layers)");
        var act = st.Require("activation", "tanh | relu | gelu | gelu_tanh", "the hidden layers' nonlinearity φ", ActivationFunctions.Parse, Activation.Tanh);
        st.Inferred("layers", layers, layers.ToString(CultureInfo.InvariantCulture),
            sequential ? $"{layers} hidden Linear modules '{prefix}0' … before the readout" : $"'{prefix}0.weight' … '{prefix}{layers - 1}.weight'", "a positive integer", ModelSettings.ParsePositiveInt);
        st.ThrowIfMissing("MLP");
        try
        {
            int outputs = readout?.Weight.Shape[0] ?? 1;
            var r = new Readout(Parameter.Own(Readout.WeightName, [outputs, h], readout?.Weight.Data),
                TensorLookup.CanonicalReadoutBias(readout, outputs), lastStepOnly: true);
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
/// Creates and loads <see cref="TransformerModel"/>s (arch <c>transformer</c>). Options when
/// creating (and metadata keys written): <c>layers</c> (default 2), <c>heads</c> (default 4),
/// <c>dim_feedforward</c> (default 4d), <c>activation</c> (gelu | relu, default gelu),
/// <c>gelu_approximate</c> (none | tanh, default none), <c>causal</c> (default true),
/// <c>norm_first</c> (default true), <c>layer_norm_eps</c> (default 1e-5), <c>positional</c>
/// (none | sinusoidal | learned, default sinusoidal), <c>max_positions</c> (learned table rows),
/// <c>scale_embedding</c> (default false), <c>final_norm</c> (default false), <c>final_norm_eps</c>,
/// <c>input</c> (linear | embedding; with an embedding the input size is the vocabulary).
/// Loading finds PyTorch's <c>nn.TransformerEncoder</c>/<c>nn.TransformerEncoderLayer</c> names
/// under any prefix; sizes, the input kind, a learned positional table and a final norm come from
/// the tensors; every other setting that changes the mathematics (heads, activation,
/// gelu_approximate, causal, norm_first, layer_norm_eps, positional, scale_embedding,
/// final_norm_eps) must be in the metadata or given, else loading fails naming them.
/// </summary>
public sealed class TransformerModelFactory : IModelFactory
{
    /// <summary>The shared instance (stateless).</summary>
    public static TransformerModelFactory Instance { get; } = new();

    /// <summary>Endings accepted for a learned positional table ([max_positions, d] or [1, max_positions, d]).</summary>
    public static readonly IReadOnlyList<string> LearnedPositionalNames =
        [TransformerModel.PositionalWeight, "pos_embedding.weight", "positional_embedding", "positional_embedding.weight", "pos_emb", "pos_emb.weight"];

    /// <inheritdoc/>
    public IChainModel Create(ModelSpec spec)
    {
        int d = spec.HiddenSize;
        var o = spec.Options;
        var act = ActivationFunctions.Parse(o.TryGetValue("activation", out var a) ? a : "gelu");
        if (act == Activation.Gelu && Flag(o, "gelu_approximate", "none", "tanh")) act = Activation.GeluTanh;
        var positional = o.TryGetValue("positional", out var pos) ? ParsePositional(pos) : TransformerPositional.Sinusoidal;
        var config = new TransformerConfig(
            Flag(o, "input", "linear", "embedding") ? TransformerInput.Embedding : TransformerInput.Linear,
            spec.InputSize, d, spec.Integer("heads", 4), spec.Integer("layers", 2), spec.Integer("dim_feedforward", 4 * d),
            act, !Flag(o, "causal", "true", "false"))
        {
            NormFirst = !Flag(o, "norm_first", "true", "false"),
            LayerNormEps = spec.Real("layer_norm_eps", 1e-5),
            Positional = positional,
            MaxPositions = positional == TransformerPositional.Learned ? spec.Integer("max_positions", 0) : 0,
            ScaleEmbedding = Flag(o, "scale_embedding", "false", "true"),
            FinalNorm = Flag(o, "final_norm", "false", "true"),
            FinalNormEps = spec.Real("final_norm_eps", 1e-5),
        };
        return TransformerModel.Create(config, spec.OutputSize, spec.Seed);
    }

    /// <inheritdoc/>
    public LoadedModel Load(TensorLookup t, string arch)
    {
        var st = t.Settings;
        Parameter? proj = t.TryFind(TransformerModel.InputWeight);
        Parameter? emb = proj is null ? t.Find(TransformerModel.EmbeddingWeight, $"[V, d] or '{TransformerModel.InputWeight}' [d, N_in]") : null;
        var first = proj ?? emb!;
        if (first.Shape.Length != 2 || first.Shape[0] < 1 || first.Shape[1] < 1)
            throw t.Error($"tensor '{first.Name}' has shape {first.ShapeText}, expected a matrix.");
        int d = proj is not null ? proj.Shape[0] : emb!.Shape[1];
        int inputs = proj is not null ? proj.Shape[1] : emb!.Shape[0];
        int layers = 0;
        var inProjs = new List<string>();
        while (t.TryFind(new BlockNames(layers).InProjWeight) is { } ip) { inProjs.Add(ip.Name); layers++; }
        if (layers == 0) throw t.Error($"missing tensor '*{new BlockNames(0).InProjWeight}' [{3 * d}, {d}]: no encoder layer found.");
        var ff = t.Find(new BlockNames(0).Linear1Weight, $"[d_ff, {d}]");
        int f = ff.Shape.Length == 2 && ff.Shape[0] > 0 ? ff.Shape[0] : throw t.Error($"tensor '{ff.Name}' has shape {ff.ShapeText}, expected [d_ff, {d}].");

        // Read off the tensors: a learned positional table, a fixed sinusoid buffer, a final norm.
        Parameter? learned = null;
        foreach (var name in LearnedPositionalNames) learned ??= t.TryFind(name);
        if (learned is not null && !(learned.Shape.Length == 2 && learned.Shape[1] == d || learned.Shape.Length == 3 && learned.Shape[0] == 1 && learned.Shape[2] == d))
            throw t.Error($"positional table '{learned.Name}' has shape {learned.ShapeText}, expected [max_positions, {d}] or [1, max_positions, {d}].");
        Parameter? peBuffer = learned is null ? t.TryFind("pe") : null;
        Parameter? finalW = t.TryFind(TransformerModel.FinalNormWeight), finalB = t.TryFind(TransformerModel.FinalNormBias);
        if ((finalW is null) != (finalB is null))
            throw t.Error($"final norm tensor '{(finalW ?? finalB)!.Name}' has no matching '{(finalW is null ? TransformerModel.FinalNormWeight : TransformerModel.FinalNormBias)}'.");

        const string Bool = "true | false";
        var input = st.Inferred("input", proj is not null ? TransformerInput.Linear : TransformerInput.Embedding, proj is not null ? "linear" : "embedding",
            $"'{first.Name}' {first.ShapeText}", "linear | embedding", s => s switch { "linear" => TransformerInput.Linear, "embedding" => TransformerInput.Embedding, _ => throw new FormatException() });
        st.Inferred("layers", layers, layers.ToString(CultureInfo.InvariantCulture), layers == 1 ? $"'{inProjs[0]}'" : $"'{inProjs[0]}' … '{inProjs[^1]}'", "a positive integer", ModelSettings.ParsePositiveInt);
        st.Inferred("dim_feedforward", f, f.ToString(CultureInfo.InvariantCulture), $"'{ff.Name}' {ff.ShapeText}", "a positive integer", ModelSettings.ParsePositiveInt);
        int heads = st.Require("heads", "number of attention heads, dividing d", "attention heads (nhead)", ModelSettings.ParsePositiveInt, 1);
        var act = st.Require("activation", "relu | gelu", "feed-forward nonlinearity", s => s.ToLowerInvariant() switch
        {
            "relu" => Activation.Relu, "gelu" => Activation.Gelu, "gelu_tanh" => Activation.GeluTanh, _ => throw new FormatException(),
        }, Activation.Relu);
        if (act == Activation.Gelu && st.Require("gelu_approximate", "none | tanh", "nn.GELU(approximate=…)", s => s.ToLowerInvariant() switch
            { "none" => false, "tanh" => true, _ => throw new FormatException() }, false))
            act = Activation.GeluTanh;
        bool causal = st.Require("causal", Bool, "token t attends only to tokens ≤ t (a causal mask)", ModelSettings.ParseBool, false);
        bool normFirst = st.Require("norm_first", Bool, "pre-LN (true) or post-LN (false, PyTorch's default) blocks", ModelSettings.ParseBool, false);
        double eps = st.Require("layer_norm_eps", "a positive number, PyTorch's default 1e-5", "the blocks' LayerNorm eps", ModelSettings.ParsePositive, 1e-5);
        TransformerPositional positional;
        int maxPositions = 0;
        if (learned is not null)
        {
            maxPositions = learned.Shape[^2];
            positional = st.Inferred("positional", TransformerPositional.Learned, "learned", $"'{learned.Name}' {learned.ShapeText}", "none | sinusoidal | learned", ParsePositional);
        }
        else if (peBuffer is not null)
        {
            positional = st.Inferred("positional", TransformerPositional.Sinusoidal, "sinusoidal", $"buffer '{peBuffer.Name}' {peBuffer.ShapeText}", "none | sinusoidal | learned", ParsePositional);
            CheckSinusoid(t, peBuffer, d);
            t.Ignore(peBuffer, "the fixed sinusoid buffer (recomputed in float64; checked equal to it)");
        }
        else
        {
            positional = st.Require("positional", "none | sinusoidal | learned", "the positional encoding added to the embedding", ParsePositional, TransformerPositional.None);
            if (positional == TransformerPositional.Learned)
                throw t.Error($"setting positional = learned but no positional table ({string.Join(", ", LearnedPositionalNames.Select(n => $"'*{n}'"))}) is in the file.");
        }
        bool scale = st.Require("scale_embedding", Bool, "the embedding is multiplied by √d before the positional encoding", ModelSettings.ParseBool, false);
        bool finalNorm = st.Inferred("final_norm", finalW is not null, finalW is not null ? "true" : "false",
            finalW is not null ? $"'{finalW.Name}' {finalW.ShapeText}" : "no '*norm.weight' tensor", Bool, ModelSettings.ParseBool);
        double finalEps = finalNorm ? st.Require("final_norm_eps", "a positive number, nn.LayerNorm's default 1e-5", "the final encoder norm's eps", ModelSettings.ParsePositive, 1e-5) : 1e-5;
        // A file written by GlobalNtk before these keys existed was computed with them fixed: say so (still no default).
        st.ThrowIfMissing($"transformer (d {d}, {layers} layers)", t.Metadata.TryGetValue("family", out var fam) && fam == "transformer" && !t.Metadata.ContainsKey("layer_norm_eps")
            ? "this file was written by an earlier GlobalNtk, which always computed layer_norm_eps=1e-5, gelu_approximate=none, scale_embedding=false"
            : null);

        TransformerConfig config;
        try
        {
            config = new TransformerConfig(input, inputs, d, heads, layers, f, act, causal)
            {
                NormFirst = normFirst, LayerNormEps = eps, Positional = positional, MaxPositions = maxPositions,
                ScaleEmbedding = scale, FinalNorm = finalNorm, FinalNormEps = finalEps,
            };
            config.Validate();
        }
        catch (ArgumentException ex) { throw t.Error(ex.Message); }

        var ps = new List<Parameter>();
        foreach (var (name, shape) in TransformerModel.Layout(config))
        {
            var p = name switch
            {
                TransformerModel.PositionalWeight => learned!,
                TransformerModel.FinalNormWeight => finalW!,
                TransformerModel.FinalNormBias => finalB!,
                _ => t.Find(name, $"[{string.Join(", ", shape)}]"),
            };
            if (name != TransformerModel.PositionalWeight) t.RequireShape(p, shape, $"transformer d = {d}, d_ff = {f}");
            ps.Add(Parameter.Own(name, shape, p.Data));
        }
        var readout = t.TryFindReadout(d, allowBiasFree: true);
        t.RequireAllClaimed($"transformer (d {d}, {layers} layers)");
        try
        {
            int outputs = readout?.Weight.Shape[0] ?? 1;
            var r = new Readout(Parameter.Own(Readout.WeightName, [outputs, d], readout?.Weight.Data),
                TensorLookup.CanonicalReadoutBias(readout, outputs), lastStepOnly: true);
            var model = new TransformerModel(config, new ParameterSet(ps), r);
            model.Parameters.EnsureFinite();
            return new LoadedModel(model, readout is not null, t.Metadata, t.Path);
        }
        catch (Exception ex) when (ex is ArgumentException or Dense.NonFiniteException)
        {
            throw t.Error(ex.Message);
        }
    }

    private static TransformerPositional ParsePositional(string s) => s.ToLowerInvariant() switch
    {
        "none" => TransformerPositional.None,
        "sinusoidal" or "sinusoid" => TransformerPositional.Sinusoidal,
        "learned" => TransformerPositional.Learned,
        _ => throw new FormatException($"positional '{s}' is not none, sinusoidal or learned."),
    };

    /// <summary>A saved sinusoid buffer ([max_len, d], [max_len, 1, d] or [1, max_len, d]) must be the one we compute (to float32 precision).</summary>
    private static void CheckSinusoid(TensorLookup t, Parameter pe, int d)
    {
        var sh = pe.Shape;
        bool ok = sh.Length == 2 && sh[1] == d || sh.Length == 3 && sh[2] == d && (sh[0] == 1 || sh[1] == 1);
        if (!ok || pe.Size == 0) throw t.Error($"positional buffer '{pe.Name}' has shape {pe.ShapeText}, expected [max_len, {d}], [max_len, 1, {d}] or [1, max_len, {d}].");
        int rows = pe.Size / d;
        var expected = TransformerModel.PositionalEncoding(rows, d);
        for (int i = 0; i < expected.Length; i++)
            if (Math.Abs(expected[i] - pe.Data[i]) > 1e-5 * Math.Max(1.0, rows / 100.0))
                throw t.Error($"positional buffer '{pe.Name}' is not the sinusoid PE[t, 2i] = sin(t/10000^(2i/d)), PE[t, 2i+1] = cos(…): entry (t {i / d}, i {i % d}) is {pe.Data[i]}, expected {expected[i]}.");
    }
    /// <summary>Whether options[key] equals <paramref name="other"/> (else <paramref name="fallback"/>, which must be one of the two).</summary>
    private static bool Flag(IReadOnlyDictionary<string, string> options, string key, string fallback, string other)
    {
        string v = options.TryGetValue(key, out var s) ? s.Trim().ToLowerInvariant() : fallback;
        if (v != fallback && v != other) throw new ArgumentException($"Model option '{key}' = '{s}' must be {fallback} or {other}.");
        return v == other;
    }
}
