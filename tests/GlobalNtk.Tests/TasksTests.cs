using GlobalNtk.Dense;
using GlobalNtk.Tasks;
using Xunit;

namespace GlobalNtk.Tests;

public class TasksTests
{
    public static TheoryData<string> Names() => new() { "flip-flop", "memory-pro", "integration", "sine" };

    [Theory]
    [MemberData(nameof(Names))]
    public void SameSeedSameBatchAndDocumentedLayout(string name)
    {
        var a = TaskRegistry.Create(name, new TaskOptions { Seed = 3 });
        var b = TaskRegistry.Create(name, new TaskOptions { Seed = 3 });
        var c = TaskRegistry.Create(name, new TaskOptions { Seed = 4 });
        var ba = a.TrainBatch(5, 8);
        Assert.Equal(ba.Inputs.Span.ToArray(), b.TrainBatch(5, 8).Inputs.Span.ToArray());
        Assert.Equal(ba.Targets.Span.ToArray(), b.TrainBatch(5, 8).Targets.Span.ToArray());
        Assert.NotEqual(ba.Targets.Span.ToArray(), a.TrainBatch(6, 8).Targets.Span.ToArray());
        Assert.NotEqual(ba.Targets.Span.ToArray(), c.TrainBatch(5, 8).Targets.Span.ToArray());
        // The evaluation set does not depend on the training seed.
        Assert.Equal(a.EvaluationSet.Targets.Span.ToArray(), c.EvaluationSet.Targets.Span.ToArray());

        Assert.Equal(new AxisShape(("trial", 8), ("time", a.Steps), ("input", a.InputSize)), ba.Inputs.Shape);
        Assert.Equal(new AxisShape(("trial", 8), ("time", a.Steps), ("output", a.OutputSize)), ba.Targets.Shape);
        // Perfect outputs score 1.
        Assert.Equal(1.0, a.Accuracy(a.EvaluationSet, a.EvaluationSet.Targets.Clone()));
        Assert.False(string.IsNullOrWhiteSpace(a.AccuracyDefinition));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void InputNoiseChangesInputsOnlyAndIsSeeded(string name)
    {
        var clean = TaskRegistry.Create(name, new TaskOptions { Seed = 1 }).TrainBatch(0, 4);
        var noisyTask = TaskRegistry.Create(name, new TaskOptions { Seed = 1, InputNoise = 0.5 });
        var noisy = noisyTask.TrainBatch(0, 4);
        Assert.Equal(clean.Targets.Span.ToArray(), noisy.Targets.Span.ToArray());
        var d = clean.Inputs.Span.ToArray().Zip(noisy.Inputs.Span.ToArray(), (x, y) => y - x).ToArray();
        double std = Math.Sqrt(d.Select(v => v * v).Average());
        Assert.InRange(std, 0.4 * noisyTask.NoiseScale, 0.6 * noisyTask.NoiseScale);
        Assert.Equal(noisy.Inputs.Span.ToArray(), noisyTask.TrainBatch(0, 4).Inputs.Span.ToArray());
    }

    [Fact]
    public void FlipFlopHoldsTheLastPulse()
    {
        var task = new FlipFlopTask(new TaskOptions { Seed = 2 });
        var batch = task.TrainBatch(0, 16);
        int pulses = 0;
        for (int b = 0; b < 16; b++)
            for (int c = 0; c < 3; c++)
            {
                double held = 0;
                for (int t = 0; t < task.Steps; t++)
                {
                    double x = batch.Inputs[b, t, c];
                    Assert.Contains(x, new[] { -1.0, 0.0, 1.0 });
                    if (x != 0) { held = x; pulses++; }
                    Assert.Equal(held, batch.Targets[b, t, c]);
                }
            }
        // About T/20 pulses per channel (16 trials × 3 channels × 5 expected = 240).
        Assert.InRange(pulses, 160, 320);
    }

    [Fact]
    public void MemoryProPeriodsAndEvenlySpacedEvaluationAngles()
    {
        var task = new MemoryProTask(new TaskOptions());
        Assert.Equal(90, task.Steps);
        Assert.Equal(60, task.ResponseStart);
        var ev = task.EvaluationSet;
        for (int b = 0; b < ev.Trials; b++)
        {
            double theta = 2 * Math.PI * b / ev.Trials;
            for (int t = 0; t < 90; t++)
            {
                double fix = t < 60 ? 1 : 0;
                Assert.Equal(fix, ev.Inputs[b, t, 0]);
                Assert.Equal(fix, ev.Targets[b, t, 0]);
                Assert.Equal(t < 30 ? Math.Cos(theta) : 0, ev.Inputs[b, t, 1]);
                Assert.Equal(t < 30 ? Math.Sin(theta) : 0, ev.Inputs[b, t, 2]);
                Assert.Equal(t >= 60 ? Math.Cos(theta) : 0, ev.Targets[b, t, 1]);
            }
        }
        // A response rotated by more than π/10 is wrong; one rotated by less is right.
        foreach (var (angle, expected) in new[] { (0.2, 1.0), (0.4, 0.0) })
        {
            var y = ev.Targets.Clone();
            for (int b = 0; b < ev.Trials; b++)
                for (int t = 60; t < 90; t++)
                {
                    double c = ev.Targets[b, t, 1], s = ev.Targets[b, t, 2];
                    y[b, t, 1] = c * Math.Cos(angle) - s * Math.Sin(angle);
                    y[b, t, 2] = c * Math.Sin(angle) + s * Math.Cos(angle);
                }
            Assert.Equal(expected, task.Accuracy(ev, y));
        }
    }

    [Fact]
    public void IntegrationTargetIsTheRunningSum()
    {
        var task = new IntegrationTask(new TaskOptions { Seed = 9 });
        var batch = task.TrainBatch(3, 5);
        for (int b = 0; b < 5; b++)
        {
            double sum = 0;
            for (int t = 0; t < task.Steps; t++)
            {
                sum += batch.Inputs[b, t, 0];
                Assert.Equal(sum, batch.Targets[b, t, 0], 1e-15);
            }
            Assert.InRange(Math.Abs(sum), 0, 2); // y_T ≈ μ ∈ (−1, 1) plus noise of std 1/√T
        }
    }

    [Fact]
    public void SineFollowsItsFrequencyCue()
    {
        var task = new SineTask(new TaskOptions());
        var ev = task.EvaluationSet;
        for (int b = 0; b < ev.Trials; b++)
        {
            double w = 1 + 2.0 * b / (ev.Trials - 1);
            for (int t = 0; t < task.Steps; t++)
            {
                Assert.Equal(w / 3, ev.Inputs[b, t, 0], 1e-15);
                Assert.Equal(Math.Sin(2 * Math.PI * w * (t + 1) / task.Steps), ev.Targets[b, t, 0], 1e-15);
            }
        }
        var y = ev.Targets.Clone();
        y.Span[0] += 0.2;
        Assert.Equal(1 - 1.0 / y.Length, task.Accuracy(ev, y), 1e-15);
    }

    [Fact]
    public void RegistryListsValidNamesOnUnknownTaskAndRejectsBadOptions()
    {
        var ex = Assert.Throws<ArgumentException>(() => TaskRegistry.Create("flipflop"));
        Assert.Equal("Unknown task 'flipflop' (valid: flip-flop, integration, memory-pro, n-back, regression, sine).", ex.Message);
        Assert.Throws<ArgumentException>(() => TaskRegistry.Create("sine", new TaskOptions { Steps = 0 }));
        Assert.Throws<ArgumentException>(() => TaskRegistry.Create("sine", new TaskOptions { InputNoise = double.NaN }));
        Assert.Throws<ArgumentException>(() => TaskRegistry.Create("sine").TrainBatch(0, 0));
        var task = TaskRegistry.Create("flip-flop");
        var wrong = new Tensor(new AxisShape(("trial", 2), ("time", 3), ("output", 3)));
        Assert.Throws<ArgumentException>(() => task.Accuracy(task.EvaluationSet, wrong));
    }
}
