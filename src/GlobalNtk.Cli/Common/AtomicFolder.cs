namespace GlobalNtk.Cli.Common;

/// <summary>
/// Former name of <see cref="OutputFolder"/> for a report folder without <c>--force</c> and
/// without inputs; kept so older call sites still build. New code uses <see cref="OutputFolder"/>
/// with the command's <see cref="OutputRequest"/>.
/// </summary>
[Obsolete("Use OutputFolder.Create(new OutputRequest(...), OutputMarker.ReportKind): it knows --force and the command's inputs.")]
public sealed class AtomicFolder : IDisposable
{
    private readonly OutputFolder _folder;

    private AtomicFolder(OutputFolder folder) => _folder = folder;

    /// <summary>The final path.</summary>
    public string Target => _folder.Target;
    /// <summary>Where to write until <see cref="Commit"/>.</summary>
    public string TempPath => _folder.WritePath;

    /// <summary>Starts a new report folder (refused if the path exists and is not empty).</summary>
    public static AtomicFolder Create(string path, string what = "output folder") =>
        new(OutputFolder.Create(new OutputRequest(path, "globalntk", false, []), OutputMarker.ReportKind));

    /// <summary>A path inside the temporary folder.</summary>
    public string PathOf(string relative) => _folder.PathOf(relative);

    /// <summary>Puts the folder in place.</summary>
    public void Commit() => _folder.Commit();

    /// <summary>Removes the temporary folder unless committed.</summary>
    public void Dispose() => _folder.Dispose();
}
