using System.Diagnostics;
using GlobalNtk.Cli;
using GlobalNtk.Cli.Common;
using GlobalNtk.IO;
using GlobalNtk.Training;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// The output policy across real processes: the built CLI run as a child process (its own working
/// folder, its own OS locks, killed with SIGKILL), which in-process tests cannot show.
/// </summary>
public class CliProcessOutputTests
{
    private static ProcessStartInfo Cli(string workingDirectory, params string[] args)
    {
        string host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h && File.Exists(h) ? h : "dotnet";
        var psi = new ProcessStartInfo(host) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("exec");
        psi.ArgumentList.Add(typeof(CliApp).Assembly.Location);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return psi;
    }

    private static (int Exit, string Err) Run(string workingDirectory, params string[] args)
    {
        using var p = Process.Start(Cli(workingDirectory, args))!;
        var err = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, err.Result);
    }

    [Fact]
    public void TheCurrentFolderIsRefusedEvenWhenEmpty()
    {
        using var f = new CliFixture();
        string cwd = f.Dir.File("here");
        Directory.CreateDirectory(cwd);
        foreach (var args in new[]
        {
            new[] { "demo", "--out", ".", "--force", "--quiet" },
            ["train", "--task", "sine", "--out", "./", "--quiet"],
            ["forward", "--model", f.ModelPath, "--inputs", f.X, "--out", ".", "--force"],
        })
        {
            var (exit, err) = Run(cwd, args);
            Assert.Equal(2, exit);
            var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Single(lines);
            Assert.StartsWith("error: --out '.", lines[0]);
            Assert.Contains("current folder", lines[0]);
            Assert.Contains("--force", lines[0]);
            Assert.Empty(Directory.EnumerateFileSystemEntries(cwd));
        }
    }

    [Fact]
    public void ASecondWriterIsRefusedAndKill9ReleasesTheLockAndItsLeftoversAreCleaned()
    {
        using var f = new CliFixture();
        string run = f.Dir.File("run");
        using var p = Process.Start(Cli(f.Dir.Path, "train", "--task", "sine", "--steps", "100000000", "--hidden", "3", "--batch", "2", "--trial-steps", "5",
            "--checkpoint-every", "1", "--quiet", "--out", "run"))!;
        try
        {
            // Wait (generously: the machine may be busy) until the run is writing checkpoints.
            var clock = Stopwatch.StartNew();
            while (!File.Exists(Checkpoints.ModelPath(run, 2)) && !p.HasExited && clock.Elapsed < TimeSpan.FromMinutes(3)) Thread.Sleep(50);
            Assert.False(p.HasExited, p.HasExited ? p.StandardError.ReadToEnd() : "");
            Assert.True(File.Exists(Checkpoints.ModelPath(run, 2)), "the training process wrote no checkpoint in 3 minutes");

            // While it runs, every other writer is refused: resume, replace, and a report over it.
            CliTestHost.AssertOneLineError(CliTestHost.Run("train", "--resume", "--out", run, "--quiet"), "another globalntk process");
            CliTestHost.AssertOneLineError(CliTestHost.Run("train", "--task", "sine", "--force", "--out", run, "--quiet"), "another globalntk process", "--force");
            Assert.True(OutputMarker.TryAcquire(run, out _) == OutputMarker.State.Locked);
        }
        finally
        {
            if (!p.HasExited) p.Kill(); // SIGKILL on Unix
            p.WaitForExit();
        }

        // The OS released the lock with the process; what it was writing may be a leftover.
        string orphan = AtomicFile.TemporaryPath(Path.Combine(run, Checkpoints.LogFile));
        File.WriteAllText(orphan, "half");
        int last = Checkpoints.List(run)[^1].Step;
        var r = CliTestHost.Run("train", "--resume", "--out", run, "--steps", (last + 2).ToString(System.Globalization.CultureInfo.InvariantCulture), "--quiet");
        Assert.True(r.Exit == 0, r.Err);
        Assert.Equal(last + 2, Checkpoints.List(run)[^1].Step);
        Assert.DoesNotContain(Directory.EnumerateFiles(run).Select(Path.GetFileName), n => AtomicFile.IsTemporaryName(n!));
    }
}
