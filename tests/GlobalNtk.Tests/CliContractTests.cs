using GlobalNtk.Cli;
using GlobalNtk.Cli.Common;
using GlobalNtk.Dense;
using GlobalNtk.IO;
using GlobalNtk.Training;
using GlobalNtk.Tasks;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// The CLI's error contract beyond files: option values name the option and the type expected,
/// requests that cannot fit in memory are refused up front with the estimate, and a bug (exit 70)
/// points to a crash log holding the stack trace.
/// </summary>
public class CliContractTests
{
    [Theory]
    [InlineData("--steps", "1e3", "'1e3' is not an integer")]
    [InlineData("--hidden", "abc", "'abc' is not an integer")]
    [InlineData("--lr", "fast", "'fast' is not a number")]
    [InlineData("--steps", "99999999999", "'99999999999' is out of range (an integer from -2147483648 to 2147483647)")]
    public void BadOptionValueNamesTheOptionAndType(string option, string value, string expected)
    {
        using var dir = new TempDir();
        var r = CliTestHost.Run("train", "--task", "sine", option, value, "--out", dir.File("run"));
        CliTestHost.AssertOneLineError(r, $"error: {option}: {expected}.");
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Path));
        // The --option=value form too.
        CliTestHost.AssertOneLineError(CliTestHost.Run("train", "--task", "sine", $"{option}={value}", "--out", dir.File("run")), option, $"'{value}'");
    }

    [Fact]
    public void MissingOptionValueNamesTheOption()
    {
        using var dir = new TempDir();
        CliTestHost.AssertOneLineError(CliTestHost.Run("train", "--task", "sine", "--hidden", "--out", dir.File("run")), "--hidden needs a value (an integer)");
        CliTestHost.AssertOneLineError(CliTestHost.Run("analyze", "--model", dir.File("m"), "--top-k"), "--top-k needs a value (an integer)");
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Path));
    }

    [Fact]
    public void TrainingThatCannotFitIsRefusedWithTheEstimate()
    {
        using var dir = new TempDir();
        // 10⁶ hidden GRU units: 3·10¹² parameters, 24 TB each copy; no machine has that.
        var r = CliTestHost.Run("train", "--task", "sine", "--hidden", "1000000", "--out", dir.File("run"));
        CliTestHost.AssertOneLineError(r, "--hidden 1000000", "needs at least", "parameters", "optimizer state", "of memory is available");
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Path));
        CliTestHost.AssertOneLineError(CliTestHost.Run("sweep", "--task", "sine", "--arch", "gru", "--gains", "1", "--hidden", "1000000", "--out", dir.File("sweep")), "--hidden 1000000", "needs at least");
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Path));
    }

    [Fact]
    public void TrainingEstimateCountsParametersGradientAndAdam()
    {
        var task = TaskRegistry.Create("sine", new TaskOptions());
        var options = new TrainingOptions { BatchSize = 4 };
        const int h = 20_000;
        var est = TrainingMemory.Estimate(new ModelSpec("gru", task.InputSize, h, task.OutputSize), task, options)!;
        // PyTorch GRU: weight_ih [3H, N_in], weight_hh [3H, H], two biases [3H]; readout [O, H] + [O].
        double p = 3.0 * h * (task.InputSize + h + 2) + task.OutputSize * (h + 1.0);
        Assert.Equal(8 * p, est.Parts.Single(x => x.Part == "parameters").Bytes, 1e-9 * 8 * p);
        Assert.Equal(4 * 8 * p + 2 * 8.0 * options.BatchSize * task.Steps * h, est.TotalBytes, 1e-9 * est.TotalBytes);
        var sgd = TrainingMemory.Estimate(new ModelSpec("gru", task.InputSize, h, task.OutputSize), task, options with { Optimizer = "sgd" })!;
        Assert.Equal(est.TotalBytes - 2 * 8 * p, sgd.TotalBytes, 1e-9 * est.TotalBytes);

        var ex = Assert.Throws<MemoryBudgetException>(() => MemoryBudget.Require(est, "training gru", availableBytes: 1L << 30));
        Assert.Contains("training gru needs at least", ex.Message);
        Assert.Contains("1.1 GB of memory is available", ex.Message);
        MemoryBudget.Require(est, "training gru", availableBytes: long.MaxValue); // fits: no exception
    }

    [Fact]
    public void ParameterCountIsExactForEveryArchitecture()
    {
        // Extrapolated from three small probe models to a width none of them has.
        const int width = 240;
        foreach (var arch in ModelRegistry.Architectures)
        {
            var spec = new ModelSpec(arch, 3, width, 2);
            double? predicted = ModelSize.ParameterCount(spec);
            Assert.NotNull(predicted);
            Assert.Equal(ModelRegistry.Create(spec).AllParameters.TotalSize, predicted!.Value, 1e-6);
        }
    }

    [Fact]
    public void MemoryRefusalStartsWithWhatIsAtFault()
    {
        // What forward/apply/analyze check before linearising: 2³⁰ rows of 2¹⁰ states.
        var est = new MemoryEstimate().AddDoubles("states and linearisation", 2.0 * (1L << 40));
        var ex = Assert.Throws<CliInputException>(() => CliInputs.RequireMemory(est, "--inputs 'x.npy' [trial 1024, time 1048576, input 3]"));
        Assert.StartsWith("--inputs 'x.npy' [trial 1024, time 1048576, input 3] needs at least 17.6 TB (states and linearisation 17.6 TB) but ", ex.Message);
        CliInputs.RequireMemory(new MemoryEstimate().AddDoubles("states", 1000), "--inputs 'small.npy'"); // fits
    }

    [Fact]
    public void BugWritesOneLinePointingToACrashLog()
    {
        using var logs = new TempDir();
        string dir = Path.Combine(logs.Path, "nested", "logs"); // created on demand
        var err = new StringWriter();
        var io = new CliIO(new StringWriter(), err) { LogDirectory = dir };
        Exception bug;
        try { ThrowABug(); throw new UnreachableException(); }
        catch (InvalidOperationException ex) { bug = ex; }

        int code = CliErrors.Report(bug, ["analyze", "--model", "m.safetensors"], io);
        Assert.Equal(CliErrors.Internal, code);
        var lines = err.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("internal error (InvalidOperationException): state went bad.", lines[0]);
        var logFile = Assert.Single(Directory.GetFiles(dir));
        Assert.EndsWith(logFile, lines[0]);
        string log = File.ReadAllText(logFile);
        Assert.Contains(nameof(ThrowABug), log);                      // the stack trace
        Assert.Contains("globalntk analyze --model m.safetensors", log); // the command line

        // A second bug gets its own file; the first is untouched.
        CliErrors.Report(bug, [], io);
        Assert.Equal(2, Directory.GetFiles(dir).Length);
        Assert.Equal(log, File.ReadAllText(logFile));
    }

    [Fact]
    public void BugWithAnUnwritableLogFolderStillGivesOneLine()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp.File("logs"), "a user's file, not a folder");
        var err = new StringWriter();
        int code = CliErrors.Report(new NullReferenceException("oops"), [], new CliIO(new StringWriter(), err) { LogDirectory = tmp.File("logs") });
        Assert.Equal(CliErrors.Internal, code);
        var line = Assert.Single(err.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("no crash log", line);
        Assert.Equal("a user's file, not a folder", File.ReadAllText(tmp.File("logs")));
    }

    [Fact]
    public void DefaultLogFolderIsTheUserCache()
    {
        // Read only (no environment change): the documented default, unless overridden.
        string dir = CliIO.DefaultLogDirectory();
        if (Environment.GetEnvironmentVariable(CliIO.LogDirectoryVariable) is { Length: > 0 } set) Assert.Equal(set, dir);
        else Assert.True(dir.EndsWith(Path.Combine("globalntk", "logs")) || dir.EndsWith("globalntk-logs"), dir); // no home folder: the temp folder
    }

    private static void ThrowABug() => throw new InvalidOperationException("state went bad.");

    private sealed class UnreachableException : Exception;
}

/// <summary>Scoped settings: an override is seen inside its scope (and its parallel work) only.</summary>
public class ScopedSettingTests
{
    [Fact]
    public void OverrideIsScopedToTheCallAndFlowsIntoParallelWork()
    {
        var setting = new ScopedSetting<long>(100);
        var seenElsewhere = new List<long>();
        using var inside = new ManualResetEventSlim();
        using var checkedOutside = new ManualResetEventSlim();
        var other = new Thread(() =>
        {
            inside.Wait();
            lock (seenElsewhere) seenElsewhere.Add(setting.Value);
            checkedOutside.Set();
        });
        other.Start();
        using (setting.Override(7))
        {
            Assert.Equal(7, setting.Value);
            var seenInParallel = new long[8];
            Parallel.For(0, 8, i => seenInParallel[i] = setting.Value);
            Assert.All(seenInParallel, v => Assert.Equal(7, v));
            using (setting.Override(3)) Assert.Equal(3, setting.Value);
            Assert.Equal(7, setting.Value);
            inside.Set();
            Assert.True(checkedOutside.Wait(TimeSpan.FromSeconds(30)));
        }
        other.Join();
        Assert.Equal([100L], seenElsewhere);   // a concurrent test never saw the override
        Assert.Equal(100, setting.Value);
        Assert.Equal(100, setting.Default);
    }
}
