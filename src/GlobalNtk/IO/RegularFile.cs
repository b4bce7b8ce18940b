namespace GlobalNtk.IO;

/// <summary>
/// Input files are read only when they are regular files, and never past their real size: a
/// FIFO would block the open forever and a device such as <c>/dev/zero</c> never ends, so both
/// are refused before the file is opened.
/// </summary>
public static class RegularFile
{
    /// <summary>
    /// The size in bytes of the regular file at <paramref name="path"/> (symbolic links followed).
    /// Throws a one-line <see cref="DataFileException"/> naming the file when it is missing, a
    /// folder, empty or not a regular file, or too large to read into memory.
    /// </summary>
    /// <remarks>
    /// .NET exposes no file type, but FIFOs, sockets and character/block devices all report size
    /// 0 (and sysfs/procfs files are not inputs), so "a non-empty file" is checked instead: an
    /// empty regular file is never a valid model or array either.
    /// </remarks>
    public static long Size(string path)
    {
        FileSystemInfo info = new FileInfo(path);
        try
        {
            if (info.LinkTarget is not null) info = info.ResolveLinkTarget(returnFinalTarget: true) ?? info;
        }
        catch (IOException ex) { throw new DataFileException(path, $"cannot follow the symbolic link ({OneLine(ex.Message)})."); }
        catch (UnauthorizedAccessException) { throw new DataFileException(path, "permission denied."); }
        info.Refresh();
        if (info is DirectoryInfo || Directory.Exists(info.FullName)) throw new DataFileException(path, "is a folder, expected a file.");
        if (!info.Exists) throw new DataFileException(path, "file not found.");
        long size = ((FileInfo)info).Length;
        if (size == 0) throw new DataFileException(path, "is empty or not a regular file (FIFOs, sockets and devices are not read).");
        if (size > Array.MaxLength) throw new DataFileException(path, $"is {size} bytes, larger than the {Array.MaxLength} bytes one read can hold.");
        return size;
    }

    /// <summary>
    /// Reads the whole regular file at <paramref name="path"/>: exactly the size it had when
    /// checked (<see cref="Size"/>), so a file that changes while being read is an error, not an
    /// unbounded read. Every failure is a <see cref="DataFileException"/> naming the file.
    /// </summary>
    public static byte[] ReadAll(string path)
    {
        long size = Size(path);
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
            var bytes = new byte[size];
            int read = 0;
            while (read < bytes.Length)
            {
                int n = fs.Read(bytes, read, bytes.Length - read);
                if (n == 0) throw new DataFileException(path, $"file shrank while being read ({read} of {size} bytes).");
                read += n;
            }
            if (fs.ReadByte() >= 0) throw new DataFileException(path, $"file grew while being read (was {size} bytes).");
            return bytes;
        }
        catch (FileNotFoundException) { throw new DataFileException(path, "file not found."); }
        catch (DirectoryNotFoundException) { throw new DataFileException(path, "file not found (no such directory)."); }
        catch (UnauthorizedAccessException) { throw new DataFileException(path, "permission denied."); }
        catch (IOException ex) when (ex is not DataFileException) { throw new DataFileException(path, $"cannot read ({OneLine(ex.Message)})."); }
        catch (OutOfMemoryException) { throw new DataFileException(path, $"not enough memory to read its {size} bytes."); }
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");
}
