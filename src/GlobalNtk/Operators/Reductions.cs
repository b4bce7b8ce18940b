using GlobalNtk.Dense;

namespace GlobalNtk.Operators;

/// <summary>A probe-estimated partial trace with its entrywise standard error.</summary>
/// <param name="Value">The (estimated) partial trace, an operator on the kept axes.</param>
/// <param name="StandardError">Entrywise standard error, row-major like Value.Matrix (all 0 when exact).</param>
/// <param name="Probes">Rademacher probes used (or the reduced size when computed exactly).</param>
/// <param name="Exact">Whether the result is exact (dense operator or unit-vector basis).</param>
public sealed record PartialTraceEstimate(DenseOperator Value, double[] StandardError, int Probes, bool Exact)
{
    /// <summary>
    /// Probe-group means of the estimate (for a delete-a-group jackknife), each row-major like
    /// Value.Matrix; empty when exact.
    /// </summary>
    internal double[][] GroupMeans { get; init; } = [];
}

/// <summary>
/// Reductions of a square operator on a multi-axis shape to a small dense operator on the remaining
/// axes (docs/math.md#partial-effective-rank). <see cref="PartialTrace"/> sums the diagonal over the traced axes;
/// <see cref="AxisAverage"/> restricts to inputs constant along the averaged axes and averages
/// the outputs. They agree only for Kronecker products.
/// </summary>
public static class Reductions
{
    /// <summary>
    /// The partial trace over <paramref name="tracedAxes"/>:
    /// [tr_S A]_{k,k'} = Σ_t A[(k,t),(k',t)] (docs/math.md#partial-effective-rank), an operator on the other axes.
    /// Exact for <see cref="DenseOperator"/>s and whenever the traced size is at most
    /// <paramref name="probes"/> (unit vectors on the traced axes); otherwise estimated with
    /// <paramref name="probes"/> Rademacher probes on the traced axes, each costing one
    /// application per kept index.
    /// </summary>
    public static DenseOperator PartialTrace(LinearOperator op, IEnumerable<string> tracedAxes, int probes = 30, int seed = 0) =>
        PartialTraceWithError(op, tracedAxes, probes, seed).Value;

    /// <summary><see cref="PartialTrace"/> with its entrywise standard error.</summary>
    public static PartialTraceEstimate PartialTraceWithError(LinearOperator op, IEnumerable<string> tracedAxes, int probes = 30, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(op);
        op.RequireSquare("PartialTrace");
        var split = new AxisSplit(op.Domain, tracedAxes, "PartialTrace");
        int nk = split.Kept, nt = split.Reduced;
        var full = split.Full;
        var result = new double[(long)nk * nk];

        if (op is DenseOperator d)
        {
            var a = d.Matrix;
            int n = d.Columns;
            for (int k = 0; k < nk; k++)
                for (int k2 = 0; k2 < nk; k2++)
                {
                    double s = 0;
                    for (int t = 0; t < nt; t++) s += a[(long)full[k * nt + t] * n + full[k2 * nt + t]];
                    result[k * nk + k2] = s;
                }
            return new(new DenseOperator(result, split.KeptShape, split.KeptShape), new double[result.Length], 0, true);
        }

        if (probes < 1) throw new ArgumentOutOfRangeException(nameof(probes), $"PartialTrace: probe budget must be at least 1, got {probes}.");
        bool exact = nt <= probes;
        int m = exact ? nt : probes;
        // Probe p on the traced axes: unit vector e_p (exact) or Rademacher ω_p.
        var omega = new double[(long)m * nt];
        if (exact) for (int p = 0; p < m; p++) omega[(long)p * nt + p] = 1.0;
        else RandomProbes.Rademacher(RngKey.FromSeed(seed).CreateRandom(), omega);

        int groups = exact ? 0 : Math.Min(m, 10);
        var groupSums = Enumerable.Range(0, groups).Select(_ => new double[result.Length]).ToArray();
        var groupCounts = new int[groups];
        var sumSq = new double[result.Length];
        // Probe and image blocks in float32 when the operator applies float32 natively (ProbeBlock);
        // the contractions and sums stay float64.
        if (ProbeBlock.UsesFloat32(op)) PartialTraceProbes<float>(op, split, omega, m, exact, result, sumSq, groupSums, groupCounts);
        else PartialTraceProbes<double>(op, split, omega, m, exact, result, sumSq, groupSums, groupCounts);

        var se = new double[result.Length];
        if (!exact)
        {
            for (long i = 0; i < result.Length; i++)
            {
                double mean = result[i] / m;
                se[i] = SampleStatistics.StandardError(Math.Max(0, sumSq[i] - m * mean * mean), m);
                result[i] = mean;

            }
            for (int g = 0; g < groups; g++) Numerics.Scale(groupSums[g], 1.0 / groupCounts[g]);
        }
        Numerics.EnsureFinite(result, $"PartialTrace({op.Name})");
        return new(new DenseOperator(result, split.KeptShape, split.KeptShape), se, m, exact) { GroupMeans = groupSums };
    }

    // Sums of the partial trace's columns over m probes (job j = probe j / nk on input column j % nk), in blocks of T.
    private static void PartialTraceProbes<T>(LinearOperator op, AxisSplit split, double[] omega, int m, bool exact,
        double[] result, double[] sumSq, double[][] groupSums, int[] groupCounts) where T : unmanaged
    {
        int nk = split.Kept, nt = split.Reduced, groups = groupSums.Length;
        var full = split.Full;
        int n0 = op.Domain.Size;
        long jobs = (long)m * nk; // job j = (probe p = j / nk, input column k' = j % nk)
        int chunk = ProbeBlock.VectorsPerBlock<T>(n0, (int)Math.Min(jobs, int.MaxValue));
        using var xb = new ScratchBlock<T>((long)chunk * n0);
        using var yb = new ScratchBlock<T>((long)chunk * n0);
        var col = new double[nk];
        for (long j0 = 0; j0 < jobs; j0 += chunk)
        {
            int c = (int)Math.Min(chunk, jobs - j0);
            var x = xb.Span.Slice(0, c * n0);
            var y = yb.Span.Slice(0, c * n0);
            x.Clear();
            for (int i = 0; i < c; i++)
            {
                long j = j0 + i; int p = (int)(j / nk), k2 = (int)(j % nk);
                var w = omega.AsSpan((int)((long)p * nt), nt);
                var xi = x.Slice(i * n0, n0);
                for (int t = 0; t < nt; t++) ProbeBlock.Set(xi, full[k2 * nt + t], w[t]);
            }
            ProbeBlock.Apply<T>(op, x, y, c);
            for (int i = 0; i < c; i++)
            {
                long j = j0 + i; int p = (int)(j / nk), k2 = (int)(j % nk);
                var w = omega.AsSpan((int)((long)p * nt), nt);
                ReadOnlySpan<T> yi = y.Slice(i * n0, n0);
                for (int k = 0; k < nk; k++)
                {
                    double s = 0;
                    int baseK = k * nt;
                    for (int t = 0; t < nt; t++) s += w[t] * ProbeBlock.Get(yi, full[baseK + t]);
                    col[k] = s;
                }
                for (int k = 0; k < nk; k++)
                {
                    long idx = (long)k * nk + k2;
                    result[idx] += col[k];
                    if (!exact)
                    {
                        sumSq[idx] += col[k] * col[k];
                        groupSums[p % groups][idx] += col[k];
                    }
                }
                if (!exact && k2 == 0) groupCounts[p % groups]++;
            }
        }
    }

    /// <summary>
    /// The axis average over <paramref name="averagedAxes"/>: (Eᵀ A E)/n with E = ones ⊗ I the map
    /// that copies a kept-axes vector along the averaged axes and n their total size, i.e.
    /// [avg A]_{k,k'} = (1/n) Σ_{t,t'} A[(k,t),(k',t')] (docs/math.md#axis-average). Exact; costs one
    /// application per kept index.
    /// </summary>
    public static DenseOperator AxisAverage(LinearOperator op, IEnumerable<string> averagedAxes)
    {
        ArgumentNullException.ThrowIfNull(op);
        op.RequireSquare("AxisAverage");
        var split = new AxisSplit(op.Domain, averagedAxes, "AxisAverage");
        int nk = split.Kept, nt = split.Reduced, n0 = op.Domain.Size;
        var full = split.Full;
        var result = new double[(long)nk * nk];
        if (ProbeBlock.UsesFloat32(op)) AxisAverageColumns<float>(op, split, result);
        else AxisAverageColumns<double>(op, split, result);
        Numerics.EnsureFinite(result, $"AxisAverage({op.Name})");
        return new DenseOperator(result, split.KeptShape, split.KeptShape);
    }

    // Columns of the axis average, in blocks of T (float32 for a native float32 operator); sums in float64.
    private static void AxisAverageColumns<T>(LinearOperator op, AxisSplit split, double[] result) where T : unmanaged
    {
        int nk = split.Kept, nt = split.Reduced, n0 = op.Domain.Size;
        var full = split.Full;
        int chunk = ProbeBlock.VectorsPerBlock<T>(n0, nk);
        using var xb = new ScratchBlock<T>((long)chunk * n0);
        using var yb = new ScratchBlock<T>((long)chunk * n0);
        for (int k0 = 0; k0 < nk; k0 += chunk)
        {
            int c = Math.Min(chunk, nk - k0);
            var x = xb.Span.Slice(0, c * n0);
            var y = yb.Span.Slice(0, c * n0);
            x.Clear();
            for (int i = 0; i < c; i++)
                for (int t = 0; t < nt; t++) ProbeBlock.Set(x, i * n0 + full[(k0 + i) * nt + t], 1.0);
            ProbeBlock.Apply<T>(op, x, y, c);
            for (int i = 0; i < c; i++)
            {
                ReadOnlySpan<T> yi = y.Slice(i * n0, n0);
                for (int k = 0; k < nk; k++)
                {
                    double s = 0;
                    for (int t = 0; t < nt; t++) s += ProbeBlock.Get(yi, full[k * nt + t]);
                    result[(long)k * nk + k0 + i] = s / nt;
                }
            }
        }
    }
}
