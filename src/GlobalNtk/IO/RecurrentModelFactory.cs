using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Recurrent;

namespace GlobalNtk.IO;

/// <summary>
/// Creates and loads <see cref="RecurrentModel"/>s. Loading accepts PyTorch state dicts: the
/// cell's tensors are found by their endings (<c>weight_ih_l0</c>, <c>weight_hh_l0</c>,
/// <c>bias_ih_l0</c>, <c>bias_hh_l0</c>) under any prefix, sizes come from their shapes, the
/// readout is the one other <c>weight</c>/<c>bias</c> pair [O, H], [O] (optional), and
/// gain/alpha/activation/seed come from the metadata when present.
/// </summary>
public sealed class RecurrentModelFactory : IModelFactory
{
    /// <summary>The shared instance (stateless).</summary>
    public static RecurrentModelFactory Instance { get; } = new();

    /// <inheritdoc/>
    public IChainModel Create(ModelSpec spec)
    {
        var config = new RecurrentConfig(spec.Arch, spec.InputSize, spec.HiddenSize, spec.OutputSize) { Seed = spec.Seed, Gain = spec.Gain };
        // alpha and activation exist only for the rate model; other cells keep the defaults.
        if (config.NormalizedArch == "leaky-rnn")
            config = config with
            {
                Alpha = spec.Real("alpha", config.Alpha),
                Activation = spec.Options.TryGetValue("activation", out var act) ? GlobalNtk.Models.Mlp.ActivationFunctions.Parse(act) : config.Activation,
            };
        return RecurrentModel.Create(config);
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
        t.RequireShape(hh, [gh, h], $"{gates} {h}");
        var ih = t.Find("weight_ih_l0", $"[{gh}, N_in] for {gates} {h}");
        if (ih.Shape.Length != 2 || ih.Shape[0] != gh || ih.Shape[1] < 1)
            throw t.Error($"tensor '{ih.Name}' has shape {ih.ShapeText}, expected [{gh}, N_in] ({gates} {h}).");
        int nIn = ih.Shape[1];

        var found = new Dictionary<string, Parameter>
        {
            [RecurrentCell.WeightHhName] = hh,
            [RecurrentCell.WeightIhName] = ih,
        };
        foreach (var (canonical, ending) in new[] { (RecurrentCell.BiasIhName, "bias_ih_l0"), (RecurrentCell.BiasHhName, "bias_hh_l0") })
        {
            bool wanted = RecurrentCell.ExpectedShapes(probe).Any(e => e.Name == canonical);
            if (!wanted) continue; // leaky-rnn has one bias; a stray bias_ih_l0 is reported as unexpected below
            var b = t.Find(ending, $"[{gh}] for {gates} {h}");
            t.RequireShape(b, [gh], $"{gates} {h}");
            found[canonical] = b;
        }
        foreach (var deeper in new[] { "weight_ih_l1", "weight_hh_l1" })
            if (t.TryFind(deeper) is { } p)
                throw t.Error($"tensor '{p.Name}' belongs to a second layer; only single-layer recurrent models are supported.");

        var readout = t.TryFindReadout(h);
        t.RequireAllClaimed($"{probe.NormalizedArch} model (hidden {h}, input {nIn})");
        int outputs = readout?.Weight.Shape[0] ?? 1;

        var md = new Dictionary<string, string>(t.Metadata, StringComparer.Ordinal)
        {
            ["arch"] = probe.NormalizedArch,
            ["input_size"] = nIn.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["hidden_size"] = h.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["output_size"] = outputs.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        try
        {
            var config = RecurrentConfig.FromMetadata(md);
            // Canonical PyTorch names; data shared with the file's tensors (no copy).
            var ps = found.Select(kv => new Parameter(kv.Key, kv.Value.Shape, kv.Value.Data)).ToList();
            ps.Add(new Parameter(Readout.WeightName, [outputs, h], readout?.Weight.Data));
            ps.Add(new Parameter(Readout.BiasName, [outputs], readout?.Bias.Data));
            var model = RecurrentModel.FromParameters(config, ps);
            return new LoadedModel(model, readout is not null, t.Metadata, t.Path);
        }
        catch (Exception ex) when (ex is ArgumentException or NonFiniteException)
        {
            throw t.Error(ex.Message);
        }
    }
}
