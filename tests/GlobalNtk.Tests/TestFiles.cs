namespace GlobalNtk.Tests;

/// <summary>
/// A fresh temporary folder per test (under the process's temp folder, so under CI's fresh
/// TMPDIR), deleted with everything in it on dispose. Every test that writes files uses one.
/// </summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "globalntk-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        if (!Directory.Exists(Path)) return;
        try { Directory.Delete(Path, recursive: true); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A test made something read-only: make everything writable again and retry once.
            try
            {
                MakeWritable(new DirectoryInfo(Path));
                Directory.Delete(Path, recursive: true);
            }
            catch (Exception) { /* left for .ci/run's leftover check to report */ }
        }
    }

    private static void MakeWritable(DirectoryInfo dir)
    {
        if (OperatingSystem.IsWindows()) return;
        dir.UnixFileMode |= UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        foreach (var e in dir.EnumerateFileSystemInfos())
        {
            if (e.LinkTarget is not null) continue;
            if (e is DirectoryInfo d) MakeWritable(d);
            else e.UnixFileMode |= UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
    }
}
