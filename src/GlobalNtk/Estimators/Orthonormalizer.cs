using System.Runtime.InteropServices;
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
    public static void ProjectOut(ReadOnlySpan<double> q, int basisCount, int n, Span<double> w, int count, Span<double> coefficients = default) =>
        ProjectOut<double>(q, basisCount, n, w, count, coefficients);

    /// <summary>
    /// <see cref="ProjectOut(ReadOnlySpan{double}, int, int, Span{double}, int, Span{double})"/> for
    /// vectors stored in T. float32 vectors are widened a column chunk at a time, so the coefficients
    /// QᵀW and the update W − Q(QᵀW) are float64 GEMMs (the cancelling sums of the orthogonalisation,
    /// docs/math.md#numerics), and each entry of W is rounded once per pass.
    /// </summary>
    public static void ProjectOut<T>(ReadOnlySpan<T> q, int basisCount, int n, Span<T> w, int count, Span<double> coefficients = default)
        where T : unmanaged
    {
        if (basisCount == 0 || count == 0) return;
        var c = new double[basisCount * count];
        if (typeof(T) == typeof(double))
        {
            var qd = MemoryMarshal.Cast<T, double>(q);
            var wd = MemoryMarshal.Cast<T, double>(w);
            for (int pass = 0; pass < 2; pass++)
            {
                Gemm.Multiply(Trans.No, Trans.Yes, basisCount, count, n, 1.0, qd, n, wd, n, 0.0, c, count);
                Gemm.Multiply(Trans.Yes, Trans.No, count, n, basisCount, -1.0, c, count, qd, n, 1.0, wd, n);
                if (!coefficients.IsEmpty) Numerics.Axpy(1.0, c, coefficients);
            }
            return;
        }
        var qf = MemoryMarshal.Cast<T, float>(q);
        var wf = MemoryMarshal.Cast<T, float>(w);
        int chunk = Math.Min(n, WidenedColumns);
        var qs = new double[(long)basisCount * chunk];
        var ws = new double[(long)count * chunk];
        for (int pass = 0; pass < 2; pass++)
        {
            Array.Clear(c);
            for (int col = 0; col < n; col += chunk)
            {
                int cols = Math.Min(chunk, n - col);
                Widen(qf, basisCount, n, col, cols, qs);
                Widen(wf, count, n, col, cols, ws);
                Gemm.Multiply(Trans.No, Trans.Yes, basisCount, count, cols, 1.0, qs, cols, ws, cols, 1.0, c, count);
            }
            for (int col = 0; col < n; col += chunk)
            {
                int cols = Math.Min(chunk, n - col);
                Widen(qf, basisCount, n, col, cols, qs);
                Widen(wf, count, n, col, cols, ws);
                Gemm.Multiply(Trans.Yes, Trans.No, count, cols, basisCount, -1.0, c, count, qs, cols, 1.0, ws, cols);
                for (int j = 0; j < count; j++) Float32.Narrow(ws.AsSpan(j * cols, cols), wf.Slice(j * n + col, cols));
            }
            if (!coefficients.IsEmpty) Numerics.Axpy(1.0, c, coefficients);
        }
    }

    /// <summary>Columns of float32 vectors widened per chunk in float64 products (a few MB of scratch for a basis of hundreds).</summary>
    internal const int WidenedColumns = 2048;

    // dst[j, 0:cols] = (double) src[j, col:col+cols] for rows vectors of length n (dst row-major, stride cols).
    internal static void Widen(ReadOnlySpan<float> src, int rows, int n, int col, int cols, double[] dst)
    {
        for (int j = 0; j < rows; j++) Float32.Widen(src.Slice(j * n + col, cols), dst.AsSpan(j * cols, cols));
    }

    /// <summary>
    /// Orthonormalises the <paramref name="count"/> vectors of <paramref name="w"/> in place, first
    /// against <paramref name="q"/> (<paramref name="basisCount"/> orthonormal vectors), then among
    /// themselves; dependent vectors are dropped, or replaced by random directions when
    /// <paramref name="rng"/> is given (to keep a Krylov block full). The kept vectors are
    /// compacted to the front; returns how many. Vectors of T (float32: every dot product and norm
    /// summed in float64, each entry rounded once per update).
    /// </summary>
    /// <param name="w">Vector-major block of <paramref name="count"/> vectors of length <paramref name="n"/>.</param>
    /// <param name="count">Number of vectors in <paramref name="w"/>.</param>
    /// <param name="n">Length of each vector.</param>
    /// <param name="q">Orthonormal basis to project out, vector-major.</param>
    /// <param name="basisCount">Number of vectors in <paramref name="q"/>.</param>
    /// <param name="rng">Source of replacement directions, or null to drop dependent vectors.</param>
    /// <param name="alreadyProjected">W was already projected against Q (skip that step).</param>
    /// <param name="scale">Norm scale for the dependence test (default: the largest input norm).</param>
    public static int Orthonormalize<T>(Span<T> w, int count, int n, ReadOnlySpan<T> q, int basisCount, Random? rng,
        bool alreadyProjected = false, double scale = 0) where T : unmanaged
    {
        if (scale <= 0)
            for (int j = 0; j < count; j++) scale = Math.Max(scale, Norm<T>(w.Slice(j * n, n)));
        if (!alreadyProjected) ProjectOut(q, basisCount, n, w, count);
        int kept = 0;
        for (int j = 0; j < count; j++)
        {
            var dst = w.Slice(kept * n, n);
            if (kept != j) w.Slice(j * n, n).CopyTo(dst);
            if (TryNormalize(dst, w.Slice(0, kept * n), kept, scale)) { kept++; continue; }
            if (rng is null || basisCount + kept >= n) continue;
            Gaussian(rng, dst);
            ProjectOut(q, basisCount, n, dst, 1);
            if (TryNormalize(dst, w.Slice(0, kept * n), kept, Norm<T>(dst))) kept++;
        }
        return kept;
    }

    /// <summary>‖x‖₂, summed in float64.</summary>
    internal static double Norm<T>(ReadOnlySpan<T> x) where T : unmanaged =>
        typeof(T) == typeof(double) ? Numerics.Norm(MemoryMarshal.Cast<T, double>(x)) : Math.Sqrt(ProbeBlock.Dot(x, x));

    /// <summary>Standard normal entries: for float32 the float64 draws (the same stream) rounded once.</summary>
    internal static void Gaussian<T>(Random rng, Span<T> x) where T : unmanaged
    {
        if (typeof(T) == typeof(double)) { RandomProbes.Gaussian(rng, MemoryMarshal.Cast<T, double>(x)); return; }
        var wide = new double[x.Length];
        RandomProbes.Gaussian(rng, wide);
        Float32.Narrow(wide, MemoryMarshal.Cast<T, float>(x));
    }

    // Modified Gram–Schmidt (twice) of v against the first `count` vectors of `previous`, then normalise.
    private static bool TryNormalize<T>(Span<T> v, ReadOnlySpan<T> previous, int count, double scale) where T : unmanaged
    {
        int n = v.Length;
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < count; i++)
            {
                var p = previous.Slice(i * n, n);
                Axpy(-ProbeBlock.Dot(p, v), p, v);
            }
        double norm = Norm<T>(v);
        if (!(norm > DeflationTolerance * scale) || norm == 0) return false;
        Scale(v, 1.0 / norm);
        return true;
    }

    // y ← y + a·x, in float64 for float32 entries (rounded once).
    private static void Axpy<T>(double a, ReadOnlySpan<T> x, Span<T> y) where T : unmanaged
    {
        if (typeof(T) == typeof(double)) { Numerics.Axpy(a, MemoryMarshal.Cast<T, double>(x), MemoryMarshal.Cast<T, double>(y)); return; }
        ProbeBlock.AxpyWide(a, MemoryMarshal.Cast<T, float>(x), MemoryMarshal.Cast<T, float>(y));
    }

    private static void Scale<T>(Span<T> x, double alpha) where T : unmanaged
    {
        if (typeof(T) == typeof(double)) { Numerics.Scale(MemoryMarshal.Cast<T, double>(x), alpha); return; }
        // x·alpha rounded once: the float32 product of x and (float)alpha would round twice.
        var xf = MemoryMarshal.Cast<T, float>(x);
        int i = 0, w = System.Numerics.Vector<float>.Count;
        var a = new System.Numerics.Vector<double>(alpha);
        for (; i <= xf.Length - w; i += w)
        {
            System.Numerics.Vector.Widen(new System.Numerics.Vector<float>(xf[i..]), out var x0, out var x1);
            System.Numerics.Vector.Narrow(x0 * a, x1 * a).CopyTo(xf[i..]);
        }
        for (; i < xf.Length; i++) xf[i] = (float)(xf[i] * alpha);
    }
}
