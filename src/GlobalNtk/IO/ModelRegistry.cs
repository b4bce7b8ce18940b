using System.Globalization;
using GlobalNtk.Models;

namespace GlobalNtk.IO;

/// <summary>What to build when a model is created from scratch (e.g. by <c>train</c>).</summary>
/// <param name="Arch">Architecture name (a key of <see cref="ModelRegistry"/>).</param>
/// <param name="InputSize">Input width N_in (from the task).</param>
/// <param name="HiddenSize">Hidden width H.</param>
/// <param name="OutputSize">Readout width O (from the task).</param>
public sealed record ModelSpec(string Arch, int InputSize, int HiddenSize, int OutputSize)
{
    /// <summary>Initialisation seed.</summary>
    public int Seed { get; init; }
    /// <summary>Initial gain g on the recurrent weights (docs/math.md#cells).</summary>
    public double Gain { get; init; } = 1.0;
    /// <summary>Architecture-specific options as strings (e.g. <c>alpha</c>, <c>layers</c>, <c>heads</c>).</summary>
    public IReadOnlyDictionary<string, string> Options { get; init; } = new Dictionary<string, string>();

    /// <summary>An option parsed as a number, or <paramref name="fallback"/> when absent.</summary>
    public double Real(string key, double fallback) =>
        !Options.TryGetValue(key, out var s) ? fallback
        : double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v
        : throw new ArgumentException($"Model option '{key}' = '{s}' is not a number.");

    /// <summary>An option parsed as an integer, or <paramref name="fallback"/> when absent.</summary>
    public int Integer(string key, int fallback) =>
        !Options.TryGetValue(key, out var s) ? fallback
        : int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v
        : throw new ArgumentException($"Model option '{key}' = '{s}' is not an integer.");
}

/// <summary>How one architecture is created from scratch and rebuilt from a tensor file.</summary>
public interface IModelFactory
{
    /// <summary>A freshly initialised model.</summary>
    IChainModel Create(ModelSpec spec);

    /// <summary>
    /// Rebuilds a model from a file's tensors (names under any prefix; see <see cref="TensorLookup"/>).
    /// Throws a <see cref="DataFileException"/> naming the file, the tensor and the shapes on any
    /// missing or mis-shaped tensor. <see cref="LoadedModel.HasReadout"/> tells whether the file had one.
    /// </summary>
    LoadedModel Load(TensorLookup tensors, string arch);
}

/// <summary>
/// Model architectures by name: creation for training and loading from safetensors dispatch here.
/// Built-in: the recurrent cells (docs/math.md#cells), <c>mlp</c> and <c>transformer</c>. Other families register theirs in
/// <see cref="ModelRegistry"/>'s static list or with <see cref="Register"/>.
/// </summary>
public static class ModelRegistry
{
    private static readonly object Gate = new();
    private static readonly SortedDictionary<string, IModelFactory> Entries = new(StringComparer.Ordinal);

    static ModelRegistry()
    {
        foreach (var arch in Models.Recurrent.RecurrentConfig.Architectures) Entries[arch] = RecurrentModelFactory.Instance;
        Entries["mlp"] = MlpModelFactory.Instance;
        Entries["transformer"] = TransformerModelFactory.Instance;
    }

    /// <summary>Registered architecture names, sorted.</summary>
    public static IReadOnlyList<string> Architectures { get { lock (Gate) return Entries.Keys.ToArray(); } }

    /// <summary>Adds (or replaces) an architecture.</summary>
    public static void Register(string arch, IModelFactory factory)
    {
        if (string.IsNullOrWhiteSpace(arch)) throw new ArgumentException("Architecture name must not be empty.");
        lock (Gate) Entries[arch] = factory ?? throw new ArgumentNullException(nameof(factory));
    }

    /// <summary>The factory of <paramref name="arch"/>; an unknown name throws listing the valid ones.</summary>
    public static IModelFactory Get(string arch)
    {
        string key = (arch ?? "").Trim().ToLowerInvariant();
        lock (Gate)
            return Entries.TryGetValue(key, out var f) ? f
                : throw new ArgumentException($"Unknown arch '{arch}' (valid: {string.Join(", ", Entries.Keys)}).");
    }

    /// <summary>Whether <paramref name="arch"/> is registered.</summary>
    public static bool Contains(string arch) { lock (Gate) return Entries.ContainsKey((arch ?? "").Trim().ToLowerInvariant()); }

    /// <summary>
    /// A freshly initialised model of <paramref name="spec"/>'s architecture. An option the
    /// architecture does not read throws naming it and the options it does read: a mistyped key
    /// (<c>alpah=0.5</c>) would otherwise train the default model without a word, as loading a
    /// file with an unused option already refuses.
    /// </summary>
    public static IChainModel Create(ModelSpec spec)
    {
        var factory = Get(spec.Arch);
        var options = new ConsultedOptions(spec.Options);
        var model = factory.Create(spec with { Options = options });
        var unused = spec.Options.Keys.Where(k => !options.Consulted.Contains(k)).ToList();
        if (unused.Count > 0)
            throw new ArgumentException($"Model option{(unused.Count > 1 ? "s" : "")} {string.Join(", ", unused)} given but not used by a {spec.Arch.Trim().ToLowerInvariant()} model" +
                (options.Consulted.Count > 0 ? $" (it reads: {string.Join(", ", options.Consulted)})." : " (it reads none)."));
        return model;
    }

    /// <summary>The options, recording every key a factory asks for (in the order asked).</summary>
    private sealed class ConsultedOptions(IReadOnlyDictionary<string, string> inner) : IReadOnlyDictionary<string, string>
    {
        private readonly List<string> _order = [];

        /// <summary>Keys asked for, whether present or not, in the order first asked.</summary>
        public IReadOnlyList<string> Consulted => _order;

        private void Note(string key) { if (!_order.Contains(key)) _order.Add(key); }

        public string this[string key] { get { Note(key); return inner[key]; } }
        public IEnumerable<string> Keys => inner.Keys;
        public IEnumerable<string> Values { get { foreach (var k in inner.Keys) Note(k); return inner.Values; } }
        public int Count => inner.Count;
        public bool ContainsKey(string key) { Note(key); return inner.ContainsKey(key); }
        public bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out string value) { Note(key); return inner.TryGetValue(key, out value); }
        // A factory that walks every option has read them all.
        public IEnumerator<KeyValuePair<string, string>> GetEnumerator() { foreach (var k in inner.Keys) Note(k); return inner.GetEnumerator(); }
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
