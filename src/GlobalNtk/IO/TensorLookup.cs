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
    public Parameter? TryFind(string ending)
    {
        var hits = File.Tensors.Where(t => t.Name == ending || t.Name.EndsWith("." + ending, StringComparison.Ordinal)).ToList();
        if (hits.Count > 1)
            throw Error($"several tensors end with '{ending}' ({string.Join(", ", hits.Select(h => h.Name))}); cannot tell which belongs to the model.");
        if (hits.Count == 0) return null;
        _claimed.Add(hits[0].Name);
        return hits[0];
    }

    /// <summary>Like <see cref="TryFind"/> but a missing tensor throws, naming <paramref name="expected"/> (e.g. a shape).</summary>
    public Parameter Find(string ending, string expected) =>
        TryFind(ending) ?? throw Error($"missing tensor '*{ending}' ({expected}); the file has: {string.Join(", ", File.Tensors.Select(t => $"{t.Name} {t.ShapeText}"))}.");

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
        var free = File.Tensors.Where(t => !_claimed.Contains(t.Name)).ToList();
        static string Stem(string name, string leaf) =>
            name == leaf ? "" : name.EndsWith("." + leaf, StringComparison.Ordinal) ? name[..^(leaf.Length + 1)] : "\0";
        var weights = free.Where(t => Stem(t.Name, "weight") != "\0").ToList();
        var biases = free.Where(t => Stem(t.Name, "bias") != "\0").ToList();
        var pairs = new List<(Parameter W, Parameter? B)>();
        foreach (var w in weights)
        {
            var b = biases.FirstOrDefault(x => Stem(x.Name, "bias") == Stem(w.Name, "weight"));
            if (b is null && !(allowBiasFree && w.Shape.Length == 2)) throw Error($"readout weight '{w.Name}' {w.ShapeText} has no matching bias '{Prefixed(Stem(w.Name, "weight"), "bias")}'.");
            pairs.Add((w, b));
        }
        foreach (var b in biases)
            if (!pairs.Any(p => p.B == b)) throw Error($"readout bias '{b.Name}' {b.ShapeText} has no matching weight '{Prefixed(Stem(b.Name, "bias"), "weight")}'.");
        if (pairs.Count > 1)
            throw Error($"several readout candidates ({string.Join(", ", pairs.Select(p => p.W.Name))}); keep one weight/bias pair.");
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
        readout is { Bias: null } ? null : new Parameter(Readout.BiasName, [outputs], readout?.Bias?.Data);

    /// <summary>Throws if a tensor was left unclaimed (an unexpected tensor means a different model).</summary>
    public void RequireAllClaimed(string model)
    {
        var rest = File.Tensors.Where(t => !_claimed.Contains(t.Name)).ToList();
        if (rest.Count > 0)
            throw Error($"unexpected tensor{(rest.Count > 1 ? "s" : "")} for a {model}: {string.Join(", ", rest.Select(t => $"{t.Name} {t.ShapeText}"))}.");
    }

    /// <summary>A one-line error about this file.</summary>
    public DataFileException Error(string message) => new(Path, message);

    private static string Prefixed(string stem, string leaf) => stem.Length == 0 ? leaf : stem + "." + leaf;
}
