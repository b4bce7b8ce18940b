using System.Runtime.InteropServices;
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
    private Deflation(double[][]? vectors, double[]? images, float[][]? single, float[]? singleImages, int count, int dimension)
    {
        Vectors = vectors; Images = images; SingleVectors = single; SingleImages = singleImages; Count = count; Dimension = dimension;
    }

    // One pair is set: float64 vectors and images, or float32 ones (from a float32 solve, half the memory).
    internal double[][]? Vectors { get; }
    internal double[]? Images { get; }
    internal float[][]? SingleVectors { get; }
    internal float[]? SingleImages { get; }
    /// <summary>Whether the vectors and images are stored in float32 (they came from a float32 solve).</summary>
    public bool IsSingle => SingleVectors is not null;
    /// <summary>Number of deflation vectors.</summary>
    public int Count { get; }
    /// <summary>Length of each vector.</summary>
    public int Dimension { get; }

    /// <summary>
    /// Deflation by the eigenvectors of a top-eigenpair solve (no new applications: their images
    /// are kept by the solver), in the precision the solve stored them (<see cref="EigenResult.IsSingle"/>).
    /// </summary>
    public static Deflation FromEigenpairs(EigenResult eig)
    {
        ArgumentNullException.ThrowIfNull(eig);
        if (eig.SingleVectors is { Length: > 0 } single && eig.SingleImages is { } singleImages)
            return new Deflation(null, null, single, singleImages, single.Length, single[0].Length);
        if (eig.Images is null || eig.IsSingle || eig.Vectors.Length == 0) throw new ArgumentException("Deflation needs the images A·v of a budgeted top-eigenpair solve.", nameof(eig));
        return new Deflation(eig.Vectors, eig.Images, null, null, eig.Vectors.Length, eig.Vectors[0].Length);
    }

    /// <summary>vᵢᵀ(A vⱼ), summed in float64.</summary>
    internal double VectorDotImage(int i, int j)
    {
        int n = Dimension;
        return Vectors is { } v
            ? Numerics.Dot(v[i], Images.AsSpan((int)((long)j * n), n))
            : Float32.DotWide(SingleVectors![i], SingleImages.AsSpan((int)((long)j * n), n));
    }

    /// <summary>dst = A·vᵢ in float64 (widened exactly from float32).</summary>
    internal void ImageInto(int i, Span<double> dst)
    {
        int n = Dimension;
        if (Images is { } im) im.AsSpan((int)((long)i * n), n).CopyTo(dst);
        else Float32.Widen(SingleImages.AsSpan((int)((long)i * n), n), dst);
    }

    /// <summary>dst += alpha·vᵢ, formed in float64.</summary>
    internal void AddVector(double alpha, int i, Span<double> dst)
    {
        if (Vectors is { } v) Numerics.Axpy(alpha, v[i], dst);
        else Float32.AddWidened(SingleVectors![i], alpha, dst);
    }

    /// <summary>(tr VᵀAV, ‖AV‖_F²) = (Σ vᵢᵀ(A vᵢ), Σ ‖A vᵢ‖²) over the first <paramref name="count"/> vectors, summed in float64.</summary>
    internal (double Trace, double Square) ExactShares(int count)
    {
        double ct = 0, cs = 0;
        int n = Dimension;
        for (int i = 0; i < count; i++)
        {
            if (Vectors is { } v)
            {
                var av = Images.AsSpan((int)((long)i * n), n);
                ct += Numerics.Dot(v[i], av);
                cs += Numerics.Dot(av, av);
            }
            else
            {
                ReadOnlySpan<float> av = SingleImages.AsSpan((int)((long)i * n), n);
                ct += Float32.DotWide(SingleVectors![i], av);
                cs += Float32.DotWide(av, av);
            }
        }
        return (ct, cs);
    }

    /// <summary>
    /// x ← (I − VVᵀ)x, one vector at a time (modified Gram–Schmidt): each coefficient vᵀx is summed
    /// in float64 and each element of x formed in float64 and rounded once into T, whichever
    /// precision V and x are stored in. Float64 V on float64 x is the plain float64 loop.
    /// </summary>
    internal void Project<T>(Span<T> x) where T : unmanaged
    {
        if (Vectors is { } vectors)
        {
            foreach (var v in vectors) ProbeBlock.Axpy(-ProbeBlock.Dot<T>(v, x), v, x);
            return;
        }
        foreach (var v in SingleVectors!)
        {
            if (typeof(T) == typeof(float))
            {
                var xf = MemoryMarshal.Cast<T, float>(x);
                ProbeBlock.AxpyWide(-Float32.DotWide(v, xf), v, xf);
            }
            else
            {
                var xd = MemoryMarshal.Cast<T, double>(x);
                Float32.AddWidened(v, -ProbeBlock.Dot<float>(xd, v), xd);
            }
        }
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

    protected override void ApplyBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) => Sandwich(x, y, count, adjoint: false);

    protected override void ApplyAdjointBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) => Sandwich(x, y, count, adjoint: true);

    // Float32 blocks stay float32 around a native float32 operator: the projections' dot products
    // accumulate in float64 against the deflation vectors (float32 from a float32 solve), each
    // element rounded once per vector.
    internal override bool AppliesFloat32Natively => inner.AppliesFloat32Natively;

    protected override void ApplyBlockCore(ReadOnlySpan<float> x, Span<float> y, int count) => Sandwich(x, y, count, adjoint: false);

    protected override void ApplyAdjointBlockCore(ReadOnlySpan<float> x, Span<float> y, int count) => Sandwich(x, y, count, adjoint: true);

    // Y = (I−VVᵀ) A (I−VVᵀ) X (A* for the adjoint) on a block of T, X left as it was.
    private void Sandwich<T>(ReadOnlySpan<T> x, Span<T> y, int count, bool adjoint) where T : unmanaged
    {
        int n = Domain.Size;
        using var xt = new ScratchBlock<T>(x.Length);
        x.CopyTo(xt.Span);
        Project(xt.Span, count, n);
        if (adjoint) ProbeBlock.ApplyAdjoint<T>(inner, xt.Span, y, count);
        else ProbeBlock.Apply<T>(inner, xt.Span, y, count);
        Project(y, count, n);
    }

    // x_j ← (I − VVᵀ) x_j: the vectors of a block split over the processors (each projected
    // exactly as by the serial loop), since these 2k state-sized passes per vector otherwise run on
    // one thread between the operator's parallel sweeps.
    private unsafe void Project<T>(Span<T> block, int count, int n) where T : unmanaged
    {
        fixed (T* pb = block)
        {
            nint ib = (nint)pb;
            Elementwise.For(count, (long)count * n * deflation.Count, (j0, j1) =>
            {
                for (int j = j0; j < j1; j++)
                {
                    var xj = new Span<T>((T*)ib + (long)j * n, n);
                    deflation.Project(xj);
                }
            });
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
public sealed record RankMoments(Estimate Trace, Estimate TraceOfSquare, Estimate ParticipationRatio, int Applications, int Deflated)
{
    /// <summary>Most probes allowed (the budget; equal to <see cref="Applications"/> unless a relative target stopped early).</summary>
    public int Budget { get; init; } = -1;
    /// <summary>Whether PR's standard error reached the relative target (true when exact; false when no target was set).</summary>
    public bool TargetReached { get; init; }
}

/// <summary>
/// Adaptive probe counts: a pilot, then as many more probes as the pilot's standard error predicts
/// for a relative target (SE ∝ 1/√m), within the budget. A few rounds at most, so the count
/// depends on the data only through a few looks: the bias this adds to a mean is a small
/// fraction of its standard error (tested against exact answers).
/// </summary>
public static class AdaptiveProbes
{
    /// <summary>Probes of the pilot, and the fewest before a target may stop the probing.</summary>
    public const int Pilot = 10;

    /// <summary>The first batch: the whole budget without a target, else the pilot (at most the budget).</summary>
    public static int First(int budget, double relativeTarget, int pilot) => relativeTarget > 0 ? Math.Min(budget, pilot) : budget;

    /// <summary>Whether an estimate's standard error is at most <paramref name="relativeTarget"/> times its value (false without a target).</summary>
    public static bool Reached(Estimate e, double relativeTarget) =>
        e.Exact || (relativeTarget > 0 && e.StandardError <= relativeTarget * Math.Abs(e.Value));

    /// <summary>
    /// Total samples to reach the target from <paramref name="done"/> samples with estimate
    /// <paramref name="e"/> (10 % margin, at least a quarter more per round), capped at
    /// <paramref name="cap"/>; <paramref name="done"/> when the target is met (with at least
    /// <paramref name="min"/> samples) or the cap is reached.
    /// </summary>
    public static int Next(int done, int cap, Estimate e, double relativeTarget, int min)
    {
        if (done >= cap) return done;
        if (relativeTarget <= 0) return cap;
        if (done >= min && Reached(e, relativeTarget)) return done;
        double ratio = double.IsFinite(e.StandardError) && e.Value != 0 ? e.StandardError / (relativeTarget * Math.Abs(e.Value)) : 2;
        long need = (long)Math.Ceiling(1.1 * done * ratio * ratio);
        need = Math.Max(need, Math.Max(min, done + Math.Max(2, done / 4)));
        return (int)Math.Min(cap, need);
    }
}

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
    /// <summary>
    /// Fewest traced-axes probes for the per-index path: one independent group each, and a
    /// delete-a-group jackknife of U-statistics is unreliable below 5 groups (3 groups gave −2.6 SE
    /// disagreements on the demo).
    /// </summary>
    public const int MinPerIndexProbes = 5;
    /// <summary>Fewest Kronecker probes a budget must allow (pairs for the numerator and a jackknife).</summary>
    public const int MinKroneckerProbes = 3;
    /// <summary>Rademacher Kronecker probes in the pilot that decides whether index ψ (<see cref="KeptProbe"/>) is drawn instead.</summary>
    public const int KroneckerPilot = 3;
    /// <summary>
    /// A traced axis whose partial rank is at most its size over this ratio counts as coherent and gets
    /// an index factor in Kronecker probes (<see cref="EffectiveRank.PartialWithin"/>'s tracedRanks).
    /// </summary>
    public const double CoherentAxisRatio = 3;
    /// <summary>
    /// Largest relative variance per probe of an index factor along a traced axis (n·ΣM_kk²/(tr M)² − 1) for
    /// it to get index factors: larger means a few indices carry the trace, and index sampling would have
    /// heavy tails. At 0.1 an index carries at most about 1 + √(0.1·n) times the mean (3.4× on 60 time
    /// steps). The hints are upper bounds (an index-ψ estimate's spread of t includes the traced axes'
    /// noise): the demo GRU's time axis measures 0.015 exactly but 0.03–0.1 as quick hints, and a bound
    /// of 0.05 left its unit axis with Rademacher traced factors (and their heavy tail) in 10–36 % of
    /// seeds, 0.1 in 0.5 % (bench analysis --compare trialcal with TRIALCAL_HINTS=estimated). The
    /// transformer proxy's token axis (0.025–0.03) passes too, but its feature axis has an uneven layer
    /// axis (0.71), so no traced axis gets index factors there (all or none).
    /// </summary>
    public const double EvenAxisSpread = 0.1;
    /// <summary>Fewest Kronecker probes before a relative target may stop the probing (a ratio's jackknife SE from fewer is too often optimistic).</summary>
    public const int MinKroneckerSamples = 12;

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
public sealed record PartialRankEstimate(Estimate ParticipationRatio, Estimate Trace, Estimate FrobeniusSquared, PartialRankPlan Plan)
{
    /// <summary>Operator applications used (at most <see cref="PartialRankPlan.Applications"/>).</summary>
    public long Applications { get; init; }
    /// <summary>The kept factor the Kronecker path kept drawing (null for the other methods).</summary>
    public KeptProbe? KeptProbe { get; init; }
    /// <summary>
    /// Relative variance per probe of an index factor along the kept axis, n·ΣM_kk²/(tr M)² − 1: from M for
    /// the exact and per-index paths, bounded by t's relative variance for index ψ; +∞ when unknown (Rademacher ψ).
    /// </summary>
    public double IndexSpread { get; init; } = double.PositiveInfinity;
    /// <summary>Traced axes whose factor of the Kronecker probes was an index factor (empty: one i.i.d. Rademacher vector on all traced axes, and for the other methods).</summary>
    public IReadOnlyList<string> TracedIndexAxes { get; init; } = [];
    /// <summary>Whether PR's standard error reached the relative target (true when exact).</summary>
    public bool TargetReached { get; init; }
}

/// <summary>
/// What an earlier partial rank tells about its axis when that axis is traced in another one
/// (<see cref="EffectiveRank.PartialWithin"/>'s tracedHints).
/// </summary>
/// <param name="ParticipationRatio">The axis's partial rank PR_a (coherent when small against its size).</param>
/// <param name="IndexSpread">Relative variance per probe of an index factor along the axis (+∞ when unknown).</param>
public sealed record TracedAxisHint(double ParticipationRatio, double IndexSpread)
{
    /// <summary>The hint from a partial-rank estimate of the axis.</summary>
    public static TracedAxisHint Of(PartialRankEstimate e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return new TracedAxisHint(e.ParticipationRatio.Value, e.IndexSpread);
    }
}
