namespace GlobalNtk.IO;

/// <summary>
/// Writes a file atomically: the content goes to a temporary file in the same directory, which
/// is flushed and then renamed over the target. Readers never see a half-written file, and an
/// exception while writing leaves the target untouched and no temporary file behind.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> through <paramref name="write"/>; creates the directory if needed.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full) ?? ".";
        Directory.CreateDirectory(dir);
        // Same directory as the target, so the rename stays on one file system (atomic).
        string tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
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
