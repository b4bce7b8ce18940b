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
/// lanes, and their transposed form (vectors along m) must transpose A first. Along k every lane works. Each tile (a <see cref="DotTile{T}"/>)
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

    /// <summary>Whole <see cref="DotTile{T}"/> tiles of <typeparamref name="R"/> rows × N columns, then the last rows with a tile of their own height.</summary>
    private static void Rows<N, R>(int m, int k, T alpha, T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc)
        where N : struct, ICount where R : struct, ICount
    {
        int i = 0;
        for (; i + R.Count <= m; i += R.Count) DotTile<T>.Tiles<R, N, LaneSums>(N.Count, k, alpha, a + i * lda, lda, b, ldb, beta, c + i * ldc, ldc, 1, pairs: false);
        T* ai = a + i * lda, ci = c + i * ldc;
        switch (m - i)
        {
            case 0: break;
            case 1: DotTile<T>.Tiles<C1, N, LaneSums>(N.Count, k, alpha, ai, lda, b, ldb, beta, ci, ldc, 1, pairs: false); break;
            case 2: DotTile<T>.Tiles<C2, N, LaneSums>(N.Count, k, alpha, ai, lda, b, ldb, beta, ci, ldc, 1, pairs: false); break;
            case 3: DotTile<T>.Tiles<C3, N, LaneSums>(N.Count, k, alpha, ai, lda, b, ldb, beta, ci, ldc, 1, pairs: false); break;
            case 4: DotTile<T>.Tiles<C4, N, LaneSums>(N.Count, k, alpha, ai, lda, b, ldb, beta, ci, ldc, 1, pairs: false); break;
            case 5: DotTile<T>.Tiles<C5, N, LaneSums>(N.Count, k, alpha, ai, lda, b, ldb, beta, ci, ldc, 1, pairs: false); break;
            case 6: DotTile<T>.Tiles<C6, N, LaneSums>(N.Count, k, alpha, ai, lda, b, ldb, beta, ci, ldc, 1, pairs: false); break;
            default: DotTile<T>.Tiles<C7, N, LaneSums>(N.Count, k, alpha, ai, lda, b, ldb, beta, ci, ldc, 1, pairs: false); break;
        }
    }

    /// <summary>
    /// The narrow form's lane sums and epilogue: C(i, j) = alpha·<see cref="Vector512.Sum{T}(Vector512{T})"/>(s_ij) +
    /// beta·C(i, j), fused as the packed path's epilogue (beta = 0 never reads C).
    /// </summary>
    private struct LaneSums : IDotFinish<T>
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Row(int cols, Vector512<T> s0, Vector512<T> s1, Vector512<T> s2, Vector512<T> s3, Vector512<T> s4, Vector512<T> s5,
            Vector512<T> s6, Vector512<T> s7, int r, int rows, T* sums, T alpha, T beta, T* c, nint cr, nint cs)
        {
            DotTile<T>.Keep(cols, sums + r * cols * Vector512<T>.Count, s0, s1, s2, s3, s4, s5, s6, s7);
            if (r == rows - 1) Store(sums, rows, cols, alpha, beta, c, cr, cs);
        }

        /// <summary>The kept sums into C; its own method, so that the tiles (one per shape) stay small.</summary>
        private static void Store(T* sums, int rows, int cols, T alpha, T beta, T* c, nint cr, nint cs)
        {
            int l = Vector512<T>.Count;
            for (int i = 0; i < rows; i++, c += cr)
                for (int j = 0; j < cols; j++, sums += l)
                {
                    T s = Vector512.Sum(Vector512.Load(sums));
                    c[j * cs] = beta == T.Zero ? alpha * s : T.FusedMultiplyAdd(alpha, s, beta * c[j * cs]);
                }
        }
    }
}
