using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

using static GlobalNtk.Dense.Avx512Lanes;

namespace GlobalNtk.Dense;

/// <summary>
/// The AVX-512 dot-product tile, written once for <see cref="GemmDot"/> (A·Bᵀ with few rows, one row or one column of
/// C) and <see cref="Avx512NarrowDot{T}"/> (2 ≤ n ≤ 8 columns): out(r, s) = alpha·Σ_p u[r·ldu + p]·v[s·ldv + p] +
/// beta·out(r, s), both operands running contiguously along k, vectors along k.
/// </summary>
/// <remarks>
/// Summation order (each caller's bits, unchanged by the merge): lane ℓ of the accumulator of (r, s) sums the terms
/// p ≡ ℓ (mod L) in order of p by fused multiply-adds (with <c>pairs</c> and one row of u: even and odd vectors of k
/// in two accumulators, added at the end); the lanes of the last, partial vector past k are zeros in both factors,
/// which adds nothing. The caller's <see cref="IDotFinish{T}"/> then sums the lanes and applies alpha and beta in its
/// own order. Was two near-copies (GemmDot.Rows, Avx512NarrowDot.Tile); the merge kept both forms' bits (15 084 products
/// compared bit for bit; GemmDotBitsTests pins them) and, within the noise of a shared machine, their speed (% of
/// OpenBLAS, f64 / f32, three alternated rounds, before → after): 72×4×2856 A·Bᵀ 114 / 114 → 114 / 114,
/// 107×5×234 100 → 100, 184×2×475 102 → 102, 1×500×300 106 → 108, 5×40×100 110 → 104, 4×500×12 120 → 116,
/// 2×20×482 114 → 104, 12×100×200 94 → 88, 4×100×24 216 → 200 (the small-k few-row forms lose a few per cent to
/// the masked loads every step, which keep the step written once).
/// </remarks>
internal static unsafe class DotTile<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>
    /// <typeparamref name="R"/> rows of u against the <paramref name="rv"/> rows of v (a multiple of N), <typeparamref name="N"/>
    /// at a time; out(r, s) = c[r·cr + s·cs]. R·N accumulators, at most 8 × 8 (the callers keep R·N ≤ 24 with min(R, N)
    /// operand vectors and one more, within the 32 registers). <paramref name="pairs"/> with R = 1 splits k into even and
    /// odd vectors (two chains per sum, against the FMA latency).
    /// </summary>
    [SkipLocalsInit]
    public static void Tiles<R, N, F>(int rv, int k, T alpha, T* u, nint ldu, T* v, nint ldv, T beta, T* c, nint cr, nint cs, bool pairs)
        where R : struct, ICount where N : struct, ICount where F : struct, IDotFinish<T>
    {
        // A method this size runs out of the JIT's inlining budget (calls left in place would spill the accumulators in
        // the loop). So the counts are locals where they are values (each use of R.Count is a call to inline), and
        // R.Count / N.Count where they choose a branch: there they are constants when the JIT imports the method, so it
        // imports (and spends its inlining budget on) only the branches this tile shape takes.
        int nr = R.Count, nc = N.Count;
        int l = Vector512<T>.Count, full = k - k % l, tail = k - full;
        T* sums = stackalloc T[nr * nc * l];
        // The whole vectors of k, then the last, partial one: one step written once, its loads under a mask (all
        // lanes, then the first k mod L: masked loads read nothing past the rows, and the cleared lanes, zero in both
        // factors, add nothing).
        Vector512<T> tailMask = LaneMask<T>(tail);
        for (int s = 0; s < rv; s += nc)
        {
            T* vs = v + s * ldv;
            Vector512<T> c00 = default, c01 = default, c02 = default, c03 = default, c04 = default, c05 = default, c06 = default, c07 = default;
            Vector512<T> c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default, c16 = default, c17 = default;
            Vector512<T> c20 = default, c21 = default, c22 = default, c23 = default, c24 = default, c25 = default, c26 = default, c27 = default;
            Vector512<T> c30 = default, c31 = default, c32 = default, c33 = default, c34 = default, c35 = default, c36 = default, c37 = default;
            Vector512<T> c40 = default, c41 = default, c42 = default, c43 = default, c44 = default, c45 = default, c46 = default, c47 = default;
            Vector512<T> c50 = default, c51 = default, c52 = default, c53 = default, c54 = default, c55 = default, c56 = default, c57 = default;
            Vector512<T> c60 = default, c61 = default, c62 = default, c63 = default, c64 = default, c65 = default, c66 = default, c67 = default;
            Vector512<T> c70 = default, c71 = default, c72 = default, c73 = default, c74 = default, c75 = default, c76 = default, c77 = default;
            // Rows i of u and j of v at ub + i·lu and vb + j·lv, the bases moving along k: few registers for addresses.
            T* ub = u, vb = vs;
            nint lu = ldu, lv = ldv;
            int steps = full / l;
            Vector512<T> mask = Vector512<T>.AllBitsSet;
            if (R.Count == 1 && pairs)
                for (; steps >= 2; steps -= 2, ub += 2 * l, vb += 2 * l)
                {
                    Fan(N.Count, Vector512.Load(ub), Vector512.Load(vb), Ld(N.Count, 1, vb, lv), Ld(N.Count, 2, vb, lv), Ld(N.Count, 3, vb, lv),
                        Ld(N.Count, 4, vb, lv), Ld(N.Count, 5, vb, lv), Ld(N.Count, 6, vb, lv), Ld(N.Count, 7, vb, lv),
                        ref c00, ref c01, ref c02, ref c03, ref c04, ref c05, ref c06, ref c07);
                    T* uq = ub + l, vq = vb + l;
                    Fan(N.Count, Vector512.Load(uq), Vector512.Load(vq), Ld(N.Count, 1, vq, lv), Ld(N.Count, 2, vq, lv), Ld(N.Count, 3, vq, lv),
                        Ld(N.Count, 4, vq, lv), Ld(N.Count, 5, vq, lv), Ld(N.Count, 6, vq, lv), Ld(N.Count, 7, vq, lv),
                        ref c10, ref c11, ref c12, ref c13, ref c14, ref c15, ref c16, ref c17);
                }
            for (int stage = 0; ; stage++)
            {
                for (; steps > 0; steps--, ub += l, vb += l)
                {
                    // Load the smaller operand set once per step; the larger one streams a vector at a time.
                    if (N.Count <= R.Count)
                    {
                        Vector512<T> b0 = MaskLoad(vb, mask), b1 = Ld(N.Count, 1, vb, lv, mask), b2 = Ld(N.Count, 2, vb, lv, mask), b3 = Ld(N.Count, 3, vb, lv, mask);
                        Vector512<T> b4 = Ld(N.Count, 4, vb, lv, mask), b5 = Ld(N.Count, 5, vb, lv, mask), b6 = Ld(N.Count, 6, vb, lv, mask), b7 = Ld(N.Count, 7, vb, lv, mask);
                        Fan(N.Count, MaskLoad(ub, mask), b0, b1, b2, b3, b4, b5, b6, b7, ref c00, ref c01, ref c02, ref c03, ref c04, ref c05, ref c06, ref c07);
                        if (R.Count > 1) Fan(N.Count, MaskLoad(ub + lu, mask), b0, b1, b2, b3, b4, b5, b6, b7, ref c10, ref c11, ref c12, ref c13, ref c14, ref c15, ref c16, ref c17);
                        if (R.Count > 2) Fan(N.Count, MaskLoad(ub + 2 * lu, mask), b0, b1, b2, b3, b4, b5, b6, b7, ref c20, ref c21, ref c22, ref c23, ref c24, ref c25, ref c26, ref c27);
                        if (R.Count > 3) Fan(N.Count, MaskLoad(ub + 3 * lu, mask), b0, b1, b2, b3, b4, b5, b6, b7, ref c30, ref c31, ref c32, ref c33, ref c34, ref c35, ref c36, ref c37);
                        if (R.Count > 4) Fan(N.Count, MaskLoad(ub + 4 * lu, mask), b0, b1, b2, b3, b4, b5, b6, b7, ref c40, ref c41, ref c42, ref c43, ref c44, ref c45, ref c46, ref c47);
                        if (R.Count > 5) Fan(N.Count, MaskLoad(ub + 5 * lu, mask), b0, b1, b2, b3, b4, b5, b6, b7, ref c50, ref c51, ref c52, ref c53, ref c54, ref c55, ref c56, ref c57);
                        if (R.Count > 6) Fan(N.Count, MaskLoad(ub + 6 * lu, mask), b0, b1, b2, b3, b4, b5, b6, b7, ref c60, ref c61, ref c62, ref c63, ref c64, ref c65, ref c66, ref c67);
                        if (R.Count > 7) Fan(N.Count, MaskLoad(ub + 7 * lu, mask), b0, b1, b2, b3, b4, b5, b6, b7, ref c70, ref c71, ref c72, ref c73, ref c74, ref c75, ref c76, ref c77);
                    }
                    else
                    {
                        Vector512<T> x0 = MaskLoad(ub, mask), x1 = Ld(R.Count, 1, ub, lu, mask), x2 = Ld(R.Count, 2, ub, lu, mask), x3 = Ld(R.Count, 3, ub, lu, mask);
                        Vector512<T> x4 = Ld(R.Count, 4, ub, lu, mask), x5 = Ld(R.Count, 5, ub, lu, mask), x6 = Ld(R.Count, 6, ub, lu, mask), x7 = Ld(R.Count, 7, ub, lu, mask);
                        Fan(R.Count, MaskLoad(vb, mask), x0, x1, x2, x3, x4, x5, x6, x7, ref c00, ref c10, ref c20, ref c30, ref c40, ref c50, ref c60, ref c70);
                        if (N.Count > 1) Fan(R.Count, MaskLoad(vb + lv, mask), x0, x1, x2, x3, x4, x5, x6, x7, ref c01, ref c11, ref c21, ref c31, ref c41, ref c51, ref c61, ref c71);
                        if (N.Count > 2) Fan(R.Count, MaskLoad(vb + 2 * lv, mask), x0, x1, x2, x3, x4, x5, x6, x7, ref c02, ref c12, ref c22, ref c32, ref c42, ref c52, ref c62, ref c72);
                        if (N.Count > 3) Fan(R.Count, MaskLoad(vb + 3 * lv, mask), x0, x1, x2, x3, x4, x5, x6, x7, ref c03, ref c13, ref c23, ref c33, ref c43, ref c53, ref c63, ref c73);
                        if (N.Count > 4) Fan(R.Count, MaskLoad(vb + 4 * lv, mask), x0, x1, x2, x3, x4, x5, x6, x7, ref c04, ref c14, ref c24, ref c34, ref c44, ref c54, ref c64, ref c74);
                        if (N.Count > 5) Fan(R.Count, MaskLoad(vb + 5 * lv, mask), x0, x1, x2, x3, x4, x5, x6, x7, ref c05, ref c15, ref c25, ref c35, ref c45, ref c55, ref c65, ref c75);
                        if (N.Count > 6) Fan(R.Count, MaskLoad(vb + 6 * lv, mask), x0, x1, x2, x3, x4, x5, x6, x7, ref c06, ref c16, ref c26, ref c36, ref c46, ref c56, ref c66, ref c76);
                        if (N.Count > 7) Fan(R.Count, MaskLoad(vb + 7 * lv, mask), x0, x1, x2, x3, x4, x5, x6, x7, ref c07, ref c17, ref c27, ref c37, ref c47, ref c57, ref c67, ref c77);
                    }
                }
                if (stage == 1 || tail == 0) break;
                mask = tailMask; steps = 1;
            }
            // Every row is finished before any call (the last row's F.Row may call out): accumulators live across a call
            // would be spilled in the loop.
            if (R.Count == 1 && pairs)
            {
                c00 += c10; c01 += c11; c02 += c12; c03 += c13; c04 += c14; c05 += c15; c06 += c16; c07 += c17;
            }
            T* co = c + s * cs;
            if (F.Whole)
            {
                // The whole tile at once, its sums in the order of v's rows, then u's (R·N ≤ 16; the sums past R·N are
                // zero). On R.Count, a constant where the JIT imports this (unlike nr), so that only one case is imported;
                // each case passes its R as a literal, a constant for the finish's own branches.
                switch (R.Count)
                {
                    case 1: F.Tile(nc, 1, c00, c01, c02, c03, c04, c05, c06, c07, default, default, default, default, default, default, default, default, alpha, beta, co, cs); break;
                    case 2: F.Tile(nc, 2, c00, c10, c01, c11, c02, c12, c03, c13, c04, c14, c05, c15, c06, c16, c07, c17, alpha, beta, co, cs); break;
                    case 3: F.Tile(nc, 3, c00, c10, c20, c01, c11, c21, c02, c12, c22, c03, c13, c23, c04, c14, c24, default, alpha, beta, co, cs); break;
                    case 4: F.Tile(nc, 4, c00, c10, c20, c30, c01, c11, c21, c31, c02, c12, c22, c32, c03, c13, c23, c33, alpha, beta, co, cs); break;
                    case 5: F.Tile(nc, 5, c00, c10, c20, c30, c40, c01, c11, c21, c31, c41, c02, c12, c22, c32, c42, default, alpha, beta, co, cs); break;
                    case 6: F.Tile(nc, 6, c00, c10, c20, c30, c40, c50, c01, c11, c21, c31, c41, c51, default, default, default, default, alpha, beta, co, cs); break;
                    case 7: F.Tile(nc, 7, c00, c10, c20, c30, c40, c50, c60, c01, c11, c21, c31, c41, c51, c61, default, default, alpha, beta, co, cs); break;
                    default: F.Tile(nc, 8, c00, c10, c20, c30, c40, c50, c60, c70, c01, c11, c21, c31, c41, c51, c61, c71, alpha, beta, co, cs); break;
                }
                continue;
            }
            F.Row(nc, c00, c01, c02, c03, c04, c05, c06, c07, 0, nr, sums, alpha, beta, co, cr, cs);
            if (nr > 1) F.Row(nc, c10, c11, c12, c13, c14, c15, c16, c17, 1, nr, sums, alpha, beta, co, cr, cs);
            if (nr > 2) F.Row(nc, c20, c21, c22, c23, c24, c25, c26, c27, 2, nr, sums, alpha, beta, co, cr, cs);
            if (nr > 3) F.Row(nc, c30, c31, c32, c33, c34, c35, c36, c37, 3, nr, sums, alpha, beta, co, cr, cs);
            if (nr > 4) F.Row(nc, c40, c41, c42, c43, c44, c45, c46, c47, 4, nr, sums, alpha, beta, co, cr, cs);
            if (nr > 5) F.Row(nc, c50, c51, c52, c53, c54, c55, c56, c57, 5, nr, sums, alpha, beta, co, cr, cs);
            if (nr > 6) F.Row(nc, c60, c61, c62, c63, c64, c65, c66, c67, 6, nr, sums, alpha, beta, co, cr, cs);
            if (nr > 7) F.Row(nc, c70, c71, c72, c73, c74, c75, c76, c77, 7, nr, sums, alpha, beta, co, cr, cs);
        }
    }

    /// <summary>Stores a_j at p + j·L for j &lt; count.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Keep(int count, T* p, Vector512<T> a0, Vector512<T> a1, Vector512<T> a2, Vector512<T> a3,
        Vector512<T> a4, Vector512<T> a5, Vector512<T> a6, Vector512<T> a7)
    {
        int l = Vector512<T>.Count;
        Vector512.Store(a0, p);
        if (count > 1) Vector512.Store(a1, p + l);
        if (count > 2) Vector512.Store(a2, p + 2 * l);
        if (count > 3) Vector512.Store(a3, p + 3 * l);
        if (count > 4) Vector512.Store(a4, p + 4 * l);
        if (count > 5) Vector512.Store(a5, p + 5 * l);
        if (count > 6) Vector512.Store(a6, p + 6 * l);
        if (count > 7) Vector512.Store(a7, p + 7 * l);
    }

    /// <summary>Row j of v (vector at v + j·ldv) if j is below <paramref name="count"/> (zero otherwise, never read).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Ld(int count, int j, T* v, nint ldv) => j < count ? Vector512.Load(v + j * ldv) : default;

    /// <summary>The masked lanes of row j of v if j is below <paramref name="count"/> (zero otherwise, never read).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Ld(int count, int j, T* v, nint ldv, Vector512<T> mask) => j < count ? MaskLoad(v + j * ldv, mask) : default;

    /// <summary>a_j += x·y_j for j &lt; count, fused (count is a constant where this is inlined: the JIT drops the lines past it).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Fan(int count, Vector512<T> x, Vector512<T> y0, Vector512<T> y1, Vector512<T> y2, Vector512<T> y3,
        Vector512<T> y4, Vector512<T> y5, Vector512<T> y6, Vector512<T> y7,
        ref Vector512<T> a0, ref Vector512<T> a1, ref Vector512<T> a2, ref Vector512<T> a3,
        ref Vector512<T> a4, ref Vector512<T> a5, ref Vector512<T> a6, ref Vector512<T> a7)
    {
        a0 = Fma(x, y0, a0);
        if (count > 1) a1 = Fma(x, y1, a1);
        if (count > 2) a2 = Fma(x, y2, a2);
        if (count > 3) a3 = Fma(x, y3, a3);
        if (count > 4) a4 = Fma(x, y4, a4);
        if (count > 5) a5 = Fma(x, y5, a5);
        if (count > 6) a6 = Fma(x, y6, a6);
        if (count > 7) a7 = Fma(x, y7, a7);
    }
}

/// <summary>How a <see cref="DotTile{T}"/> caller turns the accumulators into C (its lane-sum order and epilogue: its bits).</summary>
internal unsafe interface IDotFinish<T> where T : unmanaged
{
    /// <summary>Whether the finish takes the whole tile at once (<see cref="Tile"/>, R·N ≤ 16) rather than row by row (<see cref="Row"/>).</summary>
    static virtual bool Whole => false;

    /// <summary>
    /// The whole tile's sums in the order of v's rows, then u's: s_(j·R + r) for the N rows j of v and the R rows r of u
    /// (R·N ≤ 16; the s past them are zero), so that with cr = 1 they run as C's rows: out(j, r) = alpha·ΣLanes(s_(j·R + r)) +
    /// beta·out(j, r), out(j, r) = c[j·cs + r] (beta = 0 never reads C). <paramref name="rows"/> = N, <paramref name="cols"/> = R.
    /// </summary>
    static virtual void Tile(int rows, int cols, Vector512<T> s0, Vector512<T> s1, Vector512<T> s2, Vector512<T> s3,
        Vector512<T> s4, Vector512<T> s5, Vector512<T> s6, Vector512<T> s7, Vector512<T> s8, Vector512<T> s9,
        Vector512<T> s10, Vector512<T> s11, Vector512<T> s12, Vector512<T> s13, Vector512<T> s14, Vector512<T> s15,
        T alpha, T beta, T* c, nint cs) => throw new System.Diagnostics.UnreachableException();

    /// <summary>
    /// Row r of the tile's sums, s_j for j &lt; cols, the tile's N (s_j past it unused): out(r, j) = alpha·ΣLanes(s_j) +
    /// beta·out(r, j), out(r, j) = c[r·cr + j·cs] (beta = 0 never reads C), now, or kept at sums + (r·cols + j)·L and
    /// stored with the last of the <paramref name="rows"/> rows. Inlined: only the last row may call out.
    /// </summary>
    static abstract void Row(int cols, Vector512<T> s0, Vector512<T> s1, Vector512<T> s2, Vector512<T> s3, Vector512<T> s4, Vector512<T> s5,
        Vector512<T> s6, Vector512<T> s7, int r, int rows, T* sums, T alpha, T beta, T* c, nint cr, nint cs);
}

/// <summary>A count known at compile time (rows or columns of a <see cref="DotTile{T}"/>).</summary>
internal interface ICount
{
    /// <summary>The count.</summary>
    static abstract int Count { get; }
}

internal struct C1 : ICount { public static int Count => 1; }
internal struct C2 : ICount { public static int Count => 2; }
internal struct C3 : ICount { public static int Count => 3; }
internal struct C4 : ICount { public static int Count => 4; }
internal struct C5 : ICount { public static int Count => 5; }
internal struct C6 : ICount { public static int Count => 6; }
internal struct C7 : ICount { public static int Count => 7; }
internal struct C8 : ICount { public static int Count => 8; }
