using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace GlobalNtk.Dense;

/// <summary>Whether a GEMM operand is used as stored or transposed.</summary>
public enum Trans { No, Yes }

/// <summary>
/// Row-major float64 and float32 matrix multiply: <c>C = alpha·op(A)·op(B) + beta·C</c>, with op(A) m×k,
/// op(B) k×n, C m×n; <c>lda/ldb/ldc</c> are row strides in elements (so strided row sets,
/// e.g. one time step of a [trial, time, unit] array, are operands without copies).
/// </summary>
/// <remarks>
/// Implementation: packed A/B panels, cache blocking and a register-blocked FMA microkernel
/// (float64: AVX-512 8×24, else AVX2 6×8; float32: AVX-512 8×48, else AVX2 6×16; else scalar 4×4;
/// see <c>GemmKernels.cs</c>, <c>GemmKernelAvx512.cs</c> and <c>GemmKernelAvx2.cs</c>); one generic driver and one generic kernel
/// per instruction set serve both precisions; m = 1 or n = 1 runs as dot products / axpys instead, and with
/// AVX-512 so does A·Bᵀ with few rows over a deep enough k (<c>GemmDot.cs</c>; its sums run in another order,
/// so those products do not have the packed path's bits).
/// With AVX-512, small products (m·n·k &lt; 2²⁰; with m = 1 only over a small stored B) skip packing A (and B
/// when it is not transposed; a narrow C runs as Cᵀ = op(B)ᵀ·op(A)ᵀ) and give the same bits as the packed
/// path (shallow ones, k ≤ 8, and float32 ones over a single vector of columns with k ≤ 24, hold B's k rows of a
/// strip in registers and run C row by row: <c>GemmKernelAvx512Shallow.cs</c>); other tiny products (m·n·k ≤ 128)
/// run as plain loops. A narrow C (2 ≤ n ≤ 8, m &gt; 8) with A
/// transposed runs as Cᵀ at any size (the packed path's bits), and with A as stored (from 5 rows with B transposed) as
/// dot products along k, whose tiles' sums are reduced together (<c>GemmNarrow.cs</c>; other bits, see
/// <c>Avx512NarrowDot.TakesProduct</c> for which products). With AVX-512, small
/// products whose operand runs the wrong way for one of these routes (Aᵀ·Bᵀ with few rows, a transposed B on the direct
/// path, shallow or not, a narrow float32 A·B) run there on a transposed copy of it (<c>GemmTransposedCopy.cs</c>);
/// those of depth k ≤ 2 with B transposed and 2–32 rows run as one or two outer products along n (<c>GemmOuter.cs</c>,
/// the packed path's bits); on the direct path a C of few rows or few columns takes bodies cut to its size
/// (<c>GemmDirectNarrow.cs</c>, the packed path's bits). Products with at
/// least <see cref="ParallelThreshold"/> multiply-adds are split into column (or row) panels run on
/// up to <see cref="MaxDegreeOfParallelism"/> threads; smaller ones run on the calling thread and
/// allocate nothing once the thread's packing buffers exist. C must not overlap A or B.
/// </remarks>
public static partial class Gemm
{
    /// <summary>
    /// Upper bound on threads one product may use (default: all processors). Set it to 1 when the
    /// caller already parallelises over independent products.
    /// </summary>
    public static int MaxDegreeOfParallelism { get; set; } = Environment.ProcessorCount;

    /// <summary>Smallest m·n·k (multiply-adds) split across threads; below it the fork costs more than it saves.</summary>
    public static long ParallelThreshold { get; set; } = 1L << 20;

    /// <summary>Which microkernel to use; tests force each one that the CPU supports.</summary>
    internal enum KernelKind { Auto, Avx512, Avx2, Scalar }

    /// <summary>Per calling thread, so a test forcing a kernel does not slow down concurrent tests.</summary>
    internal static KernelKind ForcedKernel
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => s_anyForced ? t_forced : KernelKind.Auto; // skip the thread-static read in production
        set { s_anyForced = true; t_forced = value; }
    }

    [ThreadStatic] private static KernelKind t_forced;
    private static volatile bool s_anyForced;

    internal static KernelKind SelectedKernel =>
        ForcedKernel != KernelKind.Auto ? ForcedKernel
        : Avx512F.IsSupported ? KernelKind.Avx512
        : Fma.IsSupported && Avx2.IsSupported ? KernelKind.Avx2
        : KernelKind.Scalar;

    /// <summary>C = alpha·op(A)·op(B) + beta·C (row-major, strided rows).</summary>
    /// <remarks>beta == 0 overwrites C (whatever it holds, NaN included); alpha == 0 or k == 0 only scales C.</remarks>
    /// <exception cref="ArgumentException">A size or stride is negative or too small, or a span is too short.</exception>
    public static void Multiply(Trans ta, Trans tb, int m, int n, int k, double alpha,
        ReadOnlySpan<double> a, int lda, ReadOnlySpan<double> b, int ldb, double beta, Span<double> c, int ldc)
        => Multiply<double>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    /// <summary>C = alpha·op(A)·op(B) + beta·C in float32 (row-major, strided rows; float32 accumulation, as in sgemm).</summary>
    /// <remarks>beta == 0 overwrites C (whatever it holds, NaN included); alpha == 0 or k == 0 only scales C.</remarks>
    /// <exception cref="ArgumentException">A size or stride is negative or too small, or a span is too short.</exception>
    public static void Multiply(Trans ta, Trans tb, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
        => Multiply<float>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    /// <summary>The float64 or float32 product, for code written once for both precisions.</summary>
    internal static void Multiply<T>(Trans ta, Trans tb, int m, int n, int k, T alpha,
        ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, T beta, Span<T> c, int ldc)
        where T : unmanaged, IFloatingPointIeee754<T>
        => Multiply(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, MaxDegreeOfParallelism);

    /// <summary>
    /// <see cref="Multiply(Trans, Trans, int, int, int, double, ReadOnlySpan{double}, int, ReadOnlySpan{double}, int, double, Span{double}, int)"/>
    /// on at most <paramref name="maxThreads"/> threads: 1 runs on the calling thread, for callers that
    /// split their work over threads themselves.
    /// </summary>
    internal static void Multiply<T>(Trans ta, Trans tb, int m, int n, int k, T alpha,
        ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, T beta, Span<T> c, int ldc, int maxThreads)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Validate("Gemm.Multiply", ta, tb, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        if (m == 0 || n == 0) return;
        unsafe
        {
            fixed (T* pa = a, pb = b, pc = c)
                Run(SelectedKernel, ta, tb, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc, maxThreads);
        }
    }

    /// <summary>
    /// A batch of equally shaped products: for t in [0, batch),
    /// <c>C_t = alpha·op(A_t)·op(B_t) + beta·C_t</c>, where operand t starts at
    /// <c>t·strideA</c> (<c>t·strideB</c>, <c>t·strideC</c>) of its span. A stride of 0 for A or B
    /// shares one operand across the batch. Small products are spread over threads one whole
    /// product per task (no per-product fork); large ones are each parallelised internally.
    /// </summary>
    /// <exception cref="ArgumentException">A size, stride or span length is inconsistent, or the C blocks overlap.</exception>
    public static void MultiplyBatched(Trans ta, Trans tb, int batch, int m, int n, int k, double alpha,
        ReadOnlySpan<double> a, int lda, int strideA, ReadOnlySpan<double> b, int ldb, int strideB,
        double beta, Span<double> c, int ldc, int strideC)
        => MultiplyBatched<double>(ta, tb, batch, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC);

    /// <summary>The float32 batch of equally shaped products; see the float64 overload.</summary>
    /// <exception cref="ArgumentException">A size, stride or span length is inconsistent, or the C blocks overlap.</exception>
    public static void MultiplyBatched(Trans ta, Trans tb, int batch, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, int strideA, ReadOnlySpan<float> b, int ldb, int strideB,
        float beta, Span<float> c, int ldc, int strideC)
        => MultiplyBatched<float>(ta, tb, batch, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC);

    private static void MultiplyBatched<T>(Trans ta, Trans tb, int batch, int m, int n, int k, T alpha,
        ReadOnlySpan<T> a, int lda, int strideA, ReadOnlySpan<T> b, int ldb, int strideB,
        T beta, Span<T> c, int ldc, int strideC)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        const string who = "Gemm.MultiplyBatched";
        if (batch < 0) throw new ArgumentException($"{who}: batch = {batch} is negative.");
        if (batch == 0 || m == 0 || n == 0)
        {
            Validate(who, ta, tb, m, n, k, int.MaxValue, lda, int.MaxValue, ldb, int.MaxValue, ldc);
            return;
        }
        if (strideA < 0 || strideB < 0)
            throw new ArgumentException($"{who}: strides must be non-negative (strideA = {strideA}, strideB = {strideB}).");
        long cFootprint = Footprint(m, n, ldc);
        if (batch > 1 && strideC < cFootprint)
            throw new ArgumentException($"{who}: strideC = {strideC} makes the {m}×{n} C blocks (ldc = {ldc}, {cFootprint} elements each) overlap.");
        long last = batch - 1;
        Validate(who, ta, tb, m, n, k,
            Remaining(a.Length, last * strideA), lda, Remaining(b.Length, last * strideB), ldb,
            Remaining(c.Length, last * strideC), ldc);

        long work = (long)m * n * Math.Max(k, 1);
        int threads = Math.Min(MaxDegreeOfParallelism, batch);
        KernelKind kind = SelectedKernel;
        unsafe
        {
            fixed (T* pa = a, pb = b, pc = c)
            {
                if (threads <= 1 || work * batch < ParallelThreshold || work >= ParallelThreshold * 4)
                {
                    // Either too little work to fork, or each product is big enough to split by itself.
                    for (int t = 0; t < batch; t++)
                        Run(kind, ta, tb, m, n, k, alpha, pa + (nint)t * strideA, lda, pb + (nint)t * strideB, ldb,
                            beta, pc + (nint)t * strideC, ldc, MaxDegreeOfParallelism);
                    return;
                }
                nint ia = (nint)pa, ib = (nint)pb, ic = (nint)pc;
                Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, part =>
                {
                    int t0 = (int)((long)batch * part / threads), t1 = (int)((long)batch * (part + 1) / threads);
                    for (int t = t0; t < t1; t++)
                        Run(kind, ta, tb, m, n, k, alpha, (T*)ia + (nint)t * strideA, lda, (T*)ib + (nint)t * strideB,
                            ldb, beta, (T*)ic + (nint)t * strideC, ldc, 1);
                });
            }
        }
    }

    private static long Remaining(int length, long offset) => Math.Max(0, length - offset);

    /// <summary>Elements spanned by a rows×cols row-major block with row stride ld (0 if empty).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long Footprint(int rows, int cols, int ld) => rows == 0 || cols == 0 ? 0 : (long)(rows - 1) * ld + cols;

    /// <remarks>
    /// The checks run inline; the messages are built only when one fails (in <see cref="Invalid"/>), so a
    /// small product does not pay for the string-formatting frames (≈ 5–10 % of an 8³ product).
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Validate(string who, Trans ta, Trans tb, int m, int n, int k,
        long aLength, int lda, long bLength, int ldb, long cLength, int ldc)
    {
        if ((m | n | k) < 0 || !Fits(ta, m, k, aLength, lda) || !Fits(tb, k, n, bLength, ldb) || !Fits(Trans.No, m, n, cLength, ldc))
            Invalid(who, ta, tb, m, n, k, aLength, lda, bLength, ldb, cLength, ldc);
    }

    /// <summary>Whether a stored operand whose op() is rows×cols (rows, cols ≥ 0) fits its row stride and span.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Fits(Trans t, int rows, int cols, long length, int ld)
    {
        int sr = t == Trans.No ? rows : cols, sc = t == Trans.No ? cols : rows; // stored shape
        return (sr <= 1 || ld >= sc) && length >= Footprint(sr, sc, ld);
    }

    /// <summary>Throws the exception that <see cref="Validate"/> found a reason for.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Invalid(string who, Trans ta, Trans tb, int m, int n, int k,
        long aLength, int lda, long bLength, int ldb, long cLength, int ldc)
    {
        if (m < 0 || n < 0 || k < 0)
            throw new ArgumentException($"{who}: sizes must be non-negative (m = {m}, n = {n}, k = {k}).");
        CheckOperand(who, "A", ta, m, k, aLength, lda);
        CheckOperand(who, "B", tb, k, n, bLength, ldb);
        CheckOperand(who, "C", Trans.No, m, n, cLength, ldc);
        throw new ArgumentException($"{who}: invalid sizes or strides (m = {m}, n = {n}, k = {k}, lda = {lda}, ldb = {ldb}, ldc = {ldc})."); // not reached: Fits mirrors CheckOperand
    }

    /// <summary>Checks a stored operand whose op() is rows×cols.</summary>
    private static void CheckOperand(string who, string name, Trans t, int rows, int cols, long length, int ld)
    {
        (int sr, int sc) = t == Trans.No ? (rows, cols) : (cols, rows); // stored shape
        if (sr > 1 && ld < sc)
            throw new ArgumentException($"{who}: {name} is stored {Stored(sr, sc, t)} but its row stride ld = {ld} is less than its width {sc}.");
        long need = Footprint(sr, sc, ld);
        if (length < need)
            throw new ArgumentException($"{who}: {name} is stored {Stored(sr, sc, t)} with row stride {ld}, needing {need} elements, but its span has {Math.Max(length, 0)}.");
    }

    private static string Stored(int rows, int cols, Trans t) => t == Trans.No ? $"{rows}×{cols}" : $"{rows}×{cols} (transposed)";

    /// <summary>Dispatch on pointers (arguments already validated, m, n ≥ 1).</summary>
    private static unsafe void Run<T>(KernelKind kind, Trans ta, Trans tb, int m, int n, int k, T alpha,
        T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc, int maxThreads)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (k == 0 || alpha == T.Zero)
        {
            ScaleC(m, n, beta, c, ldc);
            return;
        }
        if (kind == KernelKind.Avx512 && GemmOuter.Takes(tb, m, n, k))
        {
            GemmOuter.Run(ta, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
        // Products whose operand runs the wrong way for a fast route: transposed once into scratch (GemmTransposedCopy.cs).
        if (kind == KernelKind.Avx512 && GemmTransposedCopy.TryRun(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))
            return;
        if (kind == KernelKind.Avx512 && UseDot<T>(ta, tb, m, n, k))
        {
            GemmDot.Run(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
        if (kind == KernelKind.Avx512 && (uint)(n - 2) <= 6 && (m > 8 ? k >= 8 : m >= 5 && k >= 16 && tb == Trans.Yes) && RunNarrow( // 2 ≤ n ≤ 8: cheap tests first, the call is not free
            ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, maxThreads))
            return;
        if (kind == KernelKind.Avx512 && UseDirect<T>(m, n, k) && ((m > 1 && n > 1) || DirectTakesVector(tb, m, n, k)))
        {
            if (m > 1 && n > 1 && Avx512Kernel<T>.TakesShallow(ta, tb, m, n, k))
            {
                Avx512Kernel<T>.Shallow(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
                return;
            }
            if (m > 1 && Avx512Kernel<T>.TakesDeep(ta, m, n, k))
            {
                Avx512Kernel<T>.Deep(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
                return;
            }
            Avx512Kernel<T>.DirectSliced(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
        if ((long)m * n * k <= TinyProduct)
        {
            Tiny(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
        if (n == 1)
        {
            GemmVector.ColumnResult(ta, tb, m, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
        if (m == 1)
        {
            GemmVector.RowResult(ta, tb, n, k, alpha, a, lda, b, ldb, beta, c);
            return;
        }
        // typeof(T) tests are JIT-time constants: each instantiation keeps only its own branch.
        if (typeof(T) == typeof(double) || typeof(T) == typeof(float))
        {
            switch (kind)
            {
                case KernelKind.Avx512: Split<T, Avx512Kernel<T>>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, maxThreads); break;
                case KernelKind.Avx2: Split<T, Avx2Kernel<T>>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, maxThreads); break;
                default: Split<T, ScalarKernel<T>>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, maxThreads); break;
            }
        }
        else
        {
            Split<T, ScalarKernel<T>>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, maxThreads);
        }
    }

    /// <summary>
    /// Below <see cref="ParallelThreshold"/> (or with one thread) runs serially; otherwise splits C
    /// into one panel per thread along the longer of m and n and runs the serial blocked algorithm on
    /// each. Each thread then re-packs only the shorter operand, which costs ~(threads−1)/max(m, n)
    /// of the work, and the single fork/join keeps medium products (the NTK's per-step shapes) cheap;
    /// finer, dynamically scheduled tiles measured slower on those shapes here.
    /// </summary>
    private static unsafe void Split<T, K>(Trans ta, Trans tb, int m, int n, int k, T alpha,
        T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc, int maxThreads)
        where T : unmanaged, IFloatingPointIeee754<T>
        where K : struct, IGemmKernel<T>
    {
        int threads = Math.Min(maxThreads, Environment.ProcessorCount);
        if (threads <= 1 || (long)m * n * k < ParallelThreshold)
        {
            GemmDriver<T, K>.Serial(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
        bool splitN = SplitAlongN(m, n, k, K.MR, K.NR, threads);
        int unit = splitN ? K.NR : K.MR, length = splitN ? n : m, tiles = (length + unit - 1) / unit;
        int parts = Math.Min(threads, tiles);
        if (parts <= 1)
        {
            GemmDriver<T, K>.Serial(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
        nint ia = (nint)a, ib = (nint)b, ic = (nint)c;
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part =>
        {
            int lo = (int)((long)tiles * part / parts) * unit;
            int hi = Math.Min(length, (int)((long)tiles * (part + 1) / parts) * unit);
            T* pa = (T*)ia, pb = (T*)ib, pc = (T*)ic;
            if (splitN)
                GemmDriver<T, K>.Serial(ta, tb, m, hi - lo, k, alpha, pa, lda,
                    tb == Trans.No ? pb + lo : pb + lo * ldb, ldb, beta, pc + lo, ldc);
            else
                GemmDriver<T, K>.Serial(ta, tb, hi - lo, n, k, alpha, ta == Trans.No ? pa + lo * lda : pa + lo, lda,
                    pb, ldb, beta, pc + lo * ldc, ldc);
        });
    }

    /// <summary>
    /// Whether to split C along n (each thread re-packs all of A) rather than m (each re-packs all
    /// of B). Estimates each way's slowest thread: its share of whole tiles (a wide NR tile can
    /// leave one thread a whole tile more, e.g. 11 of 21 tiles for n = 1000, NR = 48) plus the
    /// re-packed operand (≈ 8 multiply-adds of time per element); ties go to the longer side.
    /// </summary>
    internal static bool SplitAlongN(int m, int n, int k, int mr, int nr, int threads)
    {
        if (threads <= 1) return n >= m;
        double costN = SlowestShare(n, nr, threads) * m * k + 8.0 * m * k;
        double costM = SlowestShare(m, mr, threads) * n * k + 8.0 * n * k;
        return costN < costM || (costN == costM && n >= m);
    }

    /// <summary>Columns (or rows) the busiest of <paramref name="threads"/> parts gets.</summary>
    private static double SlowestShare(int length, int unit, int threads)
    {
        int tiles = (length + unit - 1) / unit, parts = Math.Min(threads, tiles), most = 0;
        for (int part = 0; part < parts; part++) // the same cut as Split's
        {
            int lo = (int)((long)tiles * part / parts) * unit;
            int hi = Math.Min(length, (int)((long)tiles * (part + 1) / parts) * unit);
            most = Math.Max(most, hi - lo);
        }
        return most;
    }

    /// <summary>
    /// The AVX-512 routes for a narrow C (n ≤ 8, m over 8, or from 5 rows in the dot form's tree form with B transposed):
    /// returns false where the product is left to the others. With A as stored, the dot form (<see cref="Avx512NarrowDot{T}"/>,
    /// vectors along k; it changes the bits, see there and <see cref="Avx512NarrowDot{T}.TakesProduct"/>). With A transposed
    /// and m over 8, <see cref="Avx512Kernel{T}.DirectSliced"/>'s transposed narrow route
    /// (the packed path's bits) on products of any size, not only the direct path's: on the packed path a C of
    /// n ≤ L/2 columns fills at most half of each NR-wide tile. Large products are split along m across threads.
    /// Measured: see <see cref="Avx512NarrowDot{T}.Takes"/> and <see cref="NarrowPacked"/>.
    /// </summary>
    private static unsafe bool RunNarrow<T>(Trans ta, Trans tb, int m, int n, int k, T alpha,
        T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc, int maxThreads)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (n > 8 || n < 2 || !(typeof(T) == typeof(double) || typeof(T) == typeof(float))) return false;
        bool dot = Avx512NarrowDot<T>.TakesProduct(ta, tb, m, n, k);
        if (!dot && !(m > 8 && ta == Trans.Yes && !UseDirect<T>(m, n, k) && NarrowPacked
                      && Avx512Kernel<T>.NarrowC(ta, m, n, Math.Min(k, GemmDriver<T, Avx512Kernel<T>>.SliceDepth(k)))))
            return false;
        int threads = Math.Min(maxThreads, Environment.ProcessorCount);
        int parts = (long)m * n * k < ParallelThreshold ? 1 : Math.Min(threads, m / 64);
        if (parts <= 1) NarrowRows(dot, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        else NarrowParts(parts, dot, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return true;
    }

    /// <summary>
    /// <see cref="NarrowRows"/> on <paramref name="parts"/> row ranges in parallel (each element of C is computed
    /// the same way whatever the split). Its own method: the lambda's captured parameters would make every call of
    /// <see cref="RunNarrow"/> allocate their closure on entry (measured: tiny products 30 % slower).
    /// </summary>
    private static unsafe void NarrowParts<T>(int parts, bool dot, Trans ta, Trans tb, int m, int n, int k, T alpha,
        T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        nint ia = (nint)a, ib = (nint)b, ic = (nint)c;
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part =>
        {
            int lo = (int)((long)m * part / parts), hi = (int)((long)m * (part + 1) / parts);
            T* pa = (T*)ia + (ta == Trans.No ? lo * lda : lo);
            NarrowRows(dot, ta, tb, hi - lo, n, k, alpha, pa, lda, (T*)ib, ldb, beta, (T*)ic + lo * ldc, ldc);
        });
    }

    private static unsafe void NarrowRows<T>(bool dot, Trans ta, Trans tb, int m, int n, int k, T alpha,
        T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (dot) Avx512NarrowDot<T>.Run(tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        else Avx512Kernel<T>.DirectSliced(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }

    /// <summary>
    /// Whether <see cref="RunNarrow"/> takes narrow products with A transposed past the direct path (mutable for the
    /// benchmark only). Measured (% of OpenBLAS, one thread, packed → transposed route): 1347×8×232 Aᵀ·B f32 68 → 205;
    /// 2052×3×1685 Aᵀ·B f32 75 → 223, f64 118 → 230; 592×8×585 Aᵀ·Bᵀ f32 71 → 206.
    /// </summary>
    internal static bool NarrowPacked = true;

    /// <summary>
    /// Whether the AVX-512 kernel runs the product on the stored A (<see cref="Avx512Kernel{T}.DirectSliced"/>,
    /// k-slice by k-slice as the packed path cuts k, so the bits are the packed path's): at most
    /// <see cref="DirectProduct"/> multiply-adds, where packing costs a large share of the work and
    /// the operands stay in L1/L2 while they are re-read.
    /// </summary>
    internal static bool UseDirect<T>(int m, int n, int k) where T : unmanaged, IFloatingPointIeee754<T>
        => (typeof(T) == typeof(double) || typeof(T) == typeof(float))
           && (long)m * n * k <= DirectProduct;

    /// <summary>
    /// Whether a one-row product (else <see cref="GemmVector.RowResult"/>'s axpys, or <see cref="Tiny"/>) runs
    /// on the direct path: B as stored, over <see cref="TinyProduct"/> and at most 2¹⁵ elements (its FMA chains
    /// stay in registers, where the axpys re-read and re-write the row of C per p; on a larger B the axpys'
    /// memory-bound stream wins over the direct path's 4-row body, which has 3 idle rows). Measured (% of
    /// OpenBLAS, two alternating rounds, f64 / f32): 1×463×9 Aᵀ·B 18 / 13 → 53–57 / 54–59; 1×43×501 Aᵀ·B
    /// 63–81 / 76–94 → 116–117 / 252–256; 1×15×900 Aᵀ·B f32 14–19 → 68–71; 1×4×41 A·B 46–51 / 28–29 →
    /// 114–129 / 78–79; it lost at 1×894×612 (103–106 / 99–103 → 87–91 / 75) and on the tiny 1×3×6 (143 / 163 →
    /// 102 / 115). One column through the transposed narrow path lost as well (2711×1×167 A·B f32 73 → 35,
    /// 1000×1×1000 Aᵀ·B 100–110 → 73–76).
    /// </summary>
    internal static bool DirectTakesVector(Trans tb, int m, int n, int k)
        => m == 1 && tb == Trans.No && n >= 2 && (long)n * k > TinyProduct && (long)n * k <= 1 << 15;

    /// <summary>
    /// Whether the AVX-512 product runs in <see cref="GemmDot"/>'s dot / axpy form: one column of C, one row with B
    /// transposed (both ran on one thread before as well), or A·Bᵀ with few rows up to <see cref="DirectProduct"/>.
    /// </summary>
    internal static bool UseDot<T>(Trans ta, Trans tb, int m, int n, int k) where T : unmanaged, IFloatingPointIeee754<T>
        => (typeof(T) == typeof(double) || typeof(T) == typeof(float))
           && GemmDot.Takes<T>(ta, tb, m, n, k) && (n == 1 || m == 1 || (long)m * n * k <= DirectProduct);

    /// <summary>
    /// Largest m·n·k run by <see cref="Avx512Kernel{T}.Direct"/> (mutable for the benchmark's tuning
    /// only): just under the default <see cref="ParallelThreshold"/>, so every product that runs on
    /// one thread anyway skips packing, and none that could be split moves to one thread. From
    /// 2¹⁹ to 2²⁰ the direct path beat the packed one (float32 100³ 75 → 94–98 %, 8×4096×30 59 →
    /// 94–98 % of OpenBLAS).
    /// </summary>
    internal static long DirectProduct = (1L << 20) - 1;

    /// <summary>Products this small (≈ 5×5×5) finish before packing would have started: plain dot products.</summary>
    private const long TinyProduct = 128;

    private static unsafe void Tiny<T>(Trans ta, Trans tb, int m, int n, int k, T alpha,
        T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        // op(A)(i, p) = a[i·sai + p·sap], op(B)(p, j) = b[p·sbp + j·sbj].
        nint sai = ta == Trans.No ? lda : 1, sap = ta == Trans.No ? 1 : lda;
        nint sbp = tb == Trans.No ? ldb : 1, sbj = tb == Trans.No ? 1 : ldb;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                T s = T.Zero;
                for (int p = 0; p < k; p++) s += a[i * sai + p * sap] * b[p * sbp + j * sbj];
                T* cij = c + i * ldc + j;
                *cij = beta == T.Zero ? alpha * s : alpha * s + beta * *cij;
            }
    }

    private static unsafe void ScaleC<T>(int m, int n, T beta, T* c, nint ldc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < m; i++)
        {
            var row = new Span<T>(c + i * ldc, n);
            if (beta == T.Zero) row.Clear();
            else if (beta != T.One) TensorPrimitives.Multiply(row, beta, row);
        }
    }
}
