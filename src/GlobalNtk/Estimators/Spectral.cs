using GlobalNtk.Dense;
using GlobalNtk.Operators;

namespace GlobalNtk.Estimators;

/// <summary>Which end of the spectrum <see cref="Spectral.TopEigenpairs"/> returns.</summary>
public enum EigenOrder
{
    /// <summary>The k algebraically largest eigenvalues (the top of a PSD spectrum).</summary>
    LargestAlgebraic,
    /// <summary>The k eigenvalues of largest magnitude.</summary>
    LargestMagnitude,
}

/// <summary>Top eigenpairs of a self-adjoint operator.</summary>
/// <param name="Values">Eigenvalues, descending (by magnitude for <see cref="EigenOrder.LargestMagnitude"/>).</param>
/// <param name="Vectors">Unit eigenvectors, one array per value (laid out as the operator's Domain).</param>
/// <param name="Residuals">‖A v − λ v‖ for each pair, recomputed from a final application.</param>
/// <param name="Applications">Operator applications (vectors) used.</param>
/// <param name="Converged">Whether every estimated residual reached the tolerance (or the space was exhausted).</param>
/// <param name="Restarts">Basis restarts performed.</param>
public sealed record EigenResult(double[] Values, double[][] Vectors, double[] Residuals, int Applications, bool Converged, int Restarts);

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
    /// <param name="maxBasis">Basis vectors kept before a restart (default ~20 blocks, capped at ~1 GiB).</param>
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
