using GlobalNtk.IO;

namespace GlobalNtk.Cli.Common;

/// <summary>
/// A single file a command writes (<c>--out Y.npy</c>), under <see cref="OutputTarget"/>'s policy:
/// never an input, never a folder; an existing file is replaced only with <c>--force</c>. The
/// content is written to a temporary file (<see cref="TempPath"/>) and renamed into place by
/// <see cref="Commit"/> (without <c>--force</c> the rename refuses to replace a file that appeared
/// meanwhile); missing parent folders are created only then. Disposing without committing
/// removes the temporary file. Temporary files of the same name left by a killed writer are removed.
/// </summary>
public sealed class OutputFile : IDisposable
{
    private readonly OutputRequest _request;
    private readonly string _given;
    private readonly string _anchor;
    private bool _done;

    private OutputFile(OutputRequest request, string given, string target, string anchor)
    {
        _request = request; _given = given; Target = target; _anchor = anchor;
        TempPath = Path.Combine(anchor, Path.GetFileName(AtomicFile.TemporaryPath(target)));
    }

    /// <summary>The final path (canonical).</summary>
    public string Target { get; }
    /// <summary>Where to write the content before <see cref="Commit"/>.</summary>
    public string TempPath { get; }

    /// <summary>Checks <paramref name="r"/> against the policy; refuses with one line.</summary>
    public static OutputFile Create(OutputRequest r)
    {
        string given = CliInputs.Required(r.Path, r.Option);
        string target = OutputTarget.Canonical(given);
        OutputTarget.CheckAllowed(r, given, target);
        string what = $"{r.Option} '{given}'";
        if (Directory.Exists(target))
            throw new CliInputException($"{what} is a folder, expected a file name (--force never replaces a folder); choose another {r.Option}.");
        if (!r.Force && (File.Exists(target) || new FileInfo(target).LinkTarget is not null))
            throw new CliInputException($"{what} already exists; add --force to replace it, or choose another {r.Option}.");
        // Even with --force, only a regular file is ever replaced: renaming over /dev/zero (as
        // root) or a FIFO would destroy something that is not an earlier output.
        if (File.Exists(target))
        {
            try { RegularFile.Size(target); }
            catch (DataFileException)
            {
                throw new CliInputException($"{what} exists and is not a regular file with data (a device, FIFO, socket or empty file); globalntk replaces only regular files, even with --force; choose another {r.Option}.");
            }
        }
        string anchor = OutputTarget.ExistingAncestor(r, given, target);
        string name = Path.GetFileName(target);
        string? parent = Path.GetDirectoryName(target);
        if (parent is not null && Directory.Exists(parent))
            foreach (var f in Directory.EnumerateFiles(parent, $".*{name}.*.tmp"))
                if (AtomicFile.IsTemporaryName(Path.GetFileName(f), name) && !OutputFolder.IsLockedFile(f)) OutputTarget.DeleteOurs(f);
        return new OutputFile(r, given, target, anchor);
    }

    /// <summary>Renames the written file into place (creating missing parents).</summary>
    public void Commit()
    {
        if (_done) return;
        var created = OutputTarget.CreateParents(_anchor, Path.GetDirectoryName(Target)!);
        try { File.Move(TempPath, Target, overwrite: _request.Force); }
        catch (IOException) when (!_request.Force && File.Exists(Target))
        {
            OutputTarget.RemoveCreated(created);
            throw new CliInputException($"{_request.Option} '{_given}' was created by another process meanwhile; add --force to replace it, or choose another {_request.Option}.");
        }
        catch { OutputTarget.RemoveCreated(created); throw; }
        _done = true;
    }

    /// <summary>Removes the temporary file unless committed.</summary>
    public void Dispose()
    {
        if (_done) return;
        _done = true;
        OutputTarget.DeleteOurs(TempPath);
    }
}
