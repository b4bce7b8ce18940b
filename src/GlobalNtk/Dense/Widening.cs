using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace GlobalNtk.Dense;

/// <summary>
/// Moves vectors between the operator interface (always float64) and a linearisation's compute
/// type T (float64, or float32 for <see cref="Precision.F32"/>), for code generic over T: float32
/// goes through <see cref="Float32"/>, float64 is a plain copy or axpy; the type tests are
/// JIT-time constants.
/// </summary>
internal static class Widening
{
    /// <summary>dst = (T) src, rounding to nearest.</summary>
    public static void Narrow<T>(ReadOnlySpan<double> src, Span<T> dst) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(double)) src.CopyTo(MemoryMarshal.Cast<T, double>(dst));
        else if (typeof(T) == typeof(float)) Float32.Narrow(src, MemoryMarshal.Cast<T, float>(dst));
        else for (int i = 0; i < src.Length; i++) dst[i] = T.CreateTruncating(src[i]);
    }

    /// <summary>dst = (double) src (exact).</summary>
    public static void Widen<T>(ReadOnlySpan<T> src, Span<double> dst) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(double)) MemoryMarshal.Cast<T, double>(src).CopyTo(dst);
        else if (typeof(T) == typeof(float)) Float32.Widen(MemoryMarshal.Cast<T, float>(src), dst);
        else for (int i = 0; i < src.Length; i++) dst[i] = double.CreateTruncating(src[i]);
    }

    /// <summary>dst += alpha · (double) src, accumulated in float64.</summary>
    public static void AddScaled<T>(ReadOnlySpan<T> src, double alpha, Span<double> dst) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(double))
        {
            var s = MemoryMarshal.Cast<T, double>(src);
            if (alpha == 1.0) TensorPrimitives.Add(dst, s, dst);
            else TensorPrimitives.MultiplyAdd(s, alpha, dst, dst);
            return;
        }
        for (int i = 0; i < src.Length; i++) dst[i] += alpha * double.CreateTruncating(src[i]);
    }
}
