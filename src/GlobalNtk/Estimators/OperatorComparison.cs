using GlobalNtk.Dense;
using GlobalNtk.Operators;

namespace GlobalNtk.Estimators;

/// <summary>Comparisons of two operators with the same Domain and Range from shared probes (docs/math.md#alignment).</summary>
public static class OperatorComparison
{
    /// <summary>
    /// Alignment ⟨A, B⟩_F / (‖A‖_F ‖B‖_F) ∈ [−1, 1] from shared Rademacher probes:
    /// ⟨A, B⟩_F ≈ mean ⟨Aω, Bω⟩, ‖A‖_F² ≈ mean ‖Aω‖² (the shared probes cancel much of the noise of the
    /// ratio). Jackknife standard error; exact when the budget reaches the dimension.
    /// </summary>
    public static Estimate Alignment(LinearOperator a, LinearOperator b, int probes, int seed)
    {
        var (stats, exact) = Samples(a, b, probes, seed, "Alignment", (ya, yb) =>
            [Numerics.Dot(ya, yb), Numerics.Dot(ya, ya), Numerics.Dot(yb, yb)]);
        static double F(double[] mean)
        {
            double den = Math.Sqrt(mean[1] * mean[2]);
            if (!(den > 0)) throw new InvalidOperationException("Alignment: an operator has zero Frobenius norm.");
            return mean[0] / den;
        }
        return Finish(stats, exact, F);
    }

    /// <summary>
    /// Relative difference ‖A − B‖_F / ‖B‖_F from shared Rademacher probes
    /// (‖(A−B)ω‖² and ‖Bω‖² averaged). Jackknife standard error; exact when the budget reaches the dimension.
    /// </summary>
    public static Estimate RelativeDifference(LinearOperator a, LinearOperator b, int probes, int seed)
    {
        var (stats, exact) = Samples(a, b, probes, seed, "RelativeDifference", (ya, yb) =>
        {
            double d2 = 0;
            for (int i = 0; i < ya.Length; i++) { double d = ya[i] - yb[i]; d2 += d * d; }
            return [d2, Numerics.Dot(yb, yb)];
        });
        static double F(double[] mean)
        {
            if (!(mean[1] > 0)) throw new InvalidOperationException("RelativeDifference: the reference operator B has zero Frobenius norm.");
            return Math.Sqrt(Math.Max(mean[0], 0) / mean[1]);
        }
        return Finish(stats, exact, F);
    }

    private delegate double[] PairStatistic(ReadOnlySpan<double> ya, ReadOnlySpan<double> yb);

    private static (double[][] Stats, bool Exact) Samples(LinearOperator a, LinearOperator b, int probes, int seed, string what, PairStatistic stat)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        LinearOperator.RequireSameShape(a.Domain, b.Domain, $"{what}: domain of {b.Name} vs {a.Name}");
        LinearOperator.RequireSameShape(a.Range, b.Range, $"{what}: range of {b.Name} vs {a.Name}");
        int n = a.Domain.Size, r = a.Range.Size;
        int m = ProbeRunner.Count(n, probes, out bool exact);
        var stats = new double[m][];
        double[]? imageA = null, imageB = null;
        ProbeRunner.Run(n, m, exact, seed, (x, first, c) =>
        {
            var xs = x.AsSpan(0, c * n);
            var ya = ProbeRunner.Reuse(ref imageA, (long)c * r);
            var yb = ProbeRunner.Reuse(ref imageB, (long)c * r);
            a.ApplyBlock(xs, ya, c);
            b.ApplyBlock(xs, yb, c);
            for (int j = 0; j < c; j++) stats[first + j] = stat(ya.Slice(j * r, r), yb.Slice(j * r, r));
        }, r);
        return (stats, exact);
    }

    private static Estimate Finish(double[][] stats, bool exact, Func<double[], double> f)
    {
        int m = stats.Length, d = stats[0].Length;
        var mean = new double[d];
        foreach (var s in stats) for (int i = 0; i < d; i++) mean[i] += s[i] / m;
        double value = f(mean);
        Numerics.EnsureFinite([value], "operator comparison");
        return new Estimate(value, exact ? 0 : SampleStatistics.JackknifeError(stats, f), m);
    }
}
