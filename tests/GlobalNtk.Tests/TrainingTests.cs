using GlobalNtk.Dense;
using GlobalNtk.IO;
using GlobalNtk.Models;
using GlobalNtk.Tasks;
using GlobalNtk.Training;
using Xunit;

namespace GlobalNtk.Tests;

public class TrainingTests
{
    [Theory]
    [InlineData("gru", "alpha", "layers")]
    [InlineData("lstm", "activation", "h0")]
    [InlineData("leaky-rnn", "alpah", "alpha")]
    [InlineData("mlp", "heads", "activation")]
    [InlineData("transformer", "bias", "heads")]
    public void CreateRefusesAnOptionTheArchitectureDoesNotRead(string arch, string unused, string read)
    {
        var given = new Dictionary<string, string> { [unused] = "1" };
        var ex = Assert.Throws<ArgumentException>(() => ModelRegistry.Create(new ModelSpec(arch, 2, 4, 2) { Options = given }));
        Assert.Contains($"option {unused} given but not used by a {arch} model", ex.Message);
        Assert.Contains(read, ex.Message);  // names what it does read
    }

    [Fact]
    public void CreateAcceptsTheOptionsEachArchitectureReads()
    {
        var leaky = ModelRegistry.Create(new ModelSpec("leaky-rnn", 2, 4, 2) { Options = new Dictionary<string, string> { ["alpha"] = "0.5", ["activation"] = "relu", ["layers"] = "1" } });
        Assert.Equal("leaky-rnn", leaky.Arch);
        var tf = ModelRegistry.Create(new ModelSpec("transformer", 2, 8, 2) { Options = new Dictionary<string, string> { ["heads"] = "2", ["layers"] = "1", ["norm_first"] = "false" } });
        Assert.Equal("transformer", tf.Arch);
    }

    private static TrainingOptions Small(int steps = 6, string optimizer = "adam", int every = 3) => new()
    {
        Steps = steps, BatchSize = 4, LearningRate = 0.01, Optimizer = optimizer, CheckpointEvery = every, Seed = 5,
    };

    private static Trainer SmallRun(string arch = "gru", TrainingOptions? o = null) =>
        Trainer.Create(arch, 6, "flip-flop", o ?? Small(), gain: 1.2, taskOptions: new TaskOptions { Steps = 12, EvaluationTrials = 4 });

    [Theory]
    [InlineData("gru")]
    [InlineData("lstm")]
    [InlineData("rnn-tanh")]
    [InlineData("leaky-rnn")]
    public void GradientMatchesCentralFiniteDifferences(string arch)
    {
        var model = ModelRegistry.Create(new ModelSpec(arch, 2, 3, 2) { Seed = 1, Gain = 1.5 });
        var rng = new Random(2);
        var x = new Tensor(Enumerable.Range(0, 2 * 5 * 2).Select(_ => rng.NextDouble() - 0.5).ToArray(), new AxisShape(("trial", 2), ("time", 5), ("input", 2)));
        var y = new Tensor(Enumerable.Range(0, 2 * 5 * 2).Select(_ => rng.NextDouble() - 0.5).ToArray(), new AxisShape(("trial", 2), ("time", 5), ("output", 2)));
        var all = model.AllParameters;
        var grad = new double[all.TotalSize];
        ModelGradient.Compute(model, x, y, grad);
        double Loss(double[] th) => MseLoss.Value(ModelGradient.Predict(model.WithAllValues(th), x).Span, y.Span);
        var theta = all.Flatten();
        var fd = new double[theta.Length];
        const double h = 1e-5;
        for (int i = 0; i < theta.Length; i++)
        {
            double t0 = theta[i];
            theta[i] = t0 + h; double lp = Loss(theta);
            theta[i] = t0 - h; double lm = Loss(theta);
            theta[i] = t0;
            fd[i] = (lp - lm) / (2 * h);
        }
        double err = Math.Sqrt(fd.Zip(grad, (a, b) => (a - b) * (a - b)).Sum()) / Math.Sqrt(fd.Sum(a => a * a));
        Assert.True(err < 1e-6, $"{arch}: relative gradient error {err:E2}");
    }

    [Theory]
    [InlineData("flip-flop", 20, 40, 0.7)]
    [InlineData("memory-pro", 15, 40, 0.7)]
    [InlineData("integration", 20, 40, 0.7)]
    [InlineData("sine", 20, 200, 0.05)] // needs an oscillator: it first sits on the mean-output plateau, so train longer
    public void TrainingReducesTheLossOnEveryTask(string task, int steps, int trainingSteps, double ratio)
    {
        var trainer = Trainer.Create("gru", 10, task, new TrainingOptions { Steps = trainingSteps, BatchSize = 8, LearningRate = 0.03, CheckpointEvery = 0, Seed = 1 },
            taskOptions: new TaskOptions { Steps = steps, EvaluationTrials = 16 });
        var r = trainer.Run();
        Assert.Equal(trainingSteps, r.Steps);
        Assert.True(r.EvalLoss < ratio * r.InitialEvalLoss, $"{task}: eval loss {r.InitialEvalLoss:G4} → {r.EvalLoss:G4}");
        Assert.Equal(trainingSteps + 1, r.Log.Count);
        Assert.InRange(r.EvalAccuracy, 0, 1);
    }

    [Fact]
    public void SameSeedGivesABitIdenticalRun()
    {
        var a = SmallRun(); var ra = a.Run();
        var b = SmallRun(); var rb = b.Run();
        Assert.Equal(a.Model.AllParameters.Flatten(), b.Model.AllParameters.Flatten());
        Assert.Equal(ra.Log, rb.Log);
        var c = Trainer.Create("gru", 6, "flip-flop", Small() with { Seed = 6 }, gain: 1.2, taskOptions: new TaskOptions { Steps = 12, EvaluationTrials = 4 });
        c.Run();
        Assert.NotEqual(a.Model.AllParameters.Flatten(), c.Model.AllParameters.Flatten());
    }

    [Theory]
    [InlineData("adam")]
    [InlineData("sgd")]
    public void ResumedRunEqualsUninterruptedRun(string optimizer)
    {
        using var dir = new TempDir();
        string full = Path.Combine(dir.Path, "full"), part = Path.Combine(dir.Path, "part");
        var uninterrupted = SmallRun(o: Small(6, optimizer));
        var rFull = uninterrupted.Run(full);

        SmallRun(o: Small(3, optimizer)).Run(part);             // stops after 3 updates
        var resumed = Trainer.Resume(part, steps: 6);
        Assert.Equal(3, resumed.Step);
        var rPart = resumed.Run(part);

        Assert.Equal(uninterrupted.Model.AllParameters.Flatten(), resumed.Model.AllParameters.Flatten());
        Assert.Equal(rFull.Log, rPart.Log);
        Assert.Equal(File.ReadAllText(Path.Combine(full, "log.csv")), File.ReadAllText(Path.Combine(part, "log.csv")));
        Assert.Equal(File.ReadAllBytes(Checkpoints.ModelPath(full, 6)).Length, File.ReadAllBytes(Checkpoints.ModelPath(part, 6)).Length);
        Assert.Equal(SafetensorsFile.Read(Checkpoints.ModelPath(full, 6)).Tensors.Flatten(), SafetensorsFile.Read(Checkpoints.ModelPath(part, 6)).Tensors.Flatten());
    }

    [Theory]
    [InlineData(7, 3)]
    [InlineData(6, 3)]
    [InlineData(5, 0)]
    [InlineData(3, 1)]
    [InlineData(0, 2)]
    public void PlannedCheckpointStepsAreTheOnesARunWrites(int steps, int every)
    {
        using var dir = new TempDir();
        string run = Path.Combine(dir.Path, "run");
        var o = Small(steps, every: every);
        var trainer = SmallRun(o: o);
        var seen = new List<(int Step, bool OnDisk)>();
        trainer.Run(run, p => seen.Add((p.Step, File.Exists(Checkpoints.ModelPath(run, p.Step)))));
        Assert.Equal(o.CheckpointSteps(), Checkpoints.List(run).Select(c => c.Step));
        // The demo analyses a checkpoint once progress has reported its step: it must be on disk by then.
        foreach (int step in o.CheckpointSteps()) Assert.Contains((step, true), seen);
    }

    [Fact]
    public void CheckpointsUsePyTorchNamesMetadataAndTrainingOrder()
    {
        using var dir = new TempDir();
        string run = Path.Combine(dir.Path, "run");
        var trainer = SmallRun(o: Small(7, every: 3));
        var r = trainer.Run(run);
        Assert.Equal([0, 3, 6, 7], Checkpoints.List(run).Select(c => c.Step));
        Assert.Equal(Checkpoints.ModelPath(run, 7), r.LastCheckpoint);
        var f = SafetensorsFile.Read(Checkpoints.ModelPath(run, 6));
        Assert.Equal(["rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0", "readout.weight", "readout.bias"], f.Tensors.Select(t => t.Name));
        Assert.Equal("gru", f.Metadata["arch"]);
        Assert.Equal("6", f.Metadata["step"]);
        Assert.Equal("flip-flop", f.Metadata["task"]);
        Assert.Equal("0.01", f.Metadata["lr"]);
        Assert.Equal("adam", f.Metadata["optimizer"]);
        Assert.Equal("1.2", f.Metadata["gain"]);
        Assert.True(File.Exists(Checkpoints.OptimizerPath(run, 6)));
        Assert.True(File.Exists(Path.Combine(run, "summary.json")));
        // Only finished files: no temporaries left behind.
        Assert.DoesNotContain(Directory.GetFiles(run), p => Path.GetFileName(p).StartsWith('.'));

        var log = Checkpoints.ReadLog(run);
        Assert.Equal(Enumerable.Range(0, 8), log.Select(l => l.Step));
        Assert.Null(log[0].Loss);
        Assert.NotNull(log[0].EvalLoss);
        Assert.Null(log[1].EvalLoss);
        Assert.NotNull(log[3].EvalAccuracy);
        Assert.All(log.Skip(1), l => Assert.True(l.Loss > 0 && l.GradNorm > 0));

        // The final checkpoint is the trained model.
        var back = ModelFile.Load(r.LastCheckpoint!).Model;
        Assert.Equal(trainer.Model.AllParameters.Flatten(), back.AllParameters.Flatten());
    }

    [Fact]
    public void EarlyStopClippingAndProgress()
    {
        var seen = new List<TrainingProgress>();
        var t = SmallRun(o: Small(50) with { LossTolerance = 10 });
        var r = t.Run(progress: seen.Add);
        Assert.True(r.StoppedEarly);
        Assert.Equal(1, r.Steps);
        Assert.Equal([0, 1], seen.Select(p => p.Step));
        Assert.All(seen, p => Assert.Equal(50, p.TotalSteps));

        // With a tiny clip norm, one SGD step moves θ by exactly lr·clip (up to the 1e-6 guard).
        var s = SmallRun(o: Small(1, "sgd") with { ClipNorm = 1e-3, LearningRate = 0.5 });
        var before = s.Model.AllParameters.Flatten();
        s.Run();
        var after = s.Model.AllParameters.Flatten();
        double moved = Math.Sqrt(before.Zip(after, (a, b) => (a - b) * (a - b)).Sum());
        Assert.Equal(0.5e-3, moved, 1e-8);
    }

    [Fact]
    public void BadRunsGiveOneLineErrors()
    {
        using var dir = new TempDir();
        var ex = Assert.Throws<DataFileException>(() => Trainer.Resume(dir.Path));
        Assert.Equal($"{dir.Path}: no checkpoint (ckpt-NNNNNN.safetensors) to resume from.", ex.Message);
        SmallRun(o: Small(1)).Run(dir.Path);
        var again = Assert.Throws<ArgumentException>(() => SmallRun(o: Small(1)).Run(dir.Path));
        Assert.Contains("already holds checkpoints", again.Message);
        Assert.Equal("Unknown optimizer 'rmsprop' (valid: adam, sgd).", Assert.Throws<ArgumentException>(() => SmallRun(o: Small() with { Optimizer = "rmsprop" })).Message);
        Assert.Contains("Learning rate must be", Assert.Throws<ArgumentException>(() => SmallRun(o: Small() with { LearningRate = -1 })).Message);
        Assert.StartsWith("Unknown task 'flop'", Assert.Throws<ArgumentException>(() => Trainer.Create("gru", 4, "flop", Small())).Message);
        Assert.StartsWith("Unknown arch 'grux'", Assert.Throws<ArgumentException>(() => Trainer.Create("grux", 4, "sine", Small())).Message);
        // A missing optimizer state is named.
        File.Delete(Checkpoints.OptimizerPath(dir.Path, 1));
        var missing = Assert.Throws<DataFileException>(() => Trainer.Resume(dir.Path));
        Assert.Equal($"{Checkpoints.OptimizerPath(dir.Path, 1)}: file not found.", missing.Message);
    }
}

public class TrainingDepthModelTests
{
    [Fact]
    public void TrainerWorksUnchangedForAnMlpOnRegression()
    {
        var task = TaskRegistry.Create("regression", new TaskOptions { Seed = 1, EvaluationTrials = 32 });
        var mlp = GlobalNtk.Models.Mlp.MlpModel.Create(task.InputSize, 16, 2, task.OutputSize, GlobalNtk.Models.Mlp.Activation.Tanh, seed: 1);
        // Gradient through the NTK operators against central differences.
        var batch = task.TrainBatch(0, 5);
        var all = mlp.AllParameters;
        var grad = new double[all.TotalSize];
        ModelGradient.Compute(mlp, batch.Inputs, batch.Targets, grad);
        var theta = all.Flatten();
        double maxErr = 0, scale = grad.Max(Math.Abs);
        foreach (int i in new[] { 0, 7, theta.Length / 2, theta.Length - 1 })
        {
            double t0 = theta[i];
            theta[i] = t0 + 1e-5;
            double lp = MseLoss.Value(ModelGradient.Predict(mlp.WithAllValues(theta), batch.Inputs).Span, batch.Targets.Span);
            theta[i] = t0 - 1e-5;
            double lm = MseLoss.Value(ModelGradient.Predict(mlp.WithAllValues(theta), batch.Inputs).Span, batch.Targets.Span);
            theta[i] = t0;
            maxErr = Math.Max(maxErr, Math.Abs((lp - lm) / 2e-5 - grad[i]));
        }
        Assert.True(maxErr < 1e-7 * scale, $"MLP gradient error {maxErr:E2} (scale {scale:E2})");

        var r = new Trainer(mlp, task, new TrainingOptions { Steps = 40, BatchSize = 16, LearningRate = 0.02, CheckpointEvery = 0, Seed = 1 }).Run();
        Assert.True(r.EvalLoss < 0.7 * r.InitialEvalLoss, $"MLP regression: eval loss {r.InitialEvalLoss:G4} → {r.EvalLoss:G4}");
    }
}
