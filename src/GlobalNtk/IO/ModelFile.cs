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
public sealed record LoadedModel(IChainModel Model, bool HasReadout, IReadOnlyDictionary<string, string> Metadata, string Path);

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
    /// <c>arch</c> metadata; missing, mis-shaped or unexpected tensors throw a one-line
    /// <see cref="DataFileException"/> naming the file, the tensor and the shapes.
    /// </summary>
    public static LoadedModel Load(string path, string? arch = null)
    {
        var file = SafetensorsFile.Read(path);
        string chosen = arch ?? (file.Metadata.TryGetValue(ArchKey, out var a) ? a
            : throw new DataFileException(path, $"no '{ArchKey}' in the metadata; give the architecture explicitly (valid: {string.Join(", ", ModelRegistry.Architectures)})."));
        IModelFactory factory;
        try { factory = ModelRegistry.Get(chosen); }
        catch (ArgumentException ex) when (arch is null) { throw new DataFileException(path, $"metadata {ex.Message}"); }
        return factory.Load(new TensorLookup(path, file), chosen.Trim().ToLowerInvariant());
    }
}
