namespace GlobalNtk.Cli.Common;

/// <summary>
/// An output folder written under a hidden temporary name next to its target and renamed into
/// place by <see cref="Commit"/>; disposing without committing deletes it, so a failed command
/// leaves nothing behind (CLI contract: no partial output). Single files use
/// <see cref="GlobalNtk.IO.AtomicFile"/>.
/// </summary>
public sealed class AtomicFolder : IDisposable
{
    private bool _done;

    private AtomicFolder(string target, string temp) { Target = target; TempPath = temp; }

    /// <summary>The final path.</summary>
    public string Target { get; }
    /// <summary>Where to write until <see cref="Commit"/>.</summary>
    public string TempPath { get; }

    /// <summary>Starts a folder output (created empty at <see cref="TempPath"/>); its parent must exist.</summary>
    public static AtomicFolder Create(string path, string what = "output folder")
    {
        if (string.IsNullOrWhiteSpace(path)) throw new CliInputException($"{what}: no path given (--out).");
        string full = Path.GetFullPath(path).TrimEnd(Path.DirectorySeparatorChar);
        string parent = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(parent)) throw new CliInputException($"{what} '{path}': parent folder '{parent}' does not exist.");
        if (File.Exists(full)) throw new CliInputException($"{what} '{path}' is a file, expected a folder.");
        var o = new AtomicFolder(full, TempName(full));
        Directory.CreateDirectory(o.TempPath);
        return o;
    }

    /// <summary>A path inside the temporary folder.</summary>
    public string PathOf(string relative) => Path.Combine(TempPath, relative);

    /// <summary>Renames the finished folder into place, replacing any previous one.</summary>
    public void Commit()
    {
        if (_done) return;
        string? old = null;
        if (Directory.Exists(Target))
        {
            old = TempName(Target) + ".old";
            Directory.Move(Target, old);
        }
        Directory.Move(TempPath, Target);
        if (old is not null) Directory.Delete(old, recursive: true);
        _done = true;
    }

    /// <summary>Deletes the temporary folder unless committed.</summary>
    public void Dispose()
    {
        if (_done) return;
        _done = true;
        try { if (Directory.Exists(TempPath)) Directory.Delete(TempPath, recursive: true); }
        catch (IOException) { /* best effort: the original error matters more */ }
    }

    private static string TempName(string full) =>
        Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
}
