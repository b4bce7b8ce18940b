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

    /// <summary>
    /// The lane sums of 16 vectors at once, by a transposing tree (45 shuffles and adds in float32, 42 in float64, where
    /// one <see cref="Vector512.Sum{T}(Vector512{T})"/> each costs about 8): float32: lane j of <paramref name="lo"/> = Σ lanes
    /// of s_j; float64: lane j of <paramref name="lo"/> = Σ lanes of s_j, of <paramref name="hi"/> = Σ lanes of s_(8+j).
    /// Order, per sum (its bits): float32 adds lanes ℓ and ℓ + 2 within each 128-bit quarter, then the two results of
    /// the quarter, then quarters 0 + 1 and 2 + 3, then those two; float64 adds the two lanes of each quarter, then
    /// quarters 0 + 1 and 2 + 3, then those two.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SumLanes16<T>(Vector512<T> s0, Vector512<T> s1, Vector512<T> s2, Vector512<T> s3, Vector512<T> s4,
        Vector512<T> s5, Vector512<T> s6, Vector512<T> s7, Vector512<T> s8, Vector512<T> s9, Vector512<T> s10, Vector512<T> s11,
        Vector512<T> s12, Vector512<T> s13, Vector512<T> s14, Vector512<T> s15, out Vector512<T> lo, out Vector512<T> hi) where T : unmanaged
    {
        // Written out in intrinsics, without helper methods: it is inlined into the dot tile, whose JIT inlining
        // budget is nearly spent (a helper left as a call costs more than the tree).
        const byte even = 0b10_00_10_00, odd = 0b11_01_11_01; // quarters [x0, x2, y0, y2] and [x1, x3, y1, y3]
        if (typeof(T) == typeof(float))
        {
            // Lanes ℓ + (ℓ + 2) per quarter: [x0+x2, y0+y2, x1+x3, y1+y3].
            Vector512<float> a0 = Avx512F.UnpackLow(s0.AsSingle(), s1.AsSingle()) + Avx512F.UnpackHigh(s0.AsSingle(), s1.AsSingle());
            Vector512<float> a1 = Avx512F.UnpackLow(s2.AsSingle(), s3.AsSingle()) + Avx512F.UnpackHigh(s2.AsSingle(), s3.AsSingle());
            Vector512<float> a2 = Avx512F.UnpackLow(s4.AsSingle(), s5.AsSingle()) + Avx512F.UnpackHigh(s4.AsSingle(), s5.AsSingle());
            Vector512<float> a3 = Avx512F.UnpackLow(s6.AsSingle(), s7.AsSingle()) + Avx512F.UnpackHigh(s6.AsSingle(), s7.AsSingle());
            Vector512<float> a4 = Avx512F.UnpackLow(s8.AsSingle(), s9.AsSingle()) + Avx512F.UnpackHigh(s8.AsSingle(), s9.AsSingle());
            Vector512<float> a5 = Avx512F.UnpackLow(s10.AsSingle(), s11.AsSingle()) + Avx512F.UnpackHigh(s10.AsSingle(), s11.AsSingle());
            Vector512<float> a6 = Avx512F.UnpackLow(s12.AsSingle(), s13.AsSingle()) + Avx512F.UnpackHigh(s12.AsSingle(), s13.AsSingle());
            Vector512<float> a7 = Avx512F.UnpackLow(s14.AsSingle(), s15.AsSingle()) + Avx512F.UnpackHigh(s14.AsSingle(), s15.AsSingle());
            // Pairs of lanes moved as float64, added as float32: per quarter [x, y, z, w] of four vectors.
            Vector512<float> b0 = Avx512F.UnpackLow(a0.AsDouble(), a1.AsDouble()).AsSingle() + Avx512F.UnpackHigh(a0.AsDouble(), a1.AsDouble()).AsSingle();
            Vector512<float> b1 = Avx512F.UnpackLow(a2.AsDouble(), a3.AsDouble()).AsSingle() + Avx512F.UnpackHigh(a2.AsDouble(), a3.AsDouble()).AsSingle();
            Vector512<float> b2 = Avx512F.UnpackLow(a4.AsDouble(), a5.AsDouble()).AsSingle() + Avx512F.UnpackHigh(a4.AsDouble(), a5.AsDouble()).AsSingle();
            Vector512<float> b3 = Avx512F.UnpackLow(a6.AsDouble(), a7.AsDouble()).AsSingle() + Avx512F.UnpackHigh(a6.AsDouble(), a7.AsDouble()).AsSingle();
            // Quarters 0 + 1 and 2 + 3, then those two: quarter q of the result holds s_4q … s_4q+3.
            Vector512<float> c0 = Avx512F.Shuffle4x128(b0, b1, even) + Avx512F.Shuffle4x128(b0, b1, odd);
            Vector512<float> c1 = Avx512F.Shuffle4x128(b2, b3, even) + Avx512F.Shuffle4x128(b2, b3, odd);
            lo = (Avx512F.Shuffle4x128(c0, c1, even) + Avx512F.Shuffle4x128(c0, c1, odd)).As<float, T>();
            hi = default;
            return;
        }
        if (typeof(T) == typeof(double))
        {
            lo = SumLanes8(s0.AsDouble(), s1.AsDouble(), s2.AsDouble(), s3.AsDouble(), s4.AsDouble(), s5.AsDouble(), s6.AsDouble(), s7.AsDouble()).As<double, T>();
            hi = SumLanes8(s8.AsDouble(), s9.AsDouble(), s10.AsDouble(), s11.AsDouble(), s12.AsDouble(), s13.AsDouble(), s14.AsDouble(), s15.AsDouble()).As<double, T>();
            return;
        }
        throw new NotSupportedException();
    }

    /// <summary>Lane j = Σ lanes of s_j (float64, 8 vectors): the two lanes of each quarter, then quarters 0 + 1 and 2 + 3, then those two.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<double> SumLanes8(Vector512<double> s0, Vector512<double> s1, Vector512<double> s2, Vector512<double> s3,
        Vector512<double> s4, Vector512<double> s5, Vector512<double> s6, Vector512<double> s7)
    {
        const byte even = 0b10_00_10_00, odd = 0b11_01_11_01;
        Vector512<double> a0 = Avx512F.UnpackLow(s0, s1) + Avx512F.UnpackHigh(s0, s1), a1 = Avx512F.UnpackLow(s2, s3) + Avx512F.UnpackHigh(s2, s3);
        Vector512<double> a2 = Avx512F.UnpackLow(s4, s5) + Avx512F.UnpackHigh(s4, s5), a3 = Avx512F.UnpackLow(s6, s7) + Avx512F.UnpackHigh(s6, s7);
        Vector512<double> b0 = Avx512F.Shuffle4x128(a0, a1, even) + Avx512F.Shuffle4x128(a0, a1, odd);
        Vector512<double> b1 = Avx512F.Shuffle4x128(a2, a3, even) + Avx512F.Shuffle4x128(a2, a3, odd);
        return Avx512F.Shuffle4x128(b0, b1, even) + Avx512F.Shuffle4x128(b0, b1, odd);
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
