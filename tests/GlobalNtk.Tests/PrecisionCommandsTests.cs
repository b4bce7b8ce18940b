using System.Text.Json;
using GlobalNtk.Dense;
using GlobalNtk.Estimators;
using GlobalNtk.Models;
using GlobalNtk.Models.Recurrent;
using GlobalNtk.Ntk;
using GlobalNtk.Training;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// <c>--precision</c> on selfcheck and train, and what it runs: the self-check on float32 operators and
/// a training gradient through the float32 operator stack.
/// </summary>
/// <remarks>
/// Tolerances are the self-check rows' own (stated in <see cref="SelfCheck.Float32Tolerance"/> and
/// <see cref="OperatorSelfCheck"/>). The float32 gradient against the float64 one: 1e-5 relative, normwise
/// (issue 12's bound for operator applications: the gradient is C*, P* and J_θ* applied once each in
/// float32 to ∂L/∂y, whose own float32 forward pass moves by ~1e-7 relative).
/// </remarks>
public class PrecisionCommandsTests
{
    [Fact]
    public void Float32SelfCheckRowsPassAndRanFloat32()
    {
        var rows32 = SelfCheck.Run(0, Precision.F32);
        var rows64 = SelfCheck.Run(0);
        Assert.Equal(rows64.Select(r => r.Name), rows32.Select(r => r.Name));
        foreach (var r in rows32)
        {
            Assert.True(r.Passed, $"{r.Name}: {r.Estimate} vs {r.Exact} ± {r.StandardError} (tolerance {r.Tolerance})");
            Assert.Equal(SelfCheck.Float32Tolerance * Math.Abs(r.Exact), r.Tolerance);
        }
        // The float32 operators change the estimates (same probes, float32 images), within the float32 allowance.
        Assert.Contains(rows32.Zip(rows64), p => p.First.Estimate != p.Second.Estimate);
        foreach (var (a, b) in rows32.Zip(rows64))
            Assert.True(Math.Abs(a.Estimate - b.Estimate) <= 1e-4 * Math.Abs(b.Exact), $"{a.Name}: f32 {a.Estimate} vs f64 {b.Estimate}");
    }

    [Theory]
    [InlineData(Precision.F64)]
    [InlineData(Precision.F32)]
    public void OperatorSelfCheckRowsPass(Precision precision)
    {
        var rows = OperatorSelfCheck.Run(0, precision);
        Assert.Equal(10, rows.Count); // 5 checks × 2 models
        foreach (var r in rows)
        {
            Assert.True(double.IsFinite(r.Estimate) && double.IsFinite(r.Exact), r.Name);
            Assert.True(r.Passed, $"{r.Name}: {r.Estimate} vs {r.Exact} (tolerance {r.Tolerance})");
            Assert.Contains(precision.Name(), r.Name);
        }
        // The float32 rows measure float32 rounding: the NTK_S and dz/dθ rows sit above float64's level.
        var ntk = rows.Where(r => r.Name.Contains("NTK_S q vs")).Select(r => r.Estimate).ToArray();
        if (precision == Precision.F32) Assert.All(ntk, d => Assert.InRange(d, 1e-9, 1e-5));
        else Assert.All(ntk, d => Assert.InRange(d, 0, 1e-10));
    }

    [Fact]
    public void SelfCheckCommandTakesPrecision()
    {
        var r = CliTestHost.Run("selfcheck", "--precision", "f32", "--json");
        Assert.True(r.Exit == 0, r.Err);
        using var doc = JsonDocument.Parse(r.Out);
        Assert.Equal("f32", doc.RootElement.GetProperty("precision").GetString());
        var rows = doc.RootElement.GetProperty("rows").EnumerateArray().ToArray();
        Assert.Equal(SelfCheck.Run(0).Count + OperatorSelfCheck.Run(0, Precision.F32).Count, rows.Length);
        Assert.All(rows, row => Assert.True(row.GetProperty("passed").GetBoolean(), row.GetProperty("name").GetString()));
        Assert.Contains(rows, row => row.GetProperty("name").GetString()!.Contains("GRU f32"));

        var text = CliTestHost.Run("selfcheck");
        Assert.Equal(0, text.Exit);
        Assert.Contains("f64", text.Out);
        Assert.DoesNotContain("| NO", text.Out);
    }

    [Fact]
    public void AFailedSelfCheckRowIsOneLineNamingItAndExit70()
    {
        var rows = SelfCheck.Run(0).Take(3).ToList();
        Assert.Null(GlobalNtk.Cli.Commands.SelfCheckCommand.FailureLine(rows));
        // The same rows, one moved outside its allowance: 4 standard errors plus the tolerance, and a little more.
        var bad = rows[1] with { Estimate = rows[1].Exact + 4 * rows[1].StandardError + rows[1].Tolerance + 1e-3 * Math.Abs(rows[1].Exact) + 1e-3 };
        Assert.False(bad.Passed);
        string? line = GlobalNtk.Cli.Commands.SelfCheckCommand.FailureLine([rows[0], bad, rows[2]]);
        Assert.NotNull(line);
        Assert.StartsWith("error: selfcheck: 1 of 3 rows", line);
        Assert.Contains(bad.Name, line);
        Assert.DoesNotContain(rows[0].Name + ";", line);
        Assert.DoesNotContain('\n', line);
        Assert.Equal(70, GlobalNtk.Cli.Common.CliErrors.Internal);
    }

    [Theory]
    [InlineData("selfcheck")]
    [InlineData("train")]
    public void ABadPrecisionIsOneErrorLineAndWritesNothing(string command)
    {
        using var dir = new TempDir();
        string run = dir.File("run");
        var r = command == "train"
            ? CliTestHost.Run("train", "--task", "sine", "--steps", "2", "--precision", "f16", "--out", run, "--quiet")
            : CliTestHost.Run("selfcheck", "--precision", "half");
        CliTestHost.AssertOneLineError(r, "--precision", command == "train" ? "f16" : "half");
        Assert.Equal("", r.Out);
        Assert.False(Directory.Exists(run));
    }

    [Fact]
    public void TrainInFloat32RecordsItAndResumeKeepsIt()
    {
        using var dir = new TempDir();
        string run = dir.File("run");
        string[] tiny = ["--hidden", "6", "--batch", "4", "--trial-steps", "10", "--checkpoint-every", "2", "--lr", "0.01", "--quiet"];
        var r = CliTestHost.Run(["train", "--task", "sine", "--arch", "gru", "--steps", "2", "--precision", "f32", "--out", run, .. tiny]);
        Assert.True(r.Exit == 0, r.Err);
        var last = Checkpoints.List(run)[^1].Path;
        Assert.Equal("f32", Checkpoints.ReadMetadata(last)["precision"]);
        Assert.Equal(Precision.F32, TrainingOptions.FromMetadata(Checkpoints.ReadMetadata(last)).Precision);
        // Resuming keeps the run's precision; giving it again is refused like every other setting.
        CliTestHost.AssertOneLineError(CliTestHost.Run("train", "--resume", "--out", run, "--steps", "4", "--precision", "f32"), "--precision");
        var resumed = CliTestHost.Run("train", "--resume", "--out", run, "--steps", "4", "--quiet");
        Assert.True(resumed.Exit == 0, resumed.Err);
        Assert.Equal("f32", Checkpoints.ReadMetadata(Checkpoints.List(run)[^1].Path)["precision"]);

        // A float64 run writes no precision key (its metadata is what it always was).
        string run64 = dir.File("run64");
        Assert.Equal(0, CliTestHost.Run(["train", "--task", "sine", "--arch", "gru", "--steps", "2", "--out", run64, .. tiny]).Exit);
        Assert.False(Checkpoints.ReadMetadata(Checkpoints.List(run64)[^1].Path).ContainsKey("precision"));
    }

    [Fact]
    public void DemoAndSweepInFloat32TrainInFloat32()
    {
        // --precision f32 on demo and sweep covers their training too: every checkpoint records it.
        using var dir = new TempDir();
        string demo = dir.File("demo"), sweep = dir.File("sweep");
        var d = CliTestHost.Run(["demo", "--out", demo, "--steps", "2", "--hidden", "3", "--checkpoints", "2", "--trial-steps", "6", "--trials", "2",
            "--precision", "f32", .. CliFixture.FastAnalysis]);
        Assert.True(d.Exit == 0, d.Err);
        var demoCheckpoints = Checkpoints.List(Path.Combine(demo, "run"));
        Assert.NotEmpty(demoCheckpoints);
        Assert.All(demoCheckpoints, c => Assert.Equal("f32", Checkpoints.ReadMetadata(c.Path)["precision"]));

        var w = CliTestHost.Run(["sweep", "--task", "flip-flop", "--arch", "gru", "--gains", "0.5,1", "--hidden", "3", "--steps", "2",
            "--trials", "2", "--trial-steps", "6", "--out", sweep, "--precision", "f32", .. CliFixture.FastAnalysis]);
        Assert.True(w.Exit == 0, w.Err);
        var runs = Directory.GetDirectories(sweep, "run-g*");
        Assert.Equal(2, runs.Length);
        foreach (var run in runs)
        {
            var list = Checkpoints.List(run);
            Assert.NotEmpty(list);
            Assert.All(list, c => Assert.Equal("f32", Checkpoints.ReadMetadata(c.Path)["precision"]));
        }
    }

    [Fact]
    public void Float32GradientAgreesWithFloat64()
    {
        var model = RecurrentModel.Create(new RecurrentConfig("gru", 3, 10, 2) { Seed = 4 });
        var x = new Tensor(TestMath.Gaussian(new Random(5), 4 * 6 * 3), model.InputShape(4, 6));
        var y = new Tensor(TestMath.Gaussian(new Random(6), 4 * 6 * 2), model.Readout.OutputShape(model.Linearize(x).StateShape));
        var g64 = new double[model.AllParameters.TotalSize];
        var g32 = new double[g64.Length];
        var (l64, o64) = ModelGradient.Compute(model, x, y, g64);
        var (l32, o32) = ModelGradient.Compute(model, x, y, g32, Precision.F32);
        double rel = TestMath.RelativeError(g32, g64);
        Assert.True(rel <= 1e-5 && rel > 1e-10, $"float32 gradient differs from float64 by {rel:E2}");
        Assert.Equal(l64, l32, 1e-6 * l64);
        Assert.True(TestMath.RelativeError(o32.Span, o64.Span) <= 1e-6);
        Assert.Equal(ModelGradient.Predict(model, x, Precision.F32).Span.ToArray(), o32.Span.ToArray());
    }
}
