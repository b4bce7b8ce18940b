using System.Text.Json;
using GlobalNtk.Analysis;
using GlobalNtk.IO;
using GlobalNtk.Ntk;
using GlobalNtk.Training;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>The CLI commands end to end, in-process, on tiny sizes.</summary>
public class CliCommandTests
{
    [Fact]
    public void ForwardWritesTheStates()
    {
        using var f = new CliFixture();
        var r = CliTestHost.Run("forward", "--model", f.ModelPath, "--inputs", f.X, "--out", f.Dir.File("z.npy"), "--json");
        Assert.Equal(0, r.Exit);
        var z = Npy.Read(f.Dir.File("z.npy"));
        Assert.Equal(new[] { CliFixture.B, CliFixture.T, CliFixture.H }, z.Shape);
        Assert.Equal(f.Model.Linearize(f.Inputs).States.ToArray(), z.Data);
        using var doc = JsonDocument.Parse(r.Out);
        Assert.Equal("forward", doc.RootElement.GetProperty("command").GetString());
    }

    [Theory]
    [InlineData("P")]
    [InlineData("Pstar")]
    [InlineData("Pinv")]
    [InlineData("K")]
    [InlineData("NTK")]
    [InlineData("ntk")]
    public void ApplyMatchesTheLibraryOperator(string op)
    {
        using var f = new CliFixture();
        var r = CliTestHost.Run("apply", "--model", f.ModelPath, "--inputs", f.X, "--operator", op, "--vector", f.Q, "--out", f.Dir.File("a.npy"));
        Assert.Equal(0, r.Exit);
        var ops = new NtkOperators(f.Model.Linearize(f.Inputs));
        var expected = GlobalNtk.Cli.Commands.ApplyCommand.Select(ops, op).Apply(f.Vector.Span);
        Assert.Equal(expected, Npy.Read(f.Dir.File("a.npy")).Data);
    }

    [Fact]
    public void AnalyzeResultsEqualTheLibraryApi()
    {
        using var f = new CliFixture();
        string outDir = f.Dir.File("report");
        var r = CliTestHost.Run(["analyze", "--model", f.ModelPath, "--inputs", f.X, "--targets", f.Y, "--out", outDir, "--seed", "4", .. CliFixture.FastAnalysis]);
        Assert.True(r.Exit == 0, r.Err);
        foreach (var name in new[] { "report.md", "results.json", "ntk_spectrum.png", "effective_ranks.png", "srb.png", "task_learnability.png", "spectra.csv", "srb.csv" })
            Assert.True(File.Exists(Path.Combine(outDir, name)), name);

        var options = new AnalysisOptions { TopK = 3, Probes = 6, PartialBudget = 6, Seed = 4 };
        var api = new NtkAnalyzer(f.Inputs, f.Targets, options).Analyze(f.Model, "m");
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "results.json")));
        var cp = doc.RootElement.GetProperty("checkpoints")[0];
        Assert.Equal(api.NtkRank.Value, cp.GetProperty("ntkRank").GetProperty("value").GetDouble());
        Assert.Equal(api.KRank.Value, cp.GetProperty("kRank").GetProperty("value").GetDouble());
        Assert.Equal(api.NtkSpectrum.Eigenvalues, cp.GetProperty("ntkSpectrum").GetProperty("eigenvalues").EnumerateArray().Select(e => e.GetDouble()));
        Assert.Equal(api.Srb.Index, cp.GetProperty("srb").GetProperty("index").EnumerateArray().Select(e => e.GetDouble()));
        Assert.Equal(api.TaskModes!.Learnability, cp.GetProperty("taskModes").GetProperty("learnability").EnumerateArray().Select(e => e.GetDouble()));
        Assert.Equal(api.Loss!.Value, cp.GetProperty("loss").GetDouble());
        Assert.Equal(api.Kronecker.RankBound, cp.GetProperty("kronecker").GetProperty("rankBound").GetInt64());
        Assert.Empty(f.Extra("report"));
    }

    [Fact]
    public void AnalyzeJsonIsMachineReadable()
    {
        using var f = new CliFixture();
        var r = CliTestHost.Run(["analyze", "--model", f.ModelPath, "--inputs", f.X, "--out", f.Dir.File("rep"), "--json", .. CliFixture.FastAnalysis]);
        Assert.True(r.Exit == 0, r.Err);
        using var doc = JsonDocument.Parse(r.Out);
        var cp = doc.RootElement.GetProperty("report").GetProperty("checkpoints")[0];
        Assert.True(cp.GetProperty("ntkRank").GetProperty("value").GetDouble() >= 1);
        // no targets: the documented default error
        Assert.Equal(NtkAnalyzer.DefaultErrorSource, cp.GetProperty("srb").GetProperty("errorSource").GetString());
    }

    [Fact]
    public void AnalyzeRunFolderCoversEveryCheckpointWithAlignment()
    {
        using var f = new CliFixture();
        string run = f.Dir.File("run");
        var trainer = Trainer.Create("gru", 4, "flip-flop", new TrainingOptions { Steps = 4, BatchSize = 2, CheckpointEvery = 2, Seed = 1, LearningRate = 0.01 },
            taskOptions: new GlobalNtk.Tasks.TaskOptions { Steps = 8, EvaluationTrials = 2 });
        trainer.Run(run);
        var r = CliTestHost.Run(["analyze", "--model", run, "--out", f.Dir.File("rep"), "--json", .. CliFixture.FastAnalysis]);
        Assert.True(r.Exit == 0, r.Err);
        using var doc = JsonDocument.Parse(r.Out);
        var cps = doc.RootElement.GetProperty("report").GetProperty("checkpoints");
        Assert.Equal(new[] { 0, 2, 4 }, cps.EnumerateArray().Select(c => c.GetProperty("step").GetInt32()));
        Assert.False(cps[0].TryGetProperty("alignmentWithPrevious", out _));
        double a = cps[2].GetProperty("alignmentWithPrevious").GetProperty("value").GetDouble();
        Assert.InRange(a, 0.0, 1.0 + 1e-9);
        Assert.True(File.Exists(Path.Combine(f.Dir.File("rep"), "loss.png")));
        Assert.True(File.Exists(Path.Combine(f.Dir.File("rep"), "alignment.png")));
    }

    [Fact]
    public void SweepRunsEveryGain()
    {
        using var f = new CliFixture();
        string outDir = f.Dir.File("sweep");
        var r = CliTestHost.Run(["sweep", "--task", "flip-flop", "--arch", "gru", "--gains", "0.5,1,1.5", "--hidden", "3", "--steps", "2",
            "--trials", "2", "--trial-steps", "6", "--out", outDir, "--json", .. CliFixture.FastAnalysis]);
        Assert.True(r.Exit == 0, r.Err);
        using var doc = JsonDocument.Parse(r.Out);
        Assert.Equal(3, doc.RootElement.GetProperty("summary").GetProperty("points").GetArrayLength());
        foreach (var name in new[] { "sweep.md", "sweep.csv", "results.json", "rank_vs_gain.png", "loss_vs_gain.png", "learned_fraction_vs_gain.png", "loss_vs_rank.png" })
            Assert.True(File.Exists(Path.Combine(outDir, name)), name);
    }

    [Fact]
    public void DemoWritesACompleteReport()
    {
        using var f = new CliFixture();
        string outDir = f.Dir.File("demo");
        var r = CliTestHost.Run(["demo", "--out", outDir, "--steps", "4", "--hidden", "3", "--checkpoints", "2", "--trial-steps", "10", "--trials", "2", .. CliFixture.FastAnalysis]);
        Assert.True(r.Exit == 0, r.Err);
        Assert.Contains(Path.Combine(Path.GetFullPath(outDir), "report.md"), r.Out);
        foreach (var name in new[] { "report.md", "results.json", "loss.png", "ntk_spectrum.png", "factor_spectra.png", "effective_ranks.png", "site_spectra.png",
                                     "mode_capture.png", "srb.png", "task_learnability.png", "learned_fraction.png", "alignment.png", "run/log.csv" })
            Assert.True(File.Exists(Path.Combine(outDir, name)), name);
    }

    [Fact]
    public void DemoAnalysesBesideTrainingGiveTheSameResultsAsAnalyzeAfterwards()
    {
        // The demo analyses each checkpoint while training continues; `analyze` of the finished run
        // folder with the same batch and estimator settings must give exactly the same numbers.
        using var f = new CliFixture();
        string demo = f.Dir.File("demo"), report = f.Dir.File("report");
        string[] settings = ["--trials", "2", "--seed", "4", .. CliFixture.FastAnalysis];
        var r = CliTestHost.Run(["demo", "--out", demo, "--steps", "6", "--hidden", "3", "--checkpoints", "4", "--trial-steps", "8", .. settings]);
        Assert.True(r.Exit == 0, r.Err);
        var a = CliTestHost.Run(["analyze", "--model", Path.Combine(demo, "run"), "--out", report, .. settings]);
        Assert.True(a.Exit == 0, a.Err);
        static string Checkpoints(string dir)
        {
            var node = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "results.json")))!["checkpoints"]!.AsArray();
            foreach (var c in node) c!.AsObject().Remove("stageSeconds");  // wall-clock timings differ from run to run
            return node.ToJsonString();
        }
        string fromDemo = Checkpoints(demo), fromAnalyze = Checkpoints(report);
        Assert.Contains("ckpt-000006", fromDemo);
        Assert.Equal(fromAnalyze, fromDemo);
    }

    [Fact]
    public void EveryCommandHasHelpWithExamples()
    {
        foreach (var cmd in new[] { "demo", "forward", "apply", "analyze", "sweep" })
        {
            var r = CliTestHost.Run(cmd, "--help");
            Assert.Equal(0, r.Exit);
            Assert.Contains("EXAMPLES", r.Out);
            Assert.Contains("--json", r.Out);
            Assert.Contains("--quiet", r.Out);
        }
        var all = CliTestHost.Run("--help");
        foreach (var cmd in new[] { "demo", "forward", "apply", "analyze", "sweep", "version" }) Assert.Contains(cmd, all.Out);
    }
}
