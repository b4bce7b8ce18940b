using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using GlobalNtk.Dense;

namespace GlobalNtk.Operators;

/// <summary>
/// Blocks of probe vectors and their images in an estimator's element type T: float64, or float32
/// when the operator applies float32 natively (<see cref="UsesFloat32"/>), so that an f32 analysis
/// carries no float64 probe or image block and converts nothing around the operator. Probes are
/// exact in float32 (±1, unit vectors). Whatever is reduced from a block (dot products, sums of
/// squares, contractions) is accumulated in float64 (docs/math.md#numerics). The type tests are
/// JIT-time constants, and the float64 instantiation calls exactly what the float64-only code did,
/// so f64 results are unchanged bit for bit.
/// </summary>
internal static class ProbeBlock
{
    /// <summary>
    /// Whether estimators should keep <paramref name="op"/>'s probe and image blocks in float32: it
    /// applies float32 natively (a float64 block would be narrowed and widened around it anyway).
    /// </summary>
    public static bool UsesFloat32(LinearOperator op) => op.AppliesFloat32Natively;

    /// <summary>
    /// Vectors of <paramref name="vectorSize"/> values in one probe block (at least 1, at most
    /// <paramref name="wanted"/>), for either element type. The budget
    /// <see cref="MemoryBudget.ProbeBlockElements"/> counts values, not bytes: a float32 block holds
    /// the same vectors as a float64 one in half the memory. Twice the vectors in the same bytes would
    /// keep the estimators' memory where it was, and the operators' own per-vector scratch would then
    /// double (bench transformer --precision f32, its rank finding: 978 MB peak, against 1022 MB for
    /// float64 blocks); with the same vectors an f32 analysis holds half the bytes, and its probes are
    /// split into the same blocks as in f64, so both draw the same probes from the stream.
    /// </summary>
    public static int VectorsPerBlock<T>(int vectorSize, int wanted) where T : unmanaged =>
        BlockBuffer.VectorsPerBlock(vectorSize, wanted, MemoryBudget.ProbeBlockElements);

    /// <summary>Y = A·X on a block of T (the float32 overload for float).</summary>
    public static void Apply<T>(LinearOperator op, ReadOnlySpan<T> x, Span<T> y, int count) where T : unmanaged
    {
        if (typeof(T) == typeof(double)) op.ApplyBlock(MemoryMarshal.Cast<T, double>(x), MemoryMarshal.Cast<T, double>(y), count);
        else op.ApplyBlock(MemoryMarshal.Cast<T, float>(x), MemoryMarshal.Cast<T, float>(y), count);
    }

    /// <summary>Y = A*·X on a block of T.</summary>
    public static void ApplyAdjoint<T>(LinearOperator op, ReadOnlySpan<T> x, Span<T> y, int count) where T : unmanaged
    {
        if (typeof(T) == typeof(double)) op.ApplyAdjointBlock(MemoryMarshal.Cast<T, double>(x), MemoryMarshal.Cast<T, double>(y), count);
        else op.ApplyAdjointBlock(MemoryMarshal.Cast<T, float>(x), MemoryMarshal.Cast<T, float>(y), count);
    }

    /// <summary>Σ aᵢbᵢ accumulated in float64 (float32 products are exact in float64).</summary>
    public static double Dot<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b) where T : unmanaged
    {
        if (typeof(T) == typeof(double)) return Numerics.Dot(MemoryMarshal.Cast<T, double>(a), MemoryMarshal.Cast<T, double>(b));
        return Float32.DotWide(MemoryMarshal.Cast<T, float>(a), MemoryMarshal.Cast<T, float>(b));
    }

    /// <summary>Σ vᵢxᵢ of a float64 vector and a block vector, accumulated in float64.</summary>
    public static double Dot<T>(ReadOnlySpan<double> v, ReadOnlySpan<T> x) where T : unmanaged
    {
        if (typeof(T) == typeof(double)) return Numerics.Dot(v, MemoryMarshal.Cast<T, double>(x));
        var xf = MemoryMarshal.Cast<T, float>(x);
        var acc = Vector<double>.Zero;
        int i = 0, w = Vector<float>.Count, h = Vector<double>.Count;
        for (; i <= xf.Length - w; i += w)
        {
            Vector.Widen(new Vector<float>(xf[i..]), out var x0, out var x1);
            acc += new Vector<double>(v[i..]) * x0 + new Vector<double>(v[(i + h)..]) * x1;
        }
        double s = Vector.Sum(acc);
        for (; i < xf.Length; i++) s += v[i] * xf[i];
        return s;
    }

    /// <summary>x ← x + alpha·v for a float64 v, each element formed in float64 and rounded once into T.</summary>
    public static void Axpy<T>(double alpha, ReadOnlySpan<double> v, Span<T> x) where T : unmanaged
    {
        if (typeof(T) == typeof(double)) { Numerics.Axpy(alpha, v, MemoryMarshal.Cast<T, double>(x)); return; }
        AxpyWide(alpha, v, MemoryMarshal.Cast<T, float>(x));
    }

    /// <summary>x ← x + alpha·v for float64 v and float32 x: each element formed in float64, rounded once.</summary>
    public static void AxpyWide(double alpha, ReadOnlySpan<double> v, Span<float> x)
    {
        int i = 0, w = Vector<float>.Count, h = Vector<double>.Count;
        var a = new Vector<double>(alpha);
        for (; i <= x.Length - w; i += w)
        {
            Vector.Widen(new Vector<float>(x[i..]), out var x0, out var x1);
            Vector.Narrow(x0 + a * new Vector<double>(v[i..]), x1 + a * new Vector<double>(v[(i + h)..])).CopyTo(x[i..]);
        }
        for (; i < x.Length; i++) x[i] = (float)(x[i] + alpha * v[i]);
    }

    /// <summary>y ← y + alpha·x for float32 x and y: each element formed in float64, rounded once.</summary>
    public static void AxpyWide(double alpha, ReadOnlySpan<float> x, Span<float> y)
    {
        int i = 0, w = Vector<float>.Count;
        var a = new Vector<double>(alpha);
        for (; i <= y.Length - w; i += w)
        {
            Vector.Widen(new Vector<float>(y[i..]), out var y0, out var y1);
            Vector.Widen(new Vector<float>(x[i..]), out var x0, out var x1);
            Vector.Narrow(y0 + a * x0, y1 + a * x1).CopyTo(y[i..]);
        }
        for (; i < y.Length; i++) y[i] = (float)(y[i] + alpha * x[i]);
    }

    /// <summary>Element <paramref name="i"/> of a block, widened (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Get<T>(ReadOnlySpan<T> x, int i) where T : unmanaged =>
        typeof(T) == typeof(double) ? MemoryMarshal.Cast<T, double>(x)[i] : MemoryMarshal.Cast<T, float>(x)[i];

    /// <summary>Sets element <paramref name="i"/> of a block to <paramref name="value"/> (rounded to nearest for float32).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Set<T>(Span<T> x, int i, double value) where T : unmanaged
    {
        if (typeof(T) == typeof(double)) MemoryMarshal.Cast<T, double>(x)[i] = value;
        else MemoryMarshal.Cast<T, float>(x)[i] = (float)value;
    }

    /// <summary>Independent ±1 entries, the same values from the same stream for either element type.</summary>
    public static void Rademacher<T>(Random rng, Span<T> x) where T : unmanaged
    {
        if (typeof(T) == typeof(double)) RandomProbes.Rademacher(rng, MemoryMarshal.Cast<T, double>(x));
        else RandomProbes.RademacherOf(rng, MemoryMarshal.Cast<T, float>(x));
    }

    /// <summary>Throws <see cref="NonFiniteException"/> naming <paramref name="what"/> at the first non-finite value.</summary>
    public static void EnsureFinite<T>(ReadOnlySpan<T> x, string what) where T : unmanaged
    {
        if (typeof(T) == typeof(double)) Numerics.EnsureFinite(MemoryMarshal.Cast<T, double>(x), what);
        else Float32.EnsureFinite(MemoryMarshal.Cast<T, float>(x), what);
    }
}
