namespace GlobalNtk.Cli.Common;

/// <summary>
/// An output file or folder written under a hidden temporary name next to its target and
/// renamed into place by <see cref="Commit"/>; disposing without committing deletes it, so a
/// failed command leaves nothing behind (CLI contract: no partial output).
/// </summary>
public sealed class AtomicOutput : IDisposable
{
    private bool _done;

    private AtomicOutput(string target, string temp, bool isDirectory)
    {
        Target = target; TempPath = temp; IsDirectory = isDirectory;
    }

    /// <summary>The final path.</summary>
    public string Target { get; }
    /// <summary>Where to write until <see cref="Commit"/>.</summary>
    public string TempPath { get; }
    /// <summary>Whether this is a folder.</summary>
    public bool IsDirectory { get; }

    /// <summary>Starts a file output; its folder must exist.</summary>
    public static AtomicOutput File(string path, string what = "output")
    {
        string full = Path.GetFullPath(RequireName(path, what));
        string dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) throw new CliInputException($"{what} '{path}': folder '{dir}' does not exist.");
        if (Directory.Exists(full)) throw new CliInputException($"{what} '{path}' is a folder, expected a file path.");
        return new AtomicOutput(full, TempName(full), false);
    }

    /// <summary>Starts a folder output (created empty at <see cref="TempPath"/>); its parent must exist.</summary>
    public static AtomicOutput Folder(string path, string what = "output folder")
    {
        string full = Path.GetFullPath(RequireName(path, what)).TrimEnd(Path.DirectorySeparatorChar);
        string parent = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(parent)) throw new CliInputException($"{what} '{path}': parent folder '{parent}' does not exist.");
        if (System.IO.File.Exists(full)) throw new CliInputException($"{what} '{path}' is a file, expected a folder.");
        var o = new AtomicOutput(full, TempName(full), true);
        Directory.CreateDirectory(o.TempPath);
        return o;
    }

    /// <summary>A path inside the temporary folder (folder outputs only).</summary>
    public string PathOf(string relative) => Path.Combine(TempPath, relative);

    /// <summary>Renames the finished output into place, replacing any previous one.</summary>
    public void Commit()
    {
        if (_done) return;
        if (IsDirectory)
        {
            string? old = null;
            if (Directory.Exists(Target))
            {
                old = TempName(Target) + ".old";
                Directory.Move(Target, old);
            }
            Directory.Move(TempPath, Target);
            if (old is not null) Directory.Delete(old, recursive: true);
        }
        else
        {
            System.IO.File.Move(TempPath, Target, overwrite: true);
        }
        _done = true;
    }

    /// <summary>Deletes the temporary output unless committed.</summary>
    public void Dispose()
    {
        if (_done) return;
        _done = true;
        try
        {
            if (IsDirectory) { if (Directory.Exists(TempPath)) Directory.Delete(TempPath, recursive: true); }
            else if (System.IO.File.Exists(TempPath)) System.IO.File.Delete(TempPath);
        }
        catch (IOException) { /* best effort: the original error matters more */ }
    }

    private static string RequireName(string? path, string what) =>
        string.IsNullOrWhiteSpace(path) ? throw new CliInputException($"{what}: no path given.") : path;

    private static string TempName(string full) =>
        Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
}
