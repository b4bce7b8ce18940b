using System.Security.Cryptography;
using System.Text.Json;
using GlobalNtk.Cli.Common;
using GlobalNtk.IO;
using GlobalNtk.Training;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// The output policy (issue: data loss through --out), for every command that writes: nothing a
/// command did not create is ever deleted, moved or overwritten; refusals are one line, exit 2,
/// and leave the file system exactly as it was.
/// </summary>
public class CliOutputSafetyTests
{
    /// <summary>The folder-writing commands, each as the smallest run that succeeds.</summary>
    public static TheoryData<string> FolderCommands => new() { "analyze", "sweep", "demo", "train" };
    /// <summary>The file-writing commands.</summary>
    public static TheoryData<string> FileCommands => new() { "forward", "apply" };

    private static string[] Args(string command, CliFixture f, string @out, params string[] extra) => command switch
    {
        "analyze" => ["analyze", "--model", f.ModelPath, "--inputs", f.X, "--out", @out, .. CliFixture.FastAnalysis, .. extra],
        "sweep" => ["sweep", "--task", "flip-flop", "--arch", "gru", "--gains", "1", "--hidden", "2", "--steps", "1", "--trials", "2", "--trial-steps", "4",
            "--out", @out, .. CliFixture.FastAnalysis, .. extra],
        "demo" => ["demo", "--out", @out, "--steps", "2", "--hidden", "2", "--checkpoints", "2", "--trial-steps", "4", "--trials", "2", .. CliFixture.FastAnalysis, .. extra],
        "train" => ["train", "--task", "sine", "--steps", "2", "--hidden", "3", "--batch", "2", "--trial-steps", "5", "--checkpoint-every", "1", "--quiet", "--out", @out, .. extra],
        "forward" => ["forward", "--model", f.ModelPath, "--inputs", f.X, "--out", @out, .. extra],
        "apply" => ["apply", "--model", f.ModelPath, "--inputs", f.X, "--operator", "K", "--vector", f.Q, "--out", @out, .. extra],
        _ => throw new ArgumentException(command),
    };

    private static void Succeeds(string[] args)
    {
        var r = CliTestHost.Run(args);
        Assert.True(r.Exit == 0, $"{string.Join(' ', args)}: {r.Err}");
    }

    private static void Refused(string[] args, params string[] fragments)
    {
        var r = CliTestHost.Run(args);
        Assert.Equal(2, r.Exit);
        CliTestHost.AssertOneLineError(r, ["error: ", .. fragments]);
    }

    /// <summary>Every entry under <paramref name="dir"/> with a hash of its content: equal snapshots mean nothing changed.</summary>
    internal static string Snapshot(string dir)
    {
        var lines = new List<string>();
        foreach (var e in Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            string rel = Path.GetRelativePath(dir, e);
            lines.Add(Directory.Exists(e) ? rel + "/" : $"{rel} {Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(e)))}");
        }
        return string.Join('\n', lines);
    }

    private static MarkerInfo Marker(string dir) =>
        JsonSerializer.Deserialize<MarkerInfo>(File.ReadAllText(Path.Combine(dir, OutputMarker.FileName)), CliJson.Options)!;

    private static string[] HiddenTemps(string dir) =>
        Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).Where(n => n!.Contains(".tmp")).ToArray()!;

    [Theory]
    [MemberData(nameof(FolderCommands))]
    public void ExistingFolderWithUserFilesIsRefusedEvenWithForce(string command)
    {
        using var f = new CliFixture();
        string rep = f.Dir.File("rep");
        Directory.CreateDirectory(rep);
        File.WriteAllText(Path.Combine(rep, "notes.txt"), "mine");
        string before = Snapshot(f.Dir.Path);
        Refused(Args(command, f, rep), "'" + rep + "'", "--force", "not empty");
        Refused(Args(command, f, rep, "--force"), "'" + rep + "'", "--force", "not empty");
        Assert.Equal(before, Snapshot(f.Dir.Path));
    }

    [Theory]
    [MemberData(nameof(FolderCommands))]
    public void NewFolderGetsMarkerAndMissingParentsLikeMkdirP(string command)
    {
        using var f = new CliFixture();
        string rep = Path.Combine(f.Dir.Path, "a", "b", "rep");
        Succeeds(Args(command, f, rep));
        var m = Marker(rep);
        Assert.Equal("globalntk", m.Tool);
        Assert.Equal(command, m.Command);
        Assert.Equal(OutputTarget.Version, m.Version);
        Assert.InRange(m.Created, DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddMinutes(1));
        if (command == "train")
        {
            Assert.Equal(OutputMarker.RunKind, m.Kind);
            Assert.Equal("sine", m.Run!["task"]);
            Assert.Equal(CliDefaults.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture), m.Run!["train_seed"]);
        }
        else
        {
            Assert.Equal(OutputMarker.ReportKind, m.Kind);
            Assert.Contains("results.json", m.Files!);
            Assert.All(m.Files!, file => Assert.True(File.Exists(Path.Combine(rep, file)), file));
        }
        Assert.Empty(HiddenTemps(Path.Combine(f.Dir.Path, "a", "b")));
        Assert.Empty(HiddenTemps(f.Dir.Path));

        // An existing empty folder is used as it is (not replaced).
        string empty = f.Dir.File("empty");
        Directory.CreateDirectory(empty);
        Succeeds(Args(command, f, empty));
        Assert.True(File.Exists(Path.Combine(empty, OutputMarker.FileName)));
        Assert.Empty(HiddenTemps(f.Dir.Path));
        Assert.DoesNotContain(Directory.EnumerateDirectories(empty), d => Path.GetFileName(d).StartsWith('.'));
    }

    [Theory]
    [MemberData(nameof(FolderCommands))]
    public void ForceReplacesOnlyAnEarlierGlobalntkFolderAndOnlyIfItHoldsNothingElse(string command)
    {
        using var f = new CliFixture();
        string rep = f.Dir.File("rep");
        Succeeds(Args(command, f, rep));
        var first = Marker(rep);
        string before = Snapshot(f.Dir.Path);
        Refused(Args(command, f, rep), "'" + rep + "'", "--force");
        Assert.Equal(before, Snapshot(f.Dir.Path));

        Succeeds(Args(command, f, rep, "--force"));
        Assert.NotEqual(first.Created, Marker(rep).Created);
        Assert.Empty(HiddenTemps(f.Dir.Path));

        // A file the user put into our folder makes it theirs too: --force refuses and keeps everything.
        File.WriteAllText(Path.Combine(rep, "notes.txt"), "mine");
        before = Snapshot(f.Dir.Path);
        Refused(Args(command, f, rep, "--force"), "'" + rep + "'", "notes.txt", "--force");
        Assert.Equal(before, Snapshot(f.Dir.Path));
    }

    [Fact]
    public void ForceNeverTurnsATrainingRunIntoAReport()
    {
        using var f = new CliFixture();
        string run = f.Dir.File("run");
        Succeeds(Args("train", f, run));
        string before = Snapshot(f.Dir.Path);
        foreach (var command in new[] { "analyze", "sweep", "demo" })
            Refused(Args(command, f, run, "--force"), "'" + run + "'", "training run", "--force");
        string rep = f.Dir.File("rep");
        Succeeds(Args("analyze", f, rep));
        before = Snapshot(f.Dir.Path);
        Refused(Args("train", f, rep, "--force"), "'" + rep + "'", "not a training run", "--force");
        Assert.Equal(before, Snapshot(f.Dir.Path));
    }

    [Theory]
    [MemberData(nameof(FolderCommands))]
    public void ProtectedPlacesAreAlwaysRefused(string command)
    {
        using var f = new CliFixture();
        string cwd = Directory.GetCurrentDirectory();
        string cwdBefore = string.Join('\n', Directory.EnumerateFileSystemEntries(cwd).Order());
        Refused(Args(command, f, ".", "--force"), "'.'", "current folder", "--force");
        Refused(Args(command, f, cwd + Path.DirectorySeparatorChar, "--force"), "current folder", "--force");
        string root = Path.GetPathRoot(f.Dir.Path)!;
        Refused(Args(command, f, root, "--force"), "root", "--force");
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (home.Length > 0 && !string.Equals(Path.GetFullPath(home), Path.GetPathRoot(home)) && home != cwd)
            Refused(Args(command, f, home, "--force"), "home folder", "--force");
        Assert.Equal(cwdBefore, string.Join('\n', Directory.EnumerateFileSystemEntries(cwd).Order()));
    }

    [Fact]
    public void InputsTheirFoldersAndAncestorsAreAlwaysRefused()
    {
        using var f = new CliFixture();
        string run = f.Dir.File("run");
        Succeeds(Args("train", f, run));
        string before = Snapshot(f.Dir.Path);
        string[] fast = [.. CliFixture.FastAnalysis];
        // analyze --model run --out run: the run (with all its checkpoints) is the input.
        Refused(["analyze", "--model", run, "--out", run, "--force", .. fast], "is the --model input", "--force");
        Refused(["analyze", "--model", run, "--out", Path.Combine(run, "..", "run"), "--force", .. fast], "is the --model input");
        Refused(["analyze", "--model", f.ModelPath, "--inputs", f.X, "--out", f.Dir.Path, "--force", .. fast], "holds the --model input", "--force");
        Refused(["analyze", "--model", f.ModelPath, "--inputs", f.X, "--out", Path.GetDirectoryName(f.Dir.Path)!, "--force", .. fast], "holds the --model input");
        Refused(["analyze", "--model", f.ModelPath, "--inputs", f.X, "--targets", f.Y, "--out", f.Y, "--force", .. fast], "is the --targets input");
        Assert.Equal(before, Snapshot(f.Dir.Path));
        // A symbolic link to an input's folder is the same place.
        string link = f.Dir.File("link");
        try { File.CreateSymbolicLink(link, run); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or PlatformNotSupportedException) { return; }
        Refused(["analyze", "--model", run, "--out", link, "--force", .. fast], "is the --model input");
        Assert.True(Directory.Exists(run) && Checkpoints.List(run).Count == 3);
    }

    [Theory]
    [MemberData(nameof(FileCommands))]
    public void SingleFileOutputs(string command)
    {
        using var f = new CliFixture();
        string z = f.Dir.File("z.npy");
        File.WriteAllText(z, "user data");
        string before = Snapshot(f.Dir.Path);
        Refused(Args(command, f, z), "'" + z + "'", "already exists", "--force");
        Assert.Equal(before, Snapshot(f.Dir.Path));
        Succeeds(Args(command, f, z, "--force"));
        Assert.Equal(3, Npy.Read(z).Shape.Length);

        // Never an input, a folder or a protected place, even with --force.
        Directory.CreateDirectory(f.Dir.File("d"));
        before = Snapshot(f.Dir.Path);
        Refused(Args(command, f, f.X, "--force"), "is the --inputs input", "--force");
        Refused(Args(command, f, f.ModelPath, "--force"), "is the --model input", "--force");
        if (command == "apply") Refused(Args(command, f, f.Q, "--force"), "is the --vector input", "--force");
        Refused(Args(command, f, f.Dir.Path, "--force"), "holds the --model input");
        Refused(Args(command, f, f.Dir.File("d"), "--force"), "is a folder", "--force");
        Refused(Args(command, f, ".", "--force"), "current folder", "--force");
        Assert.Equal(before, Snapshot(f.Dir.Path));

        // Missing parents are made on success (mkdir -p), and nothing is left when the command fails.
        Succeeds(Args(command, f, Path.Combine(f.Dir.Path, "p", "q", "y.npy")));
        Assert.True(File.Exists(Path.Combine(f.Dir.Path, "p", "q", "y.npy")));
        File.WriteAllText(f.Dir.File("bad.npy"), "not an npy");
        before = Snapshot(f.Dir.Path);
        var bad = Args(command, f, Path.Combine(f.Dir.Path, "n", "m", "y.npy"));
        bad[Array.IndexOf(bad, "--inputs") + 1] = f.Dir.File("bad.npy");
        Assert.Equal(2, CliTestHost.Run(bad).Exit);
        Assert.Equal(before, Snapshot(f.Dir.Path));
    }

    [Theory]
    [MemberData(nameof(FolderCommands))]
    public void AFolderHeldByAnotherWriterIsRefused(string command)
    {
        using var f = new CliFixture();
        string rep = f.Dir.File("rep");
        Succeeds(Args(command, f, rep));
        string before = Snapshot(f.Dir.Path);
        using (new FileStream(Path.Combine(rep, OutputMarker.FileName), FileMode.Open, FileAccess.Read, FileShare.None))
            Refused(Args(command, f, rep, "--force"), "'" + rep + "'", "another globalntk process", "--force");
        Assert.Equal(before, Snapshot(f.Dir.Path));
        Succeeds(Args(command, f, rep, "--force"));
    }

    [Theory]
    [InlineData("new")]
    [InlineData("empty")]
    [InlineData("replace")]
    public void AnOutputFolderNotCommittedLeavesNothing(string where)
    {
        // What every command relies on when it fails after starting its output (demo, whose
        // failures cannot be provoked from the command line, included).
        using var f = new CliFixture();
        string target = where == "new" ? Path.Combine(f.Dir.Path, "x", "y", "rep") : f.Dir.File("rep");
        if (where == "empty") Directory.CreateDirectory(target);
        if (where == "replace") Succeeds(Args("analyze", f, target));
        string before = Snapshot(f.Dir.Path);
        using (var folder = OutputFolder.Create(new OutputRequest(target, "demo", Force: true, []), OutputMarker.ReportKind))
        {
            Directory.CreateDirectory(folder.PathOf("run"));
            File.WriteAllText(folder.PathOf("run/log.csv"), "step\n");
            File.WriteAllText(folder.PathOf("report.md"), "new");
        }
        Assert.Equal(before, Snapshot(f.Dir.Path));
        // A training run placed at once (not over a report: see ForceNeverTurnsATrainingRunIntoAReport), undone after writing in place.
        if (where == "replace") return;
        using (var folder = OutputFolder.Create(new OutputRequest(target, "train", Force: true, []), OutputMarker.RunKind, new Dictionary<string, string> { ["seed"] = "1" }))
        {
            if (!folder.Replacing) folder.Place();
            string ckpt = Path.Combine(folder.WritePath, "ckpt-000000.safetensors");
            folder.Journal.BeforeWrite(ckpt);
            File.WriteAllText(ckpt, "x");
        }
        Assert.Equal(before, Snapshot(f.Dir.Path));
    }

    [Fact]
    public void TwoWritersOfOneNewPlaceTheSecondIsRefusedAtCommit()
    {
        using var f = new CliFixture();
        string target = Path.Combine(f.Dir.Path, "p", "rep");
        var request = new OutputRequest(target, "analyze", Force: true, []);
        using var a = OutputFolder.Create(request, OutputMarker.ReportKind);
        using var b = OutputFolder.Create(request, OutputMarker.ReportKind);
        File.WriteAllText(a.PathOf("report.md"), "a");
        File.WriteAllText(b.PathOf("report.md"), "b");
        a.Commit();
        var ex = Assert.Throws<CliInputException>(b.Commit);
        Assert.Contains("created by another process meanwhile", ex.Message);
        b.Dispose();
        Assert.Equal("a", File.ReadAllText(Path.Combine(target, "report.md")));
        Assert.Empty(HiddenTemps(Path.Combine(f.Dir.Path, "p")));

        // The same for a single file without --force: the rename refuses to replace.
        string z = f.Dir.File("z.txt");
        using var x = OutputFile.Create(new OutputRequest(z, "forward", false, []));
        using var y = OutputFile.Create(new OutputRequest(z, "forward", false, []));
        File.WriteAllText(x.TempPath, "x");
        File.WriteAllText(y.TempPath, "y");
        x.Commit();
        Assert.Contains("created by another process meanwhile", Assert.Throws<CliInputException>(y.Commit).Message);
        y.Dispose();
        Assert.Equal("x", File.ReadAllText(z));
        Assert.Empty(HiddenTemps(f.Dir.Path));
    }

    [Fact]
    public void ALockedFolderIsRefusedAndItsLockIsTheOsLock()
    {
        using var f = new CliFixture();
        string run = f.Dir.File("run");
        Succeeds(Args("train", f, run));
        string before = Snapshot(f.Dir.Path);
        // Another process writing the folder holds its marker with an exclusive lock (flock).
        using (new FileStream(Path.Combine(run, OutputMarker.FileName), FileMode.Open, FileAccess.Read, FileShare.None))
        {
            Refused(["train", "--resume", "--out", run, "--steps", "4", "--quiet"], "'" + run + "'", "another globalntk process");
            Refused(Args("train", f, run, "--force"), "'" + run + "'", "another globalntk process", "--force");
        }
        Assert.Equal(before, Snapshot(f.Dir.Path));
        // Released (as when that process ends, even by kill -9): the folder can be resumed.
        Succeeds(["train", "--resume", "--out", run, "--steps", "4", "--quiet"]);
        Assert.Equal([0, 1, 2, 3, 4], Checkpoints.List(run).Select(c => c.Step));
    }

    [Theory]
    [MemberData(nameof(FolderCommands))]
    public void LeftoversOfAKilledRunAreRemovedOnlyWhenOursAndUnlocked(string command)
    {
        using var f = new CliFixture();
        string rep = f.Dir.File("rep");
        string Temp() => f.Dir.File($".rep.tmp-{Guid.NewGuid():N}");
        // What a killed run leaves: its temporary folder with an unlocked marker.
        string dead = Temp();
        Directory.CreateDirectory(dead);
        File.WriteAllText(Path.Combine(dead, OutputMarker.FileName), JsonSerializer.Serialize(OutputMarker.New(command, OutputMarker.ReportKind), CliJson.Options));
        File.WriteAllText(Path.Combine(dead, "report.md"), "half");
        // Not provably ours (no marker), another target's, and one held by a live writer: all kept.
        string noMarker = Temp();
        Directory.CreateDirectory(noMarker);
        string other = f.Dir.File($".other.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(other);
        File.Copy(Path.Combine(dead, OutputMarker.FileName), Path.Combine(other, OutputMarker.FileName));
        string live = Temp();
        Directory.CreateDirectory(live);
        File.Copy(Path.Combine(dead, OutputMarker.FileName), Path.Combine(live, OutputMarker.FileName));
        using (new FileStream(Path.Combine(live, OutputMarker.FileName), FileMode.Open, FileAccess.Read, FileShare.None))
            Succeeds(Args(command, f, rep));
        Assert.False(Directory.Exists(dead));
        Assert.True(Directory.Exists(noMarker));
        Assert.True(Directory.Exists(other));
        Assert.True(Directory.Exists(live));
    }

    [Fact]
    public void ResumeCleansOrphanedTemporaryFilesAndKeepsLockedOnes()
    {
        using var f = new CliFixture();
        string run = f.Dir.File("run");
        Succeeds(Args("train", f, run));
        string orphan = AtomicFile.TemporaryPath(Checkpoints.ModelPath(run, 3));
        File.WriteAllText(orphan, "half-written");
        string user = Path.Combine(run, "notes.tmp");
        File.WriteAllText(user, "mine");
        string busy = AtomicFile.TemporaryPath(Path.Combine(run, Checkpoints.LogFile));
        using (var held = new FileStream(busy, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            Succeeds(["train", "--resume", "--out", run, "--steps", "3", "--quiet"]);
        Assert.False(File.Exists(orphan));
        Assert.True(File.Exists(busy));
        Assert.Equal("mine", File.ReadAllText(user));
    }

    [Fact]
    public void SingleFileOrphansAreCleaned()
    {
        using var f = new CliFixture();
        string z = f.Dir.File("z.npy");
        string orphan = AtomicFile.TemporaryPath(z);
        File.WriteAllText(orphan, "half");
        string otherOrphan = AtomicFile.TemporaryPath(f.Dir.File("w.npy"));
        File.WriteAllText(otherOrphan, "half");
        Succeeds(Args("forward", f, z));
        Assert.False(File.Exists(orphan));
        Assert.True(File.Exists(otherOrphan));
    }

    [Fact]
    public void FailuresLeaveTheFileSystemAsItWas()
    {
        using var f = new CliFixture();
        string before = Snapshot(f.Dir.Path);
        // A diverging training run into a/b/c/run: no run folder, no empty parents.
        string[] diverge = ["train", "--task", "integration", "--arch", "rnn-relu", "--gain", "1e200", "--steps", "3", "--hidden", "3", "--batch", "2",
            "--trial-steps", "5", "--checkpoint-every", "1", "--quiet", "--out"];
        Refused([.. diverge, Path.Combine(f.Dir.Path, "a", "b", "c", "run")], "rnn-relu");
        Assert.Equal(before, Snapshot(f.Dir.Path));
        // Into an existing empty folder: it stays empty.
        string empty = f.Dir.File("empty");
        Directory.CreateDirectory(empty);
        before = Snapshot(f.Dir.Path);
        Refused([.. diverge, empty], "rnn-relu");
        Assert.Equal(before, Snapshot(f.Dir.Path));
        // Replacing (--force) an earlier run: the earlier run stays as it was.
        string run = f.Dir.File("run");
        Succeeds(Args("train", f, run));
        before = Snapshot(f.Dir.Path);
        Refused([.. diverge, run, "--force"], "rnn-relu");
        Assert.Equal(before, Snapshot(f.Dir.Path));
        // A sweep that diverges, and an analysis that fails half-way (corrupt checkpoint), into missing parents.
        before = Snapshot(f.Dir.Path);
        Refused(["sweep", "--task", "integration", "--arch", "rnn-relu", "--gains", "1e200", "--hidden", "2", "--steps", "2", "--trials", "2", "--trial-steps", "4",
            "--out", Path.Combine(f.Dir.Path, "s", "t", "sweep"), .. CliFixture.FastAnalysis]);
        Assert.Equal(before, Snapshot(f.Dir.Path));
        string bad = f.Dir.File("badrun");
        Directory.CreateDirectory(bad);
        File.Copy(f.ModelPath, Path.Combine(bad, "ckpt-000000.safetensors"));
        File.WriteAllBytes(Path.Combine(bad, "ckpt-000010.safetensors"), [9, 9, 9]);
        before = Snapshot(f.Dir.Path);
        Refused(["analyze", "--model", bad, "--inputs", f.X, "--out", Path.Combine(f.Dir.Path, "r", "s", "rep"), .. CliFixture.FastAnalysis], "ckpt-000010");
        Assert.Equal(before, Snapshot(f.Dir.Path));
        // The same over an earlier report (--force): it is kept.
        string rep = f.Dir.File("rep");
        Succeeds(Args("analyze", f, rep));
        before = Snapshot(f.Dir.Path);
        Refused(["analyze", "--model", bad, "--inputs", f.X, "--out", rep, "--force", .. CliFixture.FastAnalysis], "ckpt-000010");
        Assert.Equal(before, Snapshot(f.Dir.Path));
    }

    [Fact]
    public void AFailedResumeIsUndone()
    {
        using var f = new CliFixture();
        string run = f.Dir.File("run");
        Succeeds(Args("train", f, run));
        string before = Snapshot(f.Dir.Path);
        // The resume machinery as the train command uses it, failing after writing in place.
        using (var folder = OutputFolder.Resume(new OutputRequest(run, "train", false, [])))
        {
            var trainer = Trainer.Resume(folder.Target, 4);
            folder.CheckRun(Trainer.RunIdentity(Checkpoints.ReadMetadata(Checkpoints.ModelPath(run, 2))));
            trainer.Run(folder.WritePath, journal: folder.Journal);
            Assert.Equal([0, 1, 2, 3, 4], Checkpoints.List(run).Select(c => c.Step));
        } // disposed without Commit: as after an exception
        Assert.Equal(before, Snapshot(f.Dir.Path));
    }

    [Fact]
    public void ResumeRefusesAFolderThatMixesRuns()
    {
        using var f = new CliFixture();
        string a = f.Dir.File("a"), b = f.Dir.File("b");
        Succeeds(Args("train", f, a, "--seed", "1"));
        Succeeds(Args("train", f, b, "--seed", "2"));
        // A checkpoint of run b dropped into run a.
        File.Copy(Checkpoints.ModelPath(b, 1), Checkpoints.ModelPath(a, 1), overwrite: true);
        string before = Snapshot(f.Dir.Path);
        Refused(["train", "--resume", "--out", a, "--steps", "4", "--quiet"], "different runs", "seed");
        // Every checkpoint of run b, but the marker of run a.
        string c = f.Dir.File("c");
        Directory.CreateDirectory(c);
        foreach (var file in Directory.GetFiles(b)) File.Copy(file, Path.Combine(c, Path.GetFileName(file)));
        File.Copy(Path.Combine(a, OutputMarker.FileName), Path.Combine(c, OutputMarker.FileName), overwrite: true);
        before = Snapshot(f.Dir.Path);
        Refused(["train", "--resume", "--out", c, "--steps", "4", "--quiet"], "another run", "seed");
        Assert.Equal(before, Snapshot(f.Dir.Path));
        // A run folder from an older globalntk (no marker) is resumed when its checkpoints agree, and marked.
        File.Delete(Path.Combine(b, OutputMarker.FileName));
        Succeeds(["train", "--resume", "--out", b, "--steps", "3", "--quiet"]);
        Assert.Equal("2", Marker(b).Run!["train_seed"]);
        Refused(["train", "--resume", "--force", "--out", b, "--steps", "4", "--quiet"], "--resume", "--force");
    }
}
