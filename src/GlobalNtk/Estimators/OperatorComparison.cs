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
        var (stats, exact) = Samples(a, b, probes, seed, "Alignment", Products.Alignment);
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
        var (stats, exact) = Samples(a, b, probes, seed, "RelativeDifference", Products.Difference);
        static double F(double[] mean)
        {
            if (!(mean[1] > 0)) throw new InvalidOperationException("RelativeDifference: the reference operator B has zero Frobenius norm.");
            return Math.Sqrt(Math.Max(mean[0], 0) / mean[1]);
        }
        return Finish(stats, exact, F);
    }

    private enum Products { Alignment, Difference }

    // Per probe [⟨Aω, Bω⟩, ‖Aω‖², ‖Bω‖²] or [‖(A−B)ω‖², ‖Bω‖²], accumulated in float64 from image
    // blocks of T (float32 when both operators apply float32 natively).
    private static double[] Statistic<T>(ReadOnlySpan<T> ya, ReadOnlySpan<T> yb, Products which) where T : unmanaged
    {
        if (which == Products.Alignment) return [ProbeBlock.Dot(ya, yb), ProbeBlock.Dot(ya, ya), ProbeBlock.Dot(yb, yb)];
        double d2 = 0;
        for (int i = 0; i < ya.Length; i++) { double d = ProbeBlock.Get(ya, i) - ProbeBlock.Get(yb, i); d2 += d * d; }
        return [d2, ProbeBlock.Dot(yb, yb)];
    }

    private static (double[][] Stats, bool Exact) Samples(LinearOperator a, LinearOperator b, int probes, int seed, string what, Products which)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        LinearOperator.RequireSameShape(a.Domain, b.Domain, $"{what}: domain of {b.Name} vs {a.Name}");
        LinearOperator.RequireSameShape(a.Range, b.Range, $"{what}: range of {b.Name} vs {a.Name}");
        return ProbeBlock.UsesFloat32(a) && ProbeBlock.UsesFloat32(b)
            ? Samples<float>(a, b, probes, seed, which)
            : Samples<double>(a, b, probes, seed, which);
    }

    private static (double[][] Stats, bool Exact) Samples<T>(LinearOperator a, LinearOperator b, int probes, int seed, Products which) where T : unmanaged
    {
        int n = a.Domain.Size, r = a.Range.Size;
        int m = ProbeRunner.Count(n, probes, out bool exact);
        var stats = new double[m][];
        T[]? imageA = null, imageB = null;
        ProbeRunner.Run<T>(n, m, exact, seed, (x, first, c) =>
        {
            var xs = x.AsSpan(0, c * n);
            var ya = ProbeRunner.Reuse(ref imageA, (long)c * r);
            var yb = ProbeRunner.Reuse(ref imageB, (long)c * r);
            ProbeBlock.Apply<T>(a, xs, ya, c);
            ProbeBlock.Apply<T>(b, xs, yb, c);
            for (int j = 0; j < c; j++) stats[first + j] = Statistic<T>(ya.Slice(j * r, r), yb.Slice(j * r, r), which);
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
