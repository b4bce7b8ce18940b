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
/// lanes, and their transposed form (vectors along m) must transpose A first. Along k every lane works. Each tile (a
/// <see cref="DotTile{T}"/>) holds one accumulator vector per element of C and reduces them once at the end, in one
/// of two forms:
/// <list type="bullet">
/// <item>the tree form (<see cref="TakesTree"/>): tiles of R rows of A with n·R ≤ 16, whose 16 sums are reduced
/// together by <see cref="Avx512Lanes.SumLanes16"/> (about 3 vector operations per element of C) and stored as one or two
/// masked vectors;</item>
/// <item>the lane form: tiles of R·n ≤ 24, each sum reduced by <see cref="Vector512.Sum{T}(Vector512{T})"/> (about 8
/// operations per element), kept for deep products with B transposed (<see cref="UsesTree"/>) and for float64 with 6–8
/// columns, where the tree form's lower tiles lost.</item>
/// </list>
/// Summation order (not the packed path's, so the bits differ from it): lane ℓ of an accumulator sums the terms
/// p ≡ ℓ (mod L) in order of p by fused multiply-adds, then the L lanes are added in the form's order (the tree's:
/// see <see cref="Avx512Lanes.SumLanes16"/>); every term passes through at most ⌈k/L⌉ + log₂L roundings.
/// </remarks>
internal static unsafe class Avx512NarrowDot<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>Whether the dot form takes C = alpha·op(A)·op(B) + beta·C (2 ≤ n ≤ 8, A as stored): <see cref="TakesTree"/> or <see cref="TakesLanes"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool Takes(Trans ta, Trans tb, int n, int k)
        => ta == Trans.No && n >= 2 && n <= 8 && (TakesTree(n, k) || TakesLanes(tb, n, k));

    /// <summary>
    /// Whether <see cref="Gemm"/> runs C = alpha·op(A)·op(B) + beta·C here: <see cref="Takes"/> over 8 rows of C, and the
    /// tree form from 5 rows with B transposed (B̃ read in place; the routes left to those products ran at a fraction of
    /// OpenBLAS on some: % of OpenBLAS, one thread, before → after, f32 / f64: 6×4×64 A·Bᵀ 20 / 83 → 78 / 84, 8×7×64 A·Bᵀ
    /// 28 → 115, 7×3×40 A·Bᵀ 35 / 103 → 114 / 114, 8×2×24 A·Bᵀ 132 / 126 → 298 / 444). With B as stored, the transposing
    /// copy costs more than the few rows win (8×4×64 A·B f32 71 → 32), and on 2–4 rows the products mostly run on
    /// <see cref="GemmDot"/> first.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool TakesProduct(Trans ta, Trans tb, int m, int n, int k)
        => m > 8 ? Takes(ta, tb, n, k) : m >= 5 && tb == Trans.Yes && ta == Trans.No && n >= 2 && n <= 8 && TakesTree(n, k);

    /// <summary>
    /// Whether the tree form takes a product with n columns over k (A as stored, either layout of B): float32 with
    /// 2–5 columns from k = 16, 6–7 from 24, 8 from 32; float64 with 2–4 columns from k = 16, 5 from 24. Measured
    /// (% of OpenBLAS, one thread, <c>--narrow-tree off → on</c>, m = 700, k = 16 … 256): A·B float32 2880×4×80 49 → 75,
    /// 700×2×80 38 → 116, 700×3×80 59 → 162, 700×5×80 45 → 128, 700×6×32 59 → 97, 700×7×32 78 → 123, 700×8×40
    /// 78–86 → 106–107, float64 700×2×48 38 → 109, 700×3×80 74 → 155, 700×4×80 49 → 80, 700×5×48 92 → 129–134; A·Bᵀ
    /// float32 700×4×80 146 → 301, 700×8×80 110–113 → 143–165, float64 700×3×80 284 → 590, 700×5×128 266–296 →
    /// 447–458. It lost below those depths (700×8×16 A·B f32 118 → 68, 700×6×16 A·Bᵀ f32 169–176 → 142–143, 700×5×16
    /// A·B f64 116 → 75–101) and on float64 with 6–8 columns (700×7×48 A·B 92 → 70, 700×8×128 A·Bᵀ 209 → 164–168).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool TakesTree(int n, int k)
        => Tree && k >= (typeof(T) == typeof(float) ? (n <= 5 ? 16 : n <= 7 ? 24 : 32)
                                                    : (n <= 4 ? 16 : n == 5 ? 24 : int.MaxValue));

    /// <summary>Whether the tree form may run (mutable for the benchmark's comparisons only).</summary>
    internal static bool Tree = true;

    /// <summary>
    /// Whether the lane form takes a product the tree form leaves: it pays off only where k is long enough to outweigh
    /// one reduction per element of C. Measured against the other routes (% of OpenBLAS, one thread, two rounds), before
    /// the tree form: with B transposed from <see cref="DepthVectors"/> (12) vectors of k, or twice that for 6–8
    /// columns: 72×4×2856 A·Bᵀ f64 49 → 109–113, f32 35 → 111; 184×2×475 f64 40 → 103, f32 29 → 90; 67×3×225 f32 35 →
    /// 95–106; 107×5×234 f64 76 → 106, f32 42 → 78; it lost on shorter k or wider C (500×8×100 A·Bᵀ f32 111 → 64,
    /// 300×6×40 127 → 60, 300×3×20 f64 180 → 136). With B as stored (transposed first) only float64 with 2 columns and
    /// 8 vectors of k: 2880×2×80 A·B f64 39–49 → 72–73; it tied or lost with more columns (2880×4×80 f64 61–65 → 63,
    /// 1973×3×51 f64 97 → 85–90) and in float32 throughout (2880×4×80 51 → 35, 1978×6×17 70 → 20).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool TakesLanes(Trans tb, int n, int k)
    {
        int vectors = k / Vector512<T>.Count;
        return DepthVectors > 0
               && (tb == Trans.Yes ? vectors >= DepthVectors && (n <= 5 || vectors >= 2 * DepthVectors)
                                   : typeof(T) == typeof(double) && n == 2 && vectors >= 8);
    }

    /// <summary>Least depth of <see cref="Takes"/> with B transposed, in vectors of k; 0 switches the dot form off. Mutable for the benchmark's tuning only.</summary>
    internal static int DepthVectors = 12;

    /// <summary>
    /// Which form runs a product <see cref="Takes"/> takes: the tree form where <see cref="TakesTree"/>, except from 96
    /// vectors of k with 3–8 columns where <see cref="TakesLanes"/> too: there the lane form's taller tiles (6 rows of 4
    /// columns, against 4) read fewer operand vectors per fused multiply-add, and the reductions no longer count.
    /// Measured (% of OpenBLAS, one thread, lane → tree form, two rounds, f32 / f64): 72×4×2856 A·Bᵀ 117–118 / 117–121 →
    /// 96–99 / 97–101, 100×5×2000 145–154 / 156–158 → 123–125 / 135–140, 72×4×1024 (64 / 128 vectors) 84–85 / 111–118 →
    /// 88–97 / 86–93, 72×2×2856 (2 columns: tiles of 8 rows either way) 102–124 / 110–111 → 121–124 / 117.
    /// </summary>
    internal static bool UsesTree(Trans tb, int n, int k)
        => TakesTree(n, k) && !(n >= 3 && k >= 96 * Vector512<T>.Count && TakesLanes(tb, n, k));

    /// <summary>C = alpha·A·op(B) + beta·C for A as stored (m × k, row stride lda), 2 ≤ n ≤ 8; beta = 0 never reads C.</summary>
    public static void Run(Trans tb, int m, int n, int k, T alpha, T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc)
        => Run(UsesTree(tb, n, k), tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    /// <summary>The product in the tree form (<paramref name="tree"/>) or the lane form, whichever the product's shape (tests run both).</summary>
    [SkipLocalsInit]
    internal static void Run(bool tree, Trans tb, int m, int n, int k, T alpha, T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc)
    {
        if (tb == Trans.Yes)
        {
            Rows(tree, n, m, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
        // B (k × n) as stored: its columns are strided, so transpose it once (n × k, as long as one row of A per column).
        const int stackBytes = 16 << 10;
        if ((long)n * k * sizeof(T) <= stackBytes)
        {
            T* bt = stackalloc T[n * k];
            GemmDriver<T, Avx512Kernel<T>>.Transpose(b, ldb, k, n, bt, k);
            Rows(tree, n, m, k, alpha, a, lda, bt, k, beta, c, ldc);
            return;
        }
        var buffers = GemmBuffers<T>.Rent();
        try
        {
            T* bt = buffers.PackB(n * k);
            GemmDriver<T, Avx512Kernel<T>>.Transpose(b, ldb, k, n, bt, k);
            Rows(tree, n, m, k, alpha, a, lda, bt, k, beta, c, ldc);
        }
        finally
        {
            GemmBuffers<T>.Return(buffers);
        }
    }

    /// <summary>Rows per tile for n columns: the tree form's, or the lane form's R·n ≤ 24 accumulators, R ≤ 8 (with min(R, n) operand vectors and one more, within 32 registers).</summary>
    private static void Rows(bool tree, int n, int m, int k, T alpha, T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc)
    {
        if (tree)
        {
            TreeRows(n, m, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
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

    /// <summary>
    /// Tiles whose sums are reduced at once (<see cref="TileSums"/>): B̃'s n rows as the tile's u, A's rows as its v,
    /// R rows of A at a time with n·R ≤ 16, all of them in one call of <see cref="DotTile{T}.Tiles"/>.
    /// </summary>
    private static void TreeRows(int n, int m, int k, T alpha, T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc)
    {
        switch (n)
        {
            case 2: TreeRows<C2, C8>(m, k, alpha, a, lda, b, ldb, beta, c, ldc); break;
            case 3: TreeRows<C3, C5>(m, k, alpha, a, lda, b, ldb, beta, c, ldc); break;
            case 4: TreeRows<C4, C4>(m, k, alpha, a, lda, b, ldb, beta, c, ldc); break;
            case 5: TreeRows<C5, C3>(m, k, alpha, a, lda, b, ldb, beta, c, ldc); break;
            case 6: TreeRows<C6, C2>(m, k, alpha, a, lda, b, ldb, beta, c, ldc); break;
            case 7: TreeRows<C7, C2>(m, k, alpha, a, lda, b, ldb, beta, c, ldc); break;
            default: // as two halves of 4 columns: an 8 × 2 tile's body exceeds the JIT's inlining budget
                TreeRows<C4, C4>(m, k, alpha, a, lda, b, ldb, beta, c, ldc);
                TreeRows<C4, C4>(m, k, alpha, a, lda, b + 4 * ldb, ldb, beta, c + 4, ldc);
                break;
        }
    }

    /// <summary>The whole tiles of <typeparamref name="R"/> rows of A, then the last rows with a tile of their own height.</summary>
    private static void TreeRows<N, R>(int m, int k, T alpha, T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc)
        where N : struct, ICount where R : struct, ICount
    {
        int whole = m - m % R.Count;
        DotTile<T>.Tiles<N, R, TileSums>(whole, k, alpha, b, ldb, a, lda, beta, c, 1, ldc, pairs: false);
        T* ai = a + whole * lda, ci = c + whole * ldc;
        switch (m - whole)
        {
            case 0: break;
            case 1: DotTile<T>.Tiles<N, C1, TileSums>(1, k, alpha, b, ldb, ai, lda, beta, ci, 1, ldc, pairs: false); break;
            case 2: DotTile<T>.Tiles<N, C2, TileSums>(2, k, alpha, b, ldb, ai, lda, beta, ci, 1, ldc, pairs: false); break;
            case 3: DotTile<T>.Tiles<N, C3, TileSums>(3, k, alpha, b, ldb, ai, lda, beta, ci, 1, ldc, pairs: false); break;
            case 4: DotTile<T>.Tiles<N, C4, TileSums>(4, k, alpha, b, ldb, ai, lda, beta, ci, 1, ldc, pairs: false); break;
            case 5: DotTile<T>.Tiles<N, C5, TileSums>(5, k, alpha, b, ldb, ai, lda, beta, ci, 1, ldc, pairs: false); break;
            case 6: DotTile<T>.Tiles<N, C6, TileSums>(6, k, alpha, b, ldb, ai, lda, beta, ci, 1, ldc, pairs: false); break;
            default: DotTile<T>.Tiles<N, C7, TileSums>(7, k, alpha, b, ldb, ai, lda, beta, ci, 1, ldc, pairs: false); break;
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
    /// The whole tile's lane sums at once (<see cref="Avx512Lanes.SumLanes16"/>), rows·cols ≤ 16, then C(i, j) =
    /// alpha·sum + beta·C(i, j) as vectors: one (float32) or two (float64) masked vectors where the tile's rows of C are
    /// contiguous (ldc = n), row by row otherwise.
    /// </summary>
    private struct TileSums : IDotFinish<T>
    {
        public static bool Whole => true;

        public static void Row(int cols, Vector512<T> s0, Vector512<T> s1, Vector512<T> s2, Vector512<T> s3, Vector512<T> s4, Vector512<T> s5,
            Vector512<T> s6, Vector512<T> s7, int r, int rows, T* sums, T alpha, T beta, T* c, nint cr, nint cs)
            => throw new System.Diagnostics.UnreachableException();

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Tile(int rows, int cols, Vector512<T> s0, Vector512<T> s1, Vector512<T> s2, Vector512<T> s3,
            Vector512<T> s4, Vector512<T> s5, Vector512<T> s6, Vector512<T> s7, Vector512<T> s8, Vector512<T> s9,
            Vector512<T> s10, Vector512<T> s11, Vector512<T> s12, Vector512<T> s13, Vector512<T> s14, Vector512<T> s15,
            T alpha, T beta, T* c, nint cr)
        {
            // Here the tile's v is A and its u is B̃: rows and cols are C's, and cr is C's row stride (ldc).
            SumLanes16(s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15, out Vector512<T> lo, out Vector512<T> hi);
            Store(rows, cols, lo, hi, alpha, beta, c, cr);
        }

        /// <summary>C(i, j) = alpha·sum + beta·C(i, j) from the sums (row-major, lo then hi).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Store(int rows, int cols, Vector512<T> lo, Vector512<T> hi, T alpha, T beta, T* c, nint cr)
        {
            int l = Vector512<T>.Count, count = rows * cols;
            Vector512<T> va = Vector512.Create(alpha);
            lo *= va;
            hi *= va;
            if (cr == cols) // the tile's rows of C are contiguous: one or two masked vectors
            {
                Vector512<T> m0 = LaneMask<T>(count < l ? count : l);
                if (beta != T.Zero) lo = Fma(Vector512.Create(beta), MaskLoad(c, m0), lo);
                MaskStore(c, m0, lo);
                if (count > l)
                {
                    Vector512<T> m1 = LaneMask<T>(count - l);
                    if (beta != T.Zero) hi = Fma(Vector512.Create(beta), MaskLoad(c + l, m1), hi);
                    MaskStore(c + l, m1, hi);
                }
                return;
            }
            // Rows of C that are not contiguous: inlined for 4 columns (the two halves of 8 columns in TreeRows, every
            // tile), a call otherwise (inlined there, it would take the JIT inlining room of the tiles of 6 and 7 columns).
            if (cols == 4) Scatter(rows, 4, lo, hi, beta, c, cr);
            else ScatterCall(rows, cols, lo, hi, beta, c, cr);
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void ScatterCall(int rows, int cols, Vector512<T> lo, Vector512<T> hi, T beta, T* c, nint cr)
            => Scatter(rows, cols, lo, hi, beta, c, cr);

        /// <summary>The scaled sums (row-major, lo then hi) into rows of C that are not contiguous.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Scatter(int rows, int cols, Vector512<T> lo, Vector512<T> hi, T beta, T* c, nint cr)
        {
            // Row r's sums are lanes r·cols … r·cols + cols − 1 of (lo, hi): moved to the front, stored under a mask.
            Vector512<T> mask = LaneMask<T>(cols);
            for (int r = 0; r < rows; r++, c += cr)
            {
                Vector512<T> x = Lanes(lo, hi, r * cols);
                if (beta != T.Zero) x = Fma(Vector512.Create(beta), MaskLoad(c, mask), x);
                MaskStore(c, mask, x);
            }
        }

        /// <summary>Lanes first … first + L − 1 of the 2L lanes (lo, hi), those past 2L undefined.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<T> Lanes(Vector512<T> lo, Vector512<T> hi, int first)
        {
            if (typeof(T) == typeof(float))
                return Avx512F.PermuteVar16x32x2(lo.AsSingle(), Vector512<int>.Indices + Vector512.Create(first), hi.AsSingle()).As<float, T>();
            return Avx512F.PermuteVar8x64x2(lo.AsDouble(), Vector512<long>.Indices + Vector512.Create((long)first), hi.AsDouble()).As<double, T>();
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
