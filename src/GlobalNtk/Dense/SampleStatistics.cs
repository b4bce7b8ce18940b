namespace GlobalNtk.Dense;

/// <summary>
/// The statistics every randomised estimate reports, written once: the mean of m independent
/// samples with its standard error, and the delete-one jackknife error of a smooth function of
/// sample means (docs/math.md#standard-errors).
/// </summary>
public static class SampleStatistics
{
    /// <summary>
    /// Standard error of the mean of <paramref name="count"/> samples whose squared deviations from
    /// their mean sum to <paramref name="sumSquaredDeviations"/>: √(s²/m) with the unbiased sample
    /// variance s² = Σ(x − x̄)²/(m − 1); NaN when m &lt; 2 (no error can be estimated).
    /// </summary>
    public static double StandardError(double sumSquaredDeviations, int count) =>
        count > 1 ? Math.Sqrt(sumSquaredDeviations / (count - 1) / count) : double.NaN;

    /// <summary>The mean of <paramref name="samples"/> and its <see cref="StandardError"/> (two passes).</summary>
    public static (double Mean, double StandardError) MeanWithError(ReadOnlySpan<double> samples)
    {
        int m = samples.Length;
        if (m == 0) throw new ArgumentException("Mean of an empty sample.");
        double sum = 0;
        foreach (var s in samples) sum += s;
        double mean = sum / m, ssd = 0;
        foreach (var s in samples) ssd += (s - mean) * (s - mean);
        return (mean, StandardError(ssd, m));
    }

    /// <summary>
    /// Delete-one jackknife standard error of f(x̄), where x̄ is the mean of the sample vectors
    /// <paramref name="samples"/> (samples[p] holds one entry per averaged quantity):
    /// √((m − 1)/m · Σ_p (f(x̄₋ₚ) − mean f)²), with x̄₋ₚ the mean without sample p. Samples may be
    /// means of equal groups (delete-a-group jackknife). NaN when m &lt; 2.
    /// </summary>
    public static double JackknifeError(IReadOnlyList<double[]> samples, Func<double[], double> f)
    {
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentNullException.ThrowIfNull(f);
        int m = samples.Count;
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
