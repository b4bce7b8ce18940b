using System.Reflection;

namespace GlobalNtk.Cli.Common;

/// <summary>A file or folder a command reads, named by its option (so an output can never replace or hold it).</summary>
public readonly record struct CommandInput(string Option, string? Path);

/// <summary>What a command asks to write: <c>--out</c>, whether <c>--force</c> was given, and what it reads.</summary>
/// <param name="Path">The path as the user gave it (null when the option is missing).</param>
/// <param name="Command">The command writing (recorded in the folder's marker).</param>
/// <param name="Force">Whether an earlier globalntk output (never anything else) may be replaced.</param>
/// <param name="Inputs">The command's inputs: the output may not be one of them, hold one, or be an ancestor of one.</param>
public sealed record OutputRequest(string? Path, string Command, bool Force, IReadOnlyList<CommandInput> Inputs)
{
    /// <summary>The option that named the output (for messages).</summary>
    public string Option { get; init; } = "--out";
}

/// <summary>
/// The CLI's output policy, in one place, used by <see cref="OutputFolder"/> and
/// <see cref="OutputFile"/>. globalntk never deletes, moves or overwrites anything it did not
/// create:
/// <list type="bullet">
/// <item>the file-system root, the home folder, the current folder, an input, a folder holding an
/// input and any ancestor of an input are refused, even with <c>--force</c>;</item>
/// <item>an existing non-empty folder is refused unless it carries globalntk's marker
/// (<see cref="OutputMarker"/>) from an earlier run, holds only what that run wrote, and
/// <c>--force</c> is given; it is then replaced atomically;</item>
/// <item>an existing file is replaced only with <c>--force</c>;</item>
/// <item>missing parent folders are created only when the output is put in place, and removed
/// again if that fails.</item>
/// </list>
/// Every refusal is a <see cref="CliInputException"/>: one line, exit code 2.
/// </summary>
public static class OutputTarget
{
    /// <summary>Help text of every command's <c>--force</c>.</summary>
    public const string ForceDescription =
        "Replace an existing --out written by an earlier globalntk run (never anything else: inputs, the current, home and root folders are always refused).";

    /// <summary>The globalntk version recorded in markers.</summary>
    public static string Version { get; } =
        (typeof(OutputTarget).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0").Split('+')[0];

    /// <summary>Path comparison of the platform (case-insensitive file systems outside Linux).</summary>
    public static StringComparison PathComparison => OperatingSystem.IsLinux() ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase;

    /// <summary>
    /// The absolute path with every symbolic link in its existing part resolved (as <c>realpath</c>),
    /// the missing rest appended: two names of one place compare equal.
    /// </summary>
    public static string Canonical(string path) => Canonical(path, 0);

    private static string Canonical(string path, int depth)
    {
        if (depth > 40) throw new IOException($"'{path}': too many levels of symbolic links.");
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        string root = Path.GetPathRoot(full) ?? "/";
        string current = root;
        var parts = full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
        for (int i = 0; i < parts.Length; i++)
        {
            string next = Path.Combine(current, parts[i]);
            FileSystemInfo info = new FileInfo(next);
            if (info.LinkTarget is not null)
            {
                var final = info.ResolveLinkTarget(returnFinalTarget: true);
                // A dangling link is itself the thing at this path.
                next = final is null || !(File.Exists(final.FullName) || Directory.Exists(final.FullName)) ? next : Canonical(final.FullName, depth + 1);
            }
            else if (!info.Exists && !Directory.Exists(next))
                return Path.Combine([current, .. parts[i..]]);
            current = next;
        }
        return current;
    }

    /// <summary>Whether <paramref name="a"/> and <paramref name="b"/> (canonical) are the same path.</summary>
    public static bool Same(string a, string b) => string.Equals(a, b, PathComparison);

    /// <summary>Whether <paramref name="ancestor"/> strictly contains <paramref name="path"/> (both canonical).</summary>
    public static bool IsAncestor(string ancestor, string path)
    {
        string a = Path.EndsInDirectorySeparator(ancestor) ? ancestor : ancestor + Path.DirectorySeparatorChar;
        return path.Length > a.Length && path.StartsWith(a, PathComparison);
    }

    /// <summary>
    /// Refuses the places globalntk never writes, even with <c>--force</c>: the root, the home
    /// folder, the current folder, any input, any folder holding an input and any ancestor of one.
    /// </summary>
    public static void CheckAllowed(OutputRequest r, string given, string canonical)
    {
        string what = $"{r.Option} '{given}'";
        const string never = "globalntk never writes there, even with --force; choose a new folder";
        if (Same(canonical, Path.GetPathRoot(canonical) ?? "/"))
            throw new CliInputException($"{what} is the file-system root; {never}.");
        if (Same(canonical, Canonical(Environment.CurrentDirectory)))
            throw new CliInputException($"{what} is the current folder; {never} (e.g. {r.Option} report).");
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (!string.IsNullOrEmpty(home) && Same(canonical, Canonical(home)))
            throw new CliInputException($"{what} is your home folder; {never} (e.g. {r.Option} report).");
        foreach (var input in r.Inputs)
        {
            if (string.IsNullOrWhiteSpace(input.Path)) continue;
            string ip = Canonical(input.Path);
            if (Same(canonical, ip))
                throw new CliInputException($"{what} is the {input.Option} input '{input.Path}'; globalntk never writes over its inputs, even with --force; choose another {r.Option}.");
            if (IsAncestor(canonical, ip))
                throw new CliInputException($"{what} holds the {input.Option} input '{input.Path}'; globalntk never writes into a folder holding its inputs, even with --force; choose a new folder.");
        }
    }

    /// <summary>
    /// The nearest existing folder at or above <paramref name="canonical"/>'s parent; throws when a
    /// component on the way is a file.
    /// </summary>
    public static string ExistingAncestor(OutputRequest r, string given, string canonical)
    {
        string? dir = Path.GetDirectoryName(canonical);
        while (dir is not null && !Directory.Exists(dir))
        {
            if (File.Exists(dir)) throw new CliInputException($"{r.Option} '{given}': '{dir}' is a file, not a folder.");
            dir = Path.GetDirectoryName(dir);
        }
        return dir ?? throw new CliInputException($"{r.Option} '{given}': no existing folder above it.");
    }

    /// <summary>
    /// Creates the missing folders from <paramref name="existing"/> down to <paramref name="dir"/>
    /// (as <c>mkdir -p</c>); returns those it created, deepest last, for <see cref="RemoveCreated"/>.
    /// </summary>
    public static List<string> CreateParents(string existing, string dir)
    {
        var missing = new List<string>();
        for (string? d = dir; d is not null && !Same(d, existing) && !Directory.Exists(d); d = Path.GetDirectoryName(d)) missing.Add(d);
        missing.Reverse();
        var created = new List<string>();
        try
        {
            foreach (var d in missing)
            {
                if (Directory.Exists(d)) continue; // made meanwhile by someone else: not ours
                Directory.CreateDirectory(d);
                created.Add(d);
            }
        }
        catch
        {
            RemoveCreated(created);
            throw;
        }
        return created;
    }

    /// <summary>Removes folders made by <see cref="CreateParents"/>, deepest first, only while they are empty.</summary>
    public static void RemoveCreated(List<string> created)
    {
        for (int i = created.Count - 1; i >= 0; i--)
        {
            try { if (!Directory.EnumerateFileSystemEntries(created[i]).Any()) Directory.Delete(created[i]); }
            catch (IOException) { return; }
            catch (UnauthorizedAccessException) { return; }
        }
        created.Clear();
    }

    /// <summary>Deletes a file or folder tree (one of ours), ignoring what cannot be deleted.</summary>
    internal static void DeleteOurs(string path)
    {
        try
        {
            if (Directory.Exists(path) && new DirectoryInfo(path).LinkTarget is null) Directory.Delete(path, recursive: true);
            else File.Delete(path);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
