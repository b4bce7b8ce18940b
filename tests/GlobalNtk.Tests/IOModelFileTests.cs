using System.Text;
using GlobalNtk.Dense;
using GlobalNtk.IO;
using GlobalNtk.Models;
using GlobalNtk.Models.Recurrent;
using Xunit;

namespace GlobalNtk.Tests;

public class IOModelFileTests
{
    /// <summary>An F32 safetensors file as PyTorch writes it, from (name, shape, values) in this order.</summary>
    internal static byte[] PyTorchFile(IReadOnlyDictionary<string, string>? metadata, params (string Name, int[] Shape, double[] Values)[] tensors)
    {
        var json = new StringBuilder("{");
        if (metadata != null)
            json.Append("\"__metadata__\":{").Append(string.Join(",", metadata.Select(kv => $"\"{kv.Key}\":\"{kv.Value}\""))).Append("},");
        long off = 0;
        var data = new List<float>();
        foreach (var (name, shape, values) in tensors)
        {
            json.Append($"\"{name}\":{{\"dtype\":\"F32\",\"shape\":[{string.Join(",", shape)}],\"data_offsets\":[{off},{off + 4 * values.Length}]}},");
            off += 4 * values.Length;
            data.AddRange(values.Select(v => (float)v));
        }
        json.Length--; json.Append('}');
        return IOSafetensorsTests.HandBuiltF32(json.ToString(), data.ToArray());
    }

    private static double[] Rand(Random rng, int n) => Enumerable.Range(0, n).Select(_ => (double)(float)(rng.NextDouble() - 0.5)).ToArray();

    private static Tensor Inputs(int trials, int steps, int nIn, int seed)
    {
        var rng = new Random(seed);
        return new Tensor(Rand(rng, trials * steps * nIn), new AxisShape(("trial", trials), ("time", steps), ("input", nIn)));
    }

    [Theory]
    [InlineData("rnn-tanh")]
    [InlineData("rnn-relu")]
    [InlineData("gru")]
    [InlineData("lstm")]
    [InlineData("leaky-rnn")]
    public void SavedAndReloadedModelGivesIdenticalStates(string arch)
    {
        using var dir = new TempDir();
        var model = (RecurrentModel)ModelRegistry.Create(new ModelSpec(arch, 2, 5, 3) { Seed = 4, Gain = 1.3, Options = arch == "leaky-rnn" ? new Dictionary<string, string> { ["alpha"] = "0.25" } : new Dictionary<string, string>() });
        string path = dir.File("m.safetensors");
        ModelFile.Save(path, model, new Dictionary<string, string> { ["step"] = "7", ["arch"] = "ignored" });
        var loaded = ModelFile.Load(path);
        Assert.True(loaded.HasReadout);
        Assert.Equal("7", loaded.Metadata["step"]);
        Assert.Equal(arch, loaded.Metadata["arch"]);
        var back = Assert.IsType<RecurrentModel>(loaded.Model);
        Assert.Equal(model.Config, back.Config);
        Assert.Equal(model.AllParameters.Select(p => p.Name), back.AllParameters.Select(p => p.Name));
        Assert.Equal(model.AllParameters.Flatten(), back.AllParameters.Flatten());
        var x = Inputs(3, 6, 2, 1);
        Assert.Equal(model.Forward(x).Span.ToArray(), back.Forward(x).Span.ToArray());
        Assert.Equal(model.Predict(x).Span.ToArray(), back.Predict(x).Span.ToArray());
    }

    [Fact]
    public void ReadsPyTorchStateDictWithPrefixesAndF32()
    {
        using var dir = new TempDir();
        var rng = new Random(3);
        int h = 4, nIn = 3, o = 2;
        var wih = Rand(rng, 3 * h * nIn); var whh = Rand(rng, 3 * h * h); var bih = Rand(rng, 3 * h); var bhh = Rand(rng, 3 * h);
        var wo = Rand(rng, o * h); var bo = Rand(rng, o);
        string path = dir.File("torch.safetensors");
        File.WriteAllBytes(path, PyTorchFile(new Dictionary<string, string> { ["format"] = "pt", ["arch"] = "gru" },
            ("model.readout.bias", [o], bo), ("model.gru.weight_ih_l0", [3 * h, nIn], wih), ("model.gru.weight_hh_l0", [3 * h, h], whh),
            ("model.gru.bias_ih_l0", [3 * h], bih), ("model.gru.bias_hh_l0", [3 * h], bhh), ("model.readout.weight", [o, h], wo)));
        var loaded = ModelFile.Load(path);
        var expected = RecurrentModel.FromParameters(new RecurrentConfig("gru", nIn, h, o), [
            new Parameter("rnn.weight_ih_l0", [3 * h, nIn], wih), new Parameter("rnn.weight_hh_l0", [3 * h, h], whh),
            new Parameter("rnn.bias_ih_l0", [3 * h], bih), new Parameter("rnn.bias_hh_l0", [3 * h], bhh),
            new Parameter("readout.weight", [o, h], wo), new Parameter("readout.bias", [o], bo)]);
        var x = Inputs(2, 5, nIn, 2);
        var m = Assert.IsType<RecurrentModel>(loaded.Model);
        Assert.Equal(expected.Predict(x).Span.ToArray(), m.Predict(x).Span.ToArray());
        Assert.Equal("rnn.weight_ih_l0", m.Parameters[0].Name);

        // The same one-gate file without metadata needs the arch explicitly; without a readout it still loads.
        string bare = dir.File("bare.safetensors");
        File.WriteAllBytes(bare, PyTorchFile(null, ("rnn.weight_ih_l0", [h, nIn], wih[..(h * nIn)]), ("rnn.weight_hh_l0", [h, h], whh[..(h * h)]),
            ("rnn.bias_ih_l0", [h], bih[..h]), ("rnn.bias_hh_l0", [h], bhh[..h])));
        var ex = Assert.Throws<DataFileException>(() => ModelFile.Load(bare));
        Assert.Equal($"{bare}: 'rnn.weight_hh_l0' [4, 4] has one gate, which nn.RNN (tanh or relu) and the leaky RNN share; give --arch (valid: rnn-tanh, rnn-relu, leaky-rnn).", ex.Message);
        var noReadout = ModelFile.Load(bare, arch: "rnn-tanh");
        Assert.False(noReadout.HasReadout);
        Assert.Equal(new[] { 1, h }, noReadout.Model.Readout.Weight.Shape);
    }

    public static TheoryData<string, string> BadModels() => new()
    {
        { "missing", "missing tensor 'rnn.bias_hh_l0' ([12] for gru: 3 gates × hidden 4); the file has: " },
        { "hh-shape", "tensor 'rnn.weight_hh_l0' has shape [12, 5], expected [15, 5] (gru: 3 gates × hidden 5)" },
        { "ih-shape", "tensor 'rnn.weight_ih_l0' has shape [8, 3], expected [12, N_in] (gru: 3 gates × hidden 4, layer 0)" },
        { "bias-shape", "tensor 'rnn.bias_ih_l0' has shape [4], expected [12] (gru: 3 gates × hidden 4, layer 0)" },
        { "readout-shape", "readout 'head.weight' has shape [2, 3], expected [O, 4] (output × hidden 4)" },
        { "readout-bias", "readout 'head.bias' has shape [3], expected [2] (rows of 'head.weight' [2, 4])" },
        { "lone-bias", "readout bias 'head.bias' [2] has no matching weight 'head.weight'" },
        { "half-layer", "unexpected tensor for a gru model (1 layer, hidden 4, input 3, with bias): rnn.weight_ih_l1 [12, 4]" },
        { "layer-shape", "tensor 'rnn.weight_ih_l1' has shape [12, 3], expected [12, 4] (gru: 3 gates × hidden 4, layer 1)" },
        { "h0-shape", "initial state 'h0' has shape [2, 4], expected [1, 4] or [4] (layers × hidden)" },
        { "one-gate", "'rnn.weight_hh_l0' [4, 4] has one gate, which nn.RNN (tanh or relu) and the leaky RNN share; give --arch (valid: rnn-tanh, rnn-relu, leaky-rnn)" },
        { "extra", "unexpected tensor for a gru model (1 layer, hidden 4, input 3, with bias): embedding [10]" },
        { "unknown-arch", "metadata Unknown arch 'transformerz' (valid: gru, leaky-rnn, lstm, mlp, rnn-relu, rnn-tanh, transformer)" },
        { "nan", "tensor 'rnn.weight_hh_l0' [12, 4]: element 5 of 48 is NaN" },
        { "bad-meta", "Recurrent model metadata: 'gain' = 'big' is not a number" },
    };

    [Theory]
    [MemberData(nameof(BadModels))]
    public void BadModelFilesNameFileTensorAndShapes(string label, string expected)
    {
        using var dir = new TempDir();
        int h = 4, nIn = 3;
        var ts = new List<(string, int[], double[])>
        {
            ("rnn.weight_ih_l0", [3 * h, nIn], new double[3 * h * nIn]),
            ("rnn.weight_hh_l0", [3 * h, h], new double[3 * h * h]),
            ("rnn.bias_ih_l0", [3 * h], new double[3 * h]),
            ("rnn.bias_hh_l0", [3 * h], new double[3 * h]),
            ("head.weight", [2, h], new double[2 * h]),
            ("head.bias", [2], new double[2]),
        };
        var md = new Dictionary<string, string> { ["arch"] = "gru" };
        switch (label)
        {
            case "missing": ts.RemoveAt(3); break;
            case "hh-shape": ts[1] = ("rnn.weight_hh_l0", [12, 5], new double[60]); break;
            case "ih-shape": ts[0] = ("rnn.weight_ih_l0", [8, 3], new double[24]); break;
            case "bias-shape": ts[2] = ("rnn.bias_ih_l0", [4], new double[4]); break;
            case "readout-shape": ts[4] = ("head.weight", [2, 3], new double[6]); break;
            case "readout-bias": ts[5] = ("head.bias", [3], new double[3]); break;
            case "lone-bias": ts.RemoveAt(4); break;
            case "half-layer": ts.Add(("rnn.weight_ih_l1", [3 * h, h], new double[3 * h * h])); break;
            case "layer-shape":
                ts.Add(("rnn.weight_ih_l1", [3 * h, nIn], new double[3 * h * nIn])); ts.Add(("rnn.weight_hh_l1", [3 * h, h], new double[3 * h * h]));
                ts.Add(("rnn.bias_ih_l1", [3 * h], new double[3 * h])); ts.Add(("rnn.bias_hh_l1", [3 * h], new double[3 * h]));
                break;
            case "h0-shape": ts.Add(("h0", [2, h], new double[2 * h])); break;
            case "one-gate":
                md.Remove("arch");
                ts[0] = ("rnn.weight_ih_l0", [h, nIn], new double[h * nIn]); ts[1] = ("rnn.weight_hh_l0", [h, h], new double[h * h]);
                ts[2] = ("rnn.bias_ih_l0", [h], new double[h]); ts[3] = ("rnn.bias_hh_l0", [h], new double[h]);
                break;
            case "extra": ts.Add(("embedding", [10], new double[10])); break;
            case "unknown-arch": md["arch"] = "transformerz"; break;
            case "nan": ts[1].Item3[5] = double.NaN; break;
            case "bad-meta": md["gain"] = "big"; break;
        }
        string path = dir.File(label + ".safetensors");
        File.WriteAllBytes(path, PyTorchFile(md, ts.ToArray()));
        var ex = Assert.Throws<DataFileException>(() => ModelFile.Load(path));
        Assert.StartsWith(path + ": ", ex.Message);
        Assert.Contains(expected, ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public void UnknownArchOverrideListsValidOnes()
    {
        var ex = Assert.Throws<ArgumentException>(() => ModelRegistry.Get("tranformer"));
        Assert.StartsWith("Unknown arch 'tranformer' (valid: ", ex.Message);
    }
}

public class IODepthModelFileTests
{
    [Theory]
    [InlineData("mlp", "regression")]
    [InlineData("transformer", "n-back")]
    public void DepthModelsSaveReloadAndTrainThroughTheRegistry(string arch, string task)
    {
        using var dir = new TempDir();
        string run = dir.File("run");
        var opts = arch == "transformer" ? new Dictionary<string, string> { ["layers"] = "2", ["heads"] = "2", ["causal"] = "true" }
            : new Dictionary<string, string> { ["layers"] = "2" };
        var trainer = GlobalNtk.Training.Trainer.Create(arch, 8, task,
            new GlobalNtk.Training.TrainingOptions { Steps = 2, BatchSize = 3, LearningRate = 0.01, CheckpointEvery = 0, Seed = 3 },
            taskOptions: new GlobalNtk.Tasks.TaskOptions { Steps = task == "n-back" ? 6 : null, EvaluationTrials = 4 }, modelOptions: opts);
        var r = trainer.Run(run);
        var loaded = ModelFile.Load(r.LastCheckpoint!);
        Assert.True(loaded.HasReadout);
        Assert.Equal(arch, loaded.Model.Arch);
        Assert.Equal(trainer.Model.AllParameters.Select(p => p.Name), loaded.Model.AllParameters.Select(p => p.Name));
        Assert.Equal(trainer.Model.AllParameters.Flatten(), loaded.Model.AllParameters.Flatten());
        var x = trainer.Task.EvaluationSet.Inputs;
        Assert.Equal(GlobalNtk.Training.ModelGradient.Predict(trainer.Model, x).Span.ToArray(), GlobalNtk.Training.ModelGradient.Predict(loaded.Model, x).Span.ToArray());
        if (arch == "transformer")
        {
            var names = SafetensorsFile.Read(r.LastCheckpoint!).Tensors.Select(t => t.Name).ToList();
            Assert.Contains("layers.1.self_attn.in_proj_weight", names);
            Assert.Contains("layers.0.linear2.bias", names);
            Assert.Contains("readout.weight", names);
            Assert.Equal("true", loaded.Metadata["causal"]);
        }
    }

    [Fact]
    public void TransformerFileWithoutHeadsIsNamed()
    {
        using var dir = new TempDir();
        var model = ModelRegistry.Create(new ModelSpec("transformer", 3, 4, 2) { Options = new Dictionary<string, string> { ["heads"] = "2", ["layers"] = "1" } });
        var file = new SafetensorsFile(model.AllParameters, new Dictionary<string, string> { ["arch"] = "transformer" });
        string path = dir.File("t.safetensors");
        file.Write(path);
        var ex = Assert.Throws<DataFileException>(() => ModelFile.Load(path));
        Assert.StartsWith($"{path}: missing settings for a transformer (d 4, 1 layers): heads (number of attention heads, dividing d), activation", ex.Message);
    }
}
