namespace GlobalNtk.Study;

/// <summary>A point estimate with a two-sided confidence interval.</summary>
/// <param name="Value">The estimate on the full sample.</param>
/// <param name="Low">Lower bound of the interval.</param>
/// <param name="High">Upper bound of the interval.</param>
/// <param name="Samples">Number of independent units (seeds) behind it.</param>
public sealed record Interval(double Value, double Low, double High, int Samples);

/// <summary>
/// The study's statistics: percentile bootstrap intervals over seeds, Spearman rank correlation
/// (with a cluster bootstrap over seeds), least-squares slopes. Every resampling is driven by an
/// explicit seed, so the same data give the same interval on every machine and every sharding.
/// </summary>
public static class StudyStatistics
{
    /// <summary>Bootstrap resamples per interval (fixed before any data are seen).</summary>
    public const int Resamples = 2000;
    /// <summary>Coverage of every interval.</summary>
    public const double Level = 0.95;

    /// <summary>
    /// Percentile bootstrap interval of <paramref name="statistic"/> over clusters (usually seeds):
    /// each resample draws as many clusters as there are, with replacement. NaN resamples are
    /// dropped; the interval is NaN when no resample is finite.
    /// </summary>
    public static Interval Bootstrap<T>(IReadOnlyList<T> clusters, Func<IReadOnlyList<T>, double> statistic, int seed)
    {
        ArgumentNullException.ThrowIfNull(clusters);
        if (clusters.Count == 0) return new Interval(double.NaN, double.NaN, double.NaN, 0);
        double value = statistic(clusters);
        var rng = Operators.RngKey.FromSeed(seed).CreateRandom();
        var draws = new List<double>(Resamples);
        var sample = new T[clusters.Count];
        for (int b = 0; b < Resamples; b++)
        {
            for (int i = 0; i < sample.Length; i++) sample[i] = clusters[rng.Next(clusters.Count)];
            double s = statistic(sample);
            if (double.IsFinite(s)) draws.Add(s);
        }
        if (draws.Count == 0) return new Interval(value, double.NaN, double.NaN, clusters.Count);
        draws.Sort();
        double alpha = (1 - Level) / 2;
        return new Interval(value, Quantile(draws, alpha), Quantile(draws, 1 - alpha), clusters.Count);
    }

    /// <summary>Bootstrap interval of the mean of <paramref name="values"/> (one value per seed).</summary>
    public static Interval MeanInterval(IReadOnlyList<double> values, int seed) =>
        Bootstrap(values, v => v.Average(), seed);

    /// <summary>Linear-interpolation quantile (type 7) of sorted values.</summary>
    public static double Quantile(IReadOnlyList<double> sorted, double p)
    {
        if (sorted.Count == 0) return double.NaN;
        double h = (sorted.Count - 1) * Math.Clamp(p, 0, 1);
        int lo = (int)Math.Floor(h), hi = Math.Min(lo + 1, sorted.Count - 1);
        return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
    }

    /// <summary>Spearman rank correlation (average ranks for ties); NaN for fewer than 3 points or a constant series.</summary>
    public static double Spearman(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        if (x.Count != y.Count) throw new ArgumentException($"Spearman: {x.Count} x values but {y.Count} y values.");
        if (x.Count < 3) return double.NaN;
        return Pearson(Ranks(x), Ranks(y));
    }

    /// <summary>Pearson correlation; NaN when either series is constant.</summary>
    public static double Pearson(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        int n = x.Count;
        double mx = x.Average(), my = y.Average(), sxy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < n; i++) { sxy += (x[i] - mx) * (y[i] - my); sxx += (x[i] - mx) * (x[i] - mx); syy += (y[i] - my) * (y[i] - my); }
        return sxx > 0 && syy > 0 ? sxy / Math.Sqrt(sxx * syy) : double.NaN;
    }

    /// <summary>Ranks 1..n, ties sharing their average rank.</summary>
    public static double[] Ranks(IReadOnlyList<double> v)
    {
        var order = Enumerable.Range(0, v.Count).OrderBy(i => v[i]).ToArray();
        var r = new double[v.Count];
        for (int i = 0; i < order.Length;)
        {
            int j = i;
            while (j + 1 < order.Length && v[order[j + 1]] == v[order[i]]) j++;
            for (int k = i; k <= j; k++) r[order[k]] = (i + j) / 2.0 + 1;
            i = j + 1;
        }
        return r;
    }

    /// <summary>
    /// Spearman correlation of points grouped in clusters (e.g. all gains of one seed), with a
    /// cluster bootstrap interval: whole clusters are resampled, so points of one seed are never
    /// treated as independent.
    /// </summary>
    public static Interval SpearmanInterval(IReadOnlyList<(double X, double Y)[]> clusters, int seed) =>
        Bootstrap(clusters, cs =>
        {
            var pts = cs.SelectMany(c => c).Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y)).ToArray();
            return Spearman(pts.Select(p => p.X).ToArray(), pts.Select(p => p.Y).ToArray());
        }, seed);

    /// <summary>Least-squares slope of y on x; NaN with fewer than 2 distinct x.</summary>
    public static double Slope(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        if (x.Count != y.Count) throw new ArgumentException($"Slope: {x.Count} x values but {y.Count} y values.");
        if (x.Count < 2) return double.NaN;
        double mx = x.Average(), my = y.Average(), sxy = 0, sxx = 0;
        for (int i = 0; i < x.Count; i++) { sxy += (x[i] - mx) * (y[i] - my); sxx += (x[i] - mx) * (x[i] - mx); }
        return sxx > 0 ? sxy / sxx : double.NaN;
    }
}
