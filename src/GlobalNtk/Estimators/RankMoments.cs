using GlobalNtk.Dense;
using GlobalNtk.Operators;

namespace GlobalNtk.Estimators;

/// <summary>
/// Orthonormal vectors V with their images A·V (e.g. converged Ritz vectors of a top-eigenpair
/// solve), used to deflate trace estimators: tr A = tr(VᵀAV) + tr((I−VVᵀ)A(I−VVᵀ)) and, for
/// self-adjoint A, tr A² = ‖AV‖_F² + tr((I−VVᵀ)A²(I−VVᵀ)), where only the second terms are probed.
/// </summary>
public sealed class Deflation
{
    private Deflation(double[][] vectors, double[] images, int count, int dimension)
    {
        Vectors = vectors; Images = images; Count = count; Dimension = dimension;
    }

    internal double[][] Vectors { get; }
    internal double[] Images { get; }
    /// <summary>Number of deflation vectors.</summary>
    public int Count { get; }
    /// <summary>Length of each vector.</summary>
    public int Dimension { get; }

    /// <summary>Deflation by the eigenvectors of a top-eigenpair solve (no new applications: their images are kept by the solver).</summary>
    public static Deflation FromEigenpairs(EigenResult eig)
    {
        ArgumentNullException.ThrowIfNull(eig);
        if (eig.Images is null || eig.Vectors.Length == 0) throw new ArgumentException("Deflation needs the images A·v of a budgeted top-eigenpair solve.", nameof(eig));
        return new Deflation(eig.Vectors, eig.Images, eig.Vectors.Length, eig.Vectors[0].Length);
    }
}

/// <summary>
/// (I−VVᵀ) A (I−VVᵀ) for a deflation V of A: the part of A the probes still have to estimate once
/// the low-rank rest A − (I−VVᵀ)A(I−VVᵀ) = AVVᵀ + VVᵀA − VVᵀAVVᵀ is known exactly.
/// </summary>
internal sealed class DeflatedOperator(LinearOperator inner, Deflation deflation) : LinearOperator(inner.Domain, inner.Range)
{
    public override string Name => $"deflated {inner.Name}";
    public override bool IsSelfAdjoint => inner.IsSelfAdjoint;

    protected override void ApplyBlockCore(ReadOnlySpan<double> x, Span<double> y, int count)
    {
        int n = Domain.Size;
        using var xt = new BlockBuffer(x.Length);
        x.CopyTo(xt.Span);
        Project(xt.Span, count, n);
        inner.ApplyBlock(xt.Span, y, count);
        Project(y, count, n);
    }

    protected override void ApplyAdjointBlockCore(ReadOnlySpan<double> x, Span<double> y, int count)
    {
        int n = Domain.Size;
        using var xt = new BlockBuffer(x.Length);
        x.CopyTo(xt.Span);
        Project(xt.Span, count, n);
        inner.ApplyAdjointBlock(xt.Span, y, count);
        Project(y, count, n);
    }

    private void Project(Span<double> block, int count, int n)
    {
        for (int j = 0; j < count; j++)
        {
            var xj = block.Slice(j * n, n);
            foreach (var v in deflation.Vectors) Numerics.Axpy(-Numerics.Dot(v, xj), v, xj);
        }
    }
}

/// <summary>
/// Unbiased estimates of tr A and tr A² = ‖A‖_F² of a self-adjoint operator and the effective
/// rank PR = (tr A)²/tr A² built from them (numerator from independent probe pairs, jackknife
/// standard error), all from the same <see cref="Applications"/> probe applications.
/// </summary>
/// <param name="Trace">tr A.</param>
/// <param name="TraceOfSquare">tr A² = ‖A‖_F².</param>
/// <param name="ParticipationRatio">PR = (tr A)²/tr A².</param>
/// <param name="Applications">Operator applications used (the deflation's own are not counted: they were reused).</param>
/// <param name="Deflated">Number of deflation vectors whose exact contribution was added.</param>
public sealed record RankMoments(Estimate Trace, Estimate TraceOfSquare, Estimate ParticipationRatio, int Applications, int Deflated);

/// <summary>How a partial effective rank was computed.</summary>
public enum PartialRankMethod
{
    /// <summary>The exact partial trace (unit vectors on the traced axes, or a dense operator).</summary>
    Exact,
    /// <summary>One application per kept index per Rademacher probe on the traced axes (cheap for short kept axes).</summary>
    PerIndex,
    /// <summary>Kronecker probes ψ⊗ω with independent pairs: two applications per probe whatever the kept size.</summary>
    Kronecker,
}

/// <summary>
/// The cost model that chooses how to estimate a partial effective rank within a budget of
/// operator applications (the one place this choice is made).
/// </summary>
/// <param name="Method">The chosen method.</param>
/// <param name="Probes">Probes: traced-axes probes (per-index; the traced size when exact) or Kronecker probe pairs.</param>
/// <param name="Applications">Operator applications the method will use.</param>
public sealed record PartialRankPlan(PartialRankMethod Method, int Probes, long Applications)
{
    /// <summary>Fewest traced-axes probes for the per-index path (its standard error needs independent groups).</summary>
    public const int MinPerIndexProbes = 3;
    /// <summary>Fewest Kronecker probes (pairs for the numerator and a jackknife).</summary>
    public const int MinKroneckerProbes = 3;

    /// <summary>
    /// Exact when every (kept, traced) unit pair fits the budget (kept·traced ≤ budget
    /// applications); else per-index with ⌊budget/kept⌋ probes when that gives at least
    /// <see cref="MinPerIndexProbes"/> (its estimate averages over the whole traced space per
    /// application, so it is the more accurate per application while it fits); else Kronecker with
    /// ⌊budget/2⌋ probes.
    /// </summary>
    public static PartialRankPlan Choose(int keptSize, int tracedSize, int budget)
    {
        if (keptSize < 1 || tracedSize < 1) throw new ArgumentOutOfRangeException(nameof(keptSize), "Partial rank plan: axis sizes must be positive.");
        if (budget < 2 * MinKroneckerProbes) throw new ArgumentOutOfRangeException(nameof(budget), $"Partial rank budget must be at least {2 * MinKroneckerProbes} applications, got {budget}.");
        long exact = (long)keptSize * tracedSize;
        if (exact <= budget) return new(PartialRankMethod.Exact, tracedSize, exact);
        int perIndex = budget / keptSize;
        if (perIndex >= MinPerIndexProbes) return new(PartialRankMethod.PerIndex, perIndex, (long)perIndex * keptSize);
        return new(PartialRankMethod.Kronecker, budget / 2, 2L * (budget / 2));
    }
}

/// <summary>
/// A partial effective rank PR(M) = (tr M)²/‖M‖_F² of M = tr_other(A), with unbiased tr M and
/// ‖M‖_F² (and their standard errors) and the plan that produced them.
/// </summary>
public sealed record PartialRankEstimate(Estimate ParticipationRatio, Estimate Trace, Estimate FrobeniusSquared, PartialRankPlan Plan);
