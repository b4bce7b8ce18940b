using GlobalNtk.Models.Recurrent;
using GlobalNtk.Ntk;
using GlobalNtk.Operators;
using GlobalNtk.Tasks;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>The one seed-splitting helper: deterministic, distinct and well-mixed child keys.</summary>
public class RngKeyTests
{
    [Fact]
    public void RootKeyDrawsTheSeedsOwnStream()
    {
        foreach (int seed in new[] { 0, 1, 42, int.MaxValue })
        {
            var a = RngKey.FromSeed(seed).CreateRandom();
            var b = new Random(seed);
            for (int i = 0; i < 5; i++) Assert.Equal(b.NextDouble(), a.NextDouble());
            Assert.Equal(RngKey.FromSeed(seed), RngKey.FromSeed(RngKey.FromSeed(seed).Seed));
        }
    }

    [Fact]
    public void FoldingIsDeterministicAndPinned()
    {
        var root = RngKey.FromSeed(1);
        Assert.Equal(root.Fold("init"), RngKey.FromSeed(1).Fold("init"));
        Assert.Equal(root.Split(4), Enumerable.Range(0, 4).Select(i => root.Fold(i)));
        // The derivation is part of every run's reproducibility: these values must never change
        // (a change re-randomises every model, task and estimate made from a seed).
        Assert.Equal(PinnedInit, root.Fold("init").Seed);
        Assert.Equal(PinnedBatch, root.Fold("task batch").Fold(3).Seed);
    }

    private const int PinnedInit = 1793324348, PinnedBatch = 542899671;

    [Fact]
    public void ChildKeysAreDistinctAndUncorrelated()
    {
        var root = RngKey.FromSeed(7);
        const int n = 4000;
        var seeds = new HashSet<int>();
        double sum = 0, sumXY = 0, sumX2 = 0;
        double prev = root.Fold(0).CreateRandom().NextDouble();
        for (int i = 0; i < n; i++)
        {
            var k = root.Fold(i);
            Assert.True(seeds.Add(k.Seed), $"Fold({i}) repeats an earlier seed");
            double u = k.CreateRandom().NextDouble();
            sum += u; sumX2 += u * u;
            if (i > 0) sumXY += (u - 0.5) * (prev - 0.5);
            prev = u;
        }
        // Uniform(0,1): mean 1/2 (sd 0.289/√n), lag-1 correlation 0 (sd 1/√n); 5 sd bounds.
        Assert.InRange(sum / n, 0.5 - 5 * 0.289 / Math.Sqrt(n), 0.5 + 5 * 0.289 / Math.Sqrt(n));
        Assert.InRange(sumXY / (n - 1) / (1.0 / 12), -5 / Math.Sqrt(n), 5 / Math.Sqrt(n));
        // Names and indices, and neighbouring seeds, give different keys.
        Assert.NotEqual(root.Fold("a"), root.Fold("b"));
        Assert.NotEqual(RngKey.FromSeed(1).Fold("init"), RngKey.FromSeed(2).Fold("init"));
        Assert.NotEqual(root.Fold(1).Fold(2), root.Fold(2).Fold(1));
    }

    [Fact]
    public void ModelInitAndTrainingBatchesDeriveFromTheSameSeedThroughDistinctKeys()
    {
        // Same user seed → same model and batches; the model's draws are not the task's.
        var a = RecurrentModel.Create("gru", 2, 3, 1, seed: 4).AllParameters.Flatten();
        var b = RecurrentModel.Create("gru", 2, 3, 1, seed: 4).AllParameters.Flatten();
        Assert.Equal(a, b);
        Assert.NotEqual(a, RecurrentModel.Create("gru", 2, 3, 1, seed: 5).AllParameters.Flatten());
        var task = TaskRegistry.Create("integration", new TaskOptions { Seed = 4 });
        Assert.Equal(task.TrainBatch(2, 3).Inputs.Span.ToArray(), TaskRegistry.Create("integration", new TaskOptions { Seed = 4 }).TrainBatch(2, 3).Inputs.Span.ToArray());
        Assert.NotEqual(task.TrainBatch(2, 3).Inputs.Span.ToArray(), task.TrainBatch(3, 3).Inputs.Span.ToArray());
    }

    [Fact]
    public void KroneckerCoreHutchinsonTracesFollowTheSeed()
    {
        // Attention's in_proj site is not row-local: with no exact budget its traces are Hutchinson estimates.
        var lin = NtkRowLocalityTests.Transformer("gelu-causal");
        double Trace(int seed) => new KroneckerCore(lin, exactApplicationLimit: 0, probes: 8, seed: seed).Sites
            .Where(s => s.Method == TraceMethod.Hutchinson).Sum(s => s.TraceK);
        Assert.Contains(new KroneckerCore(lin, exactApplicationLimit: 0).Sites, s => s.Method == TraceMethod.Hutchinson);
        Assert.Equal(Trace(1), Trace(1));

        Assert.NotEqual(Trace(1), Trace(2));
    }
}
