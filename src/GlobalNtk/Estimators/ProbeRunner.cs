using GlobalNtk.Dense;
using GlobalNtk.Operators;

namespace GlobalNtk.Estimators;

/// <summary>
/// Feeds an estimator its probe vectors in memory-bounded blocks (vector-major), so operators are
/// applied to many probes at once. Probes are drawn in order from one seeded stream, so the
/// answer does not depend on the block size. When the budget reaches the dimension the probes
/// are the unit vectors instead, which makes every quadratic-form estimator exact.
/// </summary>
internal static class ProbeRunner
{
    /// <summary>Number of probes actually used: the dimension when exact, else the budget.</summary>
    public static int Count(int dimension, int budget, out bool exact)
    {
        if (budget < 1) throw new ArgumentOutOfRangeException(nameof(budget), $"Probe budget must be at least 1, got {budget}.");
        exact = dimension <= budget;
        return exact ? dimension : budget;
    }

    /// <summary>
    /// Calls <paramref name="onBlock"/>(x, first, count) for consecutive blocks of probes
    /// (Rademacher, or unit vectors when <paramref name="exact"/>) of length <paramref name="dimension"/>.
    /// </summary>
    public static void Run(int dimension, int probes, bool exact, int seed, Action<double[], int, int> onBlock, int extraVectorSize = 0)
    {
        var rng = RngKey.FromSeed(seed).CreateRandom();
        int chunk = BlockBuffer.VectorsPerBlock(Math.Max(dimension, extraVectorSize), probes, MemoryBudget.ProbeBlockElements);
        var x = new double[(long)chunk * dimension];
        for (int first = 0; first < probes; first += chunk)
        {
            int c = Math.Min(chunk, probes - first);
            var block = c == chunk ? x : new double[(long)c * dimension];
            if (exact)
            {
                Array.Clear(block);
                for (int j = 0; j < c; j++) block[(long)j * dimension + first + j] = 1.0;
            }
            else RandomProbes.Rademacher(rng, block.AsSpan(0, c * dimension));
            onBlock(block, first, c);
        }
    }

    /// <summary>
    /// The first <paramref name="length"/> doubles of <paramref name="buffer"/>, grown (never
    /// shrunk) as needed: one image block per estimator, reused across its probe blocks instead of
    /// a new state-sized array per block.
    /// </summary>
    public static Span<double> Reuse(ref double[]? buffer, long length)
    {
        if (buffer is null || buffer.LongLength < length) buffer = new double[length];
        return buffer.AsSpan(0, (int)length);
    }

    /// <summary>A per-probe statistic of a probe ω and its image Aω.</summary>
    public delegate T ProbeStatistic<T>(ReadOnlySpan<double> probe, ReadOnlySpan<double> image);

    /// <summary>
    /// Applies <paramref name="op"/> to <paramref name="probes"/> probes on its Domain, in blocks,
    /// and returns one statistic per probe (and whether the probes were the exact unit basis).
    /// </summary>
    public static (T[] Samples, bool Exact) Collect<T>(LinearOperator op, int probes, int seed, ProbeStatistic<T> stat)
    {
        int n = op.Domain.Size, r = op.Range.Size;
        int m = Count(n, probes, out bool exact);
        var samples = new T[m];
        double[]? image = null;
        Run(n, m, exact, seed, (x, first, c) =>
        {
            var y = Reuse(ref image, (long)c * r);
            op.ApplyBlock(x.AsSpan(0, c * n), y, c);
            for (int j = 0; j < c; j++) samples[first + j] = stat(x.AsSpan(j * n, n), y.Slice(j * r, r));
        }, r);
        return (samples, exact);
    }

    /// <summary>Mean and standard error of the mean of per-probe samples (SE 0 when exact: the mean is then a sum·1/n of exact terms).</summary>
    public static Estimate MeanEstimate(double[] samples, bool exact, double scale = 1.0)
    {
        int m = samples.Length;
        if (exact) return new Estimate(scale * samples.Sum(), 0, m);
        var (mean, se) = SampleStatistics.MeanWithError(samples);
        var est = new Estimate(scale * mean, scale * se, m);
        Numerics.EnsureFinite([est.Value], "estimate");
        return est;
    }

}
