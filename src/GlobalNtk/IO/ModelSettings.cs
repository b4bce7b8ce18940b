using System.Globalization;

namespace GlobalNtk.IO;

/// <summary>Where a model setting came from.</summary>
public enum SettingSource
{
    /// <summary>The file's <c>__metadata__</c>.</summary>
    Metadata,
    /// <summary>Given by the caller (the command line's <c>--option KEY=VALUE</c>).</summary>
    CommandLine,
    /// <summary>Read off the tensors (their names and shapes).</summary>
    Tensors,
}

/// <summary>One setting a loader used: its key, value, source and what it means.</summary>
/// <param name="Key">Metadata / option key, e.g. <c>norm_first</c>.</param>
/// <param name="Value">The value as text.</param>
/// <param name="Source">Where it came from.</param>
/// <param name="Meaning">What it controls (or, for <see cref="SettingSource.Tensors"/>, which tensor showed it).</param>
public sealed record ModelSetting(string Key, string Value, SettingSource Source, string Meaning)
{
    /// <summary>The source as shown to users: <c>metadata</c>, <c>command line</c> or <c>inferred from tensors</c>.</summary>
    public string SourceText => Source switch
    {
        SettingSource.Metadata => "metadata",
        SettingSource.CommandLine => "command line",
        _ => "inferred from tensors",
    };
}

/// <summary>
/// The settings a model loader reads, with their provenance. A setting that changes the
/// mathematics comes from the caller (command line) or the file's metadata, or is read off the
/// tensors; a missing one is collected and reported — all of them in one error — never defaulted.
/// </summary>
public sealed class ModelSettings
{
    private readonly IReadOnlyDictionary<string, string> _metadata;
    private readonly IReadOnlyDictionary<string, string> _given;
    private readonly List<ModelSetting> _used = [];
    private readonly List<(string Key, string Allowed)> _missing = [];
    private readonly HashSet<string> _consulted = new(StringComparer.Ordinal);

    /// <summary>Settings from <paramref name="metadata"/>, overridden by <paramref name="given"/> (keys are case-sensitive, lower-case).</summary>
    public ModelSettings(IReadOnlyDictionary<string, string> metadata, IReadOnlyDictionary<string, string>? given = null)
    {
        _metadata = metadata;
        _given = given ?? new Dictionary<string, string>();
    }

    /// <summary>Every setting used so far, in the order read.</summary>
    public IReadOnlyList<ModelSetting> Used => _used;

    /// <summary>Given settings (command line) that no loader asked for.</summary>
    public IEnumerable<string> UnusedGiven => _given.Keys.Where(k => !_consulted.Contains(k));

    /// <summary>The value of <paramref name="key"/> (command line first, then metadata), or null when neither has it; a found value is recorded.</summary>
    public string? Find(string key, string meaning)
    {
        _consulted.Add(key);
        if (_given.TryGetValue(key, out var g)) { Record(key, g.Trim(), SettingSource.CommandLine, meaning); return g.Trim(); }
        if (_metadata.TryGetValue(key, out var m)) { Record(key, m.Trim(), SettingSource.Metadata, meaning); return m.Trim(); }
        return null;
    }

    /// <summary>
    /// A required setting parsed by <paramref name="parse"/> (which throws <see cref="FormatException"/>
    /// on a bad value); when missing it is noted for <see cref="ThrowIfMissing"/> and <paramref name="placeholder"/> is returned.
    /// </summary>
    public T Require<T>(string key, string allowed, string meaning, Func<string, T> parse, T placeholder)
    {
        var v = Find(key, meaning);
        if (v is null) { _missing.Add((key, allowed)); return placeholder; }
        return Parse(key, v, allowed, parse);
    }

    /// <summary>
    /// A setting that the tensors determine: when also given (command line or metadata) the two
    /// must agree, else it is recorded as inferred from <paramref name="evidence"/>.
    /// </summary>
    public T Inferred<T>(string key, T value, string text, string evidence, string allowed, Func<string, T> parse)
    {
        _consulted.Add(key);
        string? stated = _given.TryGetValue(key, out var g) ? g : _metadata.TryGetValue(key, out var m) ? m : null;
        if (stated is not null)
        {
            var source = _given.ContainsKey(key) ? "the command line" : "the metadata";
            var parsed = Parse(key, stated.Trim(), allowed, parse);
            if (!EqualityComparer<T>.Default.Equals(parsed, value))
                throw new FormatException($"setting {key} = {stated.Trim()} from {source} contradicts the tensors ({evidence} means {key} = {text}).");
        }
        Record(key, text, SettingSource.Tensors, evidence);
        return value;
    }

    /// <summary>Throws one error naming every missing setting, its allowed values, and how to give it (plus an optional <paramref name="hint"/>).</summary>
    public void ThrowIfMissing(string model, string? hint = null)
    {
        if (_missing.Count == 0) return;
        throw new FormatException(
            $"missing setting{(_missing.Count > 1 ? "s" : "")} for a {model}: {string.Join(", ", _missing.Select(m => $"{m.Key} ({m.Allowed})"))}; " +
            "they change the mathematics and have no default: put them in the file's metadata or give them as --option KEY=VALUE" +
            (hint is null ? "." : $" ({hint})."));
    }

    /// <summary>Parses <c>true</c>/<c>false</c> (also 1/0, yes/no).</summary>
    public static bool ParseBool(string s) => s.ToLowerInvariant() switch
    {
        "true" or "1" or "yes" => true,
        "false" or "0" or "no" => false,
        _ => throw new FormatException(),
    };

    /// <summary>Parses a positive finite number.</summary>
    public static double ParsePositive(string s) =>
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v > 0 && double.IsFinite(v) ? v : throw new FormatException();

    /// <summary>Parses a positive integer.</summary>
    public static int ParsePositiveInt(string s) =>
        int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v > 0 ? v : throw new FormatException();

    private T Parse<T>(string key, string value, string allowed, Func<string, T> parse)
    {
        try { return parse(value); }
        catch (Exception ex) when (ex is FormatException or ArgumentException)
        {
            var source = _given.ContainsKey(key) ? "command line" : "metadata";
            throw new FormatException($"setting {key} = '{value}' ({source}) is not valid; expected {allowed}.");
        }
    }

    private void Record(string key, string value, SettingSource source, string meaning)
    {
        _used.RemoveAll(u => u.Key == key);
        _used.Add(new ModelSetting(key, value, source, meaning));
    }
}
