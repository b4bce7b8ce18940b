using System.Numerics;
using System.Runtime.InteropServices;

namespace GlobalNtk.Dense;

/// <summary>
/// <see cref="Gemm"/> for code generic over its element type (float64 or float32): forwards to the
/// double or float overload (the type test is a JIT-time constant).
/// </summary>
internal static class GemmGeneric
{
    /// <summary><see cref="Gemm.Multiply(Trans, Trans, int, int, int, double, ReadOnlySpan{double}, int, ReadOnlySpan{double}, int, double, Span{double}, int)"/> in T.</summary>
    public static void Multiply<T>(Trans ta, Trans tb, int m, int n, int k, T alpha,
        ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, T beta, Span<T> c, int ldc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(double))
            Gemm.Multiply(ta, tb, m, n, k, double.CreateTruncating(alpha), MemoryMarshal.Cast<T, double>(a), lda,
                MemoryMarshal.Cast<T, double>(b), ldb, double.CreateTruncating(beta), MemoryMarshal.Cast<T, double>(c), ldc);
        else if (typeof(T) == typeof(float))
            Gemm.Multiply(ta, tb, m, n, k, float.CreateTruncating(alpha), MemoryMarshal.Cast<T, float>(a), lda,
                MemoryMarshal.Cast<T, float>(b), ldb, float.CreateTruncating(beta), MemoryMarshal.Cast<T, float>(c), ldc);
        else throw new NotSupportedException($"GEMM in {typeof(T).Name} is not available (float64 and float32 only).");
    }

    /// <summary><see cref="Gemm.MultiplyBatched(Trans, Trans, int, int, int, int, double, ReadOnlySpan{double}, int, int, ReadOnlySpan{double}, int, int, double, Span{double}, int, int)"/> in T.</summary>
    public static void MultiplyBatched<T>(Trans ta, Trans tb, int batch, int m, int n, int k, T alpha,
        ReadOnlySpan<T> a, int lda, int strideA, ReadOnlySpan<T> b, int ldb, int strideB,
        T beta, Span<T> c, int ldc, int strideC)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(double))
            Gemm.MultiplyBatched(ta, tb, batch, m, n, k, double.CreateTruncating(alpha), MemoryMarshal.Cast<T, double>(a), lda, strideA,
                MemoryMarshal.Cast<T, double>(b), ldb, strideB, double.CreateTruncating(beta), MemoryMarshal.Cast<T, double>(c), ldc, strideC);
        else if (typeof(T) == typeof(float))
            Gemm.MultiplyBatched(ta, tb, batch, m, n, k, float.CreateTruncating(alpha), MemoryMarshal.Cast<T, float>(a), lda, strideA,
                MemoryMarshal.Cast<T, float>(b), ldb, strideB, float.CreateTruncating(beta), MemoryMarshal.Cast<T, float>(c), ldc, strideC);
        else throw new NotSupportedException($"GEMM in {typeof(T).Name} is not available (float64 and float32 only).");
    }
}
