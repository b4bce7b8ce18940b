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
        var rng = new Random(seed);
        int chunk = BlockBuffer.VectorsPerBlock(Math.Max(dimension, extraVectorSize), probes, EffectiveRank.ProbeBlockElements);
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
        Run(n, m, exact, seed, (x, first, c) =>
        {
            var y = op.ApplyBlock(x.AsSpan(0, c * n), c);
            for (int j = 0; j < c; j++) samples[first + j] = stat(x.AsSpan(j * n, n), y.AsSpan(j * r, r));
        }, r);
        return (samples, exact);
    }

    /// <summary>Mean and standard error of the mean of per-probe samples (SE 0 when exact: the mean is then a sum·1/n of exact terms).</summary>
    public static Estimate MeanEstimate(double[] samples, bool exact, double scale = 1.0)
    {
        int m = samples.Length;
        double mean = samples.Average();
        if (exact) return new Estimate(scale * samples.Sum(), 0, m);
        double var = 0;
        foreach (var s in samples) var += (s - mean) * (s - mean);
        double se = m > 1 ? Math.Sqrt(var / (m - 1) / m) : double.NaN;
        var est = new Estimate(scale * mean, scale * se, m);
        Numerics.EnsureFinite([est.Value], "estimate");
        return est;
    }

    /// <summary>
    /// Delete-one jackknife standard error of a smooth function of the means of per-probe sample
    /// vectors (samples[p] has one entry per averaged quantity).
    /// </summary>
    public static double JackknifeError(double[][] samples, Func<double[], double> f)
    {
        int m = samples.Length;
        if (m < 2) return double.NaN;
        int d = samples[0].Length;
        var sum = new double[d];
        foreach (var s in samples) for (int i = 0; i < d; i++) sum[i] += s[i];
        var loo = new double[m];
        var mean = new double[d];
        for (int p = 0; p < m; p++)
        {
            for (int i = 0; i < d; i++) mean[i] = (sum[i] - samples[p][i]) / (m - 1);
            loo[p] = f(mean);
        }
        double avg = loo.Average(), acc = 0;
        foreach (var v in loo) acc += (v - avg) * (v - avg);
        return Math.Sqrt((m - 1.0) / m * acc);
    }
}
