using GlobalNtk.Dense;
using GlobalNtk.IO;
using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Transformer;
using GlobalNtk.Tasks;
using GlobalNtk.Training;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>train / checkpoint / load for the depth chains (arch <c>mlp</c> and <c>transformer</c>).</summary>
public class TransformerTrainingTests
{
    private static readonly Dictionary<string, string> SmallTransformer = new() { ["layers"] = "2", ["heads"] = "2", ["dim_feedforward"] = "16" };

    [Fact]
    public void TrainedTransformerCheckpointUsesPyTorchNamesAndReloads()
    {
        using var dir = new TempDir();
        var trainer = Trainer.Create("transformer", 8, "n-back",
            new TrainingOptions { Steps = 4, BatchSize = 4, CheckpointEvery = 4, Seed = 1, LearningRate = 3e-3 },
            taskOptions: new TaskOptions { Steps = 6, EvaluationTrials = 4 }, modelOptions: SmallTransformer);
        var result = trainer.Run(dir.Path);
        var file = SafetensorsFile.Read(result.LastCheckpoint!);
        var names = file.Tensors.Select(t => t.Name).ToArray();
        var expected = new List<string> { "input_proj.weight", "input_proj.bias" };
        for (int l = 0; l < 2; l++)
            foreach (var leaf in new[] { "self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight", "self_attn.out_proj.bias",
                                         "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias", "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias" })
                expected.Add($"layers.{l}.{leaf}");
        expected.AddRange(["readout.weight", "readout.bias"]);
        Assert.Equal(expected, names);
        Assert.Equal([24, 8], file.Tensors["layers.1.self_attn.in_proj_weight"].Shape);
        Assert.Equal([16, 8], file.Tensors["layers.0.linear1.weight"].Shape);
        Assert.Equal("transformer", file.Metadata["arch"]);
        Assert.Equal("2", file.Metadata["heads"]);
        Assert.Equal("true", file.Metadata["causal"]);

        var loaded = ModelFile.Load(result.LastCheckpoint!);
        Assert.True(loaded.HasReadout);
        var t = (TransformerModel)loaded.Model;
        Assert.Equal(((TransformerModel)trainer.Model).Config, t.Config);
        var x = trainer.Task.EvaluationSet.Inputs;
        Assert.Equal(ModelGradient.Predict(trainer.Model, x).Span.ToArray(), ModelGradient.Predict(t, x).Span.ToArray());
    }

    [Fact]
    public void TrainingReducesTheLossForBothDepthModels()
    {
        var tr = Trainer.Create("transformer", 16, "n-back",
            new TrainingOptions { Steps = 40, BatchSize = 8, CheckpointEvery = 1000, Seed = 2, LearningRate = 1e-2 },
            taskOptions: new TaskOptions { Steps = 8, EvaluationTrials = 8 }, modelOptions: SmallTransformer).Run();
        Assert.True(tr.EvalLoss < 0.8 * tr.InitialEvalLoss, $"transformer n-back: eval loss {tr.InitialEvalLoss} → {tr.EvalLoss}");
        var mlp = Trainer.Create("mlp", 16, "regression",
            new TrainingOptions { Steps = 60, BatchSize = 16, CheckpointEvery = 1000, Seed = 2, LearningRate = 1e-2 },
            taskOptions: new TaskOptions { EvaluationTrials = 64 }, modelOptions: new Dictionary<string, string> { ["layers"] = "2" }).Run();
        Assert.True(mlp.EvalLoss < 0.5 * mlp.InitialEvalLoss, $"MLP regression: eval loss {mlp.InitialEvalLoss} → {mlp.EvalLoss}");
    }

    [Fact]
    public void MlpSavesAndLoadsWithItsActivation()
    {
        using var dir = new TempDir();
        var model = MlpModel.Create(4, 6, 3, 2, Activation.Gelu, 5);
        ModelFile.Save(dir.File("m.safetensors"), model);
        var loaded = ModelFile.Load(dir.File("m.safetensors"));
        var m = Assert.IsType<MlpModel>(loaded.Model);
        Assert.Equal((4, 6, 3, Activation.Gelu), (m.Inputs, m.Hidden, m.Layers, m.Activation));
        var x = new Tensor(new double[] { 0.1, -0.2, 0.3, 0.4, 0.5, 0.6, -0.7, 0.8 }, new AxisShape(("sample", 2), ("input", 4)));
        Assert.Equal(ModelGradient.Predict(model, x).Span.ToArray(), ModelGradient.Predict(m, x).Span.ToArray());
    }

    [Fact]
    public void PyTorchStyleTransformerFileLoadsUnderAPrefixAndBadFilesAreNamed()
    {
        using var dir = new TempDir();
        var config = new TransformerConfig(TransformerInput.Linear, 3, 4, 2, 1, 6, Activation.Relu, Causal: false);
        var model = TransformerModel.Create(config, 2, 3);
        // As torch.save(state_dict) of a module holding `encoder = nn.TransformerEncoder(...)`, no readout, no arch metadata.
        var prefixed = model.Parameters.Select(p => new Parameter(p.Name.StartsWith("layers.") ? "encoder." + p.Name : p.Name, p.Shape, p.Data));
        // Only heads in the metadata: the settings that change the mathematics are named, never defaulted.
        new SafetensorsFile(prefixed, new Dictionary<string, string> { ["heads"] = "2" }).Write(dir.File("heads-only.safetensors"));
        var missing = Assert.Throws<DataFileException>(() => ModelFile.Load(dir.File("heads-only.safetensors"), "transformer"));
        foreach (var key in new[] { "activation", "causal", "norm_first", "layer_norm_eps", "positional", "scale_embedding" }) Assert.Contains(key, missing.Message);
        var settings = new Dictionary<string, string>
        {
            ["heads"] = "2", ["activation"] = "relu", ["causal"] = "false", ["norm_first"] = "true", ["layer_norm_eps"] = "1e-5",
            ["positional"] = "sinusoidal", ["scale_embedding"] = "false",
        };
        new SafetensorsFile(prefixed, settings).Write(dir.File("pt.safetensors"));
        var loaded = ModelFile.Load(dir.File("pt.safetensors"), "transformer");
        Assert.False(loaded.HasReadout);
        Assert.Equal(config, ((TransformerModel)loaded.Model).Config);
        var x = new Tensor(new double[2 * 5 * 3].Select((_, i) => Math.Sin(i)).ToArray(), new AxisShape(("sequence", 2), ("token", 5), ("input", 3)));
        Assert.Equal(model.Linearize(x).States.ToArray(), loaded.Model.Linearize(x).States.ToArray());

        new SafetensorsFile(prefixed, new Dictionary<string, string>()).Write(dir.File("noheads.safetensors"));
        var e = Assert.Throws<DataFileException>(() => ModelFile.Load(dir.File("noheads.safetensors"), "transformer"));
        Assert.Contains("heads", e.Message);
        var bad = model.Parameters.Select(p => p.Name == "layers.0.linear2.weight" ? new Parameter(p.Name, [4, 5]) : p);
        new SafetensorsFile(bad, settings).Write(dir.File("bad.safetensors"));
        e = Assert.Throws<DataFileException>(() => ModelFile.Load(dir.File("bad.safetensors"), "transformer"));
        Assert.Contains("layers.0.linear2.weight", e.Message);
    }
}
