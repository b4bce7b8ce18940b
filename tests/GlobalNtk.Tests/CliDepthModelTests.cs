using System.Text.Json;
using GlobalNtk.IO;
using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Transformer;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>`analyze` and its report work for MLP and transformer model files too (issue 5).</summary>
public class CliDepthModelTests
{
    private static JsonElement Analyze(TempDir d, string[] extra)
    {
        var r = CliTestHost.Run(["analyze", "--model", d.File("m.safetensors"), "--inputs", d.File("x.npy"), .. extra, "--out", d.File("rep"), "--json", .. CliFixture.FastAnalysis]);
        Assert.True(r.Exit == 0, r.Err);
        Assert.True(File.Exists(Path.Combine(d.File("rep"), "report.md")));
        return JsonDocument.Parse(r.Out).RootElement.GetProperty("report").GetProperty("checkpoints")[0].Clone();
    }

    [Fact]
    public void AnalyzeMlpFile()
    {
        using var d = new TempDir();
        ModelFile.Save(d.File("m.safetensors"), MlpModel.Create(inputs: 2, hidden: 4, layers: 3, outputs: 1, Activation.Tanh, seed: 1));
        Npy.Write(d.File("x.npy"), CliFixture.Random(new Random(1), ("sample", 5), ("input", 2)));
        Npy.Write(d.File("y.npy"), CliFixture.Random(new Random(2), ("sample", 5), ("output", 1)));
        var cp = Analyze(d, ["--targets", d.File("y.npy")]);
        var axes = cp.GetProperty("ntkRank").GetProperty("partial").EnumerateArray().Select(p => p.GetProperty("axis").GetString()).ToArray();
        Assert.Contains("layer", axes);
        Assert.Equal(1, cp.GetProperty("taskModes").GetProperty("learnability").GetArrayLength());
    }

    [Fact]
    public void AnalyzeTransformerFile()
    {
        using var d = new TempDir();
        var config = new TransformerConfig(TransformerInput.Linear, Inputs: 2, Model: 4, Heads: 2, Layers: 2, FeedForward: 6, Causal: true);
        ModelFile.Save(d.File("m.safetensors"), TransformerModel.Create(config, outputs: 2, seed: 1));
        Npy.Write(d.File("x.npy"), CliFixture.Random(new Random(1), ("sequence", 2), ("token", 3), ("input", 2)));
        var cp = Analyze(d, []);
        var axes = cp.GetProperty("ntkRank").GetProperty("partial").EnumerateArray().Select(p => p.GetProperty("axis").GetString()).ToArray();
        Assert.Equal(new[] { "sequence", "layer", "token", "feature" }, axes);
    }
}
