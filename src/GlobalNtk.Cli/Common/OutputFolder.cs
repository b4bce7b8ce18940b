using GlobalNtk.IO;
using GlobalNtk.Training;

namespace GlobalNtk.Cli.Common;

/// <summary>
/// A folder a command writes (<c>--out DIR</c>), under <see cref="OutputTarget"/>'s policy. New
/// content is built under a hidden temporary name (<c>.NAME.tmp-GUID</c>, next to the target or,
/// when parents are missing, in the nearest existing folder) that holds a locked
/// <see cref="OutputMarker"/>, and is put in place by <see cref="Place"/>/<see cref="Commit"/>:
/// a rename for a new folder, a move of its entries into an existing empty folder, or a swap
/// with an earlier globalntk folder (<c>--force</c>) that is deleted only after the swap.
/// Disposing without <see cref="Commit"/> undoes everything this object did, so a failed command
/// leaves the file system as it found it. Leftovers of killed runs (temporary folders whose
/// marker no live process holds, temporary files in a run folder this process owns) are removed.
/// </summary>
public sealed class OutputFolder : IDisposable
{
    private enum Mode { Create, IntoEmpty, Replace, Resume }

    private readonly OutputRequest _request;
    private readonly string _given;
    private readonly string _anchor;
    private readonly Mode _mode;
    private OutputMarker? _marker;
    private OutputMarker? _old;
    private string? _staging;
    private List<string> _createdParents = [];
    private readonly List<string> _movedIn = [];
    private bool _markerCreated, _placed, _done;

    private OutputFolder(OutputRequest request, string given, string target, string anchor, Mode mode)
    {
        _request = request; _given = given; Target = target; _anchor = anchor; _mode = mode;
        Display = Path.TrimEndingDirectorySeparator(Path.GetFullPath(given));
    }

    /// <summary>The folder's final place (canonical path).</summary>
    public string Target { get; }
    /// <summary>The final place as the user named it (absolute), for messages.</summary>
    public string Display { get; }
    /// <summary>Where to write now: the temporary folder until <see cref="Place"/>, then <see cref="Target"/>.</summary>
    public string WritePath => _placed ? Target : _staging!;
    /// <summary>Whether an earlier globalntk folder is being replaced (<c>--force</c>); it stays until <see cref="Commit"/>.</summary>
    public bool Replacing => _mode == Mode.Replace;
    /// <summary>Files written in place (after <see cref="Place"/>); undone when the command fails.</summary>
    public FileJournal Journal { get; } = new();
    /// <summary>The run identity stored in a resumed folder's marker (null for a run folder from an older globalntk).</summary>
    public IReadOnlyDictionary<string, string>? StoredRun => _marker?.Info?.Run;

    /// <summary>A path inside <see cref="WritePath"/>.</summary>
    public string PathOf(string relative) => Path.Combine(WritePath, relative);

    /// <summary>
    /// Starts a new output folder of <paramref name="kind"/> (<see cref="OutputMarker.ReportKind"/> or
    /// <see cref="OutputMarker.RunKind"/>, with the run's identity in <paramref name="run"/>), or
    /// refuses with one line.
    /// </summary>
    public static OutputFolder Create(OutputRequest r, string kind, IReadOnlyDictionary<string, string>? run = null)
    {
        string given = CliInputs.Required(r.Path, r.Option);
        string target = OutputTarget.Canonical(given);
        OutputTarget.CheckAllowed(r, given, target);
        string what = $"{r.Option} '{given}'";
        if (File.Exists(target) || (!Directory.Exists(target) && new FileInfo(target).LinkTarget is not null))
            throw new CliInputException($"{what} is a file, expected a folder (--force never replaces a file with a folder); choose another {r.Option}.");
        string anchor = OutputTarget.ExistingAncestor(r, given, target);
        string name = Path.GetFileName(target);

        OutputFolder o;
        OutputMarker? old = null;
        if (!Directory.Exists(target)) o = new OutputFolder(r, given, target, anchor, Mode.Create);
        else if (Directory.EnumerateFileSystemEntries(target).All(e => IsLeftover(e, name))) o = new OutputFolder(r, given, target, target, Mode.IntoEmpty);
        else
        {
            var state = OutputMarker.TryAcquire(target, out old);
            try
            {
                CheckReplaceable(r, what, target, kind, state, old);
            }
            catch { old?.Dispose(); throw; }
            o = new OutputFolder(r, given, target, anchor, Mode.Replace) { _old = old };
        }
        // This run owns the place now: remove what killed runs left there.
        RemoveLeftovers(anchor, name);
        if (Directory.Exists(target)) RemoveLeftovers(target, name);
        try
        {
            o.Stage(OutputMarker.New(r.Command, kind, run));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            o.Dispose();
            throw new CliInputException($"{what}: cannot write in '{o._anchor}' ({ex.Message.ReplaceLineEndings(" ")}).");
        }
        catch { o.Dispose(); throw; }
        return o;
    }

    /// <summary>
    /// Opens an existing training run folder to continue it (<c>train --resume</c>): locks it,
    /// and adds a marker to a run folder from an older globalntk (removed again if the command
    /// fails); <see cref="CheckRun"/> then checks the run and removes what a killed writer left.
    /// </summary>
    public static OutputFolder Resume(OutputRequest r)
    {
        string given = CliInputs.Required(r.Path, r.Option);
        string target = OutputTarget.Canonical(given);
        OutputTarget.CheckAllowed(r, given, target);
        string what = $"{r.Option} '{given}'";
        if (!Directory.Exists(target)) throw new CliInputException($"train --resume: run folder '{given}' does not exist.");
        var o = new OutputFolder(r, given, target, target, Mode.Resume) { _placed = true };
        try
        {
            switch (OutputMarker.TryAcquire(target, out var marker))
            {
                case OutputMarker.State.Locked:
                    throw new CliInputException($"{what} is being written by another globalntk process; wait for it to finish (--force does not override this).");
                case OutputMarker.State.Foreign:
                    throw new CliInputException($"{what} holds a '{OutputMarker.FileName}' file that globalntk did not write; not a run folder to resume.");
                case OutputMarker.State.Acquired when marker!.Info!.Kind != OutputMarker.RunKind:
                    marker.Dispose();
                    throw new CliInputException($"{what} is a globalntk {marker.Info.Command} report, not a training run; nothing to resume.");
                case OutputMarker.State.Acquired:
                    o._marker = marker;
                    break;
                default:
                    o._marker = OutputMarker.CreateNew(target, null);
                    o._markerCreated = true;
                    break;
            }
        }
        catch { o.Dispose(); throw; }
        return o;
    }

    /// <summary>
    /// Checks a resumed run against its marker: <paramref name="identity"/> (from its checkpoints)
    /// must be the identity the run was started with; an older run folder's marker gets it now.
    /// Then removes the temporary files a killed writer left in the folder (not held by a live one).
    /// </summary>
    public void CheckRun(IReadOnlyDictionary<string, string> identity)
    {
        if (_marker is null) throw new InvalidOperationException("not a run folder");
        if (_marker.Info?.Run is { } stored)
        {
            if (Trainer.Difference(stored, identity) is { } diff)
                throw new CliInputException($"{_request.Option} '{_given}' holds checkpoints of another run than the one started there ({diff}, started with {Trainer.Difference(identity, stored)}); resume only a folder written by one run.");
        }
        else _marker.Write(OutputMarker.New("train", OutputMarker.RunKind, identity));
        // The run is ours and checked: remove the temporary files a killed writer left in it.
        foreach (var f in Directory.EnumerateFiles(Target))
            if (AtomicFile.IsTemporaryName(Path.GetFileName(f)) && !IsLockedFile(f)) OutputTarget.DeleteOurs(f);
    }

    /// <summary>Puts the folder in place now (a run that is written in place); a replacement waits for <see cref="Commit"/>.</summary>
    public void Place()
    {
        if (_placed) return;
        string what = $"{_request.Option} '{_given}'";
        var info = _marker!.Info!;
        if (info.Kind == OutputMarker.ReportKind)
            _marker.Write(info with { Files = FilesOf(_staging!).Where(f => f != OutputMarker.FileName).ToList() });
        switch (_mode)
        {
            case Mode.Create:
                _createdParents = OutputTarget.CreateParents(_anchor, Path.GetDirectoryName(Target)!);
                try { Directory.Move(_staging!, Target); }
                catch (IOException) when (Directory.Exists(Target))
                {
                    OutputTarget.RemoveCreated(_createdParents);
                    throw new CliInputException($"{what} was created by another process meanwhile; nothing was written (choose another {_request.Option}).");
                }
                catch { OutputTarget.RemoveCreated(_createdParents); throw; }
                _staging = null;
                break;
            case Mode.IntoEmpty:
                if (Directory.EnumerateFileSystemEntries(Target).Any(e => !OutputTarget.Same(e, _staging!)))
                    throw new CliInputException($"{what} is no longer empty (another process wrote into it); nothing was written (choose another {_request.Option}).");
                // The marker first: a folder interrupted here is recognisably ours.
                var entries = Directory.EnumerateFileSystemEntries(_staging!).OrderBy(e => Path.GetFileName(e) == OutputMarker.FileName ? 0 : 1).ToList();
                try
                {
                    foreach (var e in entries)
                    {
                        string dest = Path.Combine(Target, Path.GetFileName(e));
                        if (Directory.Exists(e)) Directory.Move(e, dest); else File.Move(e, dest, overwrite: false);
                        _movedIn.Add(dest);
                    }
                }
                catch
                {
                    MoveBack();
                    throw;
                }
                Directory.Delete(_staging!);
                _staging = null;
                break;
            case Mode.Replace:
                // Swap: the old folder (ours, locked by us) goes aside, the new one in, then the old is deleted.
                string aside = Path.Combine(Path.GetDirectoryName(Target)!, TempName(Path.GetFileName(Target)));
                Directory.Move(Target, aside);
                try { Directory.Move(_staging!, Target); }
                catch
                {
                    try { Directory.Move(aside, Target); } catch (IOException) { }
                    throw;
                }
                _staging = null;
                _old?.Dispose();
                _old = null;
                OutputTarget.DeleteOurs(aside);
                break;
        }
        _placed = true;
    }

    /// <summary>Puts the folder in place (if not yet) and keeps everything written.</summary>
    public void Commit()
    {
        if (_done) return;
        Place();
        _done = true;
    }

    /// <summary>Releases the locks; without <see cref="Commit"/>, undoes what this object wrote.</summary>
    public void Dispose()
    {
        if (!_done)
        {
            _done = true;
            if (!_placed && _staging is not null)
            {
                _marker?.Dispose();
                OutputTarget.DeleteOurs(_staging);
            }
            else if (_placed)
            {
                Journal.Rollback();
                switch (_mode)
                {
                    case Mode.Create:
                        _marker?.Dispose();
                        OutputTarget.DeleteOurs(Path.Combine(Target, OutputMarker.FileName));
                        try { Directory.Delete(Target); } catch (IOException) { } catch (UnauthorizedAccessException) { }
                        OutputTarget.RemoveCreated(_createdParents);
                        break;
                    case Mode.IntoEmpty:
                        _marker?.Dispose();
                        foreach (var e in _movedIn) OutputTarget.DeleteOurs(e);
                        break;
                    case Mode.Resume when _markerCreated:
                        _marker?.Dispose();
                        OutputTarget.DeleteOurs(Path.Combine(Target, OutputMarker.FileName));
                        break;
                }
            }
        }
        _marker?.Dispose();
        _old?.Dispose();
    }

    private void Stage(MarkerInfo info)
    {
        string dir = _mode == Mode.IntoEmpty ? Target : _anchor;
        _staging = Path.Combine(dir, TempName(Path.GetFileName(Target)));
        Directory.CreateDirectory(_staging);
        _marker = OutputMarker.CreateNew(_staging, info);
    }

    private void MoveBack()
    {
        for (int i = _movedIn.Count - 1; i >= 0; i--)
        {
            string back = Path.Combine(_staging!, Path.GetFileName(_movedIn[i]));
            try { if (Directory.Exists(_movedIn[i])) Directory.Move(_movedIn[i], back); else File.Move(_movedIn[i], back); }
            catch (IOException) { }
        }
        _movedIn.Clear();
    }

    private static void CheckReplaceable(OutputRequest r, string what, string target, string kind, OutputMarker.State state, OutputMarker? old)
    {
        switch (state)
        {
            case OutputMarker.State.Locked:
                throw new CliInputException($"{what} is being written by another globalntk process; wait for it to finish or choose another {r.Option} (--force does not override this).");
            case OutputMarker.State.None or OutputMarker.State.Foreign:
                string hint = kind == OutputMarker.RunKind && Checkpoints.List(target).Count > 0 ? " (to continue a training run, add --resume)" : "";
                throw new CliInputException($"{what} already exists and is not empty; globalntk writes only into a new or empty folder, and --force replaces only a folder an earlier globalntk run wrote{hint}; choose another {r.Option}.");
        }
        var info = old!.Info!;
        if (info.Kind != kind)
            throw new CliInputException(info.Kind == OutputMarker.RunKind
                ? $"{what} is a globalntk training run folder; --force replaces only a report folder here, never a run's checkpoints; choose another {r.Option}."
                : $"{what} is a globalntk {info.Command} report folder, not a training run; --force replaces only a training run folder here; choose another {r.Option}.");
        if (!r.Force)
            throw info.Kind == OutputMarker.RunKind && kind == OutputMarker.RunKind
                ? new CliInputException($"{what} holds an earlier globalntk training run; add --resume to continue it, --force to replace it, or choose another {r.Option}.")
                : new CliInputException($"{what} holds an earlier globalntk {info.Command} output; add --force to replace it, or choose another {r.Option}.");
        var ours = new HashSet<string>(info.Files ?? [], StringComparer.Ordinal) { OutputMarker.FileName };
        foreach (var f in FilesOf(target))
        {
            string leaf = f[(f.LastIndexOf('/') + 1)..];
            bool mine = info.Kind == OutputMarker.RunKind
                ? !f.Contains('/') && (f == OutputMarker.FileName || Checkpoints.IsRunFile(f))
                : ours.Contains(f) || AtomicFile.IsTemporaryName(leaf);
            if (!mine)
                throw new CliInputException($"{what} holds '{f}', which globalntk did not write; --force replaces only globalntk's own files, so move it away or choose another {r.Option}.");
        }
        foreach (var d in Directory.EnumerateDirectories(target, "*", SearchOption.AllDirectories))
        {
            string rel = Path.GetRelativePath(target, d).Replace(Path.DirectorySeparatorChar, '/');
            if (new DirectoryInfo(d).LinkTarget is not null || !ours.Any(f => f.StartsWith(rel + "/", StringComparison.Ordinal)))
                throw new CliInputException($"{what} holds the folder '{rel}', which globalntk did not write; --force replaces only globalntk's own files, so move it away or choose another {r.Option}.");
        }
    }

    /// <summary>Every file under <paramref name="dir"/>, relative and '/'-separated, sorted (symbolic links are not followed).</summary>
    private static List<string> FilesOf(string dir)
    {
        var files = new List<string>();
        var pending = new Stack<string>(new[] { dir });
        while (pending.Count > 0)
        {
            string d = pending.Pop();
            foreach (var e in Directory.EnumerateFileSystemEntries(d))
            {
                if (Directory.Exists(e) && new DirectoryInfo(e).LinkTarget is null) pending.Push(e);
                else files.Add(Path.GetRelativePath(dir, e).Replace(Path.DirectorySeparatorChar, '/'));
            }
        }
        files.Sort(StringComparer.Ordinal);
        return files;
    }

    /// <summary>Removes temporary folders of <paramref name="name"/> in <paramref name="dir"/> that a killed run left (ours, unlocked).</summary>
    private static void RemoveLeftovers(string dir, string name)
    {
        IEnumerable<string> candidates;
        try { candidates = Directory.EnumerateDirectories(dir, $".{name}.tmp-*").ToList(); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return; }
        foreach (var d in candidates)
            if (IsLeftover(d, name)) OutputTarget.DeleteOurs(d);
    }

    /// <summary>Whether <paramref name="path"/> is a temporary folder for <paramref name="name"/> that a killed run left (ours, unlocked).</summary>
    private static bool IsLeftover(string path, string name) =>
        IsTempName(Path.GetFileName(path), name) && Directory.Exists(path) && new DirectoryInfo(path).LinkTarget is null && OutputMarker.IsAbandoned(path);

    private static string TempName(string name) => $".{name}.tmp-{Guid.NewGuid():N}";

    private static bool IsTempName(string entry, string name)
    {
        string prefix = $".{name}.tmp-";
        return entry.Length == prefix.Length + 32 && entry.StartsWith(prefix, StringComparison.Ordinal)
            && entry.AsSpan(prefix.Length).IndexOfAnyExcept("0123456789abcdef") < 0;
    }

    /// <summary>Whether a live process holds <paramref name="path"/> open for writing (as <see cref="AtomicFile"/> does).</summary>
    internal static bool IsLockedFile(string path)
    {
        try { using var _ = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.None); return false; }
        catch (FileNotFoundException) { return false; }
        catch (IOException) { return true; }
        catch (UnauthorizedAccessException) { return true; }
    }
}
