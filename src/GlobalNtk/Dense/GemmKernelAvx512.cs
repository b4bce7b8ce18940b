using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

using static GlobalNtk.Dense.Avx512Lanes;

namespace GlobalNtk.Dense;

/// <summary>
/// AVX-512 kernel in either precision: 8 rows × 3 vectors (24 float64 or 48 float32 columns) =
/// 24 zmm accumulators + 3 B vectors + 1 broadcast (of 32 registers). Accumulation is in T, as in
/// BLAS dgemm/sgemm; callers that need float64 sums (traces, Gram matrices, Krylov
/// orthogonalisation) keep those in float64 themselves.
/// </summary>
/// <remarks>
/// One loop body (<c>Tile</c>) serves every use, compiled by the JIT once per variant, which a struct
/// type argument (<see cref="ITileShape"/>) selects: full packed tiles, packed tiles cut by the right edge of C (1, 2 or 3 vectors, the last
/// under a lane mask, so no work is spent on padding), and <see cref="Direct"/>, which reads small
/// operands where they are stored instead of packing them. Small products with B as stored also use a
/// second body, <c>Strip</c> (6 rows × 4 vectors; see <see cref="StoredBProduct"/>). Each element of C is
/// the same chain of fused multiply-adds over p = 0, 1, …, k−1 and the same epilogue in all of them, so a
/// product's bits do not depend on the path (for k ≤ KC, a single k-slice).
/// </remarks>
internal unsafe partial struct Avx512Kernel<T> : IGemmKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public static int MR => 8;
    public static int NR => 3 * Vector512<T>.Count;
    public static int KC { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => typeof(T) == typeof(float) ? GemmTuning.KC512F32 : GemmTuning.KC512; }
    public static int MC => typeof(T) == typeof(float) ? GemmTuning.MC512F32 : GemmTuning.MC512;
    public static int NC => typeof(T) == typeof(float) ? GemmTuning.NC512F32 : GemmTuning.NC512;
    public static int NCStoredB => typeof(T) == typeof(float) ? GemmTuning.NC512F32StoredB : GemmTuning.NC512;

    public static void Compute(int kc, T* a, T* b, T* c, nint ldc, T alpha, T beta) =>
        Tile<Packed3>(kc, a, 1, 8, b, 3 * Vector512<T>.Count, c, ldc, alpha, beta, 0, 8);

    /// <summary>Compute's full tile with the variant <typeparamref name="S"/> (for the kernel-only benchmark).</summary>
    internal static void ComputeAs<S>(int kc, T* a, T* b, T* c, nint ldc, T alpha, T beta) where S : struct, ITileShape =>
        Tile<S>(kc, a, 1, 8, b, 3 * Vector512<T>.Count, c, ldc, alpha, beta, 0, 8);

    /// <summary>A full tile on 8 stored rows of A (A(r, p) = a[r·lda + p]) and a packed B̄ panel, with the variant <typeparamref name="S"/> (for the kernel-only benchmark).</summary>
    internal static void StoredAs<S>(int kc, T* a, nint lda, T* b, T* c, nint ldc, T alpha, T beta) where S : struct, ITileShape =>
        Tile<S>(kc, a, lda, 1, b, 3 * Vector512<T>.Count, c, ldc, alpha, beta, 0, 8);

    /// <summary>
    /// A tile cut by the edges of C (<paramref name="rows"/> ≤ 8, <paramref name="cols"/> ≤ NR), written
    /// straight into C (no scratch copy): only the vectors that hold columns of C are computed, the
    /// last one stored under a lane mask, and a tile of at most 2, 4 or 6 rows runs a 2-, 4- or 6-row
    /// body (the panel's padding rows are not multiplied).
    /// </summary>
    public static bool TryComputeEdge(int kc, T* a, T* b, T* c, nint ldc, T alpha, T beta, int rows, int cols)
    {
        if (rows <= 2) PackedTile<FewRows<Packed3, R2>, FewRows<PackedEdge1, R2>, FewRows<PackedEdge2, R2>, FewRows<PackedEdge3, R2>>(kc, a, b, c, ldc, alpha, beta, rows, cols);
        else if (rows <= 4) PackedTile<FewRows<Packed3, R4>, FewRows<PackedEdge1, R4>, FewRows<PackedEdge2, R4>, FewRows<PackedEdge3, R4>>(kc, a, b, c, ldc, alpha, beta, rows, cols);
        else if (rows <= 6) PackedTile<FewRows<Packed3, R6>, FewRows<PackedEdge1, R6>, FewRows<PackedEdge2, R6>, FewRows<PackedEdge3, R6>>(kc, a, b, c, ldc, alpha, beta, rows, cols);
        else PackedTile<Packed3, PackedEdge1, PackedEdge2, PackedEdge3>(kc, a, b, c, ldc, alpha, beta, rows, cols);
        return true;
    }

    private static void PackedTile<SFull, SEdge1, SEdge2, SEdge3>(int kc, T* a, T* b, T* c, nint ldc, T alpha, T beta, int rows, int cols)
        where SFull : struct, ITileShape where SEdge1 : struct, ITileShape where SEdge2 : struct, ITileShape where SEdge3 : struct, ITileShape
    {
        int l = Vector512<T>.Count, nr = 3 * l;
        // The unmasked 8-row body stores all 8 rows; a full-width tile of 7 rows takes the masked one.
        if (cols >= nr && (rows == 8 || SFull.Rows < 8)) Tile<SFull>(kc, a, 1, 8, b, nr, c, ldc, alpha, beta, 0, rows);
        else if (cols <= l) Tile<SEdge1>(kc, a, 1, 8, b, nr, c, ldc, alpha, beta, cols, rows);
        else if (cols <= 2 * l) Tile<SEdge2>(kc, a, 1, 8, b, nr, c, ldc, alpha, beta, cols - l, rows);
        else Tile<SEdge3>(kc, a, 1, 8, b, nr, c, ldc, alpha, beta, cols - 2 * l, rows);
    }

    /// <summary>
    /// <see cref="Direct"/> over k in the packed path's slices (<see cref="GemmDriver{T, K}.SliceDepth"/>
    /// deep; the later ones accumulate with beta = 1, as there), so a deep product with a small C
    /// (a 4 × 4 Gram over 2880 rows) skips packing and still gives the packed path's bits. For
    /// k ≤ <see cref="KC"/> it is <see cref="Direct"/>.
    /// </summary>
    public static void DirectSliced(Trans ta, Trans tb, int m, int n, int k, T alpha, T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc)
    {
        int depth = k <= KC ? k : GemmDriver<T, Avx512Kernel<T>>.SliceDepth(k); // one slice: skip the divisions
        bool narrow = NarrowC(ta, m, n, Math.Min(depth, k)); // here, not in Direct: kept out of the path of every other product
        int edge = narrow ? 0 : EdgeColumns(ta, m, n, Math.Min(depth, k)), main = n - edge;
        if (narrow && m < 2 * Vector512<T>.Count) DirectNarrowRoutes.Note(DirectNarrowRoutes.Route.NarrowFewRows);
        if (edge > 0) DirectNarrowRoutes.Note(DirectNarrowRoutes.Route.EdgeColumns);
        for (int pc = 0; pc < k; pc += depth)
        {
            T* ap = ta == Trans.No ? a + pc : a + (nint)pc * lda;   // op(A)(i, p) columns pc…
            T* bp = tb == Trans.No ? b + (nint)pc * ldb : b + pc;   // op(B)(p, j) rows pc…
            int kp = Math.Min(depth, k - pc);
            T bet = pc == 0 ? beta : T.One;
            if (narrow) Transposed(ta, tb, m, n, kp, alpha, ap, lda, bp, ldb, bet, c, ldc);
            else if (edge == 0) Direct(ta, tb, m, n, kp, alpha, ap, lda, bp, ldb, bet, c, ldc);
            else
            {
                Direct(ta, tb, m, main, kp, alpha, ap, lda, bp, ldb, bet, c, ldc);
                Transposed(ta, tb, m, edge, kp, alpha, ap, lda, tb == Trans.No ? bp + main : bp + (nint)main * ldb, ldb, bet, c + main, ldc);
            }
        }
    }

    /// <summary>
    /// C[0:m, 0:n] = alpha·op(A)·op(B) + beta·C on the stored A, without packing it: A's elements are
    /// broadcast from their rows (or columns). B as stored is read in place, its rows loaded as
    /// vectors (the last under a lane mask), by 6 × 4-vector strips and 8 × 3-vector tiles
    /// (<see cref="StripVectors"/> splits the columns); a transposed B is packed first (k × n, cheap
    /// next to the multiply-adds). For small products, where packing A costs as much as the multiply-adds.
    /// Requires k ≤ <see cref="KC"/> so that the sums match the packed path's bits.
    /// </summary>
    public static void Direct(Trans ta, Trans tb, int m, int n, int k, T alpha, T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc)
    {
        if (tb == Trans.No)
        {
            StoredB(ta, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
        if (StripVectors(m, n) * Vector512<T>.Count >= n || (m <= 8 && n <= 5 * Vector512<T>.Count))
        {
            // The strips take all of it, or C is small (at most 8 rows, 5 vectors): transpose B once (as
            // cheap as packing it) and run B as stored. (Where the 8 × 3 tiles take part on more rows, e.g.
            // 13×100×50 in float64, this measured 13 % slower than packing B for them. On at most 8 rows and
            // 5 vectors it won, two alternating rounds, % of OpenBLAS: 4×8×34 Aᵀ·Bᵀ f32 24 → 83, f64 22–24 → 71;
            // 3×9×1577 Aᵀ·Bᵀ f32 29–30 → 104–109; 8×40×200 A·Bᵀ f64 56–59 → 76–77; it lost on wider C:
            // 3×226×728 A·Bᵀ f32 46–52 → 30–32, 6×92×6 Aᵀ·Bᵀ 60–64 → 53–55.)
            var plain = GemmBuffers<T>.Rent();
            try
            {
                T* bt = plain.PackB(k * n);
                GemmDriver<T, Avx512Kernel<T>>.Transpose(b, ldb, n, k, bt, n);
                StoredB(ta, m, n, k, alpha, a, lda, bt, n, beta, c, ldc);
            }
            finally
            {
                GemmBuffers<T>.Return(plain);
            }
            return;
        }
        var buffers = GemmBuffers<T>.Rent();
        try
        {
            T* packed = buffers.PackB((int)GemmDriver<T, Avx512Kernel<T>>.PackedLength(k, n));
            GemmDriver<T, Avx512Kernel<T>>.PackAll(tb, b, ldb, k, n, packed); // one slice: panel q at q·NR·k
            nint bps = 3 * Vector512<T>.Count;
            if (beta == T.Zero)
                DirectOn<ZeroBeta<DirectA3>, ZeroBeta<DirectAEdge1>, ZeroBeta<DirectAEdge2>, ZeroBeta<DirectAEdge3>>(ta, m, n, k, alpha, a, lda, packed, bps, k, beta, c, ldc);
            else
                DirectOn<DirectA3, DirectAEdge1, DirectAEdge2, DirectAEdge3>(ta, m, n, k, alpha, a, lda, packed, bps, k, beta, c, ldc);
        }
        finally
        {
            GemmBuffers<T>.Return(buffers);
        }
    }

    /// <summary>
    /// Whether C is too narrow for vectors along its rows while tall enough to fill them along its
    /// columns, so <see cref="DirectSliced"/> runs <see cref="Transposed"/>: at most half a vector of columns
    /// with a transposed A (read in place there); with A as stored (whose blocks <see cref="Transposed"/>
    /// must transpose first) only float32 with at most 4 columns. Measured (% of OpenBLAS, before → after,
    /// two alternating rounds): 732×4×173 Aᵀ·B f32 25–28 → 81, f64 47 → 87–90; 2880×3×80 Aᵀ·B f32 38–49 →
    /// 106–125; 2880×4×80 A·B f32 28–34 → 44–47; with A as stored it lost for float64 (2880×2×80 47–53 → 46)
    /// and for 6–8 float32 columns (1978×6×17 68–70 → 54–64). Float64 with a transposed A takes 5–8 columns too
    /// from k = 16 (two alternating rounds, % of OpenBLAS: 1347×8×232 Aᵀ·B 105–108 → 141–159, 592×8×585 Aᵀ·Bᵀ 111–131 →
    /// 173–178, 2000×5×100 Aᵀ·Bᵀ 75–96 → 103–125, 300×6×40 Aᵀ·B 67–75 → 77–91, 646×7×19 Aᵀ·B 56–57 → 63–64; at k = 9 it
    /// lost: 169×5×9 Aᵀ·B 59–72 → 48–57). With <see cref="DirectNarrowRoutes.On"/>, A transposed and k &gt; <see cref="DeepDepth"/>
    /// it takes 8 &lt; m &lt; 2L as well (Cᵀ is then at most 8 rows of 1–2 vectors, and A's stored rows are read in place):
    /// 13×2×43 Aᵀ·B f32 44–47 → 57–63, f64 63–65 → 83–86. (Shallower products of 5..L columns go to <see cref="Deep"/>
    /// first; with A as stored, computing Cᵀ for 5–8 float32 columns at k &gt; 24 lost: 300×8×30 A·B 85 → 53, 101×6×63 63–72 → 48–51.)
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool NarrowC(Trans ta, int m, int n, int k) =>
        (m >= 2 * Vector512<T>.Count || (ta == Trans.Yes && m > 8 && k > DeepDepth && DirectNarrowRoutes.On)) && k >= NarrowDepth
        && (ta == Trans.Yes ? n <= Vector512<T>.Count / 2 || (typeof(T) == typeof(double) && n <= 8 && k >= 16) : typeof(T) == typeof(float) && n <= 4);

    /// <summary>
    /// Least depth for <see cref="Transposed"/>: below it the transposed epilogue (and the transposed
    /// blocks of a stored A) outweigh the multiply-adds (k = 5 lost, e.g. 153×3×5 A·Bᵀ f32 107–114 → 60–72 %,
    /// 2471×3×5 A·B f32 43–44 → 22–24 %; k = 8 won or tied: 2471×3×8 A·B f32 53–54 → 69–93 %). Mutable for
    /// the benchmark's tuning only.
    /// </summary>
    internal static int NarrowDepth = 8;

    /// <summary>Columns of Cᵀ per block of <see cref="Transposed"/>: 12 vectors (a multiple of both the strips' 4 and the tiles' 3).</summary>
    private static int TransposedBlock => 12 * Vector512<T>.Count;

    /// <summary>
    /// <see cref="Direct"/> for a narrow C (k ≤ <see cref="KC"/>): Cᵀ = op(B)ᵀ·op(A)ᵀ, block by block of <see cref="TransposedBlock"/>
    /// rows of C, into a stack buffer (alpha = 1, beta = 0: the plain sums), then C = alpha·sum + beta·C
    /// by 4 × 4 transposes in registers (<see cref="PutTransposed4"/>; the last rows element by element). Each element of C is still one FMA chain from zero over p = 0, 1, …, k−1 and the
    /// epilogue of <see cref="Put"/> (alpha·sum + (beta·C), fused), so the bits are the packed path's.
    /// </summary>
    [SkipLocalsInit]
    private static void Transposed(Trans ta, Trans tb, int m, int n, int k, T alpha, T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc)
    {
        int block = TransposedBlock, height = (n + 3) / 4 * 4;
        T* ct = stackalloc T[height * block];
        // The rows past n are multiplied by the 4 × 4 transposes but never stored: zeros, since stale
        // stack bits can be subnormal, which costs a microcode assist per lane (measured 10× slower).
        new Span<T>(ct + (nint)n * block, (height - n) * block).Clear();
        Trans ta2 = tb == Trans.No ? Trans.Yes : Trans.No, tb2 = ta == Trans.No ? Trans.Yes : Trans.No;
        for (int i0 = 0; i0 < m; i0 += block)
        {
            int rows = Math.Min(block, m - i0);
            T* ai = ta == Trans.No ? a + (nint)i0 * lda : a + i0;
            Direct(ta2, tb2, n, rows, k, T.One, b, ldb, ai, lda, T.Zero, ct, block);
            T* ci = c + (nint)i0 * ldc;
            int i = ldc == n && (n == 2 || n == 4) ? PutContiguous(ct, block, ci, n, rows, alpha, beta) : 0;
            for (; i + 4 <= rows; i += 4)
                for (int j = 0; j < n; j += 4)
                    PutTransposed4(ct + (nint)j * block + i, block, ci + (nint)i * ldc + j, ldc, Math.Min(4, n - j), alpha, beta);
            for (; i < rows; i++)
            {
                T* cr = ci + (nint)i * ldc, s = ct + i;
                if (beta == T.Zero)
                    for (int j = 0; j < n; j++) cr[j] = alpha * s[(nint)j * block];
                else
                    for (int j = 0; j < n; j++) cr[j] = T.FusedMultiplyAdd(alpha, s[(nint)j * block], beta * cr[j]);
            }
        }
    }

    /// <summary>
    /// For a contiguous C (ldc = n, n = 2 or 4): its first rows, a multiple of L, = alpha·s + beta·C (fused as
    /// <see cref="Put"/>), where s(r, j) = <paramref name="t"/>[j·ldt + r]; returns how many rows it wrote. Those rows
    /// of C are one run of L·n-element vectors, so the transpose is a zip of t's rows by two-source lane permutes
    /// (2 or 8 per L rows) and every load and store is a whole vector: measured (% of OpenBLAS, two
    /// alternating rounds) 2670×2×19 Aᵀ·B f32 58 → 96–99, f64 61–62 → 78–80; 1102×2×17 Aᵀ·Bᵀ f32 57 → 92–94, f64 60 → 77–78;
    /// 267×2×19 Aᵀ·B f32 43–51 → 74–80. (4 columns gained little: 68×4×16 Aᵀ·Bᵀ f32 70–73 → 71.)
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int PutContiguous(T* t, nint ldt, T* c, int n, int rows, T alpha, T beta)
    {
        int l = Vector512<T>.Count, i = 0;
        Vector512<T> va = Vector512.Create(alpha), vb = Vector512.Create(beta);
        bool beta0 = beta == T.Zero;
        Vector512<T> lo1 = ZipIndex(false, 0), hi1 = ZipIndex(true, 0), lo2 = ZipIndex(false, 1), hi2 = ZipIndex(true, 1);
        for (; i + l <= rows; i += l, c += n * l)
        {
            Vector512<T> r0 = Vector512.Load(t + i), r1 = Vector512.Load(t + ldt + i);
            if (n == 2)
            {
                Put(c, Zip(r0, r1, lo1), va, vb, beta0, false, default);
                Put(c + l, Zip(r0, r1, hi1), va, vb, beta0, false, default);
            }
            else
            {
                Vector512<T> r2 = Vector512.Load(t + 2 * ldt + i), r3 = Vector512.Load(t + 3 * ldt + i);
                Vector512<T> a0 = Zip(r0, r1, lo1), a1 = Zip(r0, r1, hi1), b0 = Zip(r2, r3, lo1), b1 = Zip(r2, r3, hi1);
                Put(c, Zip(a0, b0, lo2), va, vb, beta0, false, default);
                Put(c + l, Zip(a0, b0, hi2), va, vb, beta0, false, default);
                Put(c + 2 * l, Zip(a1, b1, lo2), va, vb, beta0, false, default);
                Put(c + 3 * l, Zip(a1, b1, hi2), va, vb, beta0, false, default);
            }
        }
        return i;
    }

    /// <summary>
    /// The index (as bits of a T vector) of <see cref="Zip"/>: units of 2^<paramref name="shift"/> lanes taken
    /// alternately from x and y, from the lower (or, with <paramref name="high"/>, the upper) half of each:
    /// x₀ y₀ x₁ y₁ … for units of one lane. Lane q: unit u = q ≫ shift, from y when u is odd (the index bit L),
    /// at half + (u ≫ 1)·2^shift + q mod 2^shift.
    /// </summary>
    private static Vector512<T> ZipIndex(bool high, int shift)
    {
        if (typeof(T) == typeof(float))
        {
            Vector512<int> q = Vector512<int>.Indices, u = q >> shift;
            return ((high ? Vector512.Create(8) : Vector512<int>.Zero) + ((u >> 1) << shift) + (q - (u << shift)) + ((u & Vector512<int>.One) << 4)).As<int, T>();
        }
        if (typeof(T) == typeof(double))
        {
            Vector512<long> q = Vector512<long>.Indices, u = q >> shift;
            return ((high ? Vector512.Create(4L) : Vector512<long>.Zero) + ((u >> 1) << shift) + (q - (u << shift)) + ((u & Vector512<long>.One) << 3)).As<long, T>();
        }
        throw new NotSupportedException();
    }

    /// <summary>Lanes of x (index below L) and y (index L and up) as <paramref name="index"/> (from <see cref="ZipIndex"/>) picks them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Zip(Vector512<T> x, Vector512<T> y, Vector512<T> index)
    {
        if (typeof(T) == typeof(float)) return Avx512F.PermuteVar16x32x2(x.AsSingle(), index.AsInt32(), y.AsSingle()).As<float, T>();
        if (typeof(T) == typeof(double)) return Avx512F.PermuteVar8x64x2(x.AsDouble(), index.AsInt64(), y.AsDouble()).As<double, T>();
        throw new NotSupportedException();
    }

    /// <summary>
    /// Rows r &lt; 4 of C (<paramref name="cols"/> ≤ 4 columns from <paramref name="c"/>) = alpha·s + beta·C
    /// (fused as <see cref="Put"/>), where s(r, j) = <paramref name="t"/>[j·ldt + r]: a 4 × 4 transpose in
    /// registers (all 4 rows of t are read), the columns past <paramref name="cols"/> neither read nor written.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PutTransposed4(T* t, nint ldt, T* c, nint ldc, int cols, T alpha, T beta)
    {
        if (typeof(T) == typeof(float))
        {
            float* f = (float*)t;
            Vector128<float> r0 = Sse.LoadVector128(f), r1 = Sse.LoadVector128(f + ldt), r2 = Sse.LoadVector128(f + 2 * ldt), r3 = Sse.LoadVector128(f + 3 * ldt);
            Vector128<float> t0 = Sse.UnpackLow(r0, r1), t1 = Sse.UnpackLow(r2, r3), t2 = Sse.UnpackHigh(r0, r1), t3 = Sse.UnpackHigh(r2, r3);
            Vector128<float> mask = Vector128.LessThan(Vector128<int>.Indices, Vector128.Create(cols)).AsSingle();
            float al = float.CreateTruncating(alpha), be = float.CreateTruncating(beta);
            PutRow128((float*)c, Sse.MoveLowToHigh(t0, t1), mask, al, be);
            PutRow128((float*)(c + ldc), Sse.MoveHighToLow(t1, t0), mask, al, be);
            PutRow128((float*)(c + 2 * ldc), Sse.MoveLowToHigh(t2, t3), mask, al, be);
            PutRow128((float*)(c + 3 * ldc), Sse.MoveHighToLow(t3, t2), mask, al, be);
        }
        else if (typeof(T) == typeof(double))
        {
            double* d = (double*)t;
            Vector256<double> r0 = Avx.LoadVector256(d), r1 = Avx.LoadVector256(d + ldt), r2 = Avx.LoadVector256(d + 2 * ldt), r3 = Avx.LoadVector256(d + 3 * ldt);
            Vector256<double> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1), t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);
            Vector256<double> mask = Vector256.LessThan(Vector256<long>.Indices, Vector256.Create((long)cols)).AsDouble();
            double al = double.CreateTruncating(alpha), be = double.CreateTruncating(beta);
            PutRow256((double*)c, Avx.Permute2x128(t0, t2, 0x20), mask, al, be);
            PutRow256((double*)(c + ldc), Avx.Permute2x128(t1, t3, 0x20), mask, al, be);
            PutRow256((double*)(c + 2 * ldc), Avx.Permute2x128(t0, t2, 0x31), mask, al, be);
            PutRow256((double*)(c + 3 * ldc), Avx.Permute2x128(t1, t3, 0x31), mask, al, be);
        }
        else throw new NotSupportedException();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PutRow128(float* c, Vector128<float> s, Vector128<float> mask, float alpha, float beta)
    {
        Vector128<float> va = Vector128.Create(alpha);
        Vector128<float> x = beta == 0 ? va * s : System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(va, s, Vector128.Create(beta) * Avx.MaskLoad(c, mask));
        Avx.MaskStore(c, mask, x);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PutRow256(double* c, Vector256<double> s, Vector256<double> mask, double alpha, double beta)
    {
        Vector256<double> va = Vector256.Create(alpha);
        Vector256<double> x = beta == 0 ? va * s : System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(va, s, Vector256.Create(beta) * Avx.MaskLoad(c, mask));
        Avx.MaskStore(c, mask, x);
    }

    /// <summary><see cref="Direct"/> on B as stored (B(p, j) = b[p·ldb + j]): strips and 8 × 3 tiles, as <see cref="StripVectors"/> splits the columns.</summary>
    private static void StoredB(Trans ta, int m, int n, int k, T alpha, T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc)
    {
        int wide = Math.Min(n, StripVectors(m, n) * Vector512<T>.Count);
        if (wide > 0) StoredBProduct(ta, m, wide, k, alpha, a, lda, b, ldb, beta, c, ldc);
        if (wide == n) return;
        // beta = 0 as a compile-time variant: each row's stores are straight-line code (a test of
        // beta per stored vector costs a taken branch each, which weighs on short k-loops).
        if (beta == T.Zero)
            DirectOn<ZeroBeta<Direct3>, ZeroBeta<DirectEdge1>, ZeroBeta<DirectEdge2>, ZeroBeta<DirectEdge3>>(ta, m, n - wide, k, alpha, a, lda, b + wide, ldb, 1, beta, c + wide, ldc);
        else
            DirectOn<Direct3, DirectEdge1, DirectEdge2, DirectEdge3>(ta, m, n - wide, k, alpha, a, lda, b + wide, ldb, 1, beta, c + wide, ldc);
    }

    /// <summary>
    /// How many of the ⌈n / L⌉ column vectors of a stored-B <see cref="Direct"/> product go to the 6 × 4
    /// strips (<see cref="StoredBProduct"/>, a multiple of 4; the rest go to 8 × 3 tiles). Measured on
    /// m × n × 64 float32 products: the strips win where they replace the 1- or 2-vector 8-row tile
    /// that 8 × 3 leaves (4 or 8 vectors: 7–12 % faster), lose 2 % against two 3-vector tiles (6 vectors)
    /// and 10 % for m = 8 (a 6-row and a 4-row body against one 8-row block). So multiples of 3 vectors
    /// stay with the 8 × 3 tiles, 5 or 6 vectors left over go to them as 3 + 2 or 3 + 3, and so does m = 7 or 8.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int StripVectors(int m, int n)
    {
        int v = (n + Vector512<T>.Count - 1) / Vector512<T>.Count, groups = v / 4, rest = v % 4;
        if (m is 7 or 8 || v % 3 == 0) return 0;
        if (rest is 1 or 2 && groups > 0) groups--;
        return 4 * groups;
    }

    /// <summary>
    /// C = alpha·op(A)·B + beta·C with A and B as stored, for n a multiple of 4 vectors (4·L columns) or
    /// one partial group of 4 at the end (its last vector masked): strips of 6 rows × 4 vectors (64
    /// float32 or 32 float64 columns), the last strip of at most 4 rows with a 4-row body.
    /// </summary>
    /// <remarks>
    /// Why a second tile shape next to <see cref="Tile{S}"/>'s 8 × 3: a small product's k-loops are short,
    /// so each tile's set-up and store phase weigh. 6 × 4 has the same 24 accumulators and the same
    /// loads per FMA, but 64³ in float32 takes 11 of its tiles against 16 of 8 × 3 (whose 64 columns
    /// split into 48 + 16, and a 1-vector tile has 8 FMAs per 9 loads, so it is bound by the loads),
    /// and it skips the C prefetch (a small product's C is in cache). Each element of C is the same FMA
    /// chain from zero over p = 0, 1, …, k−1 and the same epilogue (<see cref="Put"/>), so the bits are
    /// those of every other path.
    /// </remarks>
    internal static void StoredBProduct(Trans ta, int m, int n, int k, T alpha, T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc)
    {
        nint ars = ta == Trans.No ? lda : 1, aps = ta == Trans.No ? 1 : lda; // op(A)(i, p) = a[i·ars + p·aps]
        int l = Vector512<T>.Count, groups = n / (4 * l), rest = n - groups * 4 * l;
        Debug.Assert(rest == 0 || rest > 3 * l, "a partial last group has 4 vectors");
        if (beta == T.Zero && alpha == T.One) StripRows<SumsOnly<Strip4>, SumsOnly<Strip4M>>(m, k, alpha, a, ars, aps, b, ldb, beta, c, ldc, groups, rest - 3 * l);
        else if (beta == T.Zero) StripRows<ZeroBeta<Strip4>, ZeroBeta<Strip4M>>(m, k, alpha, a, ars, aps, b, ldb, beta, c, ldc, groups, rest - 3 * l);
        else StripRows<Strip4, Strip4M>(m, k, alpha, a, ars, aps, b, ldb, beta, c, ldc, groups, rest - 3 * l);
    }

    /// <summary><see cref="StoredBProduct"/>'s strips, 6 rows at a time: <paramref name="groups"/> whole groups of 4 vectors, then a masked one when <paramref name="last"/> &gt; 0.</summary>
    private static void StripRows<SFull, SMasked>(int m, int k, T alpha, T* a, nint ars, nint aps, T* b, nint ldb, T beta, T* c, nint ldc,
        int groups, int last) where SFull : struct, ITileShape where SMasked : struct, ITileShape
    {
        int width = 4 * Vector512<T>.Count;
        T* bLast = b + groups * width;
        for (int i0 = 0; i0 < m; i0 += 6)
        {
            int rows = Math.Min(6, m - i0);
            T* ai = a + i0 * ars, ci = c + i0 * ldc, cLast = ci + groups * width;
            if (rows > 4)
            {
                if (groups > 0) Strip<SFull>(groups, k, ai, ars, aps, b, ldb, ci, ldc, alpha, beta, 0, rows);
                if (last > 0) Strip<SMasked>(1, k, ai, ars, aps, bLast, ldb, cLast, ldc, alpha, beta, last, rows);
            }
            else if (rows > 2 || !DirectNarrowRoutes.On)
            {
                if (groups > 0) Strip<FewRows<SFull, R4>>(groups, k, ai, ars, aps, b, ldb, ci, ldc, alpha, beta, 0, rows);
                if (last > 0) Strip<FewRows<SMasked, R4>>(1, k, ai, ars, aps, bLast, ldb, cLast, ldc, alpha, beta, last, rows);
            }
            else // 1–2 rows: a 2-row body, not 4 rows of which 2–3 repeat the last one (DirectNarrowRoutes; measured
            {    // % of OpenBLAS, off → on: 2×1022×9 A·B f32 99–108 → 117–141; 2×832×9 Aᵀ·B f32 91–94 → 110–115, f64 96–99 → 102–109)
                DirectNarrowRoutes.Note(DirectNarrowRoutes.Route.TwoRowStrip);
                int paired = m == 1 ? groups & ~1 : 0; // one row in all: 8 vectors per pass, none repeated
                if (paired > 0) OneRowPairs<SFull>(paired / 2, k, alpha, ai, aps, b, ldb, beta, ci);
                if (groups > paired) Strip<FewRows<SFull, R2>>(groups - paired, k, ai, ars, aps, b + paired * width, ldb, ci + paired * width, ldc, alpha, beta, 0, rows);
                if (last > 0) Strip<FewRows<SMasked, R2>>(1, k, ai, ars, aps, bLast, ldb, cLast, ldc, alpha, beta, last, rows);
            }
        }
    }

    /// <summary>
    /// A C of one row, <paramref name="pairs"/> × 8 vectors of it: C(0, :) = alpha·Σ_p A(0, p)·B(p, :) + beta·C over p &lt; k
    /// (A(0, p) = a[p·aps], B(p, :) = b + p·ldb), 8 accumulators per pass, so every multiply-add is one of C's (the 2-row
    /// strip would repeat the row: half its multiply-adds idle). The same chain and epilogue as <see cref="Strip{S}"/>.
    /// Measured (% of OpenBLAS, three alternating rounds, off → on, with the 2-row strips): 1×463×9 Aᵀ·B f32 68–73 → 87–94,
    /// f64 73–81 → 100–104; 1×300×60 A·B f32 89–93 → 99–110, f64 78–96 → 103–120.
    /// </summary>
    private static void OneRowPairs<S>(int pairs, int k, T alpha, T* a, nint aps, T* b, nint ldb, T beta, T* c) where S : struct, ITileShape
    {
        int l = Vector512<T>.Count;
        Vector512<T> va = Vector512.Create(alpha), vb = Vector512.Create(beta);
        bool beta0 = S.Beta0 || beta == T.Zero;
        for (int t = 0; t < pairs; t++, b += 8 * l, c += 8 * l)
        {
            Vector512<T> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
            T* ap = a;
            for (T* bp = b, bEnd = b + k * ldb; bp < bEnd; bp += ldb, ap += aps)
            {
                Vector512<T> x = Vector512.Create(ap[0]);
                s0 = Fma(x, Vector512.Load(bp), s0);
                s1 = Fma(x, Vector512.Load(bp + l), s1);
                s2 = Fma(x, Vector512.Load(bp + 2 * l), s2);
                s3 = Fma(x, Vector512.Load(bp + 3 * l), s3);
                s4 = Fma(x, Vector512.Load(bp + 4 * l), s4);
                s5 = Fma(x, Vector512.Load(bp + 5 * l), s5);
                s6 = Fma(x, Vector512.Load(bp + 6 * l), s6);
                s7 = Fma(x, Vector512.Load(bp + 7 * l), s7);
            }
            if (S.UnitAlpha)
            {
                StoreRow4(c, s0, s1, s2, s3, 4, false, default);
                StoreRow4(c + 4 * l, s4, s5, s6, s7, 4, false, default);
            }
            else
            {
                PutRow4(c, s0, s1, s2, s3, va, vb, beta0, 4, false, default);
                PutRow4(c + 4 * l, s4, s5, s6, s7, va, vb, beta0, 4, false, default);
            }
        }
    }

    /// <summary>
    /// <paramref name="tiles"/> tiles side by side, each C[0:rows, 0:nv·L] = alpha·Σ_p A(:, p)·B(p, :) + beta·C
    /// over p &lt; k, where A(r, p) = a[r·ars + p·aps] and B(p, :) = b + p·ldb (both as stored), nv =
    /// <see cref="ITileShape.Vectors"/> ≤ 4 and rows ≤ 6 (≤ 4 with a 4-row body, ≤ 2 with a 2-row one). Rows past
    /// <paramref name="rows"/> repeat the last row's broadcasts and are not stored; when masked, the last
    /// vector holds <paramref name="last"/> columns and B and C are read and written under the mask.
    /// </summary>
    private static void Strip<S>(int tiles, int k, T* a, nint ars, nint aps, T* b, nint ldb, T* c, nint ldc, T alpha, T beta,
        int last, int rows) where S : struct, ITileShape
    {
        int l = Vector512<T>.Count, nv = S.Vectors;
        bool masked = S.Masked, two = S.Rows == 2, four = S.Rows <= 4;
        nint o1 = Row(1, rows, ars), o2 = two ? 0 : Row(2, rows, ars), o3 = two ? 0 : Row(3, rows, ars);
        nint o4 = four ? 0 : Row(4, rows, ars), o5 = four ? 0 : Row(5, rows, ars);
        Vector512<T> mask = masked ? LaneMask<T>(last) : default;
        bool beta0 = S.Beta0 || beta == T.Zero;
        for (int t = 0; t < tiles; t++, b += nv * l, c += nv * l)
        {
            Vector512<T> c00 = default, c01 = default, c02 = default, c03 = default, c10 = default, c11 = default, c12 = default, c13 = default;
            Vector512<T> c20 = default, c21 = default, c22 = default, c23 = default, c30 = default, c31 = default, c32 = default, c33 = default;
            Vector512<T> c40 = default, c41 = default, c42 = default, c43 = default, c50 = default, c51 = default, c52 = default, c53 = default;
            T* ap = a;
            for (T* bp = b, bEnd = b + k * ldb; bp < bEnd; bp += ldb)
            {
                Vector512<T> b0 = nv == 1 && masked ? MaskLoad(bp, mask) : Vector512.Load(bp);
                Vector512<T> b1 = nv < 2 ? default : nv == 2 && masked ? MaskLoad(bp + l, mask) : Vector512.Load(bp + l);
                Vector512<T> b2 = nv < 3 ? default : nv == 3 && masked ? MaskLoad(bp + 2 * l, mask) : Vector512.Load(bp + 2 * l);
                Vector512<T> b3 = nv < 4 ? default : masked ? MaskLoad(bp + 3 * l, mask) : Vector512.Load(bp + 3 * l);
                Vector512<T> x = Vector512.Create(ap[0]);
                c00 = Fma(x, b0, c00);
                if (nv > 1) c01 = Fma(x, b1, c01);
                if (nv > 2) c02 = Fma(x, b2, c02);
                if (nv > 3) c03 = Fma(x, b3, c03);
                x = Vector512.Create(ap[o1]);
                c10 = Fma(x, b0, c10);
                if (nv > 1) c11 = Fma(x, b1, c11);
                if (nv > 2) c12 = Fma(x, b2, c12);
                if (nv > 3) c13 = Fma(x, b3, c13);
                if (!two)
                {
                    x = Vector512.Create(ap[o2]);
                    c20 = Fma(x, b0, c20);
                    if (nv > 1) c21 = Fma(x, b1, c21);
                    if (nv > 2) c22 = Fma(x, b2, c22);
                    if (nv > 3) c23 = Fma(x, b3, c23);
                    x = Vector512.Create(ap[o3]);
                    c30 = Fma(x, b0, c30);
                    if (nv > 1) c31 = Fma(x, b1, c31);
                    if (nv > 2) c32 = Fma(x, b2, c32);
                    if (nv > 3) c33 = Fma(x, b3, c33);
                }
                if (!four)
                {
                    x = Vector512.Create(ap[o4]);
                    c40 = Fma(x, b0, c40);
                    if (nv > 1) c41 = Fma(x, b1, c41);
                    if (nv > 2) c42 = Fma(x, b2, c42);
                    if (nv > 3) c43 = Fma(x, b3, c43);
                    x = Vector512.Create(ap[o5]);
                    c50 = Fma(x, b0, c50);
                    if (nv > 1) c51 = Fma(x, b1, c51);
                    if (nv > 2) c52 = Fma(x, b2, c52);
                    if (nv > 3) c53 = Fma(x, b3, c53);
                }
                ap += aps;
            }
            if (S.UnitAlpha) // alpha = 1, beta = 0: the sums as they are (the same bits as 1·sum)
            {
                StoreRow4(c, c00, c01, c02, c03, nv, masked, mask);
                if (rows > 1) StoreRow4(c + ldc, c10, c11, c12, c13, nv, masked, mask);
                if (two) continue;
                if (rows > 2) StoreRow4(c + 2 * ldc, c20, c21, c22, c23, nv, masked, mask);
                if (rows > 3) StoreRow4(c + 3 * ldc, c30, c31, c32, c33, nv, masked, mask);
                if (four) continue;
                if (rows > 4) StoreRow4(c + 4 * ldc, c40, c41, c42, c43, nv, masked, mask);
                if (rows > 5) StoreRow4(c + 5 * ldc, c50, c51, c52, c53, nv, masked, mask);
                continue;
            }
            Vector512<T> va = Vector512.Create(alpha), vb = Vector512.Create(beta);
            PutRow4(c, c00, c01, c02, c03, va, vb, beta0, nv, masked, mask);
            if (rows > 1) PutRow4(c + ldc, c10, c11, c12, c13, va, vb, beta0, nv, masked, mask);
            if (two) continue;
            if (rows > 2) PutRow4(c + 2 * ldc, c20, c21, c22, c23, va, vb, beta0, nv, masked, mask);
            if (rows > 3) PutRow4(c + 3 * ldc, c30, c31, c32, c33, va, vb, beta0, nv, masked, mask);
            if (four) continue;
            if (rows > 4) PutRow4(c + 4 * ldc, c40, c41, c42, c43, va, vb, beta0, nv, masked, mask);
            if (rows > 5) PutRow4(c + 5 * ldc, c50, c51, c52, c53, va, vb, beta0, nv, masked, mask);
        }
    }

    /// <summary>Stores up to 4 vectors of a row of C as they are (the last under the mask when <paramref name="masked"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow4(T* c, Vector512<T> x0, Vector512<T> x1, Vector512<T> x2, Vector512<T> x3, int nv, bool masked, Vector512<T> mask)
    {
        int l = Vector512<T>.Count;
        if (masked && nv == 1) MaskStore(c, mask, x0); else Vector512.Store(x0, c);
        if (nv > 1) { if (masked && nv == 2) MaskStore(c + l, mask, x1); else Vector512.Store(x1, c + l); }
        if (nv > 2) { if (masked && nv == 3) MaskStore(c + 2 * l, mask, x2); else Vector512.Store(x2, c + 2 * l); }
        if (nv > 3) { if (masked) MaskStore(c + 3 * l, mask, x3); else Vector512.Store(x3, c + 3 * l); }
    }

    /// <summary><see cref="PutRow"/> for up to 4 vectors (the last one masked when <paramref name="masked"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PutRow4(T* c, Vector512<T> x0, Vector512<T> x1, Vector512<T> x2, Vector512<T> x3, Vector512<T> va, Vector512<T> vb,
        bool beta0, int nv, bool masked, Vector512<T> mask)
    {
        int l = Vector512<T>.Count;
        Put(c, x0, va, vb, beta0, masked && nv == 1, mask);
        if (nv > 1) Put(c + l, x1, va, vb, beta0, masked && nv == 2, mask);
        if (nv > 2) Put(c + 2 * l, x2, va, vb, beta0, masked && nv == 3, mask);
        if (nv > 3) Put(c + 3 * l, x3, va, vb, beta0, masked, mask);
    }

    public static bool MultipliesStoredA => true;

    /// <summary>The driver's blocks with A as stored: <see cref="Direct"/>'s tiles on a packed B̄ block.</summary>
    public static void MultiplyStoredA(int m, int nc, int kc, T alpha, T* a, nint lda, T* pb, T beta, T* c, nint ldc) =>
        DirectOn<DirectA3, DirectAEdge1, DirectAEdge2, DirectAEdge3>(Trans.No, m, nc, kc, alpha, a, lda, pb, 3 * Vector512<T>.Count, kc, beta, c, ldc);

    /// <summary>Runs <see cref="Direct"/>'s tiles: B row p of the column block at j0 starts at b + j0·bjs + p·bps.</summary>
    private static void DirectOn<SFull, SEdge1, SEdge2, SEdge3>(Trans ta, int m, int n, int k, T alpha, T* a, nint lda,
        T* b, nint bps, nint bjs, T beta, T* c, nint ldc)
        where SFull : struct, ITileShape where SEdge1 : struct, ITileShape where SEdge2 : struct, ITileShape where SEdge3 : struct, ITileShape
    {
        nint ars = ta == Trans.No ? lda : 1, aps = ta == Trans.No ? 1 : lda; // op(A)(i, p) = a[i·ars + p·aps]
        int l = Vector512<T>.Count, nr = 3 * l;
        for (int i0 = 0; i0 < m; i0 += 8)
        {
            int rows = Math.Min(8, m - i0);
            // A last block of at most 2, 4 or 6 rows runs the 2-, 4- or 6-row body: fewer multiply-adds on repeated rows.
            if (rows <= 2) DirectRow<FewRows<SFull, R2>, FewRows<SEdge1, R2>, FewRows<SEdge2, R2>, FewRows<SEdge3, R2>>(n, k, alpha, a + i0 * ars, ars, aps, b, bps, bjs, beta, c + i0 * ldc, ldc, rows);
            else if (rows <= 4) DirectRow<FewRows<SFull, R4>, FewRows<SEdge1, R4>, FewRows<SEdge2, R4>, FewRows<SEdge3, R4>>(n, k, alpha, a + i0 * ars, ars, aps, b, bps, bjs, beta, c + i0 * ldc, ldc, rows);
            else if (rows <= 6) DirectRow<FewRows<SFull, R6>, FewRows<SEdge1, R6>, FewRows<SEdge2, R6>, FewRows<SEdge3, R6>>(n, k, alpha, a + i0 * ars, ars, aps, b, bps, bjs, beta, c + i0 * ldc, ldc, rows);
            else DirectRow<SFull, SEdge1, SEdge2, SEdge3>(n, k, alpha, a + i0 * ars, ars, aps, b, bps, bjs, beta, c + i0 * ldc, ldc, rows);
        }
    }

    /// <summary>One row block of <see cref="DirectOn"/>: its tiles across all n columns.</summary>
    private static void DirectRow<SFull, SEdge1, SEdge2, SEdge3>(int n, int k, T alpha, T* ai, nint ars, nint aps,
        T* b, nint bps, nint bjs, T beta, T* ci, nint ldc, int rows)
        where SFull : struct, ITileShape where SEdge1 : struct, ITileShape where SEdge2 : struct, ITileShape where SEdge3 : struct, ITileShape
    {
        int l = Vector512<T>.Count, nr = 3 * l;
        for (int j0 = 0; j0 < n; j0 += nr)
        {
            int cols = n - j0;
            T* bj = b + j0 * bjs;
            if (cols >= nr) Tile<SFull>(k, ai, ars, aps, bj, bps, ci + j0, ldc, alpha, beta, 0, rows);
            else if (cols <= l) Tile<SEdge1>(k, ai, ars, aps, bj, bps, ci + j0, ldc, alpha, beta, cols, rows);
            else if (cols <= 2 * l) Tile<SEdge2>(k, ai, ars, aps, bj, bps, ci + j0, ldc, alpha, beta, cols - l, rows);
            else Tile<SEdge3>(k, ai, ars, aps, bj, bps, ci + j0, ldc, alpha, beta, cols - 2 * l, rows);
        }
    }

    /// <summary>
    /// C[0:rows, 0:(nv−1)·L + last] = alpha·Σ_p A(:, p)·B(p, :) + beta·C over p &lt; kc, where
    /// A(r, p) = a[r·ars + p·aps] and B(p, :) starts at b + p·bps. <typeparamref name="S"/> selects the
    /// variant: nv = <see cref="ITileShape.Vectors"/> vectors per row; masked: the last vector
    /// holds only <paramref name="last"/> columns of C; direct: A is read as stored (strided, not
    /// packed and padded), and rows &lt; 8 repeat the last row's broadcasts (so the loop has no
    /// branches) and store only their own rows; stored B: B too, so its last vector is also loaded
    /// under the mask.
    /// </summary>
    private static void Tile<S>(int kc, T* a, nint ars, nint aps, T* b, nint bps, T* c, nint ldc, T alpha, T beta,
        int last, int rows) where S : struct, ITileShape
    {
        // The variant is a type argument, so the JIT compiles each one with its constants folded
        // (the body is too large to rely on inlining for that).
        int l = Vector512<T>.Count, nv = S.Vectors;
        bool masked = S.Masked, direct = S.Direct, storedB = S.Direct && S.StoredB;
        bool two = S.Rows == 2, four = S.Rows <= 4, six = S.Rows == 6; // rows 2–7 (4–7, 6–7) are neither multiplied nor stored
        if (!direct) // packed A panels: constant strides (rows past C's edge are zero padding)
        {
            ars = 1; aps = 8;
            if (!masked && S.Rows == 8) rows = 8; // Compute's full tile: a constant for the JIT
        }
        if (!storedB) bps = 3 * l; // packed B panels
        nint o1 = direct ? Row(1, rows, ars) : 1, o2 = direct ? Row(2, rows, ars) : 2, o3 = direct ? Row(3, rows, ars) : 3;
        nint o4 = direct ? Row(4, rows, ars) : 4, o5 = direct ? Row(5, rows, ars) : 5, o6 = direct ? Row(6, rows, ars) : 6;
        nint o7 = direct ? Row(7, rows, ars) : 7;
        Vector512<T> mask = masked ? LaneMask<T>(last) : default;
        // Fetch the C tile while the k-loop runs: C rarely sits in L1 (it outgrows L2 on large
        // products), and its lines would otherwise stall the store phase.
        for (int r = 0; r < rows; r++)
        {
            T* cr = c + r * ldc;
            Sse.Prefetch0(cr);
            if (nv > 1) Sse.Prefetch0(cr + l);
            if (nv > 2) Sse.Prefetch0(cr + 2 * l);
        }
        Vector512<T> c00 = default, c01 = default, c02 = default, c10 = default, c11 = default, c12 = default;
        Vector512<T> c20 = default, c21 = default, c22 = default, c30 = default, c31 = default, c32 = default;
        Vector512<T> c40 = default, c41 = default, c42 = default, c50 = default, c51 = default, c52 = default;
        Vector512<T> c60 = default, c61 = default, c62 = default, c70 = default, c71 = default, c72 = default;
        // The loop runs on B's pointer alone (no counter), which leaves the direct variants enough
        // general registers for A's seven row offsets (with a counter, two were reloaded from the stack
        // at every step).
        for (T* bEnd = b + kc * bps; b < bEnd; b += bps)
        {
            Vector512<T> b0 = nv == 1 && masked && storedB ? MaskLoad(b, mask) : Vector512.Load(b);
            Vector512<T> b1 = nv < 2 ? default : nv == 2 && masked && storedB ? MaskLoad(b + l, mask) : Vector512.Load(b + l);
            Vector512<T> b2 = nv < 3 ? default : masked && storedB ? MaskLoad(b + 2 * l, mask) : Vector512.Load(b + 2 * l);
            Vector512<T> x = Vector512.Create(a[0]);
            c00 = Fma(x, b0, c00);
            if (nv > 1) c01 = Fma(x, b1, c01);
            if (nv > 2) c02 = Fma(x, b2, c02);
            x = Vector512.Create(a[o1]);
            c10 = Fma(x, b0, c10);
            if (nv > 1) c11 = Fma(x, b1, c11);
            if (nv > 2) c12 = Fma(x, b2, c12);
            if (!two)
            {
                x = Vector512.Create(a[o2]);
                c20 = Fma(x, b0, c20);
                if (nv > 1) c21 = Fma(x, b1, c21);
                if (nv > 2) c22 = Fma(x, b2, c22);
                x = Vector512.Create(a[o3]);
                c30 = Fma(x, b0, c30);
                if (nv > 1) c31 = Fma(x, b1, c31);
                if (nv > 2) c32 = Fma(x, b2, c32);
            }
            if (!four)
            {
                x = Vector512.Create(a[o4]);
                c40 = Fma(x, b0, c40);
                if (nv > 1) c41 = Fma(x, b1, c41);
                if (nv > 2) c42 = Fma(x, b2, c42);
                x = Vector512.Create(a[o5]);
                c50 = Fma(x, b0, c50);
                if (nv > 1) c51 = Fma(x, b1, c51);
                if (nv > 2) c52 = Fma(x, b2, c52);
            }
            if (!four && !six)
            {
                x = Vector512.Create(a[o6]);
                c60 = Fma(x, b0, c60);
                if (nv > 1) c61 = Fma(x, b1, c61);
                if (nv > 2) c62 = Fma(x, b2, c62);
                x = Vector512.Create(a[o7]);
                c70 = Fma(x, b0, c70);
                if (nv > 1) c71 = Fma(x, b1, c71);
                if (nv > 2) c72 = Fma(x, b2, c72);
            }
            a += aps;
        }
        Vector512<T> va = Vector512.Create(alpha), vb = Vector512.Create(beta);
        bool beta0 = S.Beta0 || beta == T.Zero;
        PutRow(c, c00, c01, c02, va, vb, beta0, nv, masked, mask);
        if (rows > 1) PutRow(c + ldc, c10, c11, c12, va, vb, beta0, nv, masked, mask);
        if (two) return;
        if (rows > 2) PutRow(c + 2 * ldc, c20, c21, c22, va, vb, beta0, nv, masked, mask);
        if (rows > 3) PutRow(c + 3 * ldc, c30, c31, c32, va, vb, beta0, nv, masked, mask);
        if (four) return;
        if (rows > 4) PutRow(c + 4 * ldc, c40, c41, c42, va, vb, beta0, nv, masked, mask);
        if (rows > 5) PutRow(c + 5 * ldc, c50, c51, c52, va, vb, beta0, nv, masked, mask);
        if (six) return;
        if (rows > 6) PutRow(c + 6 * ldc, c60, c61, c62, va, vb, beta0, nv, masked, mask);
        if (rows > 7) PutRow(c + 7 * ldc, c70, c71, c72, va, vb, beta0, nv, masked, mask);
    }

    /// <summary>Offset of row r's broadcasts: rows past the last valid one repeat it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static nint Row(int r, int rows, nint ars) => (r < rows ? r : rows - 1) * ars;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PutRow(T* c, Vector512<T> x0, Vector512<T> x1, Vector512<T> x2, Vector512<T> va, Vector512<T> vb,
        bool beta0, int nv, bool masked, Vector512<T> mask)
    {
        int l = Vector512<T>.Count;
        Put(c, x0, va, vb, beta0, masked && nv == 1, mask);
        if (nv > 1) Put(c + l, x1, va, vb, beta0, masked && nv == 2, mask);
        if (nv > 2) Put(c + 2 * l, x2, va, vb, beta0, masked, mask);
    }

    /// <summary>C segment = alpha·acc (+ beta·C, fused as alpha·acc + (beta·C)); under <paramref name="mask"/> when <paramref name="masked"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(T* c, Vector512<T> acc, Vector512<T> va, Vector512<T> vb, bool beta0, bool masked, Vector512<T> mask)
    {
        if (!masked)
        {
            if (beta0) Vector512.Store(va * acc, c);
            else Vector512.Store(Fma(va, acc, vb * Vector512.Load(c)), c);
        }
        else
        {
            if (beta0) MaskStore(c, mask, va * acc);
            else MaskStore(c, mask, Fma(va, acc, vb * MaskLoad(c, mask)));
        }
    }




}

/// <summary>Compile-time choice of an <see cref="Avx512Kernel{T}"/> tile variant.</summary>
internal interface ITileShape
{
    /// <summary>Vectors of C per row (1–3).</summary>
    static abstract int Vectors { get; }
    /// <summary>The last vector is cut by the right edge of C (masked loads and stores).</summary>
    static abstract bool Masked { get; }
    /// <summary>A read where it is stored (strided, any row count) rather than from packed panels.</summary>
    static abstract bool Direct { get; }
    /// <summary>With <see cref="Direct"/>: B read where it is stored as well (its last vector under the mask).</summary>
    static virtual bool StoredB => true;
    /// <summary>Rows the body multiplies: 8, or 2, 4 or 6 for a last block of at most that many rows.</summary>
    static virtual int Rows => 8;
    /// <summary>beta is known to be 0: C is only written (a compile-time fact, so no test per stored vector).</summary>
    static virtual bool Beta0 => false;
    /// <summary>With <see cref="Beta0"/>, alpha is known to be 1: the sums are stored as they are (strips only).</summary>
    static virtual bool UnitAlpha => false;
}

/// <summary>A row count known at compile time: how many rows a short last block's body multiplies.</summary>
internal interface IRowCount
{
    /// <summary>The rows multiplied and stored (the rest, up to 8, are neither).</summary>
    static abstract int Rows { get; }
}

/// <summary>2 rows.</summary>
internal struct R2 : IRowCount { public static int Rows => 2; }
/// <summary>4 rows.</summary>
internal struct R4 : IRowCount { public static int Rows => 4; }
/// <summary>6 rows.</summary>
internal struct R6 : IRowCount { public static int Rows => 6; }

/// <summary><typeparamref name="S"/> with an <typeparamref name="R"/>-row body (rows R–7 neither multiplied nor stored).</summary>
internal struct FewRows<S, R> : ITileShape where S : struct, ITileShape where R : struct, IRowCount
{
    public static int Vectors => S.Vectors;
    public static bool Masked => S.Masked;
    public static bool Direct => S.Direct;
    public static bool StoredB => S.StoredB;
    public static int Rows => R.Rows;
    public static bool Beta0 => S.Beta0;
    public static bool UnitAlpha => S.UnitAlpha;
}

/// <summary><typeparamref name="S"/> for alpha = 1 and beta = 0.</summary>
internal struct SumsOnly<S> : ITileShape where S : struct, ITileShape
{
    public static int Vectors => S.Vectors;
    public static bool Masked => S.Masked;
    public static bool Direct => S.Direct;
    public static bool StoredB => S.StoredB;
    public static int Rows => S.Rows;
    public static bool Beta0 => true;
    public static bool UnitAlpha => true;
}

/// <summary><typeparamref name="S"/> for beta = 0.</summary>
internal struct ZeroBeta<S> : ITileShape where S : struct, ITileShape
{
    public static int Vectors => S.Vectors;
    public static bool Masked => S.Masked;
    public static bool Direct => S.Direct;
    public static bool StoredB => S.StoredB;
    public static int Rows => S.Rows;
    public static bool Beta0 => true;
}

internal struct Strip4 : ITileShape { public static int Vectors => 4; public static bool Masked => false; public static bool Direct => true; }
internal struct Strip4M : ITileShape { public static int Vectors => 4; public static bool Masked => true; public static bool Direct => true; }
internal struct Packed3 : ITileShape { public static int Vectors => 3; public static bool Masked => false; public static bool Direct => false; }
internal struct PackedEdge1 : ITileShape { public static int Vectors => 1; public static bool Masked => true; public static bool Direct => false; }
internal struct PackedEdge2 : ITileShape { public static int Vectors => 2; public static bool Masked => true; public static bool Direct => false; }
internal struct PackedEdge3 : ITileShape { public static int Vectors => 3; public static bool Masked => true; public static bool Direct => false; }
internal struct Direct3 : ITileShape { public static int Vectors => 3; public static bool Masked => false; public static bool Direct => true; }
internal struct DirectEdge1 : ITileShape { public static int Vectors => 1; public static bool Masked => true; public static bool Direct => true; }
internal struct DirectEdge2 : ITileShape { public static int Vectors => 2; public static bool Masked => true; public static bool Direct => true; }
internal struct DirectEdge3 : ITileShape { public static int Vectors => 3; public static bool Masked => true; public static bool Direct => true; }
internal struct DirectA3 : ITileShape { public static int Vectors => 3; public static bool Masked => false; public static bool Direct => true; public static bool StoredB => false; }
internal struct DirectAEdge1 : ITileShape { public static int Vectors => 1; public static bool Masked => true; public static bool Direct => true; public static bool StoredB => false; }
internal struct DirectAEdge2 : ITileShape { public static int Vectors => 2; public static bool Masked => true; public static bool Direct => true; public static bool StoredB => false; }
internal struct DirectAEdge3 : ITileShape { public static int Vectors => 3; public static bool Masked => true; public static bool Direct => true; public static bool StoredB => false; }
