using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GlobalNtk.Dense;

/// <summary>
/// Goto/BLIS-style blocked GEMM on raw pointers, generic over the microkernel so that MR/NR are
/// JIT-time constants. Loop nest: MC row blocks of A → KC slices of k (Ā packed once per slice,
/// or read where it is stored) → NC column blocks of B (B̄ packed, L2-sized) → MR-row panels of Ā →
/// NR-column panels of B̄ (the microkernel tiles). A tile cut by the right or bottom edge of C
/// goes to the kernel's edge path when it has one (<see cref="IGemmKernel{T}.TryComputeEdge"/>);
/// other edge tiles run the same kernel into a scratch tile (packing pads with zeros) and are copied out.
/// </summary>
/// <remarks>
/// Generic over the element type as well (<c>double</c> or <c>float</c>): the JIT specialises each
/// (T, K) pair, so the float64 path compiles to the same code as a hand-written one.
/// </remarks>
internal static unsafe class GemmDriver<T, K>
    where T : unmanaged, IFloatingPointIeee754<T>
    where K : struct, IGemmKernel<T>
{
    /// <summary>C[0:m,0:n] = alpha·op(A)·op(B) + beta·C on one thread; m, n, k ≥ 1.</summary>
    public static void Serial(Trans ta, Trans tb, int m, int n, int k, T alpha,
        T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc)
    {
        int mr = K.MR, nr = K.NR;
        // Even splits (rounded to the tile) avoid a thin last block that would waste a whole pass.
        int kcMax = SliceDepth(k);
        int mBlocks = DivUp(m, K.MC), mcMax = RoundUp(DivUp(m, mBlocks), mr);
        int nBlocks = DivUp(n, BlockColumns(tb)), ncMax = RoundUp(DivUp(n, nBlocks), nr);
        bool storedA = ReadsStoredA(ta);

        var buffers = GemmBuffers<T>.Rent();
        try
        {
            T* pa = storedA ? null : buffers.PackA(mcMax * kcMax);
            T* pb = buffers.PackB(ncMax * kcMax);
            for (int ic = 0; ic < m; ic += mcMax)
            {
                int mc = Math.Min(mcMax, m - ic);
                for (int pc = 0; pc < k; pc += kcMax)
                {
                    int kc = Math.Min(kcMax, k - pc);
                    T betaBlock = pc == 0 ? beta : T.One; // later k-slices accumulate
                    if (!storedA) PackA(ta, a, lda, ic, pc, mc, kc, pa);
                    for (int jc = 0; jc < n; jc += ncMax)
                    {
                        int nc = Math.Min(ncMax, n - jc);
                        PackB(tb, b, ldb, pc, jc, kc, nc, pb);
                        Block(storedA, mc, nc, kc, alpha, a + ic * lda + pc, lda, pa, pb, betaBlock, c + ic * ldc + jc, ldc);
                    }
                }
            }
        }
        finally
        {
            GemmBuffers<T>.Return(buffers);
        }
    }

    /// <summary>
    /// Packs all of op(B) (k × n) once: k-slice by k-slice with the same slice depths as
    /// <see cref="Serial"/>, each slice in <see cref="PackB"/>'s micro-panel layout over all n columns,
    /// slice starting at pc·RoundUp(n, NR). <paramref name="dst"/> holds <see cref="PackedLength"/> elements.
    /// </summary>
    public static void PackAll(Trans tb, T* b, nint ldb, int k, int n, T* dst)
    {
        int kcMax = SliceDepth(k), nPad = RoundUp(n, K.NR);
        for (int pc = 0; pc < k; pc += kcMax)
            PackB(tb, b, ldb, pc, 0, Math.Min(kcMax, k - pc), n, dst + (nint)pc * nPad);
    }

    /// <summary>
    /// dst[c·ldd + r] = src[r·lds + c] for r &lt; rows, c &lt; cols: a plain transpose (8 × 8 blocks on
    /// vectors where the instruction set has them, scalars at the edges).
    /// </summary>
    internal static void Transpose(T* src, nint lds, int rows, int cols, T* dst, nint ldd)
    {
        int r8 = 0, c8 = 0;
        if ((typeof(T) == typeof(float) && Avx.IsSupported) || (typeof(T) == typeof(double) && Avx512F.IsSupported))
        {
            r8 = rows & ~7; c8 = cols & ~7;
            for (int r = 0; r < r8; r += 8)
                for (int c = 0; c < c8; c += 8)
                {
                    if (typeof(T) == typeof(float)) Transpose8x8((float*)(src + r * lds + c), lds, (float*)(dst + c * ldd + r), ldd);
                    else Transpose8x8((double*)(src + r * lds + c), lds, (double*)(dst + c * ldd + r), ldd);
                }
        }
        for (int r = 0; r < rows; r++)
            for (int c = r < r8 ? c8 : 0; c < cols; c++)
                dst[c * ldd + r] = src[r * lds + c];
    }

    /// <summary>Elements <see cref="PackAll"/> writes for a k × n operand.</summary>
    public static long PackedLength(int k, int n) => (long)k * RoundUp(n, K.NR);

    /// <summary>
    /// <see cref="Serial"/> with op(B) packed beforehand by <see cref="PackAll"/> (all <paramref name="nTotal"/>
    /// columns): C[0:m, 0:n] = alpha·op(A)·op(B)[:, jc0 : jc0+n] + beta·C, jc0 a multiple of NR. The
    /// k-slices and tiles are <see cref="Serial"/>'s, so the result is bit-identical to it; only B's
    /// packing (a full read and write of B per call) is skipped.
    /// </summary>
    public static void SerialPacked(Trans ta, int m, int n, int k, T alpha, T* a, nint lda,
        T* packed, int nTotal, int jc0, T beta, T* c, nint ldc)
    {
        int mr = K.MR;
        int kcMax = SliceDepth(k), nPad = RoundUp(nTotal, K.NR);
        int mBlocks = DivUp(m, K.MC), mcMax = RoundUp(DivUp(m, mBlocks), mr);
        int nBlocks = DivUp(n, K.NC), ncMax = RoundUp(DivUp(n, nBlocks), K.NR);
        var buffers = GemmBuffers<T>.Rent();
        try
        {
            bool storedA = ReadsStoredA(ta);
            T* pa = storedA ? null : buffers.PackA(mcMax * kcMax);
            for (int ic = 0; ic < m; ic += mcMax)
            {
                int mc = Math.Min(mcMax, m - ic);
                for (int pc = 0; pc < k; pc += kcMax)
                {
                    int kc = Math.Min(kcMax, k - pc);
                    T betaBlock = pc == 0 ? beta : T.One; // later k-slices accumulate
                    T* pb = packed + (nint)pc * nPad + (nint)jc0 * kc;
                    if (!storedA) PackA(ta, a, lda, ic, pc, mc, kc, pa);
                    for (int jc = 0; jc < n; jc += ncMax) // B̄ in L2-sized blocks, as in Serial
                        Block(storedA, mc, Math.Min(ncMax, n - jc), kc, alpha, a + ic * lda + pc, lda, pa,
                            pb + (nint)jc * kc, betaBlock, c + ic * ldc + jc, ldc);
                }
            }
        }
        finally
        {
            GemmBuffers<T>.Return(buffers);
        }
    }

    /// <summary>Most columns of a B̄ block: the kernel's <see cref="IGemmKernel{T}.NCStoredB"/> for an untransposed B, if it has one.</summary>
    internal static int BlockColumns(Trans tb) => tb == Trans.No && K.NCStoredB > 0 ? K.NCStoredB : K.NC;

    /// <summary>Depth of every k-slice but the last: even slices of at most KC (a thin last slice would waste a pass).</summary>
    internal static int SliceDepth(int k) => DivUp(k, DivUp(k, K.KC));

    /// <summary>A kernel reads op(A) where it is stored (no packing) when it can and A is not transposed.</summary>
    private static bool ReadsStoredA(Trans ta) => ta == Trans.No && K.MultipliesStoredA;

    /// <summary>
    /// One packed B̄ block (kc × nc) against the mc rows of A's slice: from A's packed panels
    /// <paramref name="pa"/>, or from the stored rows at <paramref name="ak"/> (A(i, p) = ak[i·lda + p])
    /// when <paramref name="storedA"/>.
    /// </summary>
    private static void Block(bool storedA, int mc, int nc, int kc, T alpha, T* ak, nint lda, T* pa, T* pb,
        T beta, T* c, nint ldc)
    {
        if (storedA) K.MultiplyStoredA(mc, nc, kc, alpha, ak, lda, pb, beta, c, ldc);
        else Macro(mc, nc, kc, alpha, pa, pb, beta, c, ldc);
    }

    /// <summary>
    /// Row panels of Ā outer, column panels of B̄ inner: an MR-row Ā panel (MR·KC values) stays in
    /// L1 while B̄'s panels stream from L2, where the whole B̄ block (KC·NC) sits. The other order
    /// keeps an NR-column B̄ panel in L1 instead, but on AVX-512 that panel (KC·NR values, 48–72 KiB)
    /// does not fit L1, and the kernel then stalled on it.
    /// </summary>
    [SkipLocalsInit]
    private static void Macro(int mc, int nc, int kc, T alpha, T* pa, T* pb,
        T beta, T* c, nint ldc)
    {
        int mr = K.MR, nr = K.NR;
        T* tile0 = stackalloc T[K.MR * K.NR + 64 / sizeof(T)]; // edge tiles land here first (64-byte aligned)
        T* tile = (T*)(((nint)tile0 + 63) & ~(nint)63);
        for (int ir = 0; ir < mc; ir += mr)
        {
            int mrEff = Math.Min(mr, mc - ir);
            T* ap = pa + (nint)ir * kc;
            for (int jr = 0; jr < nc; jr += nr)
            {
                int nrEff = Math.Min(nr, nc - jr);
                T* bp = pb + (nint)jr * kc;
                T* cp = c + ir * ldc + jr;
                if (mrEff == mr && nrEff == nr)
                    K.Compute(kc, ap, bp, cp, ldc, alpha, beta);
                else if (!K.TryComputeEdge(kc, ap, bp, cp, ldc, alpha, beta, mrEff, nrEff))
                {
                    // Scratch tile (packing padded A and B with zeros), then copy out the part inside C
                    // with the kernels' own rounding (alpha·t fused with beta·c), so an element's bits do
                    // not depend on whether its tile is cut by an edge.
                    K.Compute(kc, ap, bp, tile, nr, T.One, T.Zero);
                    for (int r = 0; r < mrEff; r++)
                    {
                        T* crow = cp + r * ldc;
                        T* trow = tile + r * nr;
                        if (beta == T.Zero)
                            for (int j = 0; j < nrEff; j++) crow[j] = alpha * trow[j];
                        else
                            for (int j = 0; j < nrEff; j++) crow[j] = T.FusedMultiplyAdd(alpha, trow[j], beta * crow[j]);
                    }
                }
            }
        }
    }

    /// <summary>
    /// Packs op(A)[ic:ic+mc, pc:pc+kc] into MR-row micro-panels (element (r, p) of panel q at
    /// q·MR·kc + p·MR + r), zero-padding the last panel.
    /// </summary>
    private static void PackA(Trans ta, T* a, nint lda, int ic, int pc, int mc, int kc, T* dst)
    {
        int mr = K.MR;
        if (ta == Trans.Yes)
        {
            int i1 = 0; // columns of op(A)ᵀ's rows packed by the pair-of-rows path
            if (typeof(T) == typeof(float) && mr == 8 && Avx512F.IsSupported)
            {
                i1 = mc & ~15;
                PackTransposedPairs((float*)(a + (nint)pc * lda + ic), lda, i1, kc, (float*)dst);
            }
            else if (typeof(T) == typeof(double) && mr == 8 && Avx512F.IsSupported)
            {
                i1 = mc & ~7;
                PackTransposedEights((double*)(a + (nint)pc * lda + ic), lda, i1, kc, (double*)dst);
            }
            else if (typeof(K) == typeof(Avx2Kernel<T>) && mr == 6 && Avx.IsSupported)
            {
                // The AVX2 kernel's 6-row panels (also where AVX-512 is present, so that its tests run this path).
                i1 = mc - mc % 6;
                PackTransposedSix(a + (nint)pc * lda + ic, lda, i1, kc, dst);
            }
            // The other panels (all of them for other types and kernels): op(A)(i, p) = a[p·lda + i];
            // walk each stored row once, across all panels, so every cache line of A is read whole
            // (panel by panel, an MR-float run is half a line).
            for (int p = 0; p < kc && i1 < mc; p++)
            {
                T* src = a + (nint)(pc + p) * lda + ic;
                T* d = dst + p * mr + (nint)i1 * kc;
                for (int i0 = i1; i0 < mc; i0 += mr, d += (nint)mr * kc)
                    CopyPadded(src + i0, d, Math.Min(mr, mc - i0), mr);
            }
            return;
        }
        for (int i0 = 0; i0 < mc; i0 += mr, dst += (nint)mr * kc)
        {
            int rows = Math.Min(mr, mc - i0);
            // op(A)(i, p) = a[i·lda + p]: rows are contiguous in p; transpose into the panel.
            T* src = a + (ic + i0) * lda + pc;
            int p = 0;
            if (typeof(T) == typeof(double) && mr == 8 && rows == 8 && Avx512F.IsSupported)
                for (; p + 8 <= kc; p += 8) Transpose8x8((double*)(src + p), lda, (double*)(dst + p * 8), 8);
            else if (typeof(T) == typeof(float) && mr == 8 && rows == 8 && Avx.IsSupported)
                for (; p + 8 <= kc; p += 8) Transpose8x8((float*)(src + p), lda, (float*)(dst + p * 8), 8);
            for (int r = 0; r < rows; r++)
            {
                T* s = src + r * lda;
                for (int q = p; q < kc; q++) dst[q * mr + r] = s[q];
            }
            for (int r = rows; r < mr; r++)
                for (int q = p; q < kc; q++) dst[q * mr + r] = T.Zero;
        }
    }

    /// <summary>
    /// Packs op(B)[pc:pc+kc, jc:jc+nc] into NR-column micro-panels (element (p, j) of panel q at
    /// q·NR·kc + p·NR + j), zero-padding the last panel.
    /// </summary>
    private static void PackB(Trans tb, T* b, nint ldb, int pc, int jc, int kc, int nc, T* dst)
    {
        int nr = K.NR;
        if (tb == Trans.No)
        {
            // op(B)(p, j) = b[p·ldb + j]: each k-step is a contiguous run of NR values. Walk each
            // stored row once, across all panels, so the hardware prefetcher sees one stream.
            for (int p = 0; p < kc; p++)
            {
                T* src = b + (nint)(pc + p) * ldb + jc;
                T* d = dst + p * nr;
                for (int j0 = 0; j0 < nc; j0 += nr, d += (nint)nr * kc)
                    CopyPanelRow(src + j0, d, Math.Min(nr, nc - j0));
            }
            return;
        }
        for (int j0 = 0; j0 < nc; j0 += nr, dst += (nint)nr * kc)
        {
            int cols = Math.Min(nr, nc - j0);
            // op(B)(p, j) = b[j·ldb + p]: rows of b are contiguous in p; transpose 8 columns at a time.
            T* src = b + (jc + j0) * ldb + pc;
            // Blocks of whole column groups go by vector transposes over the depth's first p rows (also in
            // a ragged last panel: a small product's panel of 16 of 48 columns is a third of its B).
            int p = 0, vcols = 0;
            if (typeof(T) == typeof(double) && typeof(K) == typeof(Avx2Kernel<T>) && nr % 4 == 0 && Avx.IsSupported)
            {
                // The AVX2 kernel's 8-column panels, 4 × 4 blocks on ymm (also where AVX-512 is present,
                // so that its tests run this path).
                vcols = cols & ~3;
                for (; p + 4 <= kc && vcols > 0; p += 4)
                    for (int g = 0; g < vcols; g += 4)
                        Transpose4x4((double*)(src + g * ldb + p), ldb, (double*)(dst + p * nr + g), nr);
            }
            else if (typeof(T) == typeof(double) && nr % 8 == 0 && Avx512F.IsSupported)
            {
                vcols = cols & ~7;
                for (; p + 8 <= kc && vcols > 0; p += 8)
                    for (int g = 0; g < vcols; g += 8)
                        Transpose8x8((double*)(src + g * ldb + p), ldb, (double*)(dst + p * nr + g), nr);
            }
            else if (typeof(T) == typeof(float) && nr % 8 == 0 && Avx.IsSupported)
            {
                // Eight rows of b at a time along the whole depth: eight read streams, not NR.
                vcols = cols & ~7;
                for (int g = 0; g < vcols; g += 8)
                    for (int q = 0; q + 8 <= kc; q += 8)
                        Transpose8x8((float*)(src + g * ldb + q), ldb, (float*)(dst + q * nr + g), nr);
                if (vcols > 0) p = kc & ~7;
            }
            for (int j = vcols; j < cols; j++) // the columns past the last whole group, down to depth p
            {
                T* s = src + j * ldb;
                for (int q = 0; q < p; q++) dst[q * nr + j] = s[q];
            }
            for (int j = 0; j < cols; j++) // every column below depth p
            {
                T* s = src + j * ldb;
                for (int q = p; q < kc; q++) dst[q * nr + j] = s[q];
            }
            int reach = PanelReach(cols);
            if (cols < reach) // zero padding of a ragged last panel, as far as the kernel reads it
                for (int q = 0; q < kc; q++) new Span<T>(dst + q * nr + cols, reach - cols).Clear();
        }
    }

    /// <summary>
    /// Float 8-row Ā panels of a transposed A, for its first <paramref name="cols"/> (a multiple of 16)
    /// rows of op(A): op(A)(i, p) = src[p·lds + i] goes to dst[(i / 8)·8·kc + p·8 + i % 8], as
    /// <see cref="PackA"/> lays it out. Two k-rows at a time, so that each panel receives 16 contiguous
    /// values (a whole cache line) per store instead of two half-line stores; and 128 columns (16
    /// panels) at a time over the whole depth, so that the stores go to 16 streams, not one per panel
    /// of the block (a page apart each, which cost a TLB miss per store).
    /// </summary>
    private static void PackTransposedPairs(float* src, nint lds, int cols, int kc, float* dst)
    {
        const int group = 128;
        nint panel = 8 * (nint)kc;
        for (int g0 = 0; g0 < cols; g0 += group)
        {
            int gEnd = Math.Min(g0 + group, cols);
            float* dg = dst + (g0 / 8) * panel;
            int p = 0;
            for (; p + 2 <= kc; p += 2)
            {
                float* s0 = src + p * lds, s1 = s0 + lds;
                float* d = dg + p * 8;
                for (int i0 = g0; i0 < gEnd; i0 += 16, d += 2 * panel)
                {
                    Vector512<float> r0 = Vector512.Load(s0 + i0), r1 = Vector512.Load(s1 + i0);
                    Vector512.Store(Avx512F.Shuffle4x128(r0, r1, 0x44), d);          // [row p | row p+1] of panel i0/8
                    Vector512.Store(Avx512F.Shuffle4x128(r0, r1, 0xEE), d + panel);  // the same for panel i0/8 + 1
                }
            }
            if (p < kc) // odd depth: the last k-row alone
            {
                float* s0 = src + p * lds;
                float* d = dg + p * 8;
                for (int i0 = g0; i0 < gEnd; i0 += 8, d += panel)
                    Vector256.Store(Vector256.Load(s0 + i0), d);
            }
        }
    }

    /// <summary>
    /// Float64 8-row Ā panels of a transposed A, for its first <paramref name="cols"/> (a multiple of 8)
    /// rows of op(A), laid out as <see cref="PackA"/> does: each panel's k-row is one whole cache line;
    /// 128 columns (16 panels) at a time over the whole depth, two k-rows per visit, so that the stores
    /// go to 16 streams, not one per panel of the block (a page or more apart each).
    /// </summary>
    private static void PackTransposedEights(double* src, nint lds, int cols, int kc, double* dst)
    {
        const int group = 128;
        nint panel = 8 * (nint)kc;
        for (int g0 = 0; g0 < cols; g0 += group)
        {
            int gEnd = Math.Min(g0 + group, cols);
            double* dg = dst + (g0 / 8) * panel;
            int p = 0;
            for (; p + 2 <= kc; p += 2)
            {
                double* s0 = src + p * lds, s1 = s0 + lds;
                double* d = dg + p * 8;
                for (int i0 = g0; i0 < gEnd; i0 += 8, d += panel)
                {
                    Vector512.Store(Vector512.Load(s0 + i0), d);
                    Vector512.Store(Vector512.Load(s1 + i0), d + 8);
                }
            }
            if (p < kc) // odd depth: the last k-row alone
            {
                double* s0 = src + p * lds;
                double* d = dg + p * 8;
                for (int i0 = g0; i0 < gEnd; i0 += 8, d += panel)
                    Vector512.Store(Vector512.Load(s0 + i0), d);
            }
        }
    }

    /// <summary>
    /// 6-row Ā panels of a transposed A (the AVX2 kernel's), for its first <paramref name="cols"/> (a
    /// multiple of 6) rows of op(A): op(A)(i, p) = src[p·lds + i] goes to dst[(i / 6)·6·kc + p·6 + i % 6],
    /// as <see cref="PackA"/> lays it out. Two k-rows at a time, so that each panel receives 12
    /// contiguous values in whole-vector stores (float64: three ymm; float32: a ymm and an xmm) instead
    /// of a vector and a remainder per row; and 16 panels at a time over the whole depth, so that the
    /// stores go to 16 streams, not one per panel of the block (a page or more apart each). Loads read
    /// only the 6 values of a panel's row, never past the columns of A.
    /// </summary>
    private static void PackTransposedSix(T* src, nint lds, int cols, int kc, T* dst)
    {
        const int group = 96; // columns: 16 panels
        nint panel = 6 * (nint)kc;
        for (int g0 = 0; g0 < cols; g0 += group)
        {
            int gEnd = Math.Min(g0 + group, cols);
            T* dg = dst + (g0 / 6) * panel;
            int p = 0;
            for (; p + 2 <= kc; p += 2)
            {
                T* s0 = src + p * lds, s1 = s0 + lds;
                T* d = dg + p * 6;
                for (int i0 = g0; i0 < gEnd; i0 += 6, d += panel)
                {
                    if (typeof(T) == typeof(double))
                    {
                        double* x0 = (double*)(s0 + i0), x1 = (double*)(s1 + i0), y = (double*)d;
                        Vector256.Store(Vector256.Load(x0), y);                                            // row p, 0-3
                        Vector256.Store(Vector256.Create(Vector128.Load(x0 + 4), Vector128.Load(x1)), y + 4); // row p, 4-5 | row p+1, 0-1
                        Vector256.Store(Vector256.Load(x1 + 2), y + 8);                                    // row p+1, 2-5
                    }
                    else
                    {
                        float* x0 = (float*)(s0 + i0), x1 = (float*)(s1 + i0), y = (float*)d;
                        // row p, 0-3 | row p, 4-5 and row p+1, 0-1 (two 8-byte loads); then row p+1, 2-5
                        Vector128<float> pair = Vector128.Create(*(double*)(x0 + 4), *(double*)x1).AsSingle();
                        Vector256.Store(Vector256.Create(Vector128.Load(x0), pair), y);
                        Vector128.Store(Vector128.Load(x1 + 2), y + 8);
                    }
                }
            }
            if (p < kc) // odd depth: the last k-row alone
            {
                T* s0 = src + p * lds;
                T* d = dg + p * 6;
                for (int i0 = g0; i0 < gEnd; i0 += 6, d += panel)
                    CopyPadded(s0 + i0, d, 6, 6);
            }
        }
    }

    /// <summary>
    /// Values of a B̄ panel's k-row that the kernel reads when the panel holds only <paramref name="cols"/>
    /// columns: the AVX-512 and AVX2 kernels' edge tiles load only the vectors that hold columns of C (the
    /// rest of the last one is multiplied but not stored, and is kept zero); the scalar kernel reads all NR.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int PanelReach(int cols) =>
        typeof(K) == typeof(Avx512Kernel<T>) ? Math.Min(K.NR, RoundUp(cols, Vector512<T>.Count))
        : typeof(K) == typeof(Avx2Kernel<T>) ? Math.Min(K.NR, RoundUp(cols, Vector256<T>.Count))
        : K.NR;

    /// <summary>
    /// One k-row of a B̄ panel from an untransposed B: <paramref name="count"/> ≤ NR values, zero-padded
    /// to <see cref="PanelReach"/>. The AVX-512 and AVX2 kernels' rows are whole vectors, the last loaded
    /// under a lane mask (which reads nothing past the count), so a ragged panel costs one masked load per row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyPanelRow(T* src, T* dst, int count)
    {
        if (typeof(K) == typeof(Avx512Kernel<T>) && Avx512F.IsSupported && (typeof(T) == typeof(float) || typeof(T) == typeof(double)))
        {
            int l = Vector512<T>.Count, j = 0;
            for (; j + l <= count; j += l) Vector512.Store(Vector512.Load(src + j), dst + j);
            if (j < count) Vector512.Store(MaskLoad(src + j, count - j), dst + j);
            return;
        }
        if (typeof(K) == typeof(Avx2Kernel<T>) && Avx.IsSupported && (typeof(T) == typeof(float) || typeof(T) == typeof(double)))
        {
            int l = Vector256<T>.Count, j = 0;
            for (; j + l <= count; j += l) Vector256.Store(Vector256.Load(src + j), dst + j);
            if (j < count) Vector256.Store(MaskLoad256(src + j, count - j), dst + j);
            return;
        }
        CopyPadded(src, dst, count, K.NR);
    }

    /// <summary><see cref="MaskLoad"/> on 256-bit vectors (AVX's masked move, which reads nothing under a clear lane).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<T> MaskLoad256(T* p, int count)
    {
        if (typeof(T) == typeof(float))
            return Avx.MaskLoad((float*)p, Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(count)).AsSingle()).As<float, T>();
        if (typeof(T) == typeof(double))
            return Avx.MaskLoad((double*)p, Vector256.LessThan(Vector256<long>.Indices, Vector256.Create((long)count)).AsDouble()).As<double, T>();
        throw new NotSupportedException();
    }

    /// <summary>The first <paramref name="count"/> (1 ≤ count &lt; L) values at <paramref name="p"/>, zero in the other lanes; reads nothing past them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> MaskLoad(T* p, int count)
    {
        if (typeof(T) == typeof(float))
        {
            Vector512<float> mask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)).AsSingle();
            return Avx512F.MaskLoad((float*)p, mask, Vector512<float>.Zero).As<float, T>();
        }
        if (typeof(T) == typeof(double))
        {
            Vector512<double> mask = Vector512.LessThan(Vector512<long>.Indices, Vector512.Create((long)count)).AsDouble();
            return Avx512F.MaskLoad((double*)p, mask, Vector512<double>.Zero).As<double, T>();
        }
        throw new NotSupportedException();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyPadded(T* src, T* dst, int count, int width)
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; j + Vector512<T>.Count <= count; j += Vector512<T>.Count) Vector512.Store(Vector512.Load(src + j), dst + j);
        if (Vector256.IsHardwareAccelerated) // also the tail of a 512-bit copy (e.g. an 8-float A panel row)
            for (; j + Vector256<T>.Count <= count; j += Vector256<T>.Count) Vector256.Store(Vector256.Load(src + j), dst + j);
        if (Vector128.IsHardwareAccelerated) // e.g. the rest of the AVX2 kernel's 6-value Ā panel rows
            for (; j + Vector128<T>.Count <= count; j += Vector128<T>.Count) Vector128.Store(Vector128.Load(src + j), dst + j);
        for (; j < count; j++) dst[j] = src[j];
        for (; j < width; j++) dst[j] = T.Zero;
    }

    /// <summary>dst[q·ldd + r] = src[r·lds + q] for an 8 × 8 block (three shuffle stages on zmm).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8(double* src, nint lds, double* dst, nint ldd)
    {
        Vector512<double> r0 = Vector512.Load(src), r1 = Vector512.Load(src + lds),
            r2 = Vector512.Load(src + 2 * lds), r3 = Vector512.Load(src + 3 * lds),
            r4 = Vector512.Load(src + 4 * lds), r5 = Vector512.Load(src + 5 * lds),
            r6 = Vector512.Load(src + 6 * lds), r7 = Vector512.Load(src + 7 * lds);
        // t: pairs (rX[c], rY[c]) in each 128-bit lane, even c in lo, odd c in hi.
        Vector512<double> t0 = Avx512F.UnpackLow(r0, r1), t1 = Avx512F.UnpackHigh(r0, r1);
        Vector512<double> t2 = Avx512F.UnpackLow(r2, r3), t3 = Avx512F.UnpackHigh(r2, r3);
        Vector512<double> t4 = Avx512F.UnpackLow(r4, r5), t5 = Avx512F.UnpackHigh(r4, r5);
        Vector512<double> t6 = Avx512F.UnpackLow(r6, r7), t7 = Avx512F.UnpackHigh(r6, r7);
        // u: lanes {c, c+4} of rows 0-3 (or 4-7).
        Vector512<double> u0 = Avx512F.Shuffle4x128(t0, t2, 0x88), u1 = Avx512F.Shuffle4x128(t0, t2, 0xDD);
        Vector512<double> u2 = Avx512F.Shuffle4x128(t1, t3, 0x88), u3 = Avx512F.Shuffle4x128(t1, t3, 0xDD);
        Vector512<double> u4 = Avx512F.Shuffle4x128(t4, t6, 0x88), u5 = Avx512F.Shuffle4x128(t4, t6, 0xDD);
        Vector512<double> u6 = Avx512F.Shuffle4x128(t5, t7, 0x88), u7 = Avx512F.Shuffle4x128(t5, t7, 0xDD);
        Vector512.Store(Avx512F.Shuffle4x128(u0, u4, 0x88), dst);
        Vector512.Store(Avx512F.Shuffle4x128(u2, u6, 0x88), dst + ldd);
        Vector512.Store(Avx512F.Shuffle4x128(u1, u5, 0x88), dst + 2 * ldd);
        Vector512.Store(Avx512F.Shuffle4x128(u3, u7, 0x88), dst + 3 * ldd);
        Vector512.Store(Avx512F.Shuffle4x128(u0, u4, 0xDD), dst + 4 * ldd);
        Vector512.Store(Avx512F.Shuffle4x128(u2, u6, 0xDD), dst + 5 * ldd);
        Vector512.Store(Avx512F.Shuffle4x128(u1, u5, 0xDD), dst + 6 * ldd);
        Vector512.Store(Avx512F.Shuffle4x128(u3, u7, 0xDD), dst + 7 * ldd);
    }

    /// <summary>dst[q·ldd + r] = src[r·lds + q] for a 4 × 4 float64 block (unpack, then 128-bit lane permute on ymm).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose4x4(double* src, nint lds, double* dst, nint ldd)
    {
        Vector256<double> r0 = Vector256.Load(src), r1 = Vector256.Load(src + lds),
            r2 = Vector256.Load(src + 2 * lds), r3 = Vector256.Load(src + 3 * lds);
        // t0 = (r0[0], r1[0], r0[2], r1[2]), t1 = (r0[1], r1[1], r0[3], r1[3]); t2, t3 the same for r2, r3.
        Vector256<double> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1);
        Vector256<double> t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);
        Vector256.Store(Avx.Permute2x128(t0, t2, 0x20), dst);
        Vector256.Store(Avx.Permute2x128(t1, t3, 0x20), dst + ldd);
        Vector256.Store(Avx.Permute2x128(t0, t2, 0x31), dst + 2 * ldd);
        Vector256.Store(Avx.Permute2x128(t1, t3, 0x31), dst + 3 * ldd);
    }

    /// <summary>dst[q·ldd + r] = src[r·lds + q] for an 8 × 8 float block (unpack, shuffle, lane permute on ymm).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8(float* src, nint lds, float* dst, nint ldd)
    {
        Vector256<float> r0 = Vector256.Load(src), r1 = Vector256.Load(src + lds),
            r2 = Vector256.Load(src + 2 * lds), r3 = Vector256.Load(src + 3 * lds),
            r4 = Vector256.Load(src + 4 * lds), r5 = Vector256.Load(src + 5 * lds),
            r6 = Vector256.Load(src + 6 * lds), r7 = Vector256.Load(src + 7 * lds);
        // t: interleaved pairs of rows; u: columns {c} of rows 0-3 (4-7) per 128-bit lane.
        Vector256<float> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1);
        Vector256<float> t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);
        Vector256<float> t4 = Avx.UnpackLow(r4, r5), t5 = Avx.UnpackHigh(r4, r5);
        Vector256<float> t6 = Avx.UnpackLow(r6, r7), t7 = Avx.UnpackHigh(r6, r7);
        Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44), u1 = Avx.Shuffle(t0, t2, 0xEE);
        Vector256<float> u2 = Avx.Shuffle(t1, t3, 0x44), u3 = Avx.Shuffle(t1, t3, 0xEE);
        Vector256<float> u4 = Avx.Shuffle(t4, t6, 0x44), u5 = Avx.Shuffle(t4, t6, 0xEE);
        Vector256<float> u6 = Avx.Shuffle(t5, t7, 0x44), u7 = Avx.Shuffle(t5, t7, 0xEE);
        Vector256.Store(Avx.Permute2x128(u0, u4, 0x20), dst);
        Vector256.Store(Avx.Permute2x128(u1, u5, 0x20), dst + ldd);
        Vector256.Store(Avx.Permute2x128(u2, u6, 0x20), dst + 2 * ldd);
        Vector256.Store(Avx.Permute2x128(u3, u7, 0x20), dst + 3 * ldd);
        Vector256.Store(Avx.Permute2x128(u0, u4, 0x31), dst + 4 * ldd);
        Vector256.Store(Avx.Permute2x128(u1, u5, 0x31), dst + 5 * ldd);
        Vector256.Store(Avx.Permute2x128(u2, u6, 0x31), dst + 6 * ldd);
        Vector256.Store(Avx.Permute2x128(u3, u7, 0x31), dst + 7 * ldd);
    }

    private static int DivUp(int x, int y) => (x + y - 1) / y;
    private static int RoundUp(int x, int y) => DivUp(x, y) * y;
}

/// <summary>
/// Per-thread packing buffers (pinned, 64-byte aligned, grown on demand and kept), so a GEMM call
/// allocates nothing once its thread has warmed up. Rent/Return hands the set out exclusively, so
/// a re-entrant call on the same thread gets a fresh set instead of clobbering one in use.
/// </summary>
internal sealed unsafe class GemmBuffers<T> where T : unmanaged
{
    [ThreadStatic] private static GemmBuffers<T>? t_cached;

    private T[] _a = [], _b = [];

    private bool _inUse;

    public static GemmBuffers<T> Rent()
    {
        var set = t_cached ??= new GemmBuffers<T>();
        if (set._inUse) return new GemmBuffers<T> { _inUse = true }; // re-entrant call: a private set
        set._inUse = true;
        return set;
    }

    public static void Return(GemmBuffers<T> set) => set._inUse = false;

    public T* PackA(int length) => Aligned(ref _a, length);
    public T* PackB(int length) => Aligned(ref _b, length);

    private static T* Aligned(ref T[] array, int length)
    {
        int pad = 64 / sizeof(T); // room to round the start up to a 64-byte boundary
        if (array.Length < length + pad)
            array = GC.AllocateUninitializedArray<T>(length + pad, pinned: true);
        nint p = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
        return (T*)((p + 63) & ~(nint)63);
    }
}

