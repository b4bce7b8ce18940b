using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

using static GlobalNtk.Dense.Avx512Lanes;

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
    /// that <see cref="Transposed"/> takes, and where its strip-by-strip order measured faster than <see cref="Direct"/>
    /// (% of OpenBLAS, sweep means of two rounds): not on 2–4 rows over several strips (the per-strip set-up weighs:
    /// 2×1022×2 Aᵀ·B 99 → 86), not on a C of over 2¹⁶ elements (walked strip by strip it loses the tiles' C prefetch:
    /// 236×1510×2 A·B 246 → 114, 1160×235×3 Aᵀ·Bᵀ 370 → 202, 135×564×2 A·Bᵀ 144 → 116), and not with a transposed B
    /// over several strips and fewer than 64 rows (each strip's k × 3L block is transposed by scalars: 34×555×4 A·Bᵀ
    /// f32 112 → 93).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool TakesShallow(Trans ta, Trans tb, int m, int n, int k)
    {
        bool oneStrip = n <= 3 * Vector512<T>.Count;
        return k <= ShallowDepth && (oneStrip || (m > 4 && (long)m * n <= 1 << 16 && (tb == Trans.No || m >= 64))) && !NarrowC(ta, m, n, k);
    }

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
        Vector512<T> mask = masked ? LaneMask<T>(last) : default;
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

/// <summary>Deeper products over a single vector of columns: B's k ≤ 24 rows held in registers.</summary>
internal unsafe partial struct Avx512Kernel<T>
{
    /// <summary>Deepest product <see cref="Deep"/> takes: 24 rows of one vector of B, with an accumulator and a broadcast.</summary>
    internal const int DeepDepth = 24;

    /// <summary>
    /// Whether <see cref="Deep"/> runs the product (m, n ≥ 2): one vector of columns, <see cref="ShallowDepth"/> &lt; k ≤
    /// <see cref="DeepDepth"/>, C of at most 2¹⁶ elements. The 8-row tiles of <see cref="Direct"/> on one vector are FMA-latency
    /// bound per tile; rows here are independent chains. With <see cref="DirectNarrowRoutes.On"/>: 2..L columns in both
    /// precisions, except where <see cref="NarrowC"/> computes Cᵀ on at most 4 columns (Deep spends a whole FMA per row on
    /// them: 68×4×16 Aᵀ·Bᵀ f64 63–67 → 52–55 %) or, in float32, from k = 17 (646×7×19 Aᵀ·B 110–125 → 98–114, 300×6×20 85–97 →
    /// 68–82, 200×5×24 75–87 → 51–64); without it, float32 with 9..L columns only. Measured (% of OpenBLAS, one thread, two
    /// or three alternating rounds, off → on): 169×5×9 Aᵀ·B f64 76–81 → 170–177, f32 72–78 → 129–145; 1000×5×10 Aᵀ·B f64
    /// 73–93 → 192–200, f32 74–92 → 120–147; 500×8×12 Aᵀ·B f32 97–118 → 145–177; 16×3×13 A·B f64 65–71 → 97–147, f32 54–71 →
    /// 84–121; 1978×6×17 A·B f64 56–73 → 92–116, f32 58–74 → 90–112; 646×7×19 Aᵀ·B f64 60–76 → 79–108; 886×5×16 Aᵀ·B f64
    /// 84–97 → 123–139; 2000×3×20 A·B f64 92–98 → 131–134.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool TakesDeep(Trans ta, int m, int n, int k) =>
        k > ShallowDepth && k <= DeepDepth && n <= Vector512<T>.Count && (long)m * n <= 1 << 16
        && (DirectNarrowRoutes.On
            ? n >= 2 && (!NarrowC(ta, m, n, k) || (n > 4 && (typeof(T) == typeof(double) || k <= 16)))
            : typeof(T) == typeof(float) && n > 8);

    /// <summary>C = alpha·op(A)·op(B) + beta·C for n ≤ L and <see cref="ShallowDepth"/> &lt; k ≤ <see cref="DeepDepth"/>: one masked strip, row by row (the same chains and epilogue as every path).</summary>
    [SkipLocalsInit]
    public static void Deep(Trans ta, Trans tb, int m, int n, int k, T alpha, T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc)
    {
        nint ars = ta == Trans.No ? lda : 1, aps = ta == Trans.No ? 1 : lda; // op(A)(i, p) = a[i·ars + p·aps]
        nint bps = ldb;
        DirectNarrowRoutes.Note(DirectNarrowRoutes.Route.Deep);
        T* block = stackalloc T[DeepDepth * 64 / sizeof(T)];
        if (tb == Trans.Yes)
        {
            GemmDriver<T, Avx512Kernel<T>>.Transpose(b, ldb, n, k, block, Vector512<T>.Count);
            b = block;
            bps = Vector512<T>.Count;
        }
        switch (k)
        {
            case 9: DeepOn<D9>(m, alpha, a, ars, aps, b, bps, beta, c, ldc, n); break;
            case 10: DeepOn<D10>(m, alpha, a, ars, aps, b, bps, beta, c, ldc, n); break;
            case 11: DeepOn<D11>(m, alpha, a, ars, aps, b, bps, beta, c, ldc, n); break;
            case 12: DeepOn<D12>(m, alpha, a, ars, aps, b, bps, beta, c, ldc, n); break;
            case 13: DeepOn<D13>(m, alpha, a, ars, aps, b, bps, beta, c, ldc, n); break;
            case 14: DeepOn<D14>(m, alpha, a, ars, aps, b, bps, beta, c, ldc, n); break;
            case 15: DeepOn<D15>(m, alpha, a, ars, aps, b, bps, beta, c, ldc, n); break;
            case 16: DeepOn<D16>(m, alpha, a, ars, aps, b, bps, beta, c, ldc, n); break;
            case 17: DeepOn<D17>(m, alpha, a, ars, aps, b, bps, beta, c, ldc, n); break;
            case 18: DeepOn<D18>(m, alpha, a, ars, aps, b, bps, beta, c, ldc, n); break;
            case 19: DeepOn<D19>(m, alpha, a, ars, aps, b, bps, beta, c, ldc, n); break;
            case 20: DeepOn<D20>(m, alpha, a, ars, aps, b, bps, beta, c, ldc, n); break;
            case 21: DeepOn<D21>(m, alpha, a, ars, aps, b, bps, beta, c, ldc, n); break;
            case 22: DeepOn<D22>(m, alpha, a, ars, aps, b, bps, beta, c, ldc, n); break;
            case 23: DeepOn<D23>(m, alpha, a, ars, aps, b, bps, beta, c, ldc, n); break;
            case 24: DeepOn<D24>(m, alpha, a, ars, aps, b, bps, beta, c, ldc, n); break;
            default: throw new ArgumentOutOfRangeException(nameof(k));
        }
    }

    private static void DeepOn<D>(int m, T alpha, T* a, nint ars, nint aps, T* b, nint bps, T beta, T* c, nint ldc, int n) where D : struct, IDepth
    {
        // The epilogue as a compile-time variant, as in Shallow.
        if (beta == T.Zero && alpha == T.One) DeepStrip<D, SumsOnly<DirectEdge1>>(m, alpha, a, ars, aps, b, bps, beta, c, ldc, n);
        else if (beta == T.Zero) DeepStrip<D, ZeroBeta<DirectEdge1>>(m, alpha, a, ars, aps, b, bps, beta, c, ldc, n);
        else DeepStrip<D, DirectEdge1>(m, alpha, a, ars, aps, b, bps, beta, c, ldc, n);
    }

    private static void DeepStrip<D, S>(int m, T alpha, T* a, nint ars, nint aps, T* b, nint bps, T beta, T* c, nint ldc, int last)
        where D : struct, IDepth where S : struct, ITileShape
    {
        int k = D.K;
        Vector512<T> mask = LaneMask<T>(last);
        Vector512<T> b0 = default, b1 = default, b2 = default, b3 = default, b4 = default, b5 = default, b6 = default, b7 = default, b8 = default, b9 = default, b10 = default, b11 = default, b12 = default, b13 = default, b14 = default, b15 = default, b16 = default, b17 = default, b18 = default, b19 = default, b20 = default, b21 = default, b22 = default, b23 = default;
        T* bp = b;
        b0 = MaskLoad(bp, mask); bp += bps;
        b1 = MaskLoad(bp, mask); bp += bps;
        b2 = MaskLoad(bp, mask); bp += bps;
        b3 = MaskLoad(bp, mask); bp += bps;
        b4 = MaskLoad(bp, mask); bp += bps;
        b5 = MaskLoad(bp, mask); bp += bps;
        b6 = MaskLoad(bp, mask); bp += bps;
        b7 = MaskLoad(bp, mask); bp += bps;
        b8 = MaskLoad(bp, mask); bp += bps;
        if (k > 9) { b9 = MaskLoad(bp, mask); bp += bps; }
        if (k > 10) { b10 = MaskLoad(bp, mask); bp += bps; }
        if (k > 11) { b11 = MaskLoad(bp, mask); bp += bps; }
        if (k > 12) { b12 = MaskLoad(bp, mask); bp += bps; }
        if (k > 13) { b13 = MaskLoad(bp, mask); bp += bps; }
        if (k > 14) { b14 = MaskLoad(bp, mask); bp += bps; }
        if (k > 15) { b15 = MaskLoad(bp, mask); bp += bps; }
        if (k > 16) { b16 = MaskLoad(bp, mask); bp += bps; }
        if (k > 17) { b17 = MaskLoad(bp, mask); bp += bps; }
        if (k > 18) { b18 = MaskLoad(bp, mask); bp += bps; }
        if (k > 19) { b19 = MaskLoad(bp, mask); bp += bps; }
        if (k > 20) { b20 = MaskLoad(bp, mask); bp += bps; }
        if (k > 21) { b21 = MaskLoad(bp, mask); bp += bps; }
        if (k > 22) { b22 = MaskLoad(bp, mask); bp += bps; }
        if (k > 23) { b23 = MaskLoad(bp, mask); bp += bps; }
        Vector512<T> va = Vector512.Create(alpha), vb = Vector512.Create(beta);
        bool beta0 = S.Beta0 || beta == T.Zero;
        for (T* aEnd = a + m * ars; a < aEnd; a += ars, c += ldc)
        {
            // The same chain as the tiles': from zero, p = 0, 1, …, k−1.
            T* ap = a;
            Vector512<T> s = Fma(Vector512.Create(ap[0]), b0, default);
            ap += aps; s = Fma(Vector512.Create(ap[0]), b1, s);
            ap += aps; s = Fma(Vector512.Create(ap[0]), b2, s);
            ap += aps; s = Fma(Vector512.Create(ap[0]), b3, s);
            ap += aps; s = Fma(Vector512.Create(ap[0]), b4, s);
            ap += aps; s = Fma(Vector512.Create(ap[0]), b5, s);
            ap += aps; s = Fma(Vector512.Create(ap[0]), b6, s);
            ap += aps; s = Fma(Vector512.Create(ap[0]), b7, s);
            ap += aps; s = Fma(Vector512.Create(ap[0]), b8, s);
            if (k > 9) { ap += aps; s = Fma(Vector512.Create(ap[0]), b9, s); }
            if (k > 10) { ap += aps; s = Fma(Vector512.Create(ap[0]), b10, s); }
            if (k > 11) { ap += aps; s = Fma(Vector512.Create(ap[0]), b11, s); }
            if (k > 12) { ap += aps; s = Fma(Vector512.Create(ap[0]), b12, s); }
            if (k > 13) { ap += aps; s = Fma(Vector512.Create(ap[0]), b13, s); }
            if (k > 14) { ap += aps; s = Fma(Vector512.Create(ap[0]), b14, s); }
            if (k > 15) { ap += aps; s = Fma(Vector512.Create(ap[0]), b15, s); }
            if (k > 16) { ap += aps; s = Fma(Vector512.Create(ap[0]), b16, s); }
            if (k > 17) { ap += aps; s = Fma(Vector512.Create(ap[0]), b17, s); }
            if (k > 18) { ap += aps; s = Fma(Vector512.Create(ap[0]), b18, s); }
            if (k > 19) { ap += aps; s = Fma(Vector512.Create(ap[0]), b19, s); }
            if (k > 20) { ap += aps; s = Fma(Vector512.Create(ap[0]), b20, s); }
            if (k > 21) { ap += aps; s = Fma(Vector512.Create(ap[0]), b21, s); }
            if (k > 22) { ap += aps; s = Fma(Vector512.Create(ap[0]), b22, s); }
            if (k > 23) { ap += aps; s = Fma(Vector512.Create(ap[0]), b23, s); }
            if (S.UnitAlpha) MaskStore(c, mask, s);
            else Put(c, s, va, vb, beta0, true, mask);
        }
    }
}

internal struct D9 : IDepth { public static int K => 9; }
internal struct D10 : IDepth { public static int K => 10; }
internal struct D11 : IDepth { public static int K => 11; }
internal struct D12 : IDepth { public static int K => 12; }
internal struct D13 : IDepth { public static int K => 13; }
internal struct D14 : IDepth { public static int K => 14; }
internal struct D15 : IDepth { public static int K => 15; }
internal struct D16 : IDepth { public static int K => 16; }
internal struct D17 : IDepth { public static int K => 17; }
internal struct D18 : IDepth { public static int K => 18; }
internal struct D19 : IDepth { public static int K => 19; }
internal struct D20 : IDepth { public static int K => 20; }
internal struct D21 : IDepth { public static int K => 21; }
internal struct D22 : IDepth { public static int K => 22; }
internal struct D23 : IDepth { public static int K => 23; }
internal struct D24 : IDepth { public static int K => 24; }
