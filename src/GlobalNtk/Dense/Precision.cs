using System.Numerics;

namespace GlobalNtk.Dense;

/// <summary>
/// The floating-point precision an operator computes in. <see cref="F32"/> stores the
/// linearisation's caches and runs its products in float32, while reductions that cancel (traces,
/// Gram matrices, Krylov orthogonalisation) stay in float64. The estimators hand the operators
/// float64 vectors in both cases; the operators also take float32 blocks, which the NTK operators
/// of a float32 block chain keep in float32 end to end.
/// </summary>
public enum Precision
{
    /// <summary>float64 throughout (the default).</summary>
    F64,
    /// <summary>float32 caches and products, float64 reductions.</summary>
    F32,
}

/// <summary>Names of <see cref="Precision"/> values as the CLI spells them.</summary>
public static class PrecisionNames
{
    /// <summary><c>f64</c> or <c>f32</c>.</summary>
    public static string Name(this Precision p) => p == Precision.F32 ? "f32" : "f64";

    /// <summary>Parses <c>f64</c>/<c>float64</c>/<c>f32</c>/<c>float32</c> (case-insensitive); false otherwise.</summary>
    public static bool TryParse(string? text, out Precision precision)
    {
        switch (text?.Trim().ToLowerInvariant())
        {
            case "f64" or "float64" or "double": precision = Precision.F64; return true;
            case "f32" or "float32" or "float": precision = Precision.F32; return true;
            default: precision = Precision.F64; return false;
        }
    }
}

/// <summary>
/// float64 ⇄ float32 conversions and pooled float32 scratch for the float32 paths: their vectors
/// arrive and leave as float64, so each float32 map narrows its input once and widens its result once.
/// </summary>
internal static class Float32
{
    /// <summary>dst = (float)src, rounded to nearest.</summary>
    public static void Narrow(ReadOnlySpan<double> src, Span<float> dst) =>
        System.Numerics.Tensors.TensorPrimitives.ConvertTruncating(src, dst[..src.Length]);

    /// <summary>dst = (double)src (exact).</summary>
    public static void Widen(ReadOnlySpan<float> src, Span<double> dst) =>
        System.Numerics.Tensors.TensorPrimitives.ConvertTruncating(src, dst[..src.Length]);

    /// <summary>A float32 copy of <paramref name="src"/>.</summary>
    public static float[] ToSingle(ReadOnlySpan<double> src)
    {
        var a = new float[src.Length];
        Narrow(src, a);
        return a;
    }

    /// <summary>A float64 copy of <paramref name="src"/>.</summary>
    public static double[] ToDouble(ReadOnlySpan<float> src)
    {
        var a = new double[src.Length];
        Widen(src, a);
        return a;
    }

    /// <summary>dst += alpha · (double)src: a float32 result added into a float64 block (the sum formed in float64).</summary>
    public static void AddWidened(ReadOnlySpan<float> src, double alpha, Span<double> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException($"Float32.AddWidened: destination of {dst.Length} for {src.Length} values.");
        int i = 0, w = Vector<float>.Count;
        var a = new Vector<double>(alpha);
        for (; i <= src.Length - w; i += w)
        {
            Vector.Widen(new Vector<float>(src[i..]), out var lo, out var hi);
            var d = dst[i..];
            (new Vector<double>(d) + a * lo).CopyTo(d);
            var d2 = dst[(i + Vector<double>.Count)..];
            (new Vector<double>(d2) + a * hi).CopyTo(d2);
        }
        for (; i < src.Length; i++) dst[i] += alpha * src[i];
    }

    /// <summary>Σ a_i accumulated in float64.</summary>
    public static double SumWide(ReadOnlySpan<float> a)
    {
        var acc = Vector<double>.Zero;
        int i = 0, w = Vector<float>.Count;
        for (; i <= a.Length - w; i += w)
        {
            Vector.Widen(new Vector<float>(a[i..]), out var a0, out var a1);
            acc += a0 + a1;
        }
        double s = Vector.Sum(acc);
        for (; i < a.Length; i++) s += a[i];
        return s;
    }

    /// <summary>Σ a_i b_i accumulated in float64 (each product of two floats is exact in float64).</summary>
    public static double DotWide(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var acc = Vector<double>.Zero;
        int i = 0, w = Vector<float>.Count;
        for (; i <= a.Length - w; i += w)
        {
            Vector.Widen(new Vector<float>(a[i..]), out var a0, out var a1);
            Vector.Widen(new Vector<float>(b[i..]), out var b0, out var b1);
            acc += a0 * b0 + a1 * b1;
        }
        double s = Vector.Sum(acc);
        for (; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }

    /// <summary>Throws <see cref="NonFiniteException"/> naming <paramref name="what"/> and the first bad index.</summary>
    public static void EnsureFinite(ReadOnlySpan<float> x, string what)
    {
        if (float.IsFinite(System.Numerics.Tensors.TensorPrimitives.Sum(x))) return;
        for (int i = 0; i < x.Length; i++)
            if (!float.IsFinite(x[i]))
                throw new NonFiniteException($"{what}: element {i} of {x.Length} is {x[i]}.");
    }
}
