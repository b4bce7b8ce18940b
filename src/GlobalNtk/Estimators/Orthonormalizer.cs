using GlobalNtk.Dense;
using GlobalNtk.Operators;

namespace GlobalNtk.Estimators;

/// <summary>
/// Block Gram–Schmidt on vector-major blocks (each vector contiguous): projections against an
/// existing orthonormal basis are GEMMs, applied twice ("twice is enough") for full
/// re-orthogonalisation.
/// </summary>
internal static class Orthonormalizer
{
    /// <summary>Relative norm below which a vector is taken as linearly dependent.</summary>
    public const double DeflationTolerance = 1e-11;

    /// <summary>
    /// W ← (I − QQᵀ)W twice for <paramref name="count"/> vectors against <paramref name="basisCount"/>
    /// orthonormal vectors; adds the coefficients Q·Wᵀ ([basisCount, count]) to <paramref name="coefficients"/> when given.
    /// </summary>
    public static void ProjectOut(ReadOnlySpan<double> q, int basisCount, int n, Span<double> w, int count, Span<double> coefficients = default)
    {
        if (basisCount == 0 || count == 0) return;
        var c = new double[basisCount * count];
        for (int pass = 0; pass < 2; pass++)
        {
            Gemm.Multiply(Trans.No, Trans.Yes, basisCount, count, n, 1.0, q, n, w, n, 0.0, c, count);
            Gemm.Multiply(Trans.Yes, Trans.No, count, n, basisCount, -1.0, c, count, q, n, 1.0, w, n);
            if (!coefficients.IsEmpty) Numerics.Axpy(1.0, c, coefficients);
        }
    }

    /// <summary>
    /// Orthonormalises the <paramref name="count"/> vectors of <paramref name="w"/> in place, first
    /// against <paramref name="q"/> (<paramref name="basisCount"/> orthonormal vectors), then among
    /// themselves; dependent vectors are dropped, or replaced by random directions when
    /// <paramref name="rng"/> is given (to keep a Krylov block full). The kept vectors are
    /// compacted to the front; returns how many.
    /// </summary>
    /// <param name="w">Vector-major block of <paramref name="count"/> vectors of length <paramref name="n"/>.</param>
    /// <param name="count">Number of vectors in <paramref name="w"/>.</param>
    /// <param name="n">Length of each vector.</param>
    /// <param name="q">Orthonormal basis to project out, vector-major.</param>
    /// <param name="basisCount">Number of vectors in <paramref name="q"/>.</param>
    /// <param name="rng">Source of replacement directions, or null to drop dependent vectors.</param>
    /// <param name="alreadyProjected">W was already projected against Q (skip that step).</param>
    /// <param name="scale">Norm scale for the dependence test (default: the largest input norm).</param>
    public static int Orthonormalize(Span<double> w, int count, int n, ReadOnlySpan<double> q, int basisCount, Random? rng,
        bool alreadyProjected = false, double scale = 0)
    {
        if (scale <= 0)
            for (int j = 0; j < count; j++) scale = Math.Max(scale, Numerics.Norm(w.Slice(j * n, n)));
        if (!alreadyProjected) ProjectOut(q, basisCount, n, w, count);
        int kept = 0;
        for (int j = 0; j < count; j++)
        {
            var dst = w.Slice(kept * n, n);
            if (kept != j) w.Slice(j * n, n).CopyTo(dst);
            if (TryNormalize(dst, w.Slice(0, kept * n), kept, scale)) { kept++; continue; }
            if (rng is null || basisCount + kept >= n) continue;
            RandomProbes.Gaussian(rng, dst);
            ProjectOut(q, basisCount, n, dst, 1);
            if (TryNormalize(dst, w.Slice(0, kept * n), kept, Numerics.Norm(dst))) kept++;
        }
        return kept;
    }

    // Modified Gram–Schmidt (twice) of v against the first `count` vectors of `previous`, then normalise.
    private static bool TryNormalize(Span<double> v, ReadOnlySpan<double> previous, int count, double scale)
    {
        int n = v.Length;
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < count; i++)
            {
                var p = previous.Slice(i * n, n);
                Numerics.Axpy(-Numerics.Dot(p, v), p, v);
            }
        double norm = Numerics.Norm(v);
        if (!(norm > DeflationTolerance * scale) || norm == 0) return false;
        Numerics.Scale(v, 1.0 / norm);
        return true;
    }
}
