using GlobalNtk.Dense;
using GlobalNtk.IO;
using GlobalNtk.Models.Recurrent;
using GlobalNtk.Models.Transformer;
using GlobalNtk.Ntk;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary><c>--precision f32|f64</c> on the commands that linearise a model.</summary>
public class CliPrecisionTests
{
    [Theory]
    [InlineData("NTK")]
    [InlineData("P")]
    [InlineData("K")]
    public void ApplyInFloat32EqualsTheLibrarysFloat32Operator(string op)
    {
        using var f = new CliFixture();
        var r = CliTestHost.Run("apply", "--model", f.ModelPath, "--inputs", f.X, "--operator", op, "--vector", f.Q,
            "--precision", "f32", "--out", f.Dir.File("a.npy"));
        Assert.True(r.Exit == 0, r.Err);
        var y = Npy.Read(f.Dir.File("a.npy")).Data;
        var ops32 = new NtkOperators(f.Model.Linearize(f.Inputs, Precision.F32));
        Assert.Equal(GlobalNtk.Cli.Commands.ApplyCommand.Select(ops32, op).Apply(f.Vector.Span), y);
        // …and it is the float32 path: close to, but not bit-equal to, float64 (tolerance: RecurrentFloat32Tests).
        var y64 = GlobalNtk.Cli.Commands.ApplyCommand.Select(new NtkOperators(f.Model.Linearize(f.Inputs)), op).Apply(f.Vector.Span);
        Assert.InRange(TestMath.RelativeError(y, y64), 1e-10, 1e-5);
    }

    [Fact]
    public void ForwardDefaultsToFloat64AndTakesFloat32()
    {
        using var f = new CliFixture();
        Assert.Equal(0, CliTestHost.Run("forward", "--model", f.ModelPath, "--inputs", f.X, "--out", f.Dir.File("z64.npy")).Exit);
        Assert.Equal(0, CliTestHost.Run("forward", "--model", f.ModelPath, "--inputs", f.X, "--precision", "float32", "--out", f.Dir.File("z32.npy")).Exit);
        Assert.Equal(f.Model.Linearize(f.Inputs).States.ToArray(), Npy.Read(f.Dir.File("z64.npy")).Data);
        Assert.Equal(f.Model.Linearize(f.Inputs, Precision.F32).States.ToArray(), Npy.Read(f.Dir.File("z32.npy")).Data);
    }

    [Fact]
    public void AnalyzeRunsInFloat32()
    {
        using var f = new CliFixture();
        string outDir = f.Dir.File("report");
        var r = CliTestHost.Run(["analyze", "--model", f.ModelPath, "--inputs", f.X, "--targets", f.Y, "--out", outDir, "--precision", "f32", .. CliFixture.FastAnalysis]);
        Assert.True(r.Exit == 0, r.Err);
        Assert.Contains("float32 operators", File.ReadAllText(Path.Combine(outDir, "report.md")));
    }

    [Fact]
    public void TheTransformerRunsInFloat32()
    {
        using var d = new TempDir();
        var config = new TransformerConfig(TransformerInput.Linear, Inputs: 2, Model: 4, Heads: 2, Layers: 2, FeedForward: 6, Causal: true);
        var model = TransformerModel.Create(config, outputs: 2, seed: 1);
        ModelFile.Save(d.File("m.safetensors"), model);
        var x = CliFixture.Random(new Random(1), ("sequence", 2), ("token", 3), ("input", 2));
        Npy.Write(d.File("x.npy"), x);
        var lin32 = model.Linearize(x, Precision.F32);
        var q = TestMath.Uniform(new Random(3), lin32.StateShape);
        Npy.Write(d.File("q.npy"), q);
        var r = CliTestHost.Run("apply", "--model", d.File("m.safetensors"), "--inputs", d.File("x.npy"), "--operator", "NTK", "--vector", d.File("q.npy"),
            "--precision", "f32", "--out", d.File("a.npy"));
        Assert.True(r.Exit == 0, r.Err);
        var y = Npy.Read(d.File("a.npy")).Data;
        Assert.Equal(new NtkOperators(lin32).NtkS.Apply(q.Span), y);
        // The float32 path (tolerance: BlockPrecisionTests): close to, not bit-equal to, float64.
        Assert.InRange(TestMath.RelativeError(y, new NtkOperators(model.Linearize(x)).NtkS.Apply(q.Span)), 1e-10, 1e-5);
        var f = CliTestHost.Run("forward", "--model", d.File("m.safetensors"), "--inputs", d.File("x.npy"), "--precision", "f32", "--out", d.File("z.npy"));
        Assert.True(f.Exit == 0, f.Err);
        Assert.Equal(lin32.States.ToArray(), Npy.Read(d.File("z.npy")).Data);
        var a = CliTestHost.Run(["analyze", "--model", d.File("m.safetensors"), "--inputs", d.File("x.npy"), "--out", d.File("rep"), "--precision", "f32", .. CliFixture.FastAnalysis]);
        Assert.True(a.Exit == 0, a.Err);
        Assert.Contains("float32 operators", File.ReadAllText(Path.Combine(d.File("rep"), "report.md")));
    }

    [Fact]
    public void AnUnknownPrecisionIsOneErrorLine()
    {
        using var f = new CliFixture();
        string outPath = f.Dir.File("a.npy");
        var r = CliTestHost.Run("apply", "--model", f.ModelPath, "--inputs", f.X, "--operator", "NTK", "--vector", f.Q, "--precision", "f16", "--out", outPath);
        CliTestHost.AssertOneLineError(r, "--precision", "f16");
        Assert.False(File.Exists(outPath));
    }

    [Fact]
    public void AStackedNetRunsInFloat32()
    {
        // Stacked, bias-free and learnable-h0 nets have a float32 path (StackedRecurrentLinearization;
        // 2 layers × H = 2: the fixture's 4 state units);
        // the refusal of a block without one is tested in RecurrentFloat32Tests.
        using var f = new CliFixture();
        var model = RecurrentModel.Create(new RecurrentConfig("gru", CliFixture.In, 2, CliFixture.O) { Layers = 2, Bias = false, LearnInitialState = true });
        string modelPath = f.Dir.File("stacked.safetensors"), outPath = f.Dir.File("a.npy"), reportDir = f.Dir.File("rep");
        ModelFile.Save(modelPath, model);
        var r = CliTestHost.Run("apply", "--model", modelPath, "--inputs", f.X, "--operator", "NTK", "--vector", f.Q, "--precision", "f32", "--out", outPath);
        Assert.True(r.Exit == 0, r.Err);
        var y = Npy.Read(outPath).Data;
        Assert.Equal(new NtkOperators(model.Linearize(f.Inputs, Precision.F32)).NtkS.Apply(f.Vector.Span), y);
        var y64 = new NtkOperators(model.Linearize(f.Inputs)).NtkS.Apply(f.Vector.Span);
        Assert.InRange(TestMath.RelativeError(y, y64), 1e-10, 1e-5);
        var a = CliTestHost.Run(["analyze", "--model", modelPath, "--inputs", f.X, "--out", reportDir, "--precision", "f32", .. CliFixture.FastAnalysis]);
        Assert.True(a.Exit == 0, a.Err);
        Assert.Contains("float32 operators", File.ReadAllText(Path.Combine(reportDir, "report.md")));
    }
}
