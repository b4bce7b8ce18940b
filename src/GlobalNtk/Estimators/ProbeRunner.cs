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
    /// (Rademacher, or unit vectors when <paramref name="exact"/>) of length <paramref name="dimension"/>,
    /// with elements of T: float32 when the operator applies float32 natively
    /// (<see cref="ProbeBlock.UsesFloat32"/>; the probes are exact in float32, and the same values
    /// from the same stream), float64 otherwise. Blocks hold the same vectors in either precision (<see cref="ProbeBlock.VectorsPerBlock"/>).
    /// </summary>
    public static void Run<T>(int dimension, int probes, bool exact, int seed, Action<T[], int, int> onBlock, int extraVectorSize = 0)
        where T : unmanaged
    {
        var rng = RngKey.FromSeed(seed).CreateRandom();
        int chunk = ProbeBlock.VectorsPerBlock<T>(Math.Max(dimension, extraVectorSize), probes);
        var x = new T[(long)chunk * dimension];
        for (int first = 0; first < probes; first += chunk)
        {
            int c = Math.Min(chunk, probes - first);
            var block = c == chunk ? x : new T[(long)c * dimension];
            if (exact)
            {
                Array.Clear(block);
                for (int j = 0; j < c; j++) ProbeBlock.Set<T>(block, j * dimension + first + j, 1.0);
            }
            else ProbeBlock.Rademacher(rng, block.AsSpan(0, c * dimension));
            onBlock(block, first, c);
        }
    }

    /// <summary>
    /// The first <paramref name="length"/> elements of <paramref name="buffer"/>, grown (never
    /// shrunk) as needed: one image block per estimator, reused across its probe blocks instead of
    /// a new state-sized array per block.
    /// </summary>
    public static Span<T> Reuse<T>(ref T[]? buffer, long length)
    {
        if (buffer is null || buffer.LongLength < length) buffer = new T[length];
        return buffer.AsSpan(0, (int)length);
    }

    /// <summary>Per-probe products of a probe ω and its image Aω, accumulated in float64.</summary>
    public readonly record struct ProbeProducts(double ProbeImage, double ImageImage);

    /// <summary>
    /// Applies <paramref name="op"/> to <paramref name="probes"/> probes on its Domain, in blocks
    /// (float32 ones when it applies float32 natively), and returns per probe ωᵀAω (when the
    /// operator is square and <paramref name="probeImage"/>) and ‖Aω‖² (when <paramref name="imageImage"/>),
    /// with whether the probes were the exact unit basis.
    /// </summary>
    public static (ProbeProducts[] Samples, bool Exact) Collect(LinearOperator op, int probes, int seed, bool probeImage, bool imageImage) =>
        ProbeBlock.UsesFloat32(op)
            ? Collect<float>(op, probes, seed, probeImage, imageImage)
            : Collect<double>(op, probes, seed, probeImage, imageImage);

    private static (ProbeProducts[] Samples, bool Exact) Collect<T>(LinearOperator op, int probes, int seed, bool probeImage, bool imageImage)
        where T : unmanaged
    {
        int n = op.Domain.Size, r = op.Range.Size;
        int m = Count(n, probes, out bool exact);
        var samples = new ProbeProducts[m];
        T[]? image = null;
        Run<T>(n, m, exact, seed, (x, first, c) =>
        {
            var y = Reuse(ref image, (long)c * r);
            ProbeBlock.Apply<T>(op, x.AsSpan(0, c * n), y, c);
            for (int j = 0; j < c; j++)
            {
                ReadOnlySpan<T> yj = y.Slice(j * r, r);
                samples[first + j] = new(probeImage ? ProbeBlock.Dot<T>(x.AsSpan(j * n, n), yj) : 0, imageImage ? ProbeBlock.Dot(yj, yj) : 0);
            }
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
