using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

using static GlobalNtk.Dense.Avx512Lanes;

namespace GlobalNtk.Dense;

/// <summary>Which route <see cref="GemmTransposedCopy"/> gives a product (None: the other routes of <c>Gemm.Run</c>).</summary>
internal enum TransposedCopyRoute
{
    /// <summary>Not taken here.</summary>
    None,

    /// <summary>Aᵀ·Bᵀ with few rows: op(A) copied as stored rows, then <see cref="GemmDot"/>'s A·Bᵀ dot form (other bits than the packed path's).</summary>
    TransposedADot,

    /// <summary>A·Bᵀ or Aᵀ·Bᵀ with a shallow k: op(B) copied as stored rows, then <see cref="Avx512Kernel{T}.Shallow"/> (the packed path's bits).</summary>
    TransposedBShallow,

    /// <summary>
    /// A·Bᵀ or Aᵀ·Bᵀ on the direct path: op(B) copied as stored rows, then <see cref="Avx512Kernel{T}.Deep"/> or
    /// <see cref="Avx512Kernel{T}.DirectSliced"/> with B as stored (the packed path's bits).
    /// </summary>
    TransposedBDirect,

    /// <summary>Float32 A·B with a narrow C: op(B)ᵀ copied (n rows along k), then <see cref="Avx512NarrowDot{T}"/>'s dot form (other bits).</summary>
    NarrowBNarrowDot,
}

/// <summary>
/// Small AVX-512 products that lose to OpenBLAS only because an operand runs the wrong way for the route that
/// would be fast: the operand is transposed once into a per-thread scratch (<see cref="NarrowTranspose"/>, about one
/// vector operation per L elements; <see cref="Choose{T}"/> takes only products where that is small next to the
/// work it saves) and the product runs on that route (<see cref="Choose{T}"/> says which).
/// </summary>
/// <remarks>
/// Measured: bench gemm --cpu-time --threads 1 --sweep (160 shapes, m·n·k &lt; 2²⁰), --transposed-copy off → on, three
/// alternated rounds, geometric mean of each shape's median, % of OpenBLAS: f32 134.8 → 145.6 (47 → 37 shapes below
/// 100 %), f64 124.2 → 131.7 (58 → 51); no shape the routes take lost (the few that moved down are ones they do not take,
/// tiny or one-column products, and moved back when run alone). Per route see <see cref="Choose{T}"/>.
/// </remarks>
internal static unsafe class GemmTransposedCopy
{
    /// <summary>Whether <see cref="TryRun{T}"/> takes any product (mutable for the benchmark only, like <see cref="Gemm.NarrowPacked"/>).</summary>
    internal static bool Enabled = true;

    /// <summary>Least n for <see cref="TransposedCopyRoute.TransposedADot"/> (below it the copy of op(A) weighs against few dots).</summary>
    internal const int DotMinColumns = 16;

    /// <summary>
    /// Below this many rows <see cref="TransposedCopyRoute.TransposedBShallow"/> also takes the products that
    /// <see cref="Avx512Kernel{T}.Shallow"/> runs with B transposed (n ≥ 8, k &lt; 8): there its scalar transpose of each
    /// strip is a large share (10×40×5 A·Bᵀ f32 127 → 278 %). Not at k = 8, where that transpose is vectorised already
    /// (8×8×8 A·Bᵀ 308 → 259 % f32 when taken).
    /// </summary>
    internal const int ShallowCopyRows = 64;

    /// <summary>
    /// The route for C = alpha·op(A)·op(B) + beta·C (m, n, k ≥ 1) on the AVX-512 kernel, or None. All three only up to
    /// <see cref="Gemm.DirectProduct"/> multiply-adds (products that run on one thread). Measured (% of OpenBLAS, one
    /// thread, bench gemm --cpu-time, --transposed-copy off → on, two alternated rounds, f64 / f32):
    /// <list type="bullet">
    /// <item><see cref="TransposedCopyRoute.TransposedADot"/>: Aᵀ·Bᵀ, 2 ≤ m ≤ <see cref="GemmDot.MaxDotRows"/>, n ≥
    /// <see cref="DotMinColumns"/>, k as <see cref="GemmDot.Takes{T}"/> asks of A·Bᵀ, except float32 on 4 or more rows
    /// only from k = 64 (4×48×34 f32 153 → 132, 4×64×40 f32 196 → 163 lost, f64 won) and 2 (f64) or 3 (f32) rows from
    /// k = 8 (f64) or 12 (f32) (2×832×9 f64 75 → 114, f32 lost 146 → 116; 3×500×14 47 / 70 → 92 / 102–128). 3×2787×47
    /// 58 / 109 → 154 / 210, 2×88×44 91 / 138 → 168 / 213, 10×138×281 116 / 92 → 140 / 109, 3×20×500 59–73 / 78–88 →
    /// 134–192 / 198–276, 8×70×100 56–60 / 90–95 → 86–98 / 117–139;</item>
    /// <item><see cref="TransposedCopyRoute.TransposedBShallow"/>: B transposed, k ≤ 8, where
    /// <see cref="Avx512Kernel{T}.TakesShallow"/> takes the product with B as stored but not transposed (several strips
    /// under 64 rows: it would transpose each strip by scalars), or see <see cref="ShallowCopyRows"/>; the packed path's
    /// bits. 6×92×6 Aᵀ·Bᵀ 30–34 / 61 → 56–66 / 156, 7×60×5 Aᵀ·Bᵀ 39–45 / 58 → 66–72 / 150, 12×100×5 Aᵀ·Bᵀ f64 50–52 →
    /// 96–98, 30×200×2 Aᵀ·Bᵀ 60–64 / 93 → 119–121 / 166–180, 34×555×4 A·Bᵀ 109 / 99–101 → 209–213 / 215–218, 6×92×6
    /// A·Bᵀ 80 / 76–80 → 136 / 222–229, 12×100×8 A·Bᵀ 127–146 / 124 → 156–180 / 185–194, 6×695×1 A·Bᵀ 85 / 54 → 114–118 /
    /// 103–104, 7×368×1 Aᵀ·Bᵀ 63 / 60–62 → 90–94 / 118–122; the dot form did not pay on 7–8 rows below k = 32 (7×67×17 Aᵀ·Bᵀ
    /// f64 77–87 → 61–63 at k ≥ 12);</item>
    /// <item><see cref="TransposedCopyRoute.TransposedBDirect"/>: B transposed past <see cref="Avx512Kernel{T}.ShallowDepth"/> on
    /// at least 16 rows (8 for float32 Aᵀ·Bᵀ, <see cref="DirectCopyRows{T}"/>), unless GemmDot, the narrow dot form or the
    /// direct path's transposed narrow C (<see cref="Avx512Kernel{T}.NarrowC"/>, faster on a transposed B: 114×3×1222 Aᵀ·Bᵀ
    /// 150 / 170 → 126 / 142, 94×2×31 Aᵀ·Bᵀ 95 / 103 → 78 / 81 when taken) takes it: the direct path reads a stored B at about
    /// twice the speed it packs a transposed one. 8×2540×13 Aᵀ·Bᵀ f32 79 → 140, A·Bᵀ
    /// f32 103 → 172, 44×14×1319 Aᵀ·Bᵀ 85 / 64 → 91 / 81, A·Bᵀ 110 / 65 → 131 / 83, 8×11×14 Aᵀ·Bᵀ f32 97 → 125, 17×7×10 A·Bᵀ 157 / 112 → 195 / 134, 44×7×17 A·Bᵀ 200 / 122 → 231 / 150;</item>
    /// <item><see cref="TransposedCopyRoute.NarrowBNarrowDot"/>: float32 A·B with 2 ≤ n ≤ 8, m ≥ 16 and k as long as
    /// <see cref="Avx512NarrowDot{T}.Takes"/> asks of a transposed B (float64 runs as fast as OpenBLAS there already):
    /// 126×7×911 f32 58 → 132, 38×7×660 f32 70 → 117.</item>
    /// </list>
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static TransposedCopyRoute Choose<T>(Trans ta, Trans tb, int m, int n, int k) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!Enabled || !(typeof(T) == typeof(double) || typeof(T) == typeof(float))) return TransposedCopyRoute.None;
        if (tb == Trans.Yes)
        {
            if (m < 2 || n < 2 || (long)m * n * k > Gemm.DirectProduct) return TransposedCopyRoute.None;
            if (ta == Trans.Yes && TakesDot<T>(m, n, k)) return TransposedCopyRoute.TransposedADot;
            if (k <= Avx512Kernel<T>.ShallowDepth && Avx512Kernel<T>.TakesShallow(ta, Trans.No, m, n, k)
                && (!Avx512Kernel<T>.TakesShallow(ta, Trans.Yes, m, n, k) || (m < ShallowCopyRows && n >= 8 && k < Avx512Kernel<T>.ShallowDepth)))
                return TransposedCopyRoute.TransposedBShallow;
            if (m >= DirectCopyRows<T>(ta) && k > Avx512Kernel<T>.ShallowDepth && !Gemm.UseDot<T>(ta, tb, m, n, k)
                && !Avx512Kernel<T>.NarrowC(ta, m, n, k) && !(ta == Trans.No && m > 8 && Avx512NarrowDot<T>.Takes(Trans.No, Trans.Yes, n, k)))
                return TransposedCopyRoute.TransposedBDirect;
            return TransposedCopyRoute.None;
        }
        if (typeof(T) == typeof(float) && ta == Trans.No && (uint)(n - 2) <= 6 && m >= 16
            && Avx512NarrowDot<T>.Takes(Trans.No, Trans.Yes, n, k) && (long)m * n * k <= Gemm.DirectProduct)
            return TransposedCopyRoute.NarrowBNarrowDot;
        return TransposedCopyRoute.None;
    }

    /// <summary>
    /// Least m for <see cref="TransposedCopyRoute.TransposedBDirect"/>: the copy costs about one vector operation per L elements
    /// of B, the product m/L vector FMAs per element, so fewer rows do not pay for it (7×67×17 Aᵀ·Bᵀ lost: 73 / 114 → 55 / 95;
    /// 8×106×50 A·Bᵀ f32 94 → 76, while 8×2540×13 Aᵀ·Bᵀ f32 won 81 → 138).
    /// </summary>
    private static int DirectCopyRows<T>(Trans ta) => typeof(T) == typeof(float) && ta == Trans.Yes ? 8 : 16;

    /// <summary>Whether the product runs on a dot-form route here (so its bits are not the packed path's; tests ask).</summary>
    internal static bool ChangesBits<T>(Trans ta, Trans tb, int m, int n, int k) where T : unmanaged, IFloatingPointIeee754<T>
        => Choose<T>(ta, tb, m, n, k) is TransposedCopyRoute.TransposedADot or TransposedCopyRoute.NarrowBNarrowDot;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TakesDot<T>(int m, int n, int k) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (m > GemmDot.MaxDotRows || n < DotMinColumns) return false;
        if (typeof(T) == typeof(float))
            return m <= 3 ? k >= 12 : k >= 64 && GemmDot.Takes<T>(Trans.No, Trans.Yes, m, n, k);
        return m <= 2 ? k >= 8 : GemmDot.Takes<T>(Trans.No, Trans.Yes, m, n, k);
    }

    /// <summary>Runs the product on its <see cref="Choose{T}"/> route and returns true, or returns false (nothing done).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool TryRun<T>(Trans ta, Trans tb, int m, int n, int k, T alpha,
        T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        TransposedCopyRoute route = Choose<T>(ta, tb, m, n, k);
        if (route == TransposedCopyRoute.None) return false;
        Run(route, ta, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return true;
    }

    /// <summary>
    /// C = alpha·op(A)·op(B) + beta·C on <paramref name="route"/>, whose transposes it assumes: Aᵀ·Bᵀ for the dot form of
    /// a transposed A, op(A)·Bᵀ (<paramref name="ta"/> either way) for the shallow one, A·B for the narrow one (<paramref name="ta"/>
    /// unused there); any shape the target kernel accepts, not only those <see cref="Choose{T}"/> picks.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void Run<T>(TransposedCopyRoute route, Trans ta, int m, int n, int k, T alpha,
        T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int l = Vector512<T>.Count;
        var scratch = TransposeScratch<T>.Rent();
        try
        {
            switch (route)
            {
                case TransposedCopyRoute.TransposedADot:
                {
                    // op(A) = (stored k × m)ᵀ as m rows along k, each starting on a 64-byte boundary.
                    nint ld = (k + l - 1) / l * l;
                    T* at = scratch.Get(m * ld);
                    NarrowTranspose.Copy(a, lda, k, m, at, ld);
                    GemmDot.Run(Trans.No, Trans.Yes, m, n, k, alpha, at, ld, b, ldb, beta, c, ldc);
                    break;
                }
                case TransposedCopyRoute.TransposedBShallow:
                case TransposedCopyRoute.TransposedBDirect:
                {
                    // op(B) = (stored n × k)ᵀ as k rows along n; then the kernel that takes a stored B.
                    nint ld = (n + l - 1) / l * l;
                    T* bt = scratch.Get(k * ld);
                    NarrowTranspose.Copy(b, ldb, n, k, bt, ld);
                    if (route == TransposedCopyRoute.TransposedBShallow)
                        Avx512Kernel<T>.Shallow(ta, Trans.No, m, n, k, alpha, a, lda, bt, ld, beta, c, ldc);
                    else if (Avx512Kernel<T>.TakesDeep(ta, m, n, k))
                        Avx512Kernel<T>.Deep(ta, Trans.No, m, n, k, alpha, a, lda, bt, ld, beta, c, ldc);
                    else
                        Avx512Kernel<T>.DirectSliced(ta, Trans.No, m, n, k, alpha, a, lda, bt, ld, beta, c, ldc);
                    break;
                }
                case TransposedCopyRoute.NarrowBNarrowDot:
                {
                    // op(B)ᵀ = (stored k × n)ᵀ as n rows along k.
                    nint ld = (k + l - 1) / l * l;
                    T* bt = scratch.Get(n * ld);
                    NarrowTranspose.Copy(b, ldb, k, n, bt, ld);
                    Avx512NarrowDot<T>.Run(Trans.Yes, m, n, k, alpha, a, lda, bt, ld, beta, c, ldc);
                    break;
                }
                default:
                    throw new ArgumentOutOfRangeException(nameof(route));
            }
        }
        finally
        {
            TransposeScratch<T>.Return(scratch);
        }
    }
}

/// <summary>
/// dst[c·ldd + r] = src[r·lds + c] for a stored block of many rows and few columns (a strided operand read across its
/// rows): on AVX-512, L rows × L/2 columns at a time, row r in the low half of a register and row r + L/2 in the high
/// half, transposed in both halves at once (unpacks, then one two-source permute), so every store is a whole row of
/// L elements of dst. <see cref="GemmDriver{T, K}.Transpose"/> leaves fewer than 8 columns to scalars.
/// </summary>
internal static unsafe class NarrowTranspose
{
    /// <summary>dst[c·ldd + r] = src[r·lds + c] for r &lt; rows, c &lt; cols; reads nothing outside the rows × cols block of src, writes nothing outside that of dst.</summary>
    public static void Copy<T>(T* src, nint lds, int rows, int cols, T* dst, nint ldd) where T : unmanaged
    {
        if (!Avx512F.IsSupported || !(typeof(T) == typeof(double) || typeof(T) == typeof(float)))
        {
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++)
                    dst[c * ldd + r] = src[r * lds + c];
            return;
        }
        int l = Vector512<T>.Count, h = l / 2;
        for (int c0 = 0; c0 < cols; c0 += h)
        {
            int width = Math.Min(h, cols - c0), r0 = 0;
            T* s = src + c0, d = dst + c0 * ldd;
            for (; r0 + l <= rows; r0 += l)
                Block(s + r0 * lds, lds, l, width, d + r0, ldd);
            if (r0 < rows) Block(s + r0 * lds, lds, rows - r0, width, d + r0, ldd);
        }
    }

    /// <summary>One block: <paramref name="count"/> ≤ L rows × <paramref name="width"/> ≤ L/2 columns (missing rows read as zeros and are not stored).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Block<T>(T* src, nint lds, int count, int width, T* dst, nint ldd) where T : unmanaged
    {
        // Qwords of two sources: 128-bit lanes (0, 0', 2, 2') and (1, 1', 3, 3') — in each 256-bit half, the
        // lane pair of the first source's half then of the second's.
        Vector512<long> low = Vector512.Create(0L, 1, 8, 9, 4, 5, 12, 13), high = Vector512.Create(2L, 3, 10, 11, 6, 7, 14, 15);
        int l = Vector512<T>.Count;
        bool whole = count == l;
        Vector512<T> rowMask = whole ? default : LaneMask<T>(count);
        if (typeof(T) == typeof(float))
        {
            float* s = (float*)src;
            Vector256<float> mask = Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(width)).AsSingle();
            bool full = width == 8;
            Vector512<float> r0 = Pair(s, lds, 0, count, full, mask), r1 = Pair(s, lds, 1, count, full, mask);
            Vector512<float> r2 = Pair(s, lds, 2, count, full, mask), r3 = Pair(s, lds, 3, count, full, mask);
            Vector512<float> r4 = Pair(s, lds, 4, count, full, mask), r5 = Pair(s, lds, 5, count, full, mask);
            Vector512<float> r6 = Pair(s, lds, 6, count, full, mask), r7 = Pair(s, lds, 7, count, full, mask);
            Vector512<float> t0 = Avx512F.UnpackLow(r0, r1), t1 = Avx512F.UnpackHigh(r0, r1);
            Vector512<float> t2 = Avx512F.UnpackLow(r2, r3), t3 = Avx512F.UnpackHigh(r2, r3);
            Vector512<float> t4 = Avx512F.UnpackLow(r4, r5), t5 = Avx512F.UnpackHigh(r4, r5);
            Vector512<float> t6 = Avx512F.UnpackLow(r6, r7), t7 = Avx512F.UnpackHigh(r6, r7);
            // u0: column 0 of rows 0–3 (4–7) in each 128-bit lane of the low (high) half; u1..u3 columns 1..3, again + 4 in the upper lane.
            Vector512<float> u0 = Avx512F.Shuffle(t0, t2, 0x44), u1 = Avx512F.Shuffle(t0, t2, 0xEE);
            Vector512<float> u2 = Avx512F.Shuffle(t1, t3, 0x44), u3 = Avx512F.Shuffle(t1, t3, 0xEE);
            Vector512<float> u4 = Avx512F.Shuffle(t4, t6, 0x44), u5 = Avx512F.Shuffle(t4, t6, 0xEE);
            Vector512<float> u6 = Avx512F.Shuffle(t5, t7, 0x44), u7 = Avx512F.Shuffle(t5, t7, 0xEE);
            Put(Join<T>(u0, low, u4), dst, whole, rowMask);
            if (width > 1) Put(Join<T>(u1, low, u5), dst + ldd, whole, rowMask);
            if (width > 2) Put(Join<T>(u2, low, u6), dst + 2 * ldd, whole, rowMask);
            if (width > 3) Put(Join<T>(u3, low, u7), dst + 3 * ldd, whole, rowMask);
            if (width > 4) Put(Join<T>(u0, high, u4), dst + 4 * ldd, whole, rowMask);
            if (width > 5) Put(Join<T>(u1, high, u5), dst + 5 * ldd, whole, rowMask);
            if (width > 6) Put(Join<T>(u2, high, u6), dst + 6 * ldd, whole, rowMask);
            if (width > 7) Put(Join<T>(u3, high, u7), dst + 7 * ldd, whole, rowMask);
        }
        else
        {
            double* s = (double*)src;
            Vector256<double> mask = Vector256.LessThan(Vector256<long>.Indices, Vector256.Create((long)width)).AsDouble();
            bool full = width == 4;
            Vector512<double> r0 = Pair(s, lds, 0, count, full, mask), r1 = Pair(s, lds, 1, count, full, mask);
            Vector512<double> r2 = Pair(s, lds, 2, count, full, mask), r3 = Pair(s, lds, 3, count, full, mask);
            // t0: (column 0, column 2) of rows 0 and 1 per 128-bit lane pair, t1 columns 1 and 3; t2, t3 the same for rows 2 and 3.
            Vector512<double> t0 = Avx512F.UnpackLow(r0, r1), t1 = Avx512F.UnpackHigh(r0, r1);
            Vector512<double> t2 = Avx512F.UnpackLow(r2, r3), t3 = Avx512F.UnpackHigh(r2, r3);
            Put(Avx512F.PermuteVar8x64x2(t0, low, t2).As<double, T>(), dst, whole, rowMask);
            if (width > 1) Put(Avx512F.PermuteVar8x64x2(t1, low, t3).As<double, T>(), dst + ldd, whole, rowMask);
            if (width > 2) Put(Avx512F.PermuteVar8x64x2(t0, high, t2).As<double, T>(), dst + 2 * ldd, whole, rowMask);
            if (width > 3) Put(Avx512F.PermuteVar8x64x2(t1, high, t3).As<double, T>(), dst + 3 * ldd, whole, rowMask);
        }
    }

    /// <summary>Row i (its first 8 columns, masked) in the low half, row i + 8 in the high half; rows past count are zeros.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Pair(float* s, nint lds, int i, int count, bool full, Vector256<float> mask)
        => Vector512.Create(Row(s + i * lds, i < count, full, mask), Row(s + (i + 8) * lds, i + 8 < count, full, mask));

    /// <summary>Row i (its first 4 columns, masked) in the low half, row i + 4 in the high half; rows past count are zeros.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<double> Pair(double* s, nint lds, int i, int count, bool full, Vector256<double> mask)
        => Vector512.Create(Row(s + i * lds, i < count, full, mask), Row(s + (i + 4) * lds, i + 4 < count, full, mask));

    /// <summary>The first columns of a row under the mask (masked-off lanes are not read: they may lie past the operand).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Row(float* p, bool present, bool full, Vector256<float> mask)
        => !present ? Vector256<float>.Zero : full ? Vector256.Load(p) : Avx.MaskLoad(p, mask);

    /// <inheritdoc cref="Row(float*, bool, bool, Vector256{float})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<double> Row(double* p, bool present, bool full, Vector256<double> mask)
        => !present ? Vector256<double>.Zero : full ? Vector256.Load(p) : Avx.MaskLoad(p, mask);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Join<T>(Vector512<float> x, Vector512<long> index, Vector512<float> y) where T : unmanaged
        => Avx512F.PermuteVar8x64x2(x.AsDouble(), index, y.AsDouble()).As<double, T>();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put<T>(Vector512<T> x, T* dst, bool whole, Vector512<T> rowMask) where T : unmanaged
    {
        if (whole) Vector512.Store(x, dst);
        else MaskStore(dst, rowMask, x);
    }
}

/// <summary>
/// The per-thread scratch of <see cref="GemmTransposedCopy"/> (pinned, 64-byte aligned, grown on demand and kept), so a
/// product allocates nothing once its thread has one large enough. Its own set rather than <see cref="PinnedScratch{T}"/>,
/// which a caller of <c>Gemm</c> may hold while it multiplies (a held set would make every call allocate a fresh one).
/// </summary>
internal sealed unsafe class TransposeScratch<T> where T : unmanaged
{
    [ThreadStatic] private static TransposeScratch<T>? t_cached;

    private T[] _array = [];
    private bool _inUse;

    /// <summary>The thread's set, or a fresh one on a re-entrant call.</summary>
    public static TransposeScratch<T> Rent()
    {
        var set = t_cached ??= new TransposeScratch<T>();
        if (set._inUse) return new TransposeScratch<T> { _inUse = true };
        set._inUse = true;
        return set;
    }

    /// <summary>Hands the set back.</summary>
    public static void Return(TransposeScratch<T> set) => set._inUse = false;

    /// <summary>At least <paramref name="length"/> elements from a 64-byte boundary (contents undefined).</summary>
    public T* Get(long length)
    {
        int pad = 64 / sizeof(T);
        if (_array.Length < length + pad)
            _array = GC.AllocateUninitializedArray<T>(checked((int)(length + pad)), pinned: true);
        nint p = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_array));
        return (T*)((p + 63) & ~(nint)63);
    }
}
