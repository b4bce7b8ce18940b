using GlobalNtk.Dense;
using GlobalNtk.Operators;

namespace GlobalNtk.Estimators;

/// <summary>
/// Randomised trace estimators (docs/math.md#estimators). Each takes a probe budget and a seed (same seed →
/// same answer), applies the operator to blocks of probes, and is exact (standard error 0)
/// when the budget reaches the dimension, by using unit vectors instead of random probes.
/// </summary>
public static class TraceEstimators
{
    /// <summary>Hutchinson: tr A ≈ (1/m) Σ ωᵢᵀ A ωᵢ with Rademacher ω; one application per probe.</summary>
    public static Estimate Hutchinson(LinearOperator op, int probes, int seed)
    {
        ArgumentNullException.ThrowIfNull(op);
        op.RequireSquare("Hutchinson trace");
        var (samples, exact) = ProbeRunner.Collect(op, probes, seed, probeImage: true, imageImage: false);
        return ProbeRunner.MeanEstimate(samples.Select(p => p.ProbeImage).ToArray(), exact);
    }

    /// <summary>
    /// Hutch++: sketch Q = orth(A S) with ⌊m/3⌋ Rademacher columns, the exact trace of QᵀAQ, plus
    /// Hutchinson with the remaining probes on the deflated (I−QQᵀ)A(I−QQᵀ). At most m
    /// applications; O(1/m) error for PSD A, exact when rank A ≤ m/3. The standard error is the
    /// Hutchinson part's. For an operator that applies float32 natively the sketch, probes and
    /// images are float32, with every reduction (orthonormalisation, dots) summed in float64.
    /// </summary>
    public static Estimate HutchPlusPlus(LinearOperator op, int probes, int seed)
    {
        ArgumentNullException.ThrowIfNull(op);
        op.RequireSquare("Hutch++ trace");
        int n = op.Domain.Size;
        if (n <= probes) return Hutchinson(op, probes, seed);
        if (probes < 3) throw new ArgumentOutOfRangeException(nameof(probes), $"Hutch++ needs at least 3 probes, got {probes}.");
        return ProbeBlock.UsesFloat32(op) ? HutchPlusPlus<float>(op, probes, seed) : HutchPlusPlus<double>(op, probes, seed);
    }

    // Hutch++ on blocks of T: float32 sketch, probes and images for an operator that applies float32
    // natively (ProbeBlock), with the sketch orthonormalised and projected out by float64 sums
    // (Orthonormalizer) and every qᵀAq and gᵀ(Ag) summed in float64.
    private static Estimate HutchPlusPlus<T>(LinearOperator op, int probes, int seed) where T : unmanaged
    {
        int n = op.Domain.Size;
        var rng = RngKey.FromSeed(seed).CreateRandom();
        int k = probes / 3;

        // Sketch: Q = orth(A S).
        var s = new T[(long)k * n];
        ProbeBlock.Rademacher(rng, s);
        var q = new T[(long)k * n];
        ProbeBlock.Apply<T>(op, s, q, k);
        int r = Orthonormalizer.Orthonormalize<T>(q, k, n, ReadOnlySpan<T>.Empty, 0, rng: null);

        // Exact trace on span(Q): Σ qᵢᵀ A qᵢ.
        double top = 0;
        if (r > 0)
        {
            var aq = new T[(long)r * n];
            ProbeBlock.Apply<T>(op, q.AsSpan(0, r * n), aq, r);
            for (int j = 0; j < r; j++) top += ProbeBlock.Dot<T>(q.AsSpan(j * n, n), aq.AsSpan(j * n, n));
        }

        // Hutchinson on the deflated operator with the rest of the budget.
        int g = probes - k - r;
        var gBlock = new T[(long)g * n];
        ProbeBlock.Rademacher(rng, gBlock);
        Orthonormalizer.ProjectOut<T>(q.AsSpan(0, r * n), r, n, gBlock, g);
        var ag = new T[(long)g * n];
        ProbeBlock.Apply<T>(op, gBlock, ag, g);
        Orthonormalizer.ProjectOut<T>(q.AsSpan(0, r * n), r, n, ag, g);
        var samples = new double[g];
        for (int j = 0; j < g; j++) samples[j] = ProbeBlock.Dot<T>(gBlock.AsSpan(j * n, n), ag.AsSpan(j * n, n));
        var rest = ProbeRunner.MeanEstimate(samples, exact: false);
        return new Estimate(top + rest.Value, rest.StandardError, probes);
    }

    /// <summary>‖A‖_F² = tr(A*A) ≈ (1/m) Σ ‖A ωᵢ‖² (any shapes); one application per probe.</summary>
    public static Estimate FrobeniusNormSquared(LinearOperator op, int probes, int seed)
    {
        ArgumentNullException.ThrowIfNull(op);
        var (samples, exact) = ProbeRunner.Collect(op, probes, seed, probeImage: false, imageImage: true);
        return ProbeRunner.MeanEstimate(samples.Select(p => p.ImageImage).ToArray(), exact);
    }

    /// <summary>
    /// Unbiased tr(A²) ≈ (1/m) Σ ωᵢᵀ A (A ωᵢ) for any square A (two applications per probe); for
    /// operators flagged <see cref="LinearOperator.IsSelfAdjoint"/>, or when
    /// <paramref name="assumeSelfAdjoint"/> is set, tr(A²) = ‖A‖_F² is estimated as (1/m) Σ ‖A ωᵢ‖²
    /// (one application per probe).
    /// </summary>
    public static Estimate TraceOfSquare(LinearOperator op, int probes, int seed, bool assumeSelfAdjoint = false)
    {
        ArgumentNullException.ThrowIfNull(op);
        op.RequireSquare("tr(A²)");
        if (op.IsSelfAdjoint || assumeSelfAdjoint) return FrobeniusNormSquared(op, probes, seed);
        return Hutchinson(op * op, probes, seed); // ωᵀA(Aω), each probe's two applications in one block pass
    }
}
