using System.Text.Json;
using GlobalNtk.IO;
using GlobalNtk.Training;
using Xunit;

namespace GlobalNtk.Tests;

public class TrainingCliTests
{
    private static readonly string[] Tiny = ["--hidden", "6", "--batch", "4", "--trial-steps", "10", "--checkpoint-every", "2", "--lr", "0.01", "--quiet"];

    [Fact]
    public void TrainsResumesAndReportsJson()
    {
        using var dir = new TempDir();
        string run = dir.File("run");
        var r = CliTestHost.Run(["train", "--task", "sine", "--arch", "lstm", "--steps", "3", "--gain", "1.5", "--seed", "2", "--out", run, "--json", .. Tiny]);
        Assert.True(r.Exit == 0, r.Err);
        Assert.Equal("", r.Err);
        using (var doc = JsonDocument.Parse(r.Out))
        {
            var root = doc.RootElement;
            Assert.Equal("lstm", root.GetProperty("arch").GetString());
            Assert.Equal("sine", root.GetProperty("task").GetString());
            Assert.Equal(3, root.GetProperty("steps").GetInt32());
            Assert.Equal(Checkpoints.ModelPath(run, 3), root.GetProperty("lastCheckpoint").GetString());
            Assert.True(root.GetProperty("evalLoss").GetDouble() > 0);
        }
        Assert.Equal([0, 2, 3], Checkpoints.List(run).Select(c => c.Step));
        Assert.Equal("1.5", SafetensorsFile.Read(Checkpoints.ModelPath(run, 3)).Metadata["gain"]);

        var resumed = CliTestHost.Run("train", "--resume", "--out", run, "--steps", "5", "--quiet");
        Assert.True(resumed.Exit == 0, resumed.Err);
        Assert.Contains("steps 3 → 5", resumed.Out);
        Assert.Equal([0, 2, 3, 4, 5], Checkpoints.List(run).Select(c => c.Step));
        Assert.Equal(Enumerable.Range(0, 6), Checkpoints.ReadLog(run).Select(l => l.Step));

        // The same command in one go gives the same model as 3 + resume to 5.
        string once = dir.File("once");
        Assert.Equal(0, CliTestHost.Run(["train", "--task", "sine", "--arch", "lstm", "--steps", "5", "--gain", "1.5", "--seed", "2", "--out", once, .. Tiny]).Exit);
        Assert.Equal(SafetensorsFile.Read(Checkpoints.ModelPath(once, 5)).Tensors.Flatten(), SafetensorsFile.Read(Checkpoints.ModelPath(run, 5)).Tensors.Flatten());
    }

    [Fact]
    public void BadInputGivesOneLineAndLeavesNothing()
    {
        using var dir = new TempDir();
        string run = dir.File("run");
        CliTestHost.AssertOneLineError(CliTestHost.Run("train", "--out", run), "--task is required", "flip-flop");
        CliTestHost.AssertOneLineError(CliTestHost.Run("train", "--task", "flop", "--out", run), "Unknown task 'flop'");
        CliTestHost.AssertOneLineError(CliTestHost.Run("train", "--task", "sine", "--arch", "grux", "--out", run), "Unknown arch 'grux'");
        CliTestHost.AssertOneLineError(CliTestHost.Run("train", "--task", "sine", "--lr", "-1", "--out", run), "Learning rate must be");
        CliTestHost.AssertOneLineError(CliTestHost.Run("train", "--task", "sine", "--optimizer", "rmsprop", "--out", run), "Unknown optimizer 'rmsprop'");
        CliTestHost.AssertOneLineError(CliTestHost.Run("train", "--task", "sine", "--hidden", "0", "--out", run), "--hidden must be");
        CliTestHost.AssertOneLineError(CliTestHost.Run("train", "--task", "sine", "--option", "alpha", "--out", run), "KEY=VALUE");
        // An option the architecture does not read (a typo, or another cell's setting) is refused, not ignored.
        CliTestHost.AssertOneLineError(CliTestHost.Run(["train", "--task", "sine", "--arch", "leaky-rnn", "--option", "alpah=0.5", "--out", run, .. Tiny]), "alpah", "not used by a leaky-rnn model", "alpha");
        CliTestHost.AssertOneLineError(CliTestHost.Run(["train", "--task", "sine", "--arch", "gru", "--option", "Alpha=0.5", "--out", run, .. Tiny]), "alpha", "not used by a gru model");
        CliTestHost.AssertOneLineError(CliTestHost.Run("train", "--task", "sine"), "--out DIR is required");
        CliTestHost.AssertOneLineError(CliTestHost.Run("train", "--resume", "--out", run), "does not exist");
        Assert.False(Directory.Exists(run));
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));

        // Divergence (Inf/NaN) in a fresh run: one line, and the half-made run folder is removed.
        CliTestHost.AssertOneLineError(CliTestHost.Run(["train", "--task", "integration", "--arch", "rnn-relu", "--gain", "1e200", "--steps", "3", "--out", run, .. Tiny]), "rnn-relu states", "element");
        Assert.False(Directory.Exists(run));

        Assert.Equal(0, CliTestHost.Run(["train", "--task", "sine", "--steps", "1", "--out", run, .. Tiny]).Exit);
        CliTestHost.AssertOneLineError(CliTestHost.Run("train", "--task", "sine", "--out", run), "earlier globalntk training run", "--resume", "--force");
        CliTestHost.AssertOneLineError(CliTestHost.Run("train", "--resume", "--lr", "0.1", "--out", run), "only --steps may change", "--lr");
        string empty = dir.File("empty");
        Directory.CreateDirectory(empty);
        CliTestHost.AssertOneLineError(CliTestHost.Run("train", "--resume", "--out", empty), "no checkpoint");
    }
}
