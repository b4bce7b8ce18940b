using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Recurrent;

namespace GlobalNtk.IO;

/// <summary>
/// Creates and loads <see cref="RecurrentModel"/>s. Loading accepts PyTorch state dicts of
/// nn.RNN / nn.GRU / nn.LSTM unchanged: <c>weight_ih_l{k}</c>, <c>weight_hh_l{k}</c> and, with
/// bias, <c>bias_ih_l{k}</c>, <c>bias_hh_l{k}</c> under any prefix; the number of layers, the bias
/// and the sizes come from the tensors; a learnable initial state <c>h0</c> ([L, H] or [H]) is a
/// parameter; the readout is the one other <c>weight</c> [O, H] (with or without its
/// <c>bias</c> [O]; optional). Every setting is recorded with its source: layers, bias and h0
/// are read off the tensors (a contradicting metadata key or <c>--option</c> is an error); the
/// leaky RNN's <c>alpha</c> and <c>activation</c> change the mathematics and must be in the
/// metadata or given as <c>--option KEY=VALUE</c>, else loading fails naming them. gain and seed
/// only describe the initialisation and are kept from the metadata.
/// </summary>
public sealed class RecurrentModelFactory : IModelFactory
{
    /// <summary>The shared instance (stateless).</summary>
    public static RecurrentModelFactory Instance { get; } = new();

    /// <summary>The arch names that share one gate (nn.RNN's two, and the leaky RNN).</summary>
    private static readonly string[] SingleGate = ["rnn-tanh", "rnn-relu", "leaky-rnn"];

    /// <inheritdoc/>
    public IChainModel Create(ModelSpec spec)
    {
        var config = new RecurrentConfig(spec.Arch, spec.InputSize, spec.HiddenSize, spec.OutputSize)
        {
            Seed = spec.Seed, Gain = spec.Gain,
            Layers = spec.Integer("layers", 1),
            Bias = !spec.Options.TryGetValue("bias", out var bias) || ParseFlag("bias", bias),
            LearnInitialState = spec.Options.TryGetValue("h0", out var h0) && ParseFlag("h0", h0),
        };
        // alpha and activation exist only for the rate model; other cells keep the defaults.
        if (config.NormalizedArch == "leaky-rnn")
            config = config with
            {
                Alpha = spec.Real("alpha", config.Alpha),
                Activation = spec.Options.TryGetValue("activation", out var act) ? GlobalNtk.Models.Mlp.ActivationFunctions.Parse(act) : config.Activation,
            };
        return RecurrentModel.Create(config);
    }

    private static bool ParseFlag(string key, string v) => v.Trim().ToLowerInvariant() switch
    {
        "true" or "1" or "yes" => true,
        "false" or "0" or "no" => false,
        _ => throw new ArgumentException($"Model option '{key}' = '{v}' is not true or false."),
    };

    /// <summary>
    /// The recurrent arch of a state dict without <c>arch</c> metadata, from the gate rows of
    /// <c>weight_hh_l0</c> (3H: gru, 4H: lstm); null when the file has no such tensor. One gate
    /// (nn.RNN tanh or relu, or the leaky RNN) cannot be told apart: that throws naming
    /// <c>--arch</c> and the valid values.
    /// </summary>
    public static string? InferArch(string path, SafetensorsFile file)
    {
        var hh = file.Tensors.Where(t => t.Name == "weight_hh_l0" || t.Name.EndsWith(".weight_hh_l0", StringComparison.Ordinal)).ToList();
        if (hh.Count != 1 || hh[0].Shape.Length != 2 || hh[0].Shape[1] < 1) return null;
        int rows = hh[0].Shape[0], h = hh[0].Shape[1];
        if (rows == 3 * h) return "gru";
        if (rows == 4 * h) return "lstm";
        if (rows == h)
            throw new DataFileException(path, $"'{hh[0].Name}' {hh[0].ShapeText} has one gate, which nn.RNN (tanh or relu) and the leaky RNN share; give --arch (valid: {string.Join(", ", SingleGate)}).");
        throw new DataFileException(path, $"'{hh[0].Name}' {hh[0].ShapeText}: {rows} rows is not 1, 3 or 4 gates × hidden {h}; give --arch (valid: {string.Join(", ", RecurrentConfig.Architectures)}).");
    }

    /// <inheritdoc/>
    public LoadedModel Load(TensorLookup t, string arch)
    {
        var probe = new RecurrentConfig(arch, 1, 1, 1);
        probe.Validate();
        int g = probe.GateCount;
        string gates = $"{probe.NormalizedArch}: {g} gate{(g > 1 ? "s" : "")} × hidden";

        var hh = t.Find("weight_hh_l0", $"[{g}·H, H] for {probe.NormalizedArch}");
        if (hh.Shape.Length != 2 || hh.Shape[1] < 1)
            throw t.Error($"tensor '{hh.Name}' has shape {hh.ShapeText}, expected [{g}·H, H] ({gates} H).");
        int h = hh.Shape[1], gh = g * h;
        if (hh.Shape[0] != gh)
        {
            string hint = hh.Shape[0] == 3 * h ? " (3 gates: gru)" : hh.Shape[0] == 4 * h ? " (4 gates: lstm)" : hh.Shape[0] == h ? $" (1 gate: {string.Join(", ", SingleGate)})" : "";
            throw t.Error($"tensor '{hh.Name}' has shape {hh.ShapeText}, expected [{gh}, {h}] ({gates} {h}){hint}; check --arch or the file's 'arch' metadata.");
        }
        string prefix = hh.Name[..^"weight_hh_l0".Length];
        // Bias is all or nothing (nn.RNN's bias flag): either bias tensor of layer 0 declares it.
        bool bias = t.File.Tensors.Contains(prefix + "bias_hh_l0") || t.File.Tensors.Contains(prefix + "bias_ih_l0");
        bool hasBiasIh = bias && probe.NormalizedArch != "leaky-rnn";
        int layers = 0;
        while (t.File.Tensors.Contains($"{prefix}weight_hh_l{layers}")) layers++;

        var ps = new List<Parameter>();
        int nIn = 0;
        string canon = RecurrentStack.DefaultPrefix;
        for (int k = 0; k < layers; k++)
        {
            var wih = Take(t, $"{prefix}weight_ih_l{k}", k == 0 ? $"[{gh}, N_in] for {gates} {h}" : $"[{gh}, {h}] for {gates} {h}");
            if (wih.Shape.Length != 2 || wih.Shape[0] != gh || wih.Shape[1] < 1 || (k > 0 && wih.Shape[1] != h))
                throw t.Error($"tensor '{wih.Name}' has shape {wih.ShapeText}, expected [{gh}, {(k == 0 ? "N_in" : h.ToString(System.Globalization.CultureInfo.InvariantCulture))}] ({gates} {h}, layer {k}).");
            if (k == 0) nIn = wih.Shape[1];
            var whh = Take(t, $"{prefix}weight_hh_l{k}", $"[{gh}, {h}] for {gates} {h}");
            t.RequireShape(whh, [gh, h], $"{gates} {h}, layer {k}");
            ps.Add(Parameter.Own($"{canon}weight_ih_l{k}", wih.Shape, wih.Data));
            ps.Add(Parameter.Own($"{canon}weight_hh_l{k}", whh.Shape, whh.Data));
            foreach (var (leaf, wanted) in new[] { ("bias_ih", hasBiasIh), ("bias_hh", bias) })
            {
                string name = $"{prefix}{leaf}_l{k}";
                if (!wanted) continue; // a stray bias (leaky-rnn's bias_ih, or a partial bias) is reported as unexpected below
                var b = Take(t, name, $"[{gh}] for {gates} {h}");
                t.RequireShape(b, [gh], $"{gates} {h}, layer {k}");
                ps.Add(Parameter.Own($"{canon}{leaf}_l{k}", b.Shape, b.Data));
            }
        }
        // A learnable initial state, as users register it: h0 [L, H] (or [H] for one layer).
        var h0 = t.TryFind("h0");
        if (h0 != null)
        {
            bool fits = h0.Shape.SequenceEqual(new[] { layers, h }) || (layers == 1 && h0.Shape.SequenceEqual(new[] { h }));
            if (!fits) throw t.Error($"initial state '{h0.Name}' has shape {h0.ShapeText}, expected [{layers}, {h}]{(layers == 1 ? $" or [{h}]" : "")} (layers × hidden).");
            ps.Add(Parameter.Own(RecurrentStack.DefaultInitialStateName, h0.Shape, h0.Data));
        }

        var readout = t.TryFindReadout(h, allowBiasFree: true);
        string described = $"{probe.NormalizedArch} model ({layers} layer{(layers > 1 ? "s" : "")}, hidden {h}, input {nIn}, {(bias ? "with" : "no")} bias)";
        t.RequireAllClaimed(described);
        int outputs = readout?.Weight.Shape[0] ?? 1;

        var c = System.Globalization.CultureInfo.InvariantCulture;
        var st = t.Settings;
        const string Bool = "true | false";
        // Layers, bias and h0 are what the tensors say; a metadata key or option must agree.
        st.Inferred("layers", layers, layers.ToString(c), layers == 1 ? $"'{prefix}weight_hh_l0'" : $"'{prefix}weight_hh_l0' … '{prefix}weight_hh_l{layers - 1}'",
            "a positive integer", ModelSettings.ParsePositiveInt);
        st.Inferred("bias", bias, bias ? "true" : "false",
            bias ? $"'{prefix}bias_hh_l0'" : $"no '{prefix}bias_ih_l0' or '{prefix}bias_hh_l0' tensor", Bool, ModelSettings.ParseBool);
        st.Inferred("h0", h0 != null, h0 != null ? "true" : "false",
            h0 != null ? $"learnable initial state '{h0.Name}' {h0.ShapeText}" : "no '*h0' tensor: z_0 is zero", Bool, ModelSettings.ParseBool);
        var md = new Dictionary<string, string>(t.Metadata, StringComparer.Ordinal)
        {
            ["arch"] = probe.NormalizedArch,
            ["input_size"] = nIn.ToString(c),
            ["hidden_size"] = h.ToString(c),
            ["output_size"] = outputs.ToString(c),
            ["layers"] = layers.ToString(c),
            ["bias"] = bias ? "true" : "false",
            ["h0"] = h0 != null ? "true" : "false",
        };
        md.Remove("alpha"); md.Remove("activation");
        if (probe.NormalizedArch == "leaky-rnn")
        {
            // The rate model's leak and nonlinearity change the maths: read or given, never defaulted.
            double alpha = st.Require("alpha", "a number in (0, 1]", "the leak rate α = dt/τ of h' = (1−α) h + α φ(…)", ParseAlpha, 0.1);
            var act = st.Require("activation", "tanh | relu", "the rate nonlinearity φ", s => ActivationFunctions.Parse(s) is var a && a is Activation.Tanh or Activation.Relu ? a : throw new FormatException(), Activation.Tanh);
            st.ThrowIfMissing(described);
            md["alpha"] = alpha.ToString("R", c);
            md["activation"] = act.Name();
        }
        try
        {
            var config = RecurrentConfig.FromMetadata(md);
            // Canonical PyTorch names; data shared with the file's tensors (no copy).
            ps.Add(Parameter.Own(Readout.WeightName, [outputs, h], readout?.Weight.Data));
            // nn.Linear(bias=False) has no bias: none is invented (it would be trained and saved).
            if (TensorLookup.CanonicalReadoutBias(readout, outputs) is { } rb) ps.Add(rb);
            var model = RecurrentModel.FromParameters(config, ps);
            return new LoadedModel(model, readout is not null, t.Metadata, t.Path);
        }
        catch (Exception ex) when (ex is ArgumentException or NonFiniteException)
        {
            throw t.Error(ex.Message);
        }
    }

    private static double ParseAlpha(string s) =>
        double.TryParse(s, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double v) && v > 0 && v <= 1
            ? v : throw new FormatException();

    private static Parameter Take(TensorLookup t, string name, string expected)
    {
        var p = t.TryFind(name);
        if (p == null || p.Name != name) throw t.Error($"missing tensor '{name}' ({expected}); the file has: {TensorLookup.Listing(t.File.Tensors.Select(x => $"{x.Name} {x.ShapeText}"))}.");
        return p;
    }
}
