using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace GlobalNtk.Models.Recurrent;

/// <summary>
/// A run of SIMD lanes (Vector512, Vector256 or one scalar) with the few operations the cells'
/// fused derivative loops use, so a cell writes its per-unit formula once and runs it at every
/// width (<see cref="Lanes.For{T, TKernel}"/>). Lane operations are IEEE element-wise (no fused
/// multiply-add), so every width gives the bits of the scalar formula.
/// </summary>
internal interface ILanes<TSelf, T> where TSelf : struct, ILanes<TSelf, T> where T : unmanaged, IFloatingPointIeee754<T>
{
    static abstract int Count { get; }
    static abstract TSelf Load(ReadOnlySpan<T> s, int i);
    static abstract TSelf Splat(T value);
    void Store(Span<T> s, int i);
    static abstract TSelf operator +(TSelf a, TSelf b);
    static abstract TSelf operator -(TSelf a, TSelf b);
    static abstract TSelf operator *(TSelf a, TSelf b);
}

/// <summary>
/// A per-unit loop: <c>Run&lt;L&gt;(from, to)</c> handles units from .. to − 1 in steps of L.Count
/// (to − from is a multiple of it). A ref struct holding the row's spans, so each width's loop is
/// compiled with the formula inlined.
/// </summary>
internal interface ILaneKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    void Run<TL>(int from, int to) where TL : struct, ILanes<TL, T>;
}

/// <summary>Drives an <see cref="ILaneKernel{T}"/> over [0, n): Vector512, then Vector256, then scalar units.</summary>
internal static class Lanes
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void For<T, TKernel>(int n, ref TKernel kernel)
        where T : unmanaged, IFloatingPointIeee754<T> where TKernel : struct, ILaneKernel<T>, allows ref struct
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated && Vector512<T>.IsSupported)
        {
            int end = n - n % Vector512<T>.Count;
            if (end > 0) kernel.Run<Lanes512<T>>(0, end);
            i = end;
        }
        if (Vector256.IsHardwareAccelerated && Vector256<T>.IsSupported)
        {
            int end = n - (n - i) % Vector256<T>.Count;
            if (end > i) kernel.Run<Lanes256<T>>(i, end);
            i = end;
        }
        if (i < n) kernel.Run<Lane1<T>>(i, n);
    }
}

internal readonly struct Lanes512<T>(Vector512<T> v) : ILanes<Lanes512<T>, T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Vector512<T> _v = v;
    public static int Count => Vector512<T>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lanes512<T> Load(ReadOnlySpan<T> s, int i) => new(Vector512.LoadUnsafe(ref MemoryMarshal.GetReference(s), (nuint)i));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lanes512<T> Splat(T value) => new(Vector512.Create(value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Store(Span<T> s, int i) => _v.StoreUnsafe(ref MemoryMarshal.GetReference(s), (nuint)i);
    public static Lanes512<T> operator +(Lanes512<T> a, Lanes512<T> b) => new(a._v + b._v);
    public static Lanes512<T> operator -(Lanes512<T> a, Lanes512<T> b) => new(a._v - b._v);
    public static Lanes512<T> operator *(Lanes512<T> a, Lanes512<T> b) => new(a._v * b._v);
}

internal readonly struct Lanes256<T>(Vector256<T> v) : ILanes<Lanes256<T>, T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Vector256<T> _v = v;
    public static int Count => Vector256<T>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lanes256<T> Load(ReadOnlySpan<T> s, int i) => new(Vector256.LoadUnsafe(ref MemoryMarshal.GetReference(s), (nuint)i));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lanes256<T> Splat(T value) => new(Vector256.Create(value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Store(Span<T> s, int i) => _v.StoreUnsafe(ref MemoryMarshal.GetReference(s), (nuint)i);
    public static Lanes256<T> operator +(Lanes256<T> a, Lanes256<T> b) => new(a._v + b._v);
    public static Lanes256<T> operator -(Lanes256<T> a, Lanes256<T> b) => new(a._v - b._v);
    public static Lanes256<T> operator *(Lanes256<T> a, Lanes256<T> b) => new(a._v * b._v);
}

internal readonly struct Lane1<T>(T v) : ILanes<Lane1<T>, T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly T _v = v;
    public static int Count => 1;
    public static Lane1<T> Load(ReadOnlySpan<T> s, int i) => new(s[i]);
    public static Lane1<T> Splat(T value) => new(value);
    public void Store(Span<T> s, int i) => s[i] = _v;
    public static Lane1<T> operator +(Lane1<T> a, Lane1<T> b) => new(a._v + b._v);
    public static Lane1<T> operator -(Lane1<T> a, Lane1<T> b) => new(a._v - b._v);
    public static Lane1<T> operator *(Lane1<T> a, Lane1<T> b) => new(a._v * b._v);
}
