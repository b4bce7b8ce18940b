using System.Reflection;
using GlobalNtk.Dense;
using GlobalNtk.IO;
using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Recurrent;
using GlobalNtk.Models.Transformer;
using GlobalNtk.Ntk;
using GlobalNtk.Tasks;
using GlobalNtk.Training;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// Parameters are immutable values: an optimizer step returns new values, a model with new values
/// is a new model, so a parameter set, a model, a linearisation or a loaded checkpoint taken before
/// training is bit-identical after it.
/// </summary>
public class LinearizationSnapshotTests
{
    public static TheoryData<string> Families => new() { "gru", "lstm", "mlp", "transformer" };

    [Theory]
    [InlineData("sgd")]
    [InlineData("adam")]
    public void AnOptimizerStepLeavesTheOldParameterSetBitIdentical(string optimizer)
    {
        var (model, x, y) = Build("gru");
        var before = model.AllParameters;
        var bits = Bits(before);
        var grad = new double[before.TotalSize];
        ModelGradient.Compute(model, x, y, grad);
        var opt = Optimizer.Create(optimizer, 0.05);
        var after = opt.Step(before, grad);
        var again = opt.Step(after, grad);
        Assert.Equal(bits, Bits(before));
        Assert.NotSame(before, after);
        Assert.Equal(before.Select(p => (p.Name, p.ShapeText)), after.Select(p => (p.Name, p.ShapeText)));
        Assert.NotEqual(bits, Bits(after));
        Assert.NotEqual(Bits(after), Bits(again));
        // The step is θ − η g for SGD, exactly (the same arithmetic as an in-place update).
        if (optimizer == "sgd")
        {
            var theta = before.Flatten();
            Assert.Equal(theta.Select((t, i) => t + grad[i] * -0.05), after.Flatten());
        }
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void TrainingAfterLinearisingLeavesModelAndLinearisationUnchanged(string family)
    {
        var (model, x, y) = Build(family);
        var lin = model.Linearize(x);
        var theta0 = lin.Parameters.Flatten();
        var modelBits = Bits(model.AllParameters);
        var ops = new NtkOperators(lin);
        var rng = new Random(7);
        var e = Enumerable.Range(0, lin.StateShape.Size).Select(_ => rng.NextDouble() - 0.5).ToArray();
        var dTheta = Enumerable.Range(0, lin.Parameters.TotalSize).Select(_ => rng.NextDouble() - 0.5).ToArray();
        var ntk0 = ops.NtkS.Apply(e);
        var k0 = ops.K.Apply(e);
        var jt0 = ops.Jtheta.Apply(dTheta);
        var sites0 = lin.Sites.Select(s => s.Variables.ToArray()).ToArray();
        var y0 = ModelGradient.Predict(model, x).Span.ToArray();

        // Ten Adam steps, each a new model, move every tensor by ~lr.
        var trained = model;
        var grad = new double[model.AllParameters.TotalSize];
        var opt = new Adam(0.05);
        for (int i = 0; i < 10; i++)
        {
            ModelGradient.Compute(trained, x, y, grad);
            trained = trained.WithParameters(opt.Step(trained.AllParameters, grad));
        }
        Assert.True(Numerics.Norm(Diff(trained.Parameters.Flatten(), theta0)) > 1e-2, "training did not move θ");

        // The model trained from, and its linearisation, are exactly what they were.
        Assert.Equal(modelBits, Bits(model.AllParameters));
        Assert.Equal(y0, ModelGradient.Predict(model, x).Span.ToArray());
        Assert.Equal(theta0, lin.Parameters.Flatten());
        Assert.Equal(ntk0, ops.NtkS.Apply(e));
        Assert.Equal(k0, ops.K.Apply(e));
        Assert.Equal(jt0, ops.Jtheta.Apply(dTheta));
        for (int s = 0; s < sites0.Length; s++) Assert.Equal(sites0[s], lin.Sites[s].Variables.ToArray());
        // The trained model's linearisation does differ: the test would see an alias.
        Assert.NotEqual(ntk0, new NtkOperators(trained.Linearize(x)).NtkS.Apply(e));
        Assert.Equal(model.Arch, trained.Arch);
        Assert.Equal(model.Metadata, trained.Metadata);
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void ALoadedCheckpointIsUnchangedByTrainingTheModelLoadedFromIt(string family)
    {
        using var dir = new TempDir();
        var (model, x, y) = Build(family);
        string path = dir.File("ckpt.safetensors");
        ModelFile.Save(path, model);
        var bytes = File.ReadAllBytes(path);
        var loaded = ModelFile.Load(path);
        var fileBits = Bits(loaded.FileTensors);
        var loadedBits = Bits(loaded.Model.AllParameters);
        Assert.Equal(Bits(model.AllParameters), loadedBits);

        var grad = new double[model.AllParameters.TotalSize];
        ModelGradient.Compute(loaded.Model, x, y, grad);
        var trained = loaded.Model.WithParameters(new Sgd(0.1).Step(loaded.Model.AllParameters, grad));
        Assert.NotEqual(loadedBits, Bits(trained.AllParameters));
        // The loaded model shares the file's tensors (no copy): both are values, neither moved.
        Assert.Equal(loadedBits, Bits(loaded.Model.AllParameters));
        Assert.Equal(fileBits, Bits(loaded.FileTensors));
        Assert.Equal(bytes, File.ReadAllBytes(path));
    }

    [Fact]
    public void TheTrainerLeavesTheModelItStartedFromUnchanged()
    {
        var task = TaskRegistry.Create("sine", new TaskOptions { Seed = 2 });
        var model = RecurrentModel.Create("gru", task.InputSize, 4, task.OutputSize, seed: 2);
        var bits = Bits(model.AllParameters);
        var trainer = new Trainer(model, task, new TrainingOptions { Steps = 3, BatchSize = 2, Seed = 2, LearningRate = 0.01 });
        var lin = model.Linearize(task.EvaluationSet.Inputs);
        var states = lin.States.ToArray();
        trainer.Run();
        Assert.Equal(3, trainer.Step);
        Assert.NotSame(model, trainer.Model);
        Assert.NotEqual(bits, Bits(trainer.Model.AllParameters));
        Assert.Equal(bits, Bits(model.AllParameters));
        Assert.Equal(states, lin.States.ToArray());
        Assert.Equal(states, model.Linearize(task.EvaluationSet.Inputs).States.ToArray());
    }

    [Fact]
    public void NewValuesMustHaveTheModelsLayout()
    {
        var (model, _, _) = Build("mlp");
        var all = model.AllParameters;
        var reversed = new ParameterSet(all.Reverse());
        Assert.Contains("Parameter 0 is 'readout", Assert.Throws<ArgumentException>(() => model.WithParameters(reversed)).Message);
        var fewer = new ParameterSet(all.Take(all.Count - 1));
        Assert.Contains("Expected 8 parameter tensors", Assert.Throws<ArgumentException>(() => model.WithParameters(fewer)).Message);
        var reshaped = new ParameterSet(all.Select(p => p.Name == "layers.0.bias" ? new Parameter(p.Name, [p.Size + 1]) : p));
        Assert.Contains("'layers.0.bias' [5]", Assert.Throws<ArgumentException>(() => model.WithParameters(reshaped)).Message);
        Assert.Contains("θ has length 3", Assert.Throws<ArgumentException>(() => all.WithValues(new double[3])).Message);
    }

    [Fact]
    public void AParameterOwnsACopyOfWhatItWasGiven()
    {
        var data = new[] { 1.0, 2.0, 3.0 };
        var p = new Parameter("w", [3], data);
        data[0] = 99;
        Assert.Equal([1.0, 2.0, 3.0], p.Values.ToArray());
        var copy = p.ToArray();
        copy[1] = 99;
        Assert.Equal([1.0, 2.0, 3.0], p.Values.ToArray());
        var q = p.WithValues([4.0, 5.0, 6.0]);
        Assert.Equal([1.0, 2.0, 3.0], p.Values.ToArray());
        Assert.Equal([4.0, 5.0, 6.0], q.Values.ToArray());
    }

    /// <summary>
    /// No public member of the value types hands out a writable view of θ: no public array, Span or
    /// Memory of doubles, no setter on a model, no method named like a writer.
    /// </summary>
    [Fact]
    public void NoPublicMemberWritesParameterValues()
    {
        Type[] types = [typeof(Parameter), typeof(ParameterSet), typeof(Readout), typeof(RecurrentModel), typeof(MlpModel),
            typeof(TransformerModel), typeof(IChainModel), typeof(ChainLinearization), typeof(Optimizer)];
        Type[] writable = [typeof(double[]), typeof(Span<double>), typeof(Memory<double>), typeof(double[][])];
        var offenders = new List<string>();
        foreach (var t in types)
        {
            foreach (var prop in t.GetProperties(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static))
            {
                if (writable.Contains(prop.PropertyType)) offenders.Add($"{t.Name}.{prop.Name} : {prop.PropertyType.Name}");
                if (prop.SetMethod is { IsPublic: true } && !prop.SetMethod.ReturnParameter.GetRequiredCustomModifiers().Any(m => m.Name == "IsExternalInit"))
                    offenders.Add($"{t.Name}.{prop.Name} has a public setter");
            }
            foreach (var f in t.GetFields(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static))
                if (!f.IsLiteral && !f.IsInitOnly) offenders.Add($"{t.Name}.{f.Name} is a writable field");
            foreach (var m in t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly))
                if (m.Name is "Assign" or "Set" or "Update" or "Fill" or "CopyFrom") offenders.Add($"{t.Name}.{m.Name}()");
        }
        Assert.Empty(offenders);
    }

    private static ulong[] Bits(ParameterSet ps) => ps.SelectMany(p => p.ToArray()).Select(v => (ulong)BitConverter.DoubleToInt64Bits(v)).ToArray();

    private static double[] Diff(double[] a, double[] b) => a.Zip(b, (u, v) => u - v).ToArray();

    private static (IChainModel Model, Tensor X, Tensor Y) Build(string family)
    {
        var rng = new Random(3);
        Tensor Rand(params (string, int)[] axes) => CliFixture.Random(rng, axes);
        switch (family)
        {
            case "mlp":
                return (MlpModel.Create(inputs: 2, hidden: 4, layers: 3, outputs: 2, Activation.Tanh, seed: 1),
                    Rand(("sample", 3), ("input", 2)), Rand(("sample", 3), ("output", 2)));
            case "transformer":
                var config = new TransformerConfig(TransformerInput.Linear, Inputs: 2, Model: 4, Heads: 2, Layers: 2, FeedForward: 6, Causal: true);
                return (TransformerModel.Create(config, outputs: 2, seed: 1),
                    Rand(("sequence", 2), ("token", 3), ("input", 2)), Rand(("sequence", 2), ("token", 3), ("output", 2)));
            default:
                return (RecurrentModel.Create(family, inputSize: 2, hiddenSize: 3, outputSize: 2, seed: 1),
                    Rand(("trial", 2), ("time", 4), ("input", 2)), Rand(("trial", 2), ("time", 4), ("output", 2)));
        }
    }
}
