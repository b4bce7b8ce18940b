using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GlobalNtk.Dense;

/// <summary>
/// The AVX-512 lane operations the GEMM kernels share, for either precision (float64 or float32; the
/// typeof tests are JIT-time constants, so each instantiation is one instruction). Written once here for
/// <see cref="Avx512Kernel{T}"/>, <see cref="DotTile{T}"/> (the dot forms of <see cref="Avx512NarrowDot{T}"/> and
/// <see cref="GemmDot"/>) and GemmDot's axpy form.
/// </summary>
internal static unsafe class Avx512Lanes
{
    /// <summary>x·y + z, fused (one rounding).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Fma<T>(Vector512<T> x, Vector512<T> y, Vector512<T> z) where T : unmanaged
    {
        if (typeof(T) == typeof(double)) return Avx512F.FusedMultiplyAdd(x.AsDouble(), y.AsDouble(), z.AsDouble()).As<double, T>();
        if (typeof(T) == typeof(float)) return Avx512F.FusedMultiplyAdd(x.AsSingle(), y.AsSingle(), z.AsSingle()).As<float, T>();
        throw new NotSupportedException();
    }

    /// <summary>All ones in the first <paramref name="count"/> lanes (0 ≤ count ≤ L; 0: all clear).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> LaneMask<T>(int count) where T : unmanaged
    {
        if (typeof(T) == typeof(double)) return Vector512.LessThan(Vector512<long>.Indices, Vector512.Create((long)count)).As<long, T>();
        if (typeof(T) == typeof(float)) return Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)).As<int, T>();
        throw new NotSupportedException();
    }

    /// <summary>The masked lanes of p (zero elsewhere); masked-off lanes are not read, so they may lie past the end of an array.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> MaskLoad<T>(T* p, Vector512<T> mask) where T : unmanaged
    {
        if (typeof(T) == typeof(double)) return Avx512F.MaskLoad((double*)p, mask.AsDouble(), Vector512<double>.Zero).As<double, T>();
        if (typeof(T) == typeof(float)) return Avx512F.MaskLoad((float*)p, mask.AsSingle(), Vector512<float>.Zero).As<float, T>();
        throw new NotSupportedException();
    }

    /// <summary>Stores the masked lanes of x at p; masked-off lanes are not written.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void MaskStore<T>(T* p, Vector512<T> mask, Vector512<T> x) where T : unmanaged
    {
        if (typeof(T) == typeof(double)) Avx512F.MaskStore((double*)p, mask.AsDouble(), x.AsDouble());
        else if (typeof(T) == typeof(float)) Avx512F.MaskStore((float*)p, mask.AsSingle(), x.AsSingle());
        else throw new NotSupportedException();
    }
}
