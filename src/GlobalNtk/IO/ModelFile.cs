using GlobalNtk.Models;

namespace GlobalNtk.IO;

/// <summary>A model read from a file.</summary>
/// <param name="Model">The model (with its readout).</param>
/// <param name="HasReadout">
/// False when the file held no readout: the model then carries a zero readout [1, width] so that
/// states, P, K and NTK_S work, but outputs are meaningless.
/// </param>
/// <param name="Metadata">The file's <c>__metadata__</c> (training hyper-parameters, step, …).</param>
/// <param name="Path">The file.</param>
public sealed record LoadedModel(IChainModel Model, bool HasReadout, IReadOnlyDictionary<string, string> Metadata, string Path)
{
    /// <summary>The settings the loader used, each with its source (metadata, command line, inferred from tensors).</summary>
    public IReadOnlyList<ModelSetting> Settings { get; init; } = [];
    /// <summary>File tensors recognised but not used by the model, with the reason.</summary>
    public IReadOnlyList<(Parameter Tensor, string Why)> Ignored { get; init; } = [];
    /// <summary>Every tensor of the file, in file order (for <c>inspect</c>).</summary>
    public ParameterSet FileTensors { get; init; } = new([]);
}

/// <summary>
/// Saves and loads models as safetensors with PyTorch parameter names (docs/math.md#cells). Loading
/// dispatches on the architecture (metadata key <c>arch</c>, or an explicit override) through
/// <see cref="ModelRegistry"/>.
/// </summary>
public static class ModelFile
{
    /// <summary>Metadata key holding the architecture.</summary>
    public const string ArchKey = "arch";

    /// <summary>
    /// Writes every tensor of <paramref name="model"/> (<see cref="IChainModel.AllParameters"/>,
    /// PyTorch names, F64) with its <see cref="IChainModel.Metadata"/> plus
    /// <paramref name="extraMetadata"/> (the model's own keys win), atomically.
    /// </summary>
    public static void Save(string path, IChainModel model, IReadOnlyDictionary<string, string>? extraMetadata = null)
    {
        var md = new Dictionary<string, string>(StringComparer.Ordinal);
        if (extraMetadata != null) foreach (var kv in extraMetadata) md[kv.Key] = kv.Value;
        foreach (var kv in model.Metadata) md[kv.Key] = kv.Value;
        md[ArchKey] = model.Arch;
        new SafetensorsFile(model.AllParameters, md).Write(path);
    }

    /// <summary>
    /// Reads a model. The architecture is <paramref name="arch"/> when given, else the file's
    /// <c>arch</c> metadata, else (a bare PyTorch state dict) inferred from a recurrent net's gate
    /// rows where that is unambiguous; <paramref name="settings"/> (e.g. from <c>--option KEY=VALUE</c>)
    /// override the metadata. Missing, mis-shaped or unexpected tensors, missing settings and
    /// given settings the architecture does not use throw a one-line
    /// <see cref="DataFileException"/> naming the file, the tensor or setting and the shapes.
    /// A PyTorch pickle (<c>.pt</c>, <c>.pth</c>) is recognised and the message shows how to
    /// save safetensors instead.
    /// </summary>
    public static LoadedModel Load(string path, string? arch = null, IReadOnlyDictionary<string, string>? settings = null)
    {
        PyTorchPickle.ThrowIfPickle(path);
        var file = SafetensorsFile.Read(path);
        bool inMetadata = file.Metadata.ContainsKey(ArchKey);
        string chosen = arch ?? (file.Metadata.TryGetValue(ArchKey, out var a) ? a
            : RecurrentModelFactory.InferArch(path, file)
            ?? throw new DataFileException(path, $"no '{ArchKey}' in the metadata; give the architecture explicitly (valid: {string.Join(", ", ModelRegistry.Architectures)})."));
        IModelFactory factory;
        try { factory = ModelRegistry.Get(chosen); }
        catch (ArgumentException ex) when (arch is null) { throw new DataFileException(path, $"metadata {ex.Message}"); }
        var lookup = new TensorLookup(path, file, settings);
        LoadedModel loaded;
        try { loaded = factory.Load(lookup, chosen.Trim().ToLowerInvariant()); }
        catch (FormatException ex) { throw new DataFileException(path, ex.Message, ex); }
        var unused = lookup.Settings.UnusedGiven.ToList();
        if (unused.Count > 0)
            throw new DataFileException(path, $"option{(unused.Count > 1 ? "s" : "")} {string.Join(", ", unused)} given but not used by a {loaded.Model.Arch} model" +
                (lookup.Settings.Used.Count > 0 ? $" (it reads: {string.Join(", ", lookup.Settings.Used.Select(u => u.Key))})." : "."));
        var used = new List<ModelSetting>
        {
            new(ArchKey, chosen.Trim().ToLowerInvariant(),
                arch is not null ? SettingSource.CommandLine : inMetadata ? SettingSource.Metadata : SettingSource.Tensors,
                inMetadata || arch is not null ? "architecture" : "architecture (from the gate rows of weight_hh_l0)"),
        };
        used.AddRange(lookup.Settings.Used);
        return loaded with { Settings = used, Ignored = lookup.Ignored, FileTensors = file.Tensors };
    }
}
