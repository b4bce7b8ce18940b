namespace GlobalNtk.IO;

/// <summary>
/// Records the files a job is about to write so that a failed job can be undone: files it
/// created are deleted and files it replaced get their earlier bytes back. Only what was recorded
/// is touched, so anything else in the folder (a user's own files) is never deleted.
/// </summary>
public sealed class FileJournal
{
    private readonly List<string> _created = [];
    private readonly Dictionary<string, byte[]> _replaced = new(StringComparer.Ordinal);
    private readonly HashSet<string> _seen = new(StringComparer.Ordinal);

    /// <summary>The files recorded as new, in order.</summary>
    public IReadOnlyList<string> Created => _created;

    /// <summary>Call before writing <paramref name="path"/>: remembers whether it existed and, if so, its bytes.</summary>
    public void BeforeWrite(string path)
    {
        string full = Path.GetFullPath(path);
        if (!_seen.Add(full)) return;
        if (File.Exists(full)) _replaced[full] = File.ReadAllBytes(full);
        else _created.Add(full);
    }

    /// <summary>Deletes the files created and restores the files replaced (best effort, newest first).</summary>
    public void Rollback()
    {
        for (int i = _created.Count - 1; i >= 0; i--)
        {
            try { File.Delete(_created[i]); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
        foreach (var (path, bytes) in _replaced)
        {
            try { AtomicFile.Write(path, s => s.Write(bytes)); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
        _created.Clear(); _replaced.Clear(); _seen.Clear();
    }
}
