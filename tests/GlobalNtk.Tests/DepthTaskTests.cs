using GlobalNtk.Dense;
using GlobalNtk.Tasks;
using Xunit;

namespace GlobalNtk.Tests;

public class DepthTaskTests
{
    [Fact]
    public void RegressionBatchesAreSeededAndFollowTheTeacher()
    {
        var task = (RegressionTask)TaskRegistry.Create("regression", new TaskOptions { Seed = 3 });
        var a = task.TrainBatch(5, 7); var b = TaskRegistry.Create("regression", new TaskOptions { Seed = 3 }).TrainBatch(5, 7);
        Assert.Equal(a.Inputs.Span.ToArray(), b.Inputs.Span.ToArray());
        Assert.NotEqual(a.Inputs.Span.ToArray(), task.TrainBatch(6, 7).Inputs.Span.ToArray());
        Assert.Equal([7, 4], a.Inputs.Shape.Sizes);
        Assert.Equal([7, 2], a.Targets.Shape.Sizes);
        for (int s = 0; s < 7; s++)
        {
            var x = a.Inputs.Span.Slice(s * 4, 4);
            Assert.All(x.ToArray(), v => Assert.InRange(v, -1, 1));
            Assert.Equal(task.Teacher(x), a.Targets.Span.Slice(s * 2, 2).ToArray());
        }
        var ev = task.EvaluationSet;
        Assert.Equal(1.0, task.Accuracy(ev, ev.Targets));
        var off = ev.Targets.Clone(); off.Span[0] += 0.2;
        Assert.Equal(1 - 1.0 / off.Length, task.Accuracy(ev, off), 1e-15);
        Assert.Throws<ArgumentException>(() => TaskRegistry.Create("regression", new TaskOptions { Steps = 5 }));
        // Noise moves the inputs, not the clean targets.
        var noisy = TaskRegistry.Create("regression", new TaskOptions { Seed = 3, InputNoise = 1 }).TrainBatch(5, 7);
        Assert.NotEqual(a.Inputs.Span.ToArray(), noisy.Inputs.Span.ToArray());
        Assert.Equal(a.Targets.Span.ToArray(), noisy.Targets.Span.ToArray());
    }

    [Fact]
    public void NBackTargetsAreTheInputsTwoTokensEarlier()
    {
        var task = TaskRegistry.Create("n-back", new TaskOptions { Seed = 1, Steps = 10 });
        var batch = task.TrainBatch(0, 4);
        Assert.Equal([4, 10, 3], batch.Inputs.Shape.Sizes);
        for (int b = 0; b < 4; b++)
            for (int t = 0; t < 10; t++)
                for (int c = 0; c < 3; c++)
                {
                    Assert.Equal(1.0, Math.Abs(batch.Inputs[b, t, c]));
                    Assert.Equal(t < 2 ? 0.0 : batch.Inputs[b, t - 2, c], batch.Targets[b, t, c]);
                }
        var ev = task.EvaluationSet;
        Assert.Equal(1.0, task.Accuracy(ev, ev.Targets));
        Assert.True(task.Accuracy(ev, new Tensor(ev.Targets.Shape)) < 0.3); // all-zero outputs are right only before token 2
        Assert.Throws<ArgumentException>(() => TaskRegistry.Create("n-back", new TaskOptions { Steps = 2 }));
    }
}
