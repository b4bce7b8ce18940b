using GlobalNtk.Dense;
using GlobalNtk.Operators;

namespace GlobalNtk.Estimators;

/// <summary>Which end of the spectrum <c>Spectral.TopEigenpairs</c> returns.</summary>
public enum EigenOrder
{
    /// <summary>The k algebraically largest eigenvalues (the top of a PSD spectrum).</summary>
    LargestAlgebraic,
    /// <summary>The k eigenvalues of largest magnitude.</summary>
    LargestMagnitude,
}

/// <summary>Top eigenpairs of a self-adjoint operator.</summary>
/// <remarks>
/// The eigenvectors are stored in the precision the solve ran in. A solve on an operator that
/// applies float32 natively (e.g. NTK_S of an <c>--precision f32</c> linearisation) keeps them in
/// float32 (<see cref="SingleVectors"/>, half the memory; each entry a float64 Ritz combination
/// rounded once), and <see cref="Vectors"/> widens them to float64 on first use (exactly: every
/// float32 value is a float64 value). A float64 solve stores <see cref="Vectors"/> only.
/// </remarks>
/// <param name="Values">Eigenvalues, descending (by magnitude for <see cref="EigenOrder.LargestMagnitude"/>).</param>
/// <param name="Vectors">Unit eigenvectors, one array per value (laid out as the operator's Domain); for a float32 solve, the float32 vectors widened on first access.</param>
/// <param name="Residuals">‖A v − λ v‖ for each pair, from the Krylov recurrence (A v − θ v = W y_s, the newest block's residual directions; equal to a recomputation up to rounding).</param>
/// <param name="Applications">Operator applications (vectors) used.</param>
/// <param name="Converged">Whether every estimated residual reached the tolerance (or the space was exhausted).</param>
/// <param name="Restarts">Basis restarts performed.</param>
public sealed record EigenResult(double[] Values, double[][] Vectors, double[] Residuals, int Applications, bool Converged, int Restarts)
{
    // The float64 vectors live in a holder that copies (`with`) share, so a copy made before the
    // first widening sees the same vectors, widens nothing twice, and stays Equal to the original.
    private VectorHolder _vectors = new(Vectors);
    private readonly float[][]? _single;

    /// <summary>
    /// Unit eigenvectors in float64, one array per value. For a float32 solve (<see cref="SingleVectors"/>
    /// set) they are widened from the float32 vectors on first access and then kept (k more
    /// float64 state vectors; the analysis never asks for them).
    /// </summary>
    public double[][] Vectors
    {
        get
        {
            var holder = _vectors;
            if (holder.Value is { } v) return v;
            var widened = _single is { } single ? single.Select(v => Float32.ToDouble(v)).ToArray() : [];
            return Interlocked.CompareExchange(ref holder.Value, widened, null) ?? widened;
        }
        init => _vectors = new VectorHolder(value);
    }

    /// <summary>
    /// The eigenvectors as a float32 solve stored them (one array per value, unit norm up to
    /// float32 rounding, about 6e-8 per entry), or null when the solve ran in float64. Setting it
    /// drops float64 vectors set before (they are widened from these on first access).
    /// </summary>
    public float[][]? SingleVectors
    {
        get => _single;
        init { _single = value; if (value is not null) _vectors = new VectorHolder(null); }
    }

    private sealed class VectorHolder(double[][]? value) { public double[][]? Value = value; }

    /// <summary>Whether the eigenvectors (and their images) are stored in float32 (<see cref="SingleVectors"/>).</summary>
    public bool IsSingle => SingleVectors is not null;

    /// <summary>Why the solver stopped.</summary>
    public EigenStatus Status { get; init; } = EigenStatus.Converged;
    /// <summary>The strict budget of applications the solve ran under (0 when none was given).</summary>
    public int Budget { get; init; }
    /// <summary>
    /// Error bounds on the eigenvalues at the last convergence check: min(r, r²/gap) with the
    /// estimated residual r and the gap to the nearest other Ritz value (plain residuals when the
    /// solve used a residual tolerance).
    /// </summary>
    public double[] ErrorBounds { get; init; } = [];
    /// <summary>A·vᵢ for the returned vectors, vector-major, from the Krylov recurrence A v = θ v + W y (kept for deflation; at least k·n values); null for a float32 solve.</summary>
    internal double[]? Images { get; init; }
    /// <summary>The images of a float32 solve (<see cref="Images"/>' layout), each entry formed in float64 and rounded once.</summary>
    internal float[]? SingleImages { get; init; }
}

/// <summary>Why a top-eigenpair solve stopped.</summary>
public enum EigenStatus
{
    /// <summary>Every requested pair met the tolerance.</summary>
    Converged,
    /// <summary>The Krylov space became invariant (the Ritz pairs are then exact).</summary>
    InvariantSubspace,
    /// <summary>The budget of applications ran out first; the pairs are the best found.</summary>
    BudgetExhausted,
}

/// <summary>
/// A budget for a top-eigenpair solve: at most <paramref name="MaxApplications"/> operator
/// applications, stopping earlier when every eigenvalue's
/// error bound min(r, r²/gap) is at most <paramref name="RelativeTolerance"/>·max|λ|.
/// </summary>
public sealed record SpectrumBudget(int MaxApplications, double RelativeTolerance = 1e-3)
{
    /// <summary>Throws unless the budget is usable.</summary>
    public void Validate()
    {
        if (MaxApplications < 2) throw new ArgumentOutOfRangeException(nameof(MaxApplications), $"Spectrum budget must allow at least 2 applications, got {MaxApplications}.");
        if (!(RelativeTolerance > 0 && RelativeTolerance < 1)) throw new ArgumentOutOfRangeException(nameof(RelativeTolerance), $"Spectrum tolerance must be in (0, 1), got {RelativeTolerance}.");
    }
}

/// <summary>Top singular triplets A vᵢ = σᵢ uᵢ, A* uᵢ = σᵢ vᵢ.</summary>
/// <param name="Values">Singular values, descending.</param>
/// <param name="Left">Unit left vectors uᵢ (Range layout).</param>
/// <param name="Right">Unit right vectors vᵢ (Domain layout).</param>
/// <param name="Residuals">√(‖A v − σ u‖² + ‖A* u − σ v‖²) for each triplet.</param>
/// <param name="Applications">Applications of A or A* (vectors) used.</param>
/// <param name="Converged">Whether the underlying eigensolver converged.</param>
public sealed record SingularResult(double[] Values, double[][] Left, double[][] Right, double[] Residuals, int Applications, bool Converged);

/// <summary>The operator norm ‖A‖₂ = σ₁ with the residual of its singular triplet.</summary>
public sealed record NormResult(double Value, double Residual, int Applications, bool Converged);

/// <summary>
/// Matrix-free spectral solvers (docs/math.md#spectra): block Krylov (block Lanczos with full
/// re-orthogonalisation and restarts) for eigenpairs, and singular triplets through it.
/// </summary>
public static class Spectral
{
    /// <summary>
    /// The top-<paramref name="k"/> eigenpairs of a self-adjoint operator (Domain = Range) by block
    /// Krylov with full re-orthogonalisation, applying the operator to whole blocks. Stops when every
    /// residual ‖A v − λ v‖ ≤ <paramref name="tolerance"/>·max|λ| (eigenvalue errors are then about
    /// residual²/gap). Throws when QᵀAQ reveals a non-self-adjoint operator.
    /// </summary>
    /// <param name="op">A self-adjoint operator.</param>
    /// <param name="k">Number of eigenpairs.</param>
    /// <param name="seed">Seed of the random start block (same seed → same answer).</param>
    /// <param name="tolerance">Relative residual tolerance.</param>
    /// <param name="blockSize">Krylov block size (default k + max(3, k/2)).</param>
    /// <param name="maxBasis">Basis vectors held before a thick restart (default ~20 blocks, capped at ~1 GiB).</param>
    /// <param name="maxApplications">Budget of operator applications (default 50 × basis size).</param>
    /// <param name="order">Which end of the spectrum.</param>
    public static EigenResult TopEigenpairs(LinearOperator op, int k, int seed, double tolerance = 1e-10,
        int blockSize = 0, int maxBasis = 0, int maxApplications = 0, EigenOrder order = EigenOrder.LargestAlgebraic)
    {
        ArgumentNullException.ThrowIfNull(op);
        op.RequireSquare("TopEigenpairs");
        return new BlockKrylovEigensolver(op, k, seed, tolerance, blockSize, maxBasis, maxApplications, order).Solve();
    }

    /// <summary>
    /// The top-<paramref name="k"/> eigenpairs of a self-adjoint operator within
    /// <paramref name="budget"/>: stops when every eigenvalue's error bound is below the relative
    /// tolerance (<see cref="EigenStatus.Converged"/>) or when the next block would not fit
    /// (<see cref="EigenStatus.BudgetExhausted"/>); never applies the operator more than
    /// <see cref="SpectrumBudget.MaxApplications"/> times. k is lowered to half the budget when the
    /// budget is smaller than 2k, and to a quarter of <paramref name="maxVectors"/>.
    /// </summary>
    /// <param name="op">A self-adjoint operator.</param>
    /// <param name="k">Number of eigenpairs.</param>
    /// <param name="seed">Seed of the random start block.</param>
    /// <param name="budget">Most applications and the relative eigenvalue tolerance.</param>
    /// <param name="maxVectors">
    /// Memory cap: the most state-sized vectors the solve holds at once (Krylov basis, expansion
    /// block and the returned eigenvectors); a full basis is thick-restarted. 0: no cap beyond the
    /// budget's own (a basis never needs more vectors than applications) and ~1 GiB of basis.
    /// </param>
    /// <param name="order">Which end of the spectrum.</param>
    public static EigenResult TopEigenpairs(LinearOperator op, int k, int seed, SpectrumBudget budget, int maxVectors = 0,
        EigenOrder order = EigenOrder.LargestAlgebraic)
    {
        ArgumentNullException.ThrowIfNull(op);
        ArgumentNullException.ThrowIfNull(budget);
        op.RequireSquare("TopEigenpairs");
        budget.Validate();
        return Budgeted(op, k, seed, budget, maxVectors, order).Solve();
    }

    /// <summary>
    /// The solver of a budgeted spectrum (the one place its k, block and basis are chosen), so
    /// that its memory plan can be checked without solving: it holds at most
    /// <paramref name="maxVectors"/> state vectors when that is at least 4.
    /// </summary>
    internal static BlockKrylovEigensolver Budgeted(LinearOperator op, int k, int seed, SpectrumBudget budget, int maxVectors, EigenOrder order)
    {
        int n = op.Domain.Size, apps = budget.MaxApplications;
        if (maxVectors is > 0 and < MinVectors) throw new ArgumentOutOfRangeException(nameof(maxVectors), $"Eigenpairs: a memory cap of {maxVectors} state vectors cannot hold a basis, a block and the eigenvectors (needs at least {MinVectors}).");
        k = Math.Min(Math.Min(k, n), apps / 2);
        if (maxVectors > 0) k = Math.Min(k, Math.Max(1, maxVectors / 4));
        // Block size: small, for a high Krylov degree per application. On slowly decaying spectra
        // like NTK_S's, top-10 to 1e-3 took 45 applications with blocks of 4 and 60 (not converged)
        // with blocks of 10; top-20 to 1e-5, 80 with blocks of 4 against 210 with blocks of 30. At
        // least SmallBlock vectors (or k) so that applications stay matrix-matrix (the transformer's
        // NTK_S costs the same CPU per vector in blocks of 4 and 25), growing as k/4 so that a block
        // still holds a few copies of a repeated eigenvalue, and at most a sixth of the budget.
        // Under a memory cap, at most a third of what the basis may hold beyond the 2k vectors of
        // eigenvectors and images (so the basis holds two blocks and k plus a block).
        int block = Math.Min(apps / TargetKrylovSteps, Math.Max(SmallBlock, (k + 3) / 4));
        block = Math.Max(block, Math.Min(k, SmallBlock));
        if (maxVectors > 0) block = Math.Max(1, Math.Min(block, (maxVectors - 2 * k) / 3));
        block = Math.Min(Math.Min(block, apps - k), n);
        // A basis never needs more vectors than the budget has applications; without a cap, at most
        // ~1 GiB of basis (but always two blocks and k plus a block).
        int basis = Math.Min(n, apps);
        basis = maxVectors > 0
            ? Math.Min(basis, maxVectors - Math.Max(block, k) - k)
            : (int)Math.Min(basis, Math.Max(Math.Max(2L * block, k + block), DefaultBasisBytes / (8L * n)));
        return new BlockKrylovEigensolver(op, k, seed, budget.RelativeTolerance, block, basis, apps, order, eigenvalueTolerance: true);
    }

    // The basis of an uncapped solve: at most this many bytes (then thick restarts).
    private const long DefaultBasisBytes = 1L << 30;

    /// <summary>The smallest memory cap (state vectors) of a budgeted spectrum: a basis of two, a block and an eigenvector.</summary>
    public const int MinVectors = 4;

    /// <summary>Vectors per block of a budgeted spectrum for k ≤ 16 (k/4 above): see <see cref="TopEigenpairs(LinearOperator, int, int, SpectrumBudget, int, EigenOrder)"/>.</summary>
    public const int SmallBlock = 4;

    /// <summary>Fewest Krylov steps (blocks) a budgeted spectrum affords: a small budget lowers its block size.</summary>
    public const int TargetKrylovSteps = 6;

    /// <summary>
    /// The top-<paramref name="k"/> singular triplets, by block Krylov on the smaller of A*A and
    /// AA* from a random start block; the other side's vectors by one block application
    /// (u = A v / σ with σ = ‖A v‖, or v = A* u / σ) and true residuals by one more.
    /// Singular vectors are accurate for σᵢ ≳ √ε·σ₁ (the Gram squares the condition).
    /// </summary>
    public static SingularResult TopSingularTriplets(LinearOperator op, int k, int seed, double tolerance = 1e-10,
        int blockSize = 0, int maxBasis = 0, int maxApplications = 0)
    {
        ArgumentNullException.ThrowIfNull(op);
        int nd = op.Domain.Size, nr = op.Range.Size;
        if (k < 1 || k > Math.Min(nd, nr))
            throw new ArgumentOutOfRangeException(nameof(k), $"Singular triplets: k = {k} must be between 1 and min({op.Domain}, {op.Range}) = {Math.Min(nd, nr)}.");
        bool rightSide = nd <= nr;                          // eigenvectors of A*A are right vectors
        var gram = rightSide ? op.Adjoint.Gram() : op.Gram(); // A*A on Domain, or AA* on Range
        var eig = TopEigenpairs(gram, k, seed, tolerance, blockSize, maxBasis, maxApplications);
        int nEig = rightSide ? nd : nr, nOther = rightSide ? nr : nd;

        var basis = new double[(long)k * nEig];
        for (int i = 0; i < k; i++) eig.Vectors[i].CopyTo(basis, (long)i * nEig);
        // Other side: w = A v (or A* u); σ = ‖w‖ is the Rayleigh quotient uᵀAv of the normalised pair,
        // more accurate than √λ for small σ.
        var other = rightSide ? op.ApplyBlock(basis, k) : op.ApplyAdjointBlock(basis, k);
        var sigma = new double[k];
        for (int i = 0; i < k; i++)
        {
            var o = other.AsSpan((int)((long)i * nOther), nOther);
            sigma[i] = Numerics.Norm(o);
            if (sigma[i] > 0) Numerics.Scale(o, 1.0 / sigma[i]);
        }
        // True residuals: the built side holds exactly (A v = σ u), so measure the back side.
        var back = rightSide ? op.ApplyAdjointBlock(other, k) : op.ApplyBlock(other, k);
        var otherVecs = new double[k][];
        var residuals = new double[k];
        for (int i = 0; i < k; i++)
        {
            otherVecs[i] = other.AsSpan((int)((long)i * nOther), nOther).ToArray();
            var r = back.AsSpan((int)((long)i * nEig), nEig);
            Numerics.Axpy(-sigma[i], eig.Vectors[i], r);
            residuals[i] = Numerics.Norm(r);
        }
        // Re-sort: σ from ‖A v‖ keeps the eigen order except within rounding.
        var order = Enumerable.Range(0, k).OrderByDescending(i => sigma[i]).ToArray();
        var left = rightSide ? otherVecs : eig.Vectors;
        var right = rightSide ? eig.Vectors : otherVecs;
        return new SingularResult(order.Select(i => sigma[i]).ToArray(), order.Select(i => left[i]).ToArray(),
            order.Select(i => right[i]).ToArray(), order.Select(i => residuals[i]).ToArray(), 2 * eig.Applications + 2 * k, eig.Converged);
    }

    /// <summary>‖A‖₂, the largest singular value, with its triplet's residual.</summary>
    public static NormResult OperatorNorm(LinearOperator op, int seed, double tolerance = 1e-8)
    {
        var svd = TopSingularTriplets(op, 1, seed, tolerance);
        return new NormResult(svd.Values[0], svd.Residuals[0], svd.Applications, svd.Converged);
    }
}
