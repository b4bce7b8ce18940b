using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using GlobalNtk.Dense;

namespace GlobalNtk.Models.Recurrent;

/// <summary>
/// What the recurrent engines (single-layer and stacked) share: moving rows between a block at
/// the operator interface, of element type TV, and the engine's compute type T. TV is double (the
/// interface's float64 vectors) or T itself (float32 blocks on a float32 engine, read and written
/// without conversion).
/// </summary>
internal abstract class EngineBlocks<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>dst = src in T: a copy when TV is T, else src (double) rounded.</summary>
    private protected static void ToT<TV>(ReadOnlySpan<TV> src, Span<T> dst) where TV : unmanaged
    {
        if (typeof(TV) == typeof(double)) Widening.Narrow(MemoryMarshal.Cast<TV, double>(src), dst);
        else if (typeof(TV) == typeof(T)) MemoryMarshal.Cast<TV, T>(src).CopyTo(dst);
        else throw Unsupported<TV>();
    }

    /// <summary>dst = src: a copy when TV is T, else src widened to double (exact).</summary>
    private protected static void FromT<TV>(ReadOnlySpan<T> src, Span<TV> dst) where TV : unmanaged
    {
        if (typeof(TV) == typeof(double)) Widening.Widen(src, MemoryMarshal.Cast<TV, double>(dst));
        else if (typeof(TV) == typeof(T)) src.CopyTo(MemoryMarshal.Cast<TV, T>(dst));
        else throw Unsupported<TV>();
    }

    /// <summary>dst += alpha · src: in float64 for a double block, in T for a block in T.</summary>
    private protected static void AddScaled<TV>(ReadOnlySpan<T> src, double alpha, Span<TV> dst) where TV : unmanaged
    {
        if (typeof(TV) == typeof(double)) { Widening.AddScaled(src, alpha, MemoryMarshal.Cast<TV, double>(dst)); return; }
        if (typeof(TV) != typeof(T)) throw Unsupported<TV>();
        var d = MemoryMarshal.Cast<TV, T>(dst);
        if (alpha == 1.0) TensorPrimitives.Add(d, src, d);
        else TensorPrimitives.MultiplyAdd(src, T.CreateTruncating(alpha), d, d);
    }

    /// <summary>A float64 array in T: float64 shares it (the caller's copy is never written), float32 rounds a copy.</summary>
    private protected static T[] Shared(double[] src)
    {
        if (typeof(T) == typeof(double)) return (T[])(object)src;
        var dst = new T[src.Length];
        Widening.Narrow<T>(src, dst);
        return dst;
    }

    private static NotSupportedException Unsupported<TV>() => new($"{typeof(TV).Name} blocks on a {typeof(T).Name} engine.");
}
