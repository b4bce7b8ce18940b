namespace GlobalNtk.IO;

/// <summary>
/// Writes a file atomically: the content goes to a temporary file in the same directory, which
/// is flushed and then renamed over the target. Readers never see a half-written file, and an
/// exception while writing leaves the target untouched and no temporary file behind.
/// </summary>
public static class AtomicFile
{
    private static readonly System.Buffers.SearchValues<char> Hex = System.Buffers.SearchValues.Create("0123456789abcdef");

    /// <summary>Writes <paramref name="path"/> through <paramref name="write"/>; creates the directory if needed.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full) ?? ".";
        Directory.CreateDirectory(dir);
        string tmp = TemporaryPath(full);
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>
    /// A fresh temporary name for <paramref name="path"/> in the same directory (so the final rename
    /// stays on one file system and is atomic): <c>.NAME.GUID.tmp</c>.
    /// </summary>
    public static string TemporaryPath(string path)
    {
        string full = Path.GetFullPath(path);
        return Path.Combine(Path.GetDirectoryName(full) ?? ".", $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
    }

    /// <summary>
    /// Whether <paramref name="fileName"/> is a temporary name made by <see cref="TemporaryPath"/>
    /// (for any target when <paramref name="target"/> is null, else for that file name): what a
    /// killed writer leaves behind.
    /// </summary>
    public static bool IsTemporaryName(string fileName, string? target = null)
    {
        const int guid = 32;
        if (fileName.Length < 1 + 1 + guid + 4 || fileName[0] != '.' || !fileName.EndsWith(".tmp", StringComparison.Ordinal)) return false;
        int g = fileName.Length - 4 - guid;
        if (fileName[g - 1] != '.' || fileName.AsSpan(g, guid).ContainsAnyExcept(Hex)) return false;
        if (target is null) return g - 1 > 1;
        // A temporary of a temporary (a file written atomically under a temporary name) counts too.
        string stem = fileName[1..(g - 1)];
        return stem == target || (IsTemporaryName(stem) && IsTemporaryName(stem, target));
    }

    /// <summary>Writes text (UTF-8, no BOM) atomically.</summary>
    public static void WriteAllText(string path, string text) =>
        Write(path, s => { var b = new System.Text.UTF8Encoding(false).GetBytes(text); s.Write(b, 0, b.Length); });
}

/// <summary>
/// A data file (safetensors, .npy, checkpoint) is missing, unreadable, corrupt or does not hold
/// what was asked for. The message is one line naming the file and, where relevant, the tensor.
/// </summary>
public sealed class DataFileException : IOException
{
    /// <summary>Creates the exception; the message is prefixed with the file path.</summary>
    public DataFileException(string path, string message, Exception? inner = null)
        : base($"{path}: {message}", inner) => FilePath = path;

    /// <summary>The file at fault.</summary>
    public string FilePath { get; }
}
