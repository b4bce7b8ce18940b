using GlobalNtk.Models;

namespace GlobalNtk.IO;

/// <summary>
/// The tensors of one model file, looked up the way PyTorch state dicts name them: by their name
/// ending under any prefix (<c>rnn.weight_ih_l0</c>, <c>model.gru.weight_ih_l0</c>, …). Every
/// failure is a one-line <see cref="DataFileException"/> naming the file and the tensor.
/// </summary>
public sealed class TensorLookup
{
    private readonly HashSet<string> _claimed = new(StringComparer.Ordinal);

    private readonly List<(Parameter Tensor, string Why)> _ignored = [];

    /// <summary>Wraps a file's contents; <paramref name="given"/> are settings from the caller that override the metadata.</summary>
    public TensorLookup(string path, SafetensorsFile file, IReadOnlyDictionary<string, string>? given = null)
    {
        Path = path; File = file;
        Settings = new ModelSettings(file.Metadata, given);
    }

    /// <summary>The settings the loader reads (metadata overridden by the caller's), with their provenance.</summary>
    public ModelSettings Settings { get; }

    /// <summary>Tensors the loader recognised but does not use (e.g. a fixed positional buffer), with the reason.</summary>
    public IReadOnlyList<(Parameter Tensor, string Why)> Ignored => _ignored;

    /// <summary>Marks <paramref name="p"/> as recognised but not part of the model.</summary>
    public void Ignore(Parameter p, string why)
    {
        _claimed.Add(p.Name);
        _ignored.Add((p, why));
    }

    /// <summary>The file the tensors came from (used in messages).</summary>
    public string Path { get; }
    /// <summary>The file's tensors and metadata.</summary>
    public SafetensorsFile File { get; }
    /// <summary>The file's <c>__metadata__</c>.</summary>
    public IReadOnlyDictionary<string, string> Metadata => File.Metadata;

    /// <summary>
    /// The tensor named <paramref name="ending"/> or ending in <c>.ending</c>, or null if none;
    /// several candidates throw. A found tensor is marked as claimed.
    /// </summary>
    /// <remarks>
    /// Looked up in an index of the names' last k dot-separated parts (k = the parts of
    /// <paramref name="ending"/>), built once per k in time linear in the header, so a file with
    /// many tensors costs O(tensors) rather than O(tensors) per lookup.
    /// </remarks>
    public Parameter? TryFind(string ending)
    {
        if (!SuffixIndex(PartCount(ending)).TryGetValue(ending, out var hits)) return null;
        if (hits.Count > 1)
            throw Error($"several tensors end with '{ending}' ({Listing(hits.Select(h => h.Name))}); cannot tell which belongs to the model.");
        _claimed.Add(hits[0].Name);
        return hits[0];
    }

    private readonly Dictionary<int, Dictionary<string, List<Parameter>>> _suffixIndex = new();

    /// <summary>Tensors by their last <paramref name="parts"/> dot-separated name parts (names with fewer parts by their whole name).</summary>
    private Dictionary<string, List<Parameter>> SuffixIndex(int parts)
    {
        if (_suffixIndex.TryGetValue(parts, out var index)) return index;
        index = new Dictionary<string, List<Parameter>>(StringComparer.Ordinal);
        foreach (var t in File.Tensors)
        {
            // pos: the dot before the name's last `parts` parts, or −1 when it has no more parts than that.
            int pos = t.Name.Length;
            for (int k = 0; k < parts; k++)
            {
                pos = pos > 0 ? t.Name.LastIndexOf('.', pos - 1) : -1;
                if (pos < 0) break;
            }
            string key = pos < 0 ? t.Name : t.Name[(pos + 1)..];
            if (!index.TryGetValue(key, out var list)) index[key] = list = new List<Parameter>(1);
            list.Add(t);
        }
        _suffixIndex[parts] = index;
        return index;
    }

    private static int PartCount(string name) => name.Count(c => c == '.') + 1;

    /// <summary>Like <see cref="TryFind"/> but a missing tensor throws, naming <paramref name="expected"/> (e.g. a shape).</summary>
    public Parameter Find(string ending, string expected) =>
        TryFind(ending) ?? throw Error($"missing tensor '*{ending}' ({expected}); the file has: {Listing(File.Tensors.Select(t => $"{t.Name} {t.ShapeText}"))}.");

    /// <summary>Throws unless <paramref name="p"/> has exactly <paramref name="shape"/>; <paramref name="why"/> explains the expectation.</summary>
    public void RequireShape(Parameter p, int[] shape, string why)
    {
        if (!p.Shape.SequenceEqual(shape))
            throw Error($"tensor '{p.Name}' has shape {p.ShapeText}, expected {SafetensorsFile.ShapeText(shape)} ({why}).");
    }

    /// <summary>
    /// The readout: among the unclaimed tensors, a pair <c>X.weight</c> [O, width] and <c>X.bias</c>
    /// [O] (any prefix X, or bare <c>weight</c>/<c>bias</c>). Null when there is none; a pair of
    /// the wrong shape, several pairs, or a lone weight/bias throw. With
    /// <paramref name="allowBiasFree"/>, a lone weight is an <c>nn.Linear(bias=False)</c> and comes
    /// back with a null bias.
    /// </summary>
    public (Parameter Weight, Parameter? Bias)? TryFindReadout(int width, bool allowBiasFree = false)
    {
        // One pass over the unclaimed tensors, pairing X.weight with X.bias by their stem X.
        static string? Stem(string name, string leaf) =>
            name == leaf ? "" : name.EndsWith("." + leaf, StringComparison.Ordinal) ? name[..^(leaf.Length + 1)] : null;
        var weights = new Dictionary<string, Parameter>(StringComparer.Ordinal);
        var biases = new Dictionary<string, Parameter>(StringComparer.Ordinal);
        foreach (var t in File.Tensors)
        {
            if (_claimed.Contains(t.Name)) continue;
            if (Stem(t.Name, "weight") is string ws) weights[ws] = t;
            else if (Stem(t.Name, "bias") is string bs) biases[bs] = t;
        }
        var pairs = new List<(Parameter W, Parameter? B)>();
        foreach (var (stem, w) in weights)
        {
            // With allowBiasFree a lone weight is nn.Linear(bias=False): its bias stays null.
            biases.TryGetValue(stem, out var b);
            if (b is null && !(allowBiasFree && w.Shape.Length == 2))
                throw Error($"readout weight '{w.Name}' {w.ShapeText} has no matching bias '{Prefixed(stem, "bias")}'.");
            pairs.Add((w, b));
        }
        foreach (var (stem, b) in biases)
            if (!weights.ContainsKey(stem)) throw Error($"readout bias '{b.Name}' {b.ShapeText} has no matching weight '{Prefixed(stem, "weight")}'.");
        if (pairs.Count > 1)
            throw Error($"several readout candidates ({Listing(pairs.Select(p => p.W.Name))}); keep one weight/bias pair.");
        if (pairs.Count == 0) return null;
        var (W, B) = pairs[0];
        if (W.Shape.Length != 2 || W.Shape[1] != width || W.Shape[0] < 1)
            throw Error($"readout '{W.Name}' has shape {W.ShapeText}, expected [O, {width}] (output × hidden {width}).");
        if (B != null && (B.Shape.Length != 1 || B.Shape[0] != W.Shape[0]))
            throw Error($"readout '{B.Name}' has shape {B.ShapeText}, expected [{W.Shape[0]}] (rows of '{W.Name}' {W.ShapeText}).");
        _claimed.Add(W.Name);
        if (B != null) _claimed.Add(B.Name);
        return (W, B);
    }

    /// <summary>
    /// The readout bias under its canonical name: the file's, none for a bias-free readout
    /// (nn.Linear(bias=False)), a zero one when the file has no readout at all.
    /// </summary>
    internal static Parameter? CanonicalReadoutBias((Parameter Weight, Parameter? Bias)? readout, int outputs) =>
        readout is { Bias: null } ? null : Parameter.Own(Readout.BiasName, [outputs], readout?.Bias?.Data);

    /// <summary>Throws if a tensor was left unclaimed (an unexpected tensor means a different model).</summary>
    public void RequireAllClaimed(string model)
    {
        var rest = File.Tensors.Where(t => !_claimed.Contains(t.Name)).ToList();
        if (rest.Count > 0)
            throw Error($"unexpected tensor{(rest.Count > 1 ? "s" : "")} for a {model}: {Listing(rest.Select(t => $"{t.Name} {t.ShapeText}"))}.");
    }

    /// <summary>A one-line error about this file.</summary>
    public DataFileException Error(string message) => new(Path, message);

    /// <summary>Up to ten items, comma-separated, then how many there are in all (a hostile file may hold millions).</summary>
    internal static string Listing(IEnumerable<string> items)
    {
        const int shown = 10;
        var list = items.Take(shown + 1).ToList();
        if (list.Count <= shown) return string.Join(", ", list);
        return string.Join(", ", list.Take(shown)) + $", … ({items.Count()} in all)";
    }

    private static string Prefixed(string stem, string leaf) => stem.Length == 0 ? leaf : stem + "." + leaf;
}
