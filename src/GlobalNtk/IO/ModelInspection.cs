using System.Globalization;
using System.Text.RegularExpressions;
using GlobalNtk.Dense;
using GlobalNtk.Models;

namespace GlobalNtk.IO;

/// <summary>One model tensor and the file tensor that feeds it.</summary>
/// <param name="Block">The part of the model it belongs to, e.g. <c>block 0 (step 1)</c>, <c>readout</c>.</param>
/// <param name="Name">The model's (canonical PyTorch) name.</param>
/// <param name="Shape">Its shape.</param>
/// <param name="FileTensor">The file tensor read into it; null when the file had none (a zero readout).</param>
public sealed record InspectedTensor(string Block, string Name, int[] Shape, string? FileTensor);

/// <summary>A file tensor recognised but not used, and why.</summary>
public sealed record IgnoredTensor(string Name, int[] Shape, string Why);

/// <summary>
/// How a model file is read, before anything runs (<c>globalntk inspect</c>): family, sizes, the
/// state layout, which file tensor feeds which block, the readout, ignored tensors, the parameter
/// count, and every setting with its source (metadata, command line, inferred from tensors).
/// </summary>
public sealed record ModelInspection(
    string Path, string Family, string Arch, IReadOnlyList<string> StateAxes, IReadOnlyList<string> StateSizes,
    int ChainParameters, int ReadoutParameters, bool HasReadout,
    IReadOnlyList<InspectedTensor> Tensors, IReadOnlyList<IgnoredTensor> Ignored, IReadOnlyList<ModelSetting> Settings)
{
    /// <summary>Whether the readout has a bias (false: nn.Linear(bias=False)).</summary>
    public bool ReadoutHasBias { get; init; } = true;
    /// <summary>Readout inputs and outputs (In, O).</summary>
    public (int Inputs, int Outputs) ReadoutSize { get; init; }

    /// <summary>The readout as PyTorch writes it, e.g. <c>nn.Linear(16, 2, bias=False)</c>.</summary>
    public string ReadoutText => $"nn.Linear({ReadoutSize.Inputs}, {ReadoutSize.Outputs}{(ReadoutHasBias ? "" : ", bias=False")})";

    /// <summary>Describes a loaded model (see <see cref="ModelFile.Load"/>).</summary>
    public static ModelInspection Of(LoadedModel loaded)
    {
        var m = loaded.Model;
        var md = m.Metadata;
        string family = md.TryGetValue("family", out var fam) ? fam : "recurrent";
        int layers = md.TryGetValue("layers", out var ls) && int.TryParse(ls, NumberStyles.Integer, CultureInfo.InvariantCulture, out int li) ? li : 1;

        // Which file tensor feeds each model tensor: loaders share the file's arrays (no copy).
        var byData = new Dictionary<double[], string>(ReferenceEqualityComparer.Instance);
        foreach (var t in loaded.FileTensors) byData.TryAdd(t.Data, t.Name);
        var tensors = m.AllParameters.Select(p =>
            new InspectedTensor(BlockOf(family, p.Name, layers), p.Name, p.Shape, byData.TryGetValue(p.Data, out var f) ? f : null)).ToList();
        var ignored = loaded.Ignored.Select(i => new IgnoredTensor(i.Tensor.Name, i.Tensor.Shape, i.Why)).ToList();
        var used = new HashSet<string>(tensors.Where(t => t.FileTensor is not null).Select(t => t.FileTensor!), StringComparer.Ordinal);
        used.UnionWith(ignored.Select(i => i.Name));
        ignored.AddRange(loaded.FileTensors.Where(t => !used.Contains(t.Name)).Select(t => new IgnoredTensor(t.Name, t.Shape, "not read by the loader")));

        // Every key of the model's own metadata is a setting; the loader recorded where most came from.
        var settings = loaded.Settings.ToList();
        foreach (var kv in md)
        {
            if (kv.Key == "family" || settings.Any(s => s.Key == kv.Key)) continue;
            bool fromFile = loaded.Metadata.TryGetValue(kv.Key, out var v) && v.Trim() == kv.Value;
            // A recurrent net's gain and seed describe how it was initialised, not how it computes:
            // shown when the file says them, never invented for a bare state dict.
            bool initOnly = family == "recurrent" && kv.Key is "gain" or "seed";
            if (initOnly && !fromFile) continue;
            settings.Add(new ModelSetting(kv.Key, kv.Value, fromFile ? SettingSource.Metadata : SettingSource.Tensors,
                initOnly ? "initialisation only (does not change the loaded model)" : fromFile ? "" : "from the tensor shapes"));
        }

        var (axes, sizes) = StateLayout(m, md, family);
        int readout = m.Readout.Parameters.Sum(p => p.Size);
        return new ModelInspection(loaded.Path, family, m.Arch, axes, sizes, m.Parameters.TotalSize, readout, loaded.HasReadout,
            tensors, ignored, settings)
        { ReadoutHasBias = m.Readout.HasBias, ReadoutSize = (m.Readout.InputSize, m.Readout.OutputSize) };
    }

    /// <summary>Human-readable lines (what <c>globalntk inspect</c> prints).</summary>
    public IEnumerable<string> Lines()
    {
        var ci = CultureInfo.InvariantCulture;
        yield return $"{Path}: {Family} ({Arch})";
        yield return $"  state axes ({string.Join(", ", StateAxes)}) = [{string.Join(", ", StateSizes)}]";
        yield return $"  parameters: {ChainParameters.ToString("N0", ci)} in the chain + {ReadoutParameters.ToString("N0", ci)} readout" +
                     (HasReadout ? "" : " (the file has no readout: zeros, outputs are meaningless)");
        yield return $"  readout: {ReadoutText}";
        yield return "  tensors (block: model name shape ← file tensor):";
        int w = Tensors.Max(t => t.Block.Length), n = Tensors.Max(t => t.Name.Length + ShapeText(t.Shape).Length + 1);
        foreach (var t in Tensors)
            yield return $"    {t.Block.PadRight(w)}  {(t.Name + " " + ShapeText(t.Shape)).PadRight(n)}  ← {t.FileTensor ?? "(none in the file)"}";
        if (Ignored.Count == 0) yield return "  ignored tensors: none";
        else
        {
            yield return "  ignored tensors:";
            foreach (var i in Ignored) yield return $"    {i.Name} {ShapeText(i.Shape)}: {i.Why}";
        }
        yield return "  settings (key = value  [source]  meaning):";
        int kw = Settings.Max(s => s.Key.Length + s.Value.Length + 3);
        foreach (var s in Settings)
            yield return $"    {(s.Key + " = " + s.Value).PadRight(kw)}  [{s.SourceText}]{(s.Meaning.Length > 0 ? "  " + s.Meaning : "")}";
    }

    private static string ShapeText(int[] shape) => "[" + string.Join(", ", shape) + "]";

    private static string BlockOf(string family, string name, int layers)
    {
        if (name.StartsWith("readout.", StringComparison.Ordinal)) return "readout";
        var layer = Regex.Match(name, @"^layers\.(\d+)\.");
        if (family == "transformer")
        {
            if (layer.Success) return $"block {layer.Groups[1].Value} (step {int.Parse(layer.Groups[1].Value, CultureInfo.InvariantCulture) + 1})";
            if (name.StartsWith("norm.", StringComparison.Ordinal)) return $"final norm (step {layers})";
            return "embedding (step 0)";
        }
        if (family == "mlp" && layer.Success) return $"layer {layer.Groups[1].Value} (step {layer.Groups[1].Value})";
        var rec = Regex.Match(name, @"_l(\d+)(_reverse)?$");
        return rec.Success ? $"layer {rec.Groups[1].Value}" : name.Contains('.') ? name[..name.IndexOf('.')] : name;
    }

    /// <summary>The state axes, with the sizes that depend on the inputs shown as letters.</summary>
    private static (string[] Axes, string[] Sizes) StateLayout(IChainModel m, IReadOnlyDictionary<string, string> md, string family)
    {
        int nIn = md.TryGetValue("input_size", out var s) && int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v : 1;
        // A one-element batch (zeros, token id 0) yields the axes; its batch and sequence axes are then named by letters.
        int[] shape = family switch
        {
            "mlp" => [1, nIn],
            "transformer" when md.TryGetValue("input", out var i) && i == "embedding" => [1, 1],
            _ => [1, 1, nIn],
        };
        var names = shape.Length == 2 ? new[] { "a", "b" } : new[] { "a", "b", "c" };
        AxisShape st;
        try { st = m.Linearize(new Tensor(new double[shape.Aggregate(1, (x, y) => x * y)], new AxisShape(names, shape))).StateShape; }
        catch (ArgumentException) { return (["?"], ["?"]); } // a family whose inputs this probe does not know

        var axes = st.Names.ToArray();
        var sizes = new string[axes.Length];
        for (int k = 0; k < axes.Length; k++)
            sizes[k] = k == 0 ? "B" : axes[k] is "time" or "token" ? (axes[k] == "time" ? "T" : "N") : st.Sizes[k].ToString(CultureInfo.InvariantCulture);
        return (axes, sizes);
    }
}
