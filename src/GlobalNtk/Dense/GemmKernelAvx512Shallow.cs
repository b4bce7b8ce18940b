using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GlobalNtk.Dense;

/// <summary>
/// Shallow products (k ≤ <see cref="ShallowDepth"/>) on AVX-512: op(B)'s k rows of a strip of up to 3 vectors are
/// loaded into registers once, then every row of C in the strip is k broadcasts, k·nv fused multiply-adds
/// and its stores. With so little depth the tiles of <see cref="Direct"/> spend most of their time in
/// per-tile set-up (row offsets, C prefetch, masks, calls) and their epilogue; here that is paid once per strip.
/// </summary>
/// <remarks>
/// Each element of C is the same FMA chain from zero over p = 0, 1, …, k−1 and the same epilogue
/// (<see cref="Put"/>: alpha·sum, or alpha·sum + (beta·C) fused) as on the direct and packed paths, so the
/// bits do not change.
/// </remarks>
internal unsafe partial struct Avx512Kernel<T>
{
    /// <summary>Deepest product <see cref="Shallow"/> takes: 8 rows of B × 3 vectors = 24 registers, with 3 accumulators and a broadcast.</summary>
    internal const int ShallowDepth = 8;

    /// <summary>
    /// Whether <see cref="Shallow"/> runs the product (m, n ≥ 2): k ≤ <see cref="ShallowDepth"/>, not a narrow C
    /// that <see cref="Transposed"/> takes, and more than 4 rows or a single strip (on 2–4 rows and many strips
    /// the per-strip set-up weighs, and <see cref="Direct"/>'s strips measured faster: 2×1022×2 Aᵀ·B 99 → 86 %).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool TakesShallow(Trans ta, int m, int n, int k) =>
        k <= ShallowDepth && (m > 4 || n <= 3 * Vector512<T>.Count) && !NarrowC(ta, m, n, k);

    /// <summary>C = alpha·op(A)·op(B) + beta·C for 1 ≤ k ≤ <see cref="ShallowDepth"/>, strip by strip of 3 vectors of columns.</summary>
    public static void Shallow(Trans ta, Trans tb, int m, int n, int k, T alpha, T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc)
    {
        switch (k)
        {
            case 1: ShallowOn<D1>(ta, tb, m, n, alpha, a, lda, b, ldb, beta, c, ldc); break;
            case 2: ShallowOn<D2>(ta, tb, m, n, alpha, a, lda, b, ldb, beta, c, ldc); break;
            case 3: ShallowOn<D3>(ta, tb, m, n, alpha, a, lda, b, ldb, beta, c, ldc); break;
            case 4: ShallowOn<D4>(ta, tb, m, n, alpha, a, lda, b, ldb, beta, c, ldc); break;
            case 5: ShallowOn<D5>(ta, tb, m, n, alpha, a, lda, b, ldb, beta, c, ldc); break;
            case 6: ShallowOn<D6>(ta, tb, m, n, alpha, a, lda, b, ldb, beta, c, ldc); break;
            case 7: ShallowOn<D7>(ta, tb, m, n, alpha, a, lda, b, ldb, beta, c, ldc); break;
            case 8: ShallowOn<D8>(ta, tb, m, n, alpha, a, lda, b, ldb, beta, c, ldc); break;
            default: throw new ArgumentOutOfRangeException(nameof(k));
        }
    }

    private static void ShallowOn<D>(Trans ta, Trans tb, int m, int n, T alpha, T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc)
        where D : struct, IDepth
    {
        // The epilogue as a compile-time variant: alpha = 1, beta = 0 stores the sums as they are (1·x is x).
        if (beta == T.Zero && alpha == T.One)
            ShallowStrips<D, SumsOnly<Direct3>, SumsOnly<DirectEdge1>, SumsOnly<DirectEdge2>, SumsOnly<DirectEdge3>>(ta, tb, m, n, alpha, a, lda, b, ldb, beta, c, ldc);
        else if (beta == T.Zero)
            ShallowStrips<D, ZeroBeta<Direct3>, ZeroBeta<DirectEdge1>, ZeroBeta<DirectEdge2>, ZeroBeta<DirectEdge3>>(ta, tb, m, n, alpha, a, lda, b, ldb, beta, c, ldc);
        else
            ShallowStrips<D, Direct3, DirectEdge1, DirectEdge2, DirectEdge3>(ta, tb, m, n, alpha, a, lda, b, ldb, beta, c, ldc);
    }

    [SkipLocalsInit]
    private static void ShallowStrips<D, SFull, SEdge1, SEdge2, SEdge3>(Trans ta, Trans tb, int m, int n, T alpha, T* a, nint lda,
        T* b, nint ldb, T beta, T* c, nint ldc)
        where D : struct, IDepth
        where SFull : struct, ITileShape where SEdge1 : struct, ITileShape where SEdge2 : struct, ITileShape where SEdge3 : struct, ITileShape
    {
        nint ars = ta == Trans.No ? lda : 1, aps = ta == Trans.No ? 1 : lda; // op(A)(i, p) = a[i·ars + p·aps]
        int l = Vector512<T>.Count, w = 3 * l;
        // A transposed B: each strip's k × w block is transposed here first (at most 8 × 48 values).
        T* strip = stackalloc T[ShallowDepth * 3 * 64 / sizeof(T)];
        for (int j0 = 0; j0 < n; j0 += w)
        {
            int cols = Math.Min(w, n - j0);
            T* bj = b + j0;
            nint bps = ldb;
            if (tb == Trans.Yes)
            {
                GemmDriver<T, Avx512Kernel<T>>.Transpose(b + j0 * ldb, ldb, cols, D.K, strip, w);
                bj = strip;
                bps = w;
            }
            if (cols == w) ShallowStrip<D, SFull>(m, alpha, a, ars, aps, bj, bps, beta, c + j0, ldc, 0);
            else if (cols <= l) ShallowStrip<D, SEdge1>(m, alpha, a, ars, aps, bj, bps, beta, c + j0, ldc, cols);
            else if (cols <= 2 * l) ShallowStrip<D, SEdge2>(m, alpha, a, ars, aps, bj, bps, beta, c + j0, ldc, cols - l);
            else ShallowStrip<D, SEdge3>(m, alpha, a, ars, aps, bj, bps, beta, c + j0, ldc, cols - 2 * l);
        }
    }

    /// <summary>
    /// C[0:m, 0:(nv−1)·L + last] of one strip, B(p, :) = b + p·bps held in registers for p &lt; k
    /// (the last vector loaded under the mask when <see cref="ITileShape.Masked"/>), row after row.
    /// </summary>
    private static void ShallowStrip<D, S>(int m, T alpha, T* a, nint ars, nint aps, T* b, nint bps, T beta, T* c, nint ldc, int last)
        where D : struct, IDepth where S : struct, ITileShape
    {
        int l = Vector512<T>.Count, nv = S.Vectors, k = D.K;
        bool masked = S.Masked;
        Vector512<T> mask = masked ? LaneMask(last) : default;
        Vector512<T> b00 = Part(b, 0, nv, masked, mask), b01 = Part(b + l, 1, nv, masked, mask), b02 = Part(b + 2 * l, 2, nv, masked, mask);
        T* bp = b + bps;
        Vector512<T> b10 = default, b11 = default, b12 = default, b20 = default, b21 = default, b22 = default;
        Vector512<T> b30 = default, b31 = default, b32 = default, b40 = default, b41 = default, b42 = default;
        Vector512<T> b50 = default, b51 = default, b52 = default, b60 = default, b61 = default, b62 = default;
        Vector512<T> b70 = default, b71 = default, b72 = default;
        if (k > 1) { b10 = Part(bp, 0, nv, masked, mask); b11 = Part(bp + l, 1, nv, masked, mask); b12 = Part(bp + 2 * l, 2, nv, masked, mask); bp += bps; }
        if (k > 2) { b20 = Part(bp, 0, nv, masked, mask); b21 = Part(bp + l, 1, nv, masked, mask); b22 = Part(bp + 2 * l, 2, nv, masked, mask); bp += bps; }
        if (k > 3) { b30 = Part(bp, 0, nv, masked, mask); b31 = Part(bp + l, 1, nv, masked, mask); b32 = Part(bp + 2 * l, 2, nv, masked, mask); bp += bps; }
        if (k > 4) { b40 = Part(bp, 0, nv, masked, mask); b41 = Part(bp + l, 1, nv, masked, mask); b42 = Part(bp + 2 * l, 2, nv, masked, mask); bp += bps; }
        if (k > 5) { b50 = Part(bp, 0, nv, masked, mask); b51 = Part(bp + l, 1, nv, masked, mask); b52 = Part(bp + 2 * l, 2, nv, masked, mask); bp += bps; }
        if (k > 6) { b60 = Part(bp, 0, nv, masked, mask); b61 = Part(bp + l, 1, nv, masked, mask); b62 = Part(bp + 2 * l, 2, nv, masked, mask); bp += bps; }
        if (k > 7) { b70 = Part(bp, 0, nv, masked, mask); b71 = Part(bp + l, 1, nv, masked, mask); b72 = Part(bp + 2 * l, 2, nv, masked, mask); }
        nint o1 = aps, o2 = 2 * aps, o3 = 3 * aps, o4 = 4 * aps, o5 = 5 * aps, o6 = 6 * aps, o7 = 7 * aps;
        Vector512<T> va = Vector512.Create(alpha), vb = Vector512.Create(beta);
        bool beta0 = S.Beta0 || beta == T.Zero;
        for (T* aEnd = a + m * ars; a < aEnd; a += ars, c += ldc)
        {
            // The same chain as the tiles': from zero, p = 0, 1, …, k−1.
            Vector512<T> x = Vector512.Create(a[0]);
            Vector512<T> s0 = Fma(x, b00, default), s1 = nv > 1 ? Fma(x, b01, default) : default, s2 = nv > 2 ? Fma(x, b02, default) : default;
            if (k > 1) { x = Vector512.Create(a[o1]); s0 = Fma(x, b10, s0); if (nv > 1) s1 = Fma(x, b11, s1); if (nv > 2) s2 = Fma(x, b12, s2); }
            if (k > 2) { x = Vector512.Create(a[o2]); s0 = Fma(x, b20, s0); if (nv > 1) s1 = Fma(x, b21, s1); if (nv > 2) s2 = Fma(x, b22, s2); }
            if (k > 3) { x = Vector512.Create(a[o3]); s0 = Fma(x, b30, s0); if (nv > 1) s1 = Fma(x, b31, s1); if (nv > 2) s2 = Fma(x, b32, s2); }
            if (k > 4) { x = Vector512.Create(a[o4]); s0 = Fma(x, b40, s0); if (nv > 1) s1 = Fma(x, b41, s1); if (nv > 2) s2 = Fma(x, b42, s2); }
            if (k > 5) { x = Vector512.Create(a[o5]); s0 = Fma(x, b50, s0); if (nv > 1) s1 = Fma(x, b51, s1); if (nv > 2) s2 = Fma(x, b52, s2); }
            if (k > 6) { x = Vector512.Create(a[o6]); s0 = Fma(x, b60, s0); if (nv > 1) s1 = Fma(x, b61, s1); if (nv > 2) s2 = Fma(x, b62, s2); }
            if (k > 7) { x = Vector512.Create(a[o7]); s0 = Fma(x, b70, s0); if (nv > 1) s1 = Fma(x, b71, s1); if (nv > 2) s2 = Fma(x, b72, s2); }
            if (S.UnitAlpha) StoreRow4(c, s0, s1, s2, default, nv, masked, mask);
            else PutRow(c, s0, s1, s2, va, vb, beta0, nv, masked, mask);
        }
    }

    /// <summary>Vector <paramref name="v"/> of a strip's row of B: zero past the strip's <paramref name="nv"/> vectors, the last one under the mask.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Part(T* p, int v, int nv, bool masked, Vector512<T> mask) =>
        v >= nv ? default : masked && v == nv - 1 ? MaskLoad(p, mask) : Vector512.Load(p);
}

/// <summary>A depth k known at compile time (<see cref="Avx512Kernel{T}.Shallow"/>).</summary>
internal interface IDepth
{
    /// <summary>The k of the product.</summary>
    static abstract int K { get; }
}

internal struct D1 : IDepth { public static int K => 1; }
internal struct D2 : IDepth { public static int K => 2; }
internal struct D3 : IDepth { public static int K => 3; }
internal struct D4 : IDepth { public static int K => 4; }
internal struct D5 : IDepth { public static int K => 5; }
internal struct D6 : IDepth { public static int K => 6; }
internal struct D7 : IDepth { public static int K => 7; }
internal struct D8 : IDepth { public static int K => 8; }
