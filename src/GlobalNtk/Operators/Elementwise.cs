using System.Numerics;
using System.Numerics.Tensors;

namespace GlobalNtk.Operators;

/// <summary>
/// Elementwise passes over blocks of state-sized vectors, split over the processors when the
/// block is large. Each is a memory-bound pass that would otherwise run on one thread between
/// the parallel GEMMs of an operator application; every element is computed exactly as by the
/// serial <see cref="TensorPrimitives"/> call, so the results do not depend on the split.
/// </summary>
internal static class Elementwise
{
    /// <summary>Elements below which a pass stays on the calling thread (a fork costs a few microseconds).</summary>
    internal const long ParallelElements = 1 << 16;

    /// <summary>
    /// Runs <paramref name="range"/>(i0, i1) over item ranges covering 0..items−1: in one part per
    /// processor when the items hold at least <see cref="ParallelElements"/> elements
    /// (<paramref name="elements"/> in all), else in one call.
    /// </summary>
    public static void For(int items, long elements, Action<int, int> range)
    {
        int parts = elements < ParallelElements ? 1 : Math.Min(items, Environment.ProcessorCount);
        if (parts <= 1) { if (items > 0) range(0, items); return; }
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts },
            p => range((int)((long)items * p / parts), (int)((long)items * (p + 1) / parts)));
    }

    /// <summary>Splits [0, n) into chunks of whole SIMD blocks for <see cref="For"/>.</summary>
    private const int Chunk = 1 << 12;

    /// <summary>dst = a + b (dst may alias a or b).</summary>
    public static unsafe void Add<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> dst) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = dst.Length;
        if (a.Length != n || b.Length != n) throw new ArgumentException($"Elementwise.Add: lengths {a.Length}, {b.Length} and {n} differ.");
        if (n < ParallelElements) { TensorPrimitives.Add(a, b, dst); return; }
        fixed (T* pa = a, pb = b, pd = dst)
        {
            nint ia = (nint)pa, ib = (nint)pb, id = (nint)pd;
            For((n + Chunk - 1) / Chunk, n, (c0, c1) =>
            {
                int lo = c0 * Chunk, len = Math.Min(n, c1 * Chunk) - lo;
                TensorPrimitives.Add(new ReadOnlySpan<T>((T*)ia + lo, len), new ReadOnlySpan<T>((T*)ib + lo, len), new Span<T>((T*)id + lo, len));
            });
        }
    }

    /// <summary>dst[k] = x[k] · scale[k mod d] (d = scale's length; x holds whole rows of d; dst may alias x).</summary>
    public static unsafe void MultiplyRows<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> scale, Span<T> dst) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int d = scale.Length, n = dst.Length;
        if (x.Length != n || d == 0 || n % d != 0) throw new ArgumentException($"Elementwise.MultiplyRows: lengths {x.Length} and {n} are not the same multiple of {d}.");
        fixed (T* px = x, ps = scale, pd = dst)
        {
            nint ix = (nint)px, isc = (nint)ps, id = (nint)pd;
            For((n + Chunk - 1) / Chunk, n, (c0, c1) =>
            {
                // [lo, hi) in pieces that do not cross a row of scale.
                long lo = (long)c0 * Chunk, hi = Math.Min(n, (long)c1 * Chunk);
                while (lo < hi)
                {
                    int off = (int)(lo % d), len = (int)Math.Min(hi - lo, d - off);
                    TensorPrimitives.Multiply(new ReadOnlySpan<T>((T*)ix + lo, len), new ReadOnlySpan<T>((T*)isc + off, len), new Span<T>((T*)id + lo, len));
                    lo += len;
                }
            });
        }
    }
}
