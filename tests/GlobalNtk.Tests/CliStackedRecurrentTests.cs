using System.Text.Json;
using GlobalNtk.Dense;
using GlobalNtk.IO;
using GlobalNtk.Models.Recurrent;
using GlobalNtk.Ntk;
using GlobalNtk.Training;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>Stacked, bias-free recurrent nets through the CLI: train, analyze (per-layer ranks), forward and apply with --time-major.</summary>
public class CliStackedRecurrentTests
{
    [Fact]
    public void TrainAnalyzeForwardApplyOnATwoLayerBiasFreeGru()
    {
        using var dir = new TempDir();
        string run = dir.File("run");
        var r = CliTestHost.Run("train", "--task", "sine", "--arch", "gru", "--hidden", "3", "--layers", "2", "--no-bias", "--steps", "2",
            "--checkpoint-every", "2", "--batch", "2", "--trial-steps", "6", "--seed", "1", "--out", run, "--quiet");
        Assert.True(r.Exit == 0, r.Err);
        var last = Checkpoints.List(run).Last();
        var model = Assert.IsType<RecurrentModel>(ModelFile.Load(last.Path).Model);
        Assert.Equal(2, model.Layers);
        Assert.False(model.Config.Bias);
        Assert.DoesNotContain(model.Parameters, p => p.Name.Contains("bias"));

        // forward with --time-major: [time, trial, input] in, (trial, time, unit) out.
        var rng = new Random(4);
        var x = CliFixture.Random(rng, ("trial", 2), ("time", 4), ("input", 1));
        var xt = new double[x.Length];
        for (int b = 0; b < 2; b++) for (int t = 0; t < 4; t++) xt[t * 2 + b] = x.Span[b * 4 + t];
        Npy.Write(dir.File("xt.npy"), new Tensor(xt, new AxisShape(("time", 4), ("trial", 2), ("input", 1))));
        r = CliTestHost.Run("forward", "--model", last.Path, "--inputs", dir.File("xt.npy"), "--time-major", "--out", dir.File("z.npy"), "--quiet");
        Assert.True(r.Exit == 0, r.Err);
        var z = Npy.Read(dir.File("z.npy"));
        Assert.Equal(new[] { 2, 4, 6 }, z.Shape);
        Assert.Equal(model.Forward(x).Span.ToArray(), z.Data);

        // apply NTK_S equals the library operator.
        var q = CliFixture.Random(rng, ("trial", 2), ("time", 4), ("unit", 6));
        Npy.Write(dir.File("q.npy"), q);
        r = CliTestHost.Run("apply", "--model", last.Path, "--inputs", dir.File("xt.npy"), "--time-major", "--operator", "NTK", "--vector", dir.File("q.npy"), "--out", dir.File("a.npy"), "--quiet");
        Assert.True(r.Exit == 0, r.Err);
        Assert.Equal(new NtkOperators(model.Linearize(x)).NtkS.Apply(q.Span), Npy.Read(dir.File("a.npy")).Data);

        // analyze reports the effective rank of each layer.
        string report = dir.File("report");
        r = CliTestHost.Run(["analyze", "--model", last.Path, "--inputs", dir.File("xt.npy"), "--time-major", "--out", report, .. CliFixture.FastAnalysis]);
        Assert.True(r.Exit == 0, r.Err);
        var csv = File.ReadAllText(Path.Combine(report, "effective_ranks.csv"));
        Assert.Contains(",layer_0,3,", csv);
        Assert.Contains(",layer_1,3,", csv);
        Assert.Contains("per layer (NTK_S on one layer's units): layer 0 ", File.ReadAllText(Path.Combine(report, "report.md")));
    }

    [Fact]
    public void NoBiasIsForRecurrentNetsAndTimeMajorNeedsRankThree()
    {
        using var dir = new TempDir();
        CliTestHost.AssertOneLineError(CliTestHost.Run("train", "--task", "sine", "--arch", "mlp", "--no-bias", "--out", dir.File("r")), "--no-bias applies to recurrent nets");
        using var f = new CliFixture();
        Npy.Write(dir.File("x2.npy"), CliFixture.Random(new Random(1), ("sample", 2), ("input", 3)));
        CliTestHost.AssertOneLineError(CliTestHost.Run("forward", "--model", f.ModelPath, "--inputs", dir.File("x2.npy"), "--time-major", "--out", dir.File("z.npy")),
            "--time-major expects [steps, trials, inputs]");
    }
}
