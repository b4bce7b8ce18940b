using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

using static GlobalNtk.Dense.Avx512Lanes;

namespace GlobalNtk.Dense;

/// <summary>
/// AVX-512 products with a narrow C (2 ≤ n ≤ 8 columns) and A as stored (op(A) = A, its rows contiguous along k):
/// C(i, j) = alpha·Σ_p A(i, p)·B̃(j, p) + beta·C(i, j) as dot products, with vectors along k. B̃ = op(B)ᵀ is read
/// in place when B is transposed (its rows run along k) and transposed once into a small buffer otherwise.
/// </summary>
/// <remarks>
/// Why: with n ≤ 8 a row of C fills at most half a vector, so the broadcast kernels (vectors along n) waste most
/// lanes, and their transposed form (vectors along m) must transpose A first. Along k every lane works. Each tile
/// holds R rows × N columns of accumulators (R·N ≤ 24), one vector per element of C, and reduces them once at the
/// end, so the route pays off only for k of several vectors (<see cref="Takes"/>).
/// Summation order (not the packed path's, so the bits differ from it): lane ℓ of an accumulator sums the terms
/// p ≡ ℓ (mod L) in order of p by fused multiply-adds, then <see cref="Vector512.Sum{T}(Vector512{T})"/> adds the
/// L lanes; every term passes through at most ⌈k/L⌉ + log₂L roundings.
/// </remarks>
internal static unsafe class Avx512NarrowDot<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>
    /// Whether the dot form takes C = alpha·op(A)·op(B) + beta·C (2 ≤ n ≤ 8, A as stored): it pays off only where
    /// k is long enough to outweigh one reduction per element of C. Measured against the other routes (% of
    /// OpenBLAS, one thread, two rounds): with B transposed from <see cref="DepthVectors"/> (12) vectors of k, or
    /// twice that for 6–8 columns: 72×4×2856 A·Bᵀ f64 49 → 109–113, f32 35 → 111; 184×2×475 f64 40 → 103, f32 29 →
    /// 90; 67×3×225 f32 35 → 95–106; 107×5×234 f64 76 → 106, f32 42 → 78; it lost on shorter k or wider C
    /// (500×8×100 A·Bᵀ f32 111 → 64, 300×6×40 127 → 60, 300×3×20 f64 180 → 136). With B as stored (transposed
    /// first) only float64 with 2 columns and 8 vectors of k: 2880×2×80 A·B f64 39–49 → 72–73; it tied or lost
    /// with more columns (2880×4×80 f64 61–65 → 63, 1973×3×51 f64 97 → 85–90) and in float32 throughout
    /// (2880×4×80 51 → 35, 1978×6×17 70 → 20).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool Takes(Trans ta, Trans tb, int n, int k)
    {
        int vectors = k / Vector512<T>.Count;
        return ta == Trans.No && n >= 2 && n <= 8 && DepthVectors > 0
               && (tb == Trans.Yes ? vectors >= DepthVectors && (n <= 5 || vectors >= 2 * DepthVectors)
                                   : typeof(T) == typeof(double) && n == 2 && vectors >= 8);
    }

    /// <summary>Least depth of <see cref="Takes"/> with B transposed, in vectors of k; 0 switches the dot form off. Mutable for the benchmark's tuning only.</summary>
    internal static int DepthVectors = 12;

    /// <summary>C = alpha·A·op(B) + beta·C for A as stored (m × k, row stride lda), 2 ≤ n ≤ 8; beta = 0 never reads C.</summary>
    [SkipLocalsInit]
    public static void Run(Trans tb, int m, int n, int k, T alpha, T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc)
    {
        if (tb == Trans.Yes)
        {
            Rows(n, m, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
        // B (k × n) as stored: its columns are strided, so transpose it once (n × k, as long as one row of A per column).
        const int stackBytes = 16 << 10;
        if ((long)n * k * sizeof(T) <= stackBytes)
        {
            T* bt = stackalloc T[n * k];
            GemmDriver<T, Avx512Kernel<T>>.Transpose(b, ldb, k, n, bt, k);
            Rows(n, m, k, alpha, a, lda, bt, k, beta, c, ldc);
            return;
        }
        var buffers = GemmBuffers<T>.Rent();
        try
        {
            T* bt = buffers.PackB(n * k);
            GemmDriver<T, Avx512Kernel<T>>.Transpose(b, ldb, k, n, bt, k);
            Rows(n, m, k, alpha, a, lda, bt, k, beta, c, ldc);
        }
        finally
        {
            GemmBuffers<T>.Return(buffers);
        }
    }

    /// <summary>Rows per tile for n columns: R·n ≤ 24 accumulators, R ≤ 8 (with min(R, n) operand vectors and one more, within 32 registers).</summary>
    private static void Rows(int n, int m, int k, T alpha, T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc)
    {
        switch (n)
        {
            case 2: Rows<C2, C8>(m, k, alpha, a, lda, b, ldb, beta, c, ldc); break;
            case 3: Rows<C3, C8>(m, k, alpha, a, lda, b, ldb, beta, c, ldc); break;
            case 4: Rows<C4, C6>(m, k, alpha, a, lda, b, ldb, beta, c, ldc); break;
            case 5: Rows<C5, C4>(m, k, alpha, a, lda, b, ldb, beta, c, ldc); break;
            case 6: Rows<C6, C4>(m, k, alpha, a, lda, b, ldb, beta, c, ldc); break;
            case 7: Rows<C7, C3>(m, k, alpha, a, lda, b, ldb, beta, c, ldc); break;
            default: Rows<C8, C3>(m, k, alpha, a, lda, b, ldb, beta, c, ldc); break;
        }
    }

    /// <summary>Whole tiles of <typeparamref name="R"/> rows, then the last rows with a tile of their own height.</summary>
    private static void Rows<N, R>(int m, int k, T alpha, T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc)
        where N : struct, ICount where R : struct, ICount
    {
        int i = 0;
        for (; i + R.Count <= m; i += R.Count) Tile<N, R>(k, alpha, a + i * lda, lda, b, ldb, beta, c + i * ldc, ldc);
        T* ai = a + i * lda, ci = c + i * ldc;
        switch (m - i)
        {
            case 0: break;
            case 1: Tile<N, C1>(k, alpha, ai, lda, b, ldb, beta, ci, ldc); break;
            case 2: Tile<N, C2>(k, alpha, ai, lda, b, ldb, beta, ci, ldc); break;
            case 3: Tile<N, C3>(k, alpha, ai, lda, b, ldb, beta, ci, ldc); break;
            case 4: Tile<N, C4>(k, alpha, ai, lda, b, ldb, beta, ci, ldc); break;
            case 5: Tile<N, C5>(k, alpha, ai, lda, b, ldb, beta, ci, ldc); break;
            case 6: Tile<N, C6>(k, alpha, ai, lda, b, ldb, beta, ci, ldc); break;
            default: Tile<N, C7>(k, alpha, ai, lda, b, ldb, beta, ci, ldc); break;
        }
    }

    /// <summary>
    /// <typeparamref name="R"/> rows × <typeparamref name="N"/> columns of C: accumulator c_ij sums A(i, p)·B̃(j, p)
    /// lane by lane over vectors of p (the last one partial, zeros past k), stored, then reduced by <see cref="Put"/>.
    /// (Written out for R, N ≤ 8; the JIT drops the lines past R and N, since they are type arguments.)
    /// </summary>
    [SkipLocalsInit]
    private static void Tile<N, R>(int k, T alpha, T* ap, nint lda, T* bp, nint ldb, T beta, T* c, nint ldc)
        where N : struct, ICount where R : struct, ICount
    {
        int l = Vector512<T>.Count;
        Vector512<T> c00 = default, c01 = default, c02 = default, c03 = default, c04 = default, c05 = default, c06 = default, c07 = default;
        Vector512<T> c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default, c16 = default, c17 = default;
        Vector512<T> c20 = default, c21 = default, c22 = default, c23 = default, c24 = default, c25 = default, c26 = default, c27 = default;
        Vector512<T> c30 = default, c31 = default, c32 = default, c33 = default, c34 = default, c35 = default, c36 = default, c37 = default;
        Vector512<T> c40 = default, c41 = default, c42 = default, c43 = default, c44 = default, c45 = default, c46 = default, c47 = default;
        Vector512<T> c50 = default, c51 = default, c52 = default, c53 = default, c54 = default, c55 = default, c56 = default, c57 = default;
        Vector512<T> c60 = default, c61 = default, c62 = default, c63 = default, c64 = default, c65 = default, c66 = default, c67 = default;
        Vector512<T> c70 = default, c71 = default, c72 = default, c73 = default, c74 = default, c75 = default, c76 = default, c77 = default;
        // Every step loads under a lane mask (all lanes but in the last, partial vector of k, whose lanes past k
        // read as zeros): one body, which keeps this method within the JIT's inlining budget. The operand loaded
        // once per step is the smaller set (B̃'s N rows or A's R rows), so the accumulators, those vectors and one
        // more fit in the 32 registers.
        for (int p = 0; p < k; p += l, ap += l, bp += l)
        {
            Vector512<T> mask = LaneMask<T>(Math.Min(l, k - p));
            if (N.Count <= R.Count)
            {
                Vector512<T> b0 = MaskLoad(bp, mask);
                Vector512<T> b1 = N.Count > 1 ? MaskLoad(bp + 1 * ldb, mask) : default;
                Vector512<T> b2 = N.Count > 2 ? MaskLoad(bp + 2 * ldb, mask) : default;
                Vector512<T> b3 = N.Count > 3 ? MaskLoad(bp + 3 * ldb, mask) : default;
                Vector512<T> b4 = N.Count > 4 ? MaskLoad(bp + 4 * ldb, mask) : default;
                Vector512<T> b5 = N.Count > 5 ? MaskLoad(bp + 5 * ldb, mask) : default;
                Vector512<T> b6 = N.Count > 6 ? MaskLoad(bp + 6 * ldb, mask) : default;
                Vector512<T> b7 = N.Count > 7 ? MaskLoad(bp + 7 * ldb, mask) : default;
                { Vector512<T> x = MaskLoad(ap, mask); c00 = Fma(x, b0, c00); if (N.Count > 1) c01 = Fma(x, b1, c01); if (N.Count > 2) c02 = Fma(x, b2, c02); if (N.Count > 3) c03 = Fma(x, b3, c03); if (N.Count > 4) c04 = Fma(x, b4, c04); if (N.Count > 5) c05 = Fma(x, b5, c05); if (N.Count > 6) c06 = Fma(x, b6, c06); if (N.Count > 7) c07 = Fma(x, b7, c07); }
                if (R.Count > 1) { Vector512<T> x = MaskLoad(ap + 1 * lda, mask); c10 = Fma(x, b0, c10); if (N.Count > 1) c11 = Fma(x, b1, c11); if (N.Count > 2) c12 = Fma(x, b2, c12); if (N.Count > 3) c13 = Fma(x, b3, c13); if (N.Count > 4) c14 = Fma(x, b4, c14); if (N.Count > 5) c15 = Fma(x, b5, c15); if (N.Count > 6) c16 = Fma(x, b6, c16); if (N.Count > 7) c17 = Fma(x, b7, c17); }
                if (R.Count > 2) { Vector512<T> x = MaskLoad(ap + 2 * lda, mask); c20 = Fma(x, b0, c20); if (N.Count > 1) c21 = Fma(x, b1, c21); if (N.Count > 2) c22 = Fma(x, b2, c22); if (N.Count > 3) c23 = Fma(x, b3, c23); if (N.Count > 4) c24 = Fma(x, b4, c24); if (N.Count > 5) c25 = Fma(x, b5, c25); if (N.Count > 6) c26 = Fma(x, b6, c26); if (N.Count > 7) c27 = Fma(x, b7, c27); }
                if (R.Count > 3) { Vector512<T> x = MaskLoad(ap + 3 * lda, mask); c30 = Fma(x, b0, c30); if (N.Count > 1) c31 = Fma(x, b1, c31); if (N.Count > 2) c32 = Fma(x, b2, c32); if (N.Count > 3) c33 = Fma(x, b3, c33); if (N.Count > 4) c34 = Fma(x, b4, c34); if (N.Count > 5) c35 = Fma(x, b5, c35); if (N.Count > 6) c36 = Fma(x, b6, c36); if (N.Count > 7) c37 = Fma(x, b7, c37); }
                if (R.Count > 4) { Vector512<T> x = MaskLoad(ap + 4 * lda, mask); c40 = Fma(x, b0, c40); if (N.Count > 1) c41 = Fma(x, b1, c41); if (N.Count > 2) c42 = Fma(x, b2, c42); if (N.Count > 3) c43 = Fma(x, b3, c43); if (N.Count > 4) c44 = Fma(x, b4, c44); if (N.Count > 5) c45 = Fma(x, b5, c45); if (N.Count > 6) c46 = Fma(x, b6, c46); if (N.Count > 7) c47 = Fma(x, b7, c47); }
                if (R.Count > 5) { Vector512<T> x = MaskLoad(ap + 5 * lda, mask); c50 = Fma(x, b0, c50); if (N.Count > 1) c51 = Fma(x, b1, c51); if (N.Count > 2) c52 = Fma(x, b2, c52); if (N.Count > 3) c53 = Fma(x, b3, c53); if (N.Count > 4) c54 = Fma(x, b4, c54); if (N.Count > 5) c55 = Fma(x, b5, c55); if (N.Count > 6) c56 = Fma(x, b6, c56); if (N.Count > 7) c57 = Fma(x, b7, c57); }
                if (R.Count > 6) { Vector512<T> x = MaskLoad(ap + 6 * lda, mask); c60 = Fma(x, b0, c60); if (N.Count > 1) c61 = Fma(x, b1, c61); if (N.Count > 2) c62 = Fma(x, b2, c62); if (N.Count > 3) c63 = Fma(x, b3, c63); if (N.Count > 4) c64 = Fma(x, b4, c64); if (N.Count > 5) c65 = Fma(x, b5, c65); if (N.Count > 6) c66 = Fma(x, b6, c66); if (N.Count > 7) c67 = Fma(x, b7, c67); }
                if (R.Count > 7) { Vector512<T> x = MaskLoad(ap + 7 * lda, mask); c70 = Fma(x, b0, c70); if (N.Count > 1) c71 = Fma(x, b1, c71); if (N.Count > 2) c72 = Fma(x, b2, c72); if (N.Count > 3) c73 = Fma(x, b3, c73); if (N.Count > 4) c74 = Fma(x, b4, c74); if (N.Count > 5) c75 = Fma(x, b5, c75); if (N.Count > 6) c76 = Fma(x, b6, c76); if (N.Count > 7) c77 = Fma(x, b7, c77); }
            }
            else
            {
                Vector512<T> x0 = MaskLoad(ap, mask);
                Vector512<T> x1 = R.Count > 1 ? MaskLoad(ap + 1 * lda, mask) : default;
                Vector512<T> x2 = R.Count > 2 ? MaskLoad(ap + 2 * lda, mask) : default;
                Vector512<T> x3 = R.Count > 3 ? MaskLoad(ap + 3 * lda, mask) : default;
                Vector512<T> x4 = R.Count > 4 ? MaskLoad(ap + 4 * lda, mask) : default;
                Vector512<T> x5 = R.Count > 5 ? MaskLoad(ap + 5 * lda, mask) : default;
                Vector512<T> x6 = R.Count > 6 ? MaskLoad(ap + 6 * lda, mask) : default;
                Vector512<T> x7 = R.Count > 7 ? MaskLoad(ap + 7 * lda, mask) : default;
                { Vector512<T> y = MaskLoad(bp, mask); c00 = Fma(x0, y, c00); if (R.Count > 1) c10 = Fma(x1, y, c10); if (R.Count > 2) c20 = Fma(x2, y, c20); if (R.Count > 3) c30 = Fma(x3, y, c30); if (R.Count > 4) c40 = Fma(x4, y, c40); if (R.Count > 5) c50 = Fma(x5, y, c50); if (R.Count > 6) c60 = Fma(x6, y, c60); if (R.Count > 7) c70 = Fma(x7, y, c70); }
                if (N.Count > 1) { Vector512<T> y = MaskLoad(bp + 1 * ldb, mask); c01 = Fma(x0, y, c01); if (R.Count > 1) c11 = Fma(x1, y, c11); if (R.Count > 2) c21 = Fma(x2, y, c21); if (R.Count > 3) c31 = Fma(x3, y, c31); if (R.Count > 4) c41 = Fma(x4, y, c41); if (R.Count > 5) c51 = Fma(x5, y, c51); if (R.Count > 6) c61 = Fma(x6, y, c61); if (R.Count > 7) c71 = Fma(x7, y, c71); }
                if (N.Count > 2) { Vector512<T> y = MaskLoad(bp + 2 * ldb, mask); c02 = Fma(x0, y, c02); if (R.Count > 1) c12 = Fma(x1, y, c12); if (R.Count > 2) c22 = Fma(x2, y, c22); if (R.Count > 3) c32 = Fma(x3, y, c32); if (R.Count > 4) c42 = Fma(x4, y, c42); if (R.Count > 5) c52 = Fma(x5, y, c52); if (R.Count > 6) c62 = Fma(x6, y, c62); if (R.Count > 7) c72 = Fma(x7, y, c72); }
                if (N.Count > 3) { Vector512<T> y = MaskLoad(bp + 3 * ldb, mask); c03 = Fma(x0, y, c03); if (R.Count > 1) c13 = Fma(x1, y, c13); if (R.Count > 2) c23 = Fma(x2, y, c23); if (R.Count > 3) c33 = Fma(x3, y, c33); if (R.Count > 4) c43 = Fma(x4, y, c43); if (R.Count > 5) c53 = Fma(x5, y, c53); if (R.Count > 6) c63 = Fma(x6, y, c63); if (R.Count > 7) c73 = Fma(x7, y, c73); }
                if (N.Count > 4) { Vector512<T> y = MaskLoad(bp + 4 * ldb, mask); c04 = Fma(x0, y, c04); if (R.Count > 1) c14 = Fma(x1, y, c14); if (R.Count > 2) c24 = Fma(x2, y, c24); if (R.Count > 3) c34 = Fma(x3, y, c34); if (R.Count > 4) c44 = Fma(x4, y, c44); if (R.Count > 5) c54 = Fma(x5, y, c54); if (R.Count > 6) c64 = Fma(x6, y, c64); if (R.Count > 7) c74 = Fma(x7, y, c74); }
                if (N.Count > 5) { Vector512<T> y = MaskLoad(bp + 5 * ldb, mask); c05 = Fma(x0, y, c05); if (R.Count > 1) c15 = Fma(x1, y, c15); if (R.Count > 2) c25 = Fma(x2, y, c25); if (R.Count > 3) c35 = Fma(x3, y, c35); if (R.Count > 4) c45 = Fma(x4, y, c45); if (R.Count > 5) c55 = Fma(x5, y, c55); if (R.Count > 6) c65 = Fma(x6, y, c65); if (R.Count > 7) c75 = Fma(x7, y, c75); }
                if (N.Count > 6) { Vector512<T> y = MaskLoad(bp + 6 * ldb, mask); c06 = Fma(x0, y, c06); if (R.Count > 1) c16 = Fma(x1, y, c16); if (R.Count > 2) c26 = Fma(x2, y, c26); if (R.Count > 3) c36 = Fma(x3, y, c36); if (R.Count > 4) c46 = Fma(x4, y, c46); if (R.Count > 5) c56 = Fma(x5, y, c56); if (R.Count > 6) c66 = Fma(x6, y, c66); if (R.Count > 7) c76 = Fma(x7, y, c76); }
                if (N.Count > 7) { Vector512<T> y = MaskLoad(bp + 7 * ldb, mask); c07 = Fma(x0, y, c07); if (R.Count > 1) c17 = Fma(x1, y, c17); if (R.Count > 2) c27 = Fma(x2, y, c27); if (R.Count > 3) c37 = Fma(x3, y, c37); if (R.Count > 4) c47 = Fma(x4, y, c47); if (R.Count > 5) c57 = Fma(x5, y, c57); if (R.Count > 6) c67 = Fma(x6, y, c67); if (R.Count > 7) c77 = Fma(x7, y, c77); }
            }
        }
        T* sums = stackalloc T[R.Count * N.Count * l];
        Vector512.Store(c00, sums + (0 * N.Count + 0) * l);
        if (R.Count > 0 && N.Count > 1) Vector512.Store(c01, sums + (0 * N.Count + 1) * l);
        if (R.Count > 0 && N.Count > 2) Vector512.Store(c02, sums + (0 * N.Count + 2) * l);
        if (R.Count > 0 && N.Count > 3) Vector512.Store(c03, sums + (0 * N.Count + 3) * l);
        if (R.Count > 0 && N.Count > 4) Vector512.Store(c04, sums + (0 * N.Count + 4) * l);
        if (R.Count > 0 && N.Count > 5) Vector512.Store(c05, sums + (0 * N.Count + 5) * l);
        if (R.Count > 0 && N.Count > 6) Vector512.Store(c06, sums + (0 * N.Count + 6) * l);
        if (R.Count > 0 && N.Count > 7) Vector512.Store(c07, sums + (0 * N.Count + 7) * l);
        if (R.Count > 1 && N.Count > 0) Vector512.Store(c10, sums + (1 * N.Count + 0) * l);
        if (R.Count > 1 && N.Count > 1) Vector512.Store(c11, sums + (1 * N.Count + 1) * l);
        if (R.Count > 1 && N.Count > 2) Vector512.Store(c12, sums + (1 * N.Count + 2) * l);
        if (R.Count > 1 && N.Count > 3) Vector512.Store(c13, sums + (1 * N.Count + 3) * l);
        if (R.Count > 1 && N.Count > 4) Vector512.Store(c14, sums + (1 * N.Count + 4) * l);
        if (R.Count > 1 && N.Count > 5) Vector512.Store(c15, sums + (1 * N.Count + 5) * l);
        if (R.Count > 1 && N.Count > 6) Vector512.Store(c16, sums + (1 * N.Count + 6) * l);
        if (R.Count > 1 && N.Count > 7) Vector512.Store(c17, sums + (1 * N.Count + 7) * l);
        if (R.Count > 2 && N.Count > 0) Vector512.Store(c20, sums + (2 * N.Count + 0) * l);
        if (R.Count > 2 && N.Count > 1) Vector512.Store(c21, sums + (2 * N.Count + 1) * l);
        if (R.Count > 2 && N.Count > 2) Vector512.Store(c22, sums + (2 * N.Count + 2) * l);
        if (R.Count > 2 && N.Count > 3) Vector512.Store(c23, sums + (2 * N.Count + 3) * l);
        if (R.Count > 2 && N.Count > 4) Vector512.Store(c24, sums + (2 * N.Count + 4) * l);
        if (R.Count > 2 && N.Count > 5) Vector512.Store(c25, sums + (2 * N.Count + 5) * l);
        if (R.Count > 2 && N.Count > 6) Vector512.Store(c26, sums + (2 * N.Count + 6) * l);
        if (R.Count > 2 && N.Count > 7) Vector512.Store(c27, sums + (2 * N.Count + 7) * l);
        if (R.Count > 3 && N.Count > 0) Vector512.Store(c30, sums + (3 * N.Count + 0) * l);
        if (R.Count > 3 && N.Count > 1) Vector512.Store(c31, sums + (3 * N.Count + 1) * l);
        if (R.Count > 3 && N.Count > 2) Vector512.Store(c32, sums + (3 * N.Count + 2) * l);
        if (R.Count > 3 && N.Count > 3) Vector512.Store(c33, sums + (3 * N.Count + 3) * l);
        if (R.Count > 3 && N.Count > 4) Vector512.Store(c34, sums + (3 * N.Count + 4) * l);
        if (R.Count > 3 && N.Count > 5) Vector512.Store(c35, sums + (3 * N.Count + 5) * l);
        if (R.Count > 3 && N.Count > 6) Vector512.Store(c36, sums + (3 * N.Count + 6) * l);
        if (R.Count > 3 && N.Count > 7) Vector512.Store(c37, sums + (3 * N.Count + 7) * l);
        if (R.Count > 4 && N.Count > 0) Vector512.Store(c40, sums + (4 * N.Count + 0) * l);
        if (R.Count > 4 && N.Count > 1) Vector512.Store(c41, sums + (4 * N.Count + 1) * l);
        if (R.Count > 4 && N.Count > 2) Vector512.Store(c42, sums + (4 * N.Count + 2) * l);
        if (R.Count > 4 && N.Count > 3) Vector512.Store(c43, sums + (4 * N.Count + 3) * l);
        if (R.Count > 4 && N.Count > 4) Vector512.Store(c44, sums + (4 * N.Count + 4) * l);
        if (R.Count > 4 && N.Count > 5) Vector512.Store(c45, sums + (4 * N.Count + 5) * l);
        if (R.Count > 4 && N.Count > 6) Vector512.Store(c46, sums + (4 * N.Count + 6) * l);
        if (R.Count > 4 && N.Count > 7) Vector512.Store(c47, sums + (4 * N.Count + 7) * l);
        if (R.Count > 5 && N.Count > 0) Vector512.Store(c50, sums + (5 * N.Count + 0) * l);
        if (R.Count > 5 && N.Count > 1) Vector512.Store(c51, sums + (5 * N.Count + 1) * l);
        if (R.Count > 5 && N.Count > 2) Vector512.Store(c52, sums + (5 * N.Count + 2) * l);
        if (R.Count > 5 && N.Count > 3) Vector512.Store(c53, sums + (5 * N.Count + 3) * l);
        if (R.Count > 5 && N.Count > 4) Vector512.Store(c54, sums + (5 * N.Count + 4) * l);
        if (R.Count > 5 && N.Count > 5) Vector512.Store(c55, sums + (5 * N.Count + 5) * l);
        if (R.Count > 5 && N.Count > 6) Vector512.Store(c56, sums + (5 * N.Count + 6) * l);
        if (R.Count > 5 && N.Count > 7) Vector512.Store(c57, sums + (5 * N.Count + 7) * l);
        if (R.Count > 6 && N.Count > 0) Vector512.Store(c60, sums + (6 * N.Count + 0) * l);
        if (R.Count > 6 && N.Count > 1) Vector512.Store(c61, sums + (6 * N.Count + 1) * l);
        if (R.Count > 6 && N.Count > 2) Vector512.Store(c62, sums + (6 * N.Count + 2) * l);
        if (R.Count > 6 && N.Count > 3) Vector512.Store(c63, sums + (6 * N.Count + 3) * l);
        if (R.Count > 6 && N.Count > 4) Vector512.Store(c64, sums + (6 * N.Count + 4) * l);
        if (R.Count > 6 && N.Count > 5) Vector512.Store(c65, sums + (6 * N.Count + 5) * l);
        if (R.Count > 6 && N.Count > 6) Vector512.Store(c66, sums + (6 * N.Count + 6) * l);
        if (R.Count > 6 && N.Count > 7) Vector512.Store(c67, sums + (6 * N.Count + 7) * l);
        if (R.Count > 7 && N.Count > 0) Vector512.Store(c70, sums + (7 * N.Count + 0) * l);
        if (R.Count > 7 && N.Count > 1) Vector512.Store(c71, sums + (7 * N.Count + 1) * l);
        if (R.Count > 7 && N.Count > 2) Vector512.Store(c72, sums + (7 * N.Count + 2) * l);
        if (R.Count > 7 && N.Count > 3) Vector512.Store(c73, sums + (7 * N.Count + 3) * l);
        if (R.Count > 7 && N.Count > 4) Vector512.Store(c74, sums + (7 * N.Count + 4) * l);
        if (R.Count > 7 && N.Count > 5) Vector512.Store(c75, sums + (7 * N.Count + 5) * l);
        if (R.Count > 7 && N.Count > 6) Vector512.Store(c76, sums + (7 * N.Count + 6) * l);
        if (R.Count > 7 && N.Count > 7) Vector512.Store(c77, sums + (7 * N.Count + 7) * l);
        Put(sums, R.Count, N.Count, alpha, beta, c, ldc);
    }

    /// <summary>
    /// C(i, j) = alpha·ΣLanes(s_ij) + beta·C(i, j) (fused as the packed path's epilogue; beta = 0 never reads C) for the
    /// <paramref name="rows"/> × <paramref name="cols"/> accumulators stored at <paramref name="sums"/>, s_ij at (i·cols + j)·L.
    /// Its own method, so that <see cref="Tile{N, R}"/> (one per shape) stays small.
    /// </summary>
    private static void Put(T* sums, int rows, int cols, T alpha, T beta, T* c, nint ldc)
    {
        int l = Vector512<T>.Count;
        for (int i = 0; i < rows; i++, c += ldc)
            for (int j = 0; j < cols; j++, sums += l)
            {
                T s = Vector512.Sum(Vector512.Load(sums));
                c[j] = beta == T.Zero ? alpha * s : T.FusedMultiplyAdd(alpha, s, beta * c[j]);
            }
    }



}

/// <summary>A count known at compile time (rows or columns of an <see cref="Avx512NarrowDot{T}"/> tile).</summary>
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
