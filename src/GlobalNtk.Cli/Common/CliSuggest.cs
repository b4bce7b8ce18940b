namespace GlobalNtk.Cli.Common;

/// <summary>
/// Did-you-mean for misspelt commands and options: finds the unknown word on a command line that
/// Spectre refused and names the closest known one (Levenshtein distance).
/// </summary>
public static class CliSuggest
{
    /// <summary>Options that were renamed: old spelling → current one.</summary>
    public static readonly IReadOnlyDictionary<string, string> Renamed = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["--task-steps"] = "--trial-steps",
        ["--partial-probes"] = "--partial-budget", // probes per kept index became one budget of applications
    };

    /// <summary>Case-insensitive Levenshtein edit distance (insert, delete, substitute each cost 1).</summary>
    public static int Distance(string a, string b)
    {
        a = a.ToLowerInvariant(); b = b.ToLowerInvariant();
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }

    /// <summary>
    /// The candidate closest to <paramref name="given"/>, if close enough to be a likely typo: about a
    /// third of the longer word's letters, rounded up (1 edit for 1–3 letters, 2 for 4–6, at most 3);
    /// ties go to the first candidate.
    /// </summary>
    public static string? Closest(string given, IEnumerable<string> candidates)
    {
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (var c in candidates)
        {
            int d = Distance(given, c);
            if (d < bestDistance) { best = c; bestDistance = d; }
        }
        if (best is null) return null;
        int allowed = Math.Clamp((Math.Max(given.TrimStart('-').Length, best.TrimStart('-').Length) + 2) / 3, 1, 3);
        return bestDistance <= allowed ? best : null;
    }

    /// <summary>
    /// The one-line message for the first unknown command or option in <paramref name="args"/>, with a
    /// suggestion when one is close; null when every command and option is known.
    /// </summary>
    public static string? Explain(IReadOnlyList<string> args, CliCatalog catalog)
    {
        int at = 0;
        while (at < args.Count && args[at].StartsWith('-')) at++;
        if (at == args.Count) return null;
        string name = args[at];
        var command = catalog.Find(name);
        if (command is null)
        {
            var names = catalog.Commands.Select(c => c.Name).ToArray();
            string? near = Closest(name, names);
            return $"unknown command '{name}'" + (near is null ? "" : $"; did you mean '{near}'?") + $" (commands: {string.Join(", ", names)})";
        }
        for (int i = at + 1; i < args.Count; i++)
        {
            string a = args[i];
            if (!IsOptionLike(a)) continue;
            string option = a.Split('=', 2)[0];
            if (command.Options.Contains(option, StringComparer.OrdinalIgnoreCase)) continue;
            if (Renamed.TryGetValue(option, out var now) && command.Options.Contains(now, StringComparer.OrdinalIgnoreCase))
                return $"unknown option '{option}' for '{command.Name}'; it is now '{now}'.";
            string? near = Closest(option, command.Options.Where(o => o.StartsWith("--")));
            return $"unknown option '{option}' for '{command.Name}'" + (near is null ? $" (see 'globalntk help {command.Name}')." : $"; did you mean '{near}'?");
        }
        return null;
    }

    // "-x" or "--word", but not a negative number given as a value ("-1", "-0.5", "-1e3").
    private static bool IsOptionLike(string a) =>
        a.Length >= 2 && a[0] == '-' && a != "--" && !double.TryParse(a, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out _);
}
