using System.Runtime.Intrinsics.X86;

namespace GlobalNtk.Dense;

/// <summary>Whether a GEMM operand is used as stored or transposed.</summary>
public enum Trans { No, Yes }

/// <summary>
/// Row-major float64 matrix multiply: <c>C = alpha·op(A)·op(B) + beta·C</c>, with op(A) m×k,
/// op(B) k×n, C m×n; <c>lda/ldb/ldc</c> are row strides in elements (so strided row sets,
/// e.g. one time step of a [trial, time, unit] array, are operands without copies).
/// </summary>
/// <remarks>
/// Implementation: packed A/B panels, cache blocking and a register-blocked FMA microkernel
/// (AVX-512 8×24, else AVX2 6×8, else scalar 4×4; see <c>GemmKernels.cs</c>); m = 1 or n = 1
/// runs as dot products / axpys instead, and tiny products (m·n·k ≤ 128) as plain loops. Products with at
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

    /// <summary>Scoped to the calling logical call, so a test forcing a kernel does not slow down concurrent tests.</summary>
    internal static readonly ScopedSetting<KernelKind> ForcedKernel = new(KernelKind.Auto);

    internal static KernelKind SelectedKernel =>
        ForcedKernel.Value is var forced && forced != KernelKind.Auto ? forced
        : Avx512F.IsSupported ? KernelKind.Avx512
        : Fma.IsSupported && Avx2.IsSupported ? KernelKind.Avx2
        : KernelKind.Scalar;

    /// <summary>C = alpha·op(A)·op(B) + beta·C (row-major, strided rows).</summary>
    /// <remarks>beta == 0 overwrites C (whatever it holds, NaN included); alpha == 0 or k == 0 only scales C.</remarks>
    /// <exception cref="ArgumentException">A size or stride is negative or too small, or a span is too short.</exception>
    public static void Multiply(Trans ta, Trans tb, int m, int n, int k, double alpha,
        ReadOnlySpan<double> a, int lda, ReadOnlySpan<double> b, int ldb, double beta, Span<double> c, int ldc)
    {
        Validate("Gemm.Multiply", ta, tb, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        if (m == 0 || n == 0) return;
        unsafe
        {
            fixed (double* pa = a, pb = b, pc = c)
                Run(SelectedKernel, ta, tb, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc, MaxDegreeOfParallelism);
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
            fixed (double* pa = a, pb = b, pc = c)
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
                        Run(kind, ta, tb, m, n, k, alpha, (double*)ia + (nint)t * strideA, lda, (double*)ib + (nint)t * strideB,
                            ldb, beta, (double*)ic + (nint)t * strideC, ldc, 1);
                });
            }
        }
    }

    private static long Remaining(int length, long offset) => Math.Max(0, length - offset);

    /// <summary>Elements spanned by a rows×cols row-major block with row stride ld (0 if empty).</summary>
    private static long Footprint(int rows, int cols, int ld) => rows == 0 || cols == 0 ? 0 : (long)(rows - 1) * ld + cols;

    private static void Validate(string who, Trans ta, Trans tb, int m, int n, int k,
        long aLength, int lda, long bLength, int ldb, long cLength, int ldc)
    {
        if (m < 0 || n < 0 || k < 0)
            throw new ArgumentException($"{who}: sizes must be non-negative (m = {m}, n = {n}, k = {k}).");
        CheckOperand(who, "A", ta, m, k, aLength, lda);
        CheckOperand(who, "B", tb, k, n, bLength, ldb);
        CheckOperand(who, "C", Trans.No, m, n, cLength, ldc);
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
    private static unsafe void Run(KernelKind kind, Trans ta, Trans tb, int m, int n, int k, double alpha,
        double* a, nint lda, double* b, nint ldb, double beta, double* c, nint ldc, int maxThreads)
    {
        if (k == 0 || alpha == 0)
        {
            ScaleC(m, n, beta, c, ldc);
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
        switch (kind)
        {
            case KernelKind.Avx512: Split<Avx512Kernel>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, maxThreads); break;
            case KernelKind.Avx2: Split<Avx2Kernel>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, maxThreads); break;
            default: Split<ScalarKernel>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, maxThreads); break;
        }
    }

    /// <summary>
    /// Below <see cref="ParallelThreshold"/> (or with one thread) runs serially; otherwise splits C
    /// into one panel per thread along the longer of m and n and runs the serial blocked algorithm on
    /// each. Each thread then re-packs only the shorter operand, which costs ~(threads−1)/max(m, n)
    /// of the work, and the single fork/join keeps medium products (the NTK's per-step shapes) cheap;
    /// finer, dynamically scheduled tiles measured slower on those shapes here.
    /// </summary>
    private static unsafe void Split<K>(Trans ta, Trans tb, int m, int n, int k, double alpha,
        double* a, nint lda, double* b, nint ldb, double beta, double* c, nint ldc, int maxThreads)
        where K : struct, IGemmKernel
    {
        bool splitN = n >= m;
        int unit = splitN ? K.NR : K.MR, length = splitN ? n : m, tiles = (length + unit - 1) / unit;
        int parts = Math.Min(Math.Min(maxThreads, Environment.ProcessorCount), tiles);
        if (parts <= 1 || (long)m * n * k < ParallelThreshold)
        {
            GemmDriver<K>.Serial(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
        nint ia = (nint)a, ib = (nint)b, ic = (nint)c;
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part =>
        {
            int lo = (int)((long)tiles * part / parts) * unit;
            int hi = Math.Min(length, (int)((long)tiles * (part + 1) / parts) * unit);
            double* pa = (double*)ia, pb = (double*)ib, pc = (double*)ic;
            if (splitN)
                GemmDriver<K>.Serial(ta, tb, m, hi - lo, k, alpha, pa, lda,
                    tb == Trans.No ? pb + lo : pb + lo * ldb, ldb, beta, pc + lo, ldc);
            else
                GemmDriver<K>.Serial(ta, tb, hi - lo, n, k, alpha, ta == Trans.No ? pa + lo * lda : pa + lo, lda,
                    pb, ldb, beta, pc + lo * ldc, ldc);
        });
    }

    /// <summary>Products this small (≈ 5×5×5) finish before packing would have started: plain dot products.</summary>
    private const long TinyProduct = 128;

    private static unsafe void Tiny(Trans ta, Trans tb, int m, int n, int k, double alpha,
        double* a, nint lda, double* b, nint ldb, double beta, double* c, nint ldc)
    {
        // op(A)(i, p) = a[i·sai + p·sap], op(B)(p, j) = b[p·sbp + j·sbj].
        nint sai = ta == Trans.No ? lda : 1, sap = ta == Trans.No ? 1 : lda;
        nint sbp = tb == Trans.No ? ldb : 1, sbj = tb == Trans.No ? 1 : ldb;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++) s += a[i * sai + p * sap] * b[p * sbp + j * sbj];
                double* cij = c + i * ldc + j;
                *cij = beta == 0 ? alpha * s : alpha * s + beta * *cij;
            }
    }

    private static unsafe void ScaleC(int m, int n, double beta, double* c, nint ldc)
    {
        for (int i = 0; i < m; i++)
        {
            var row = new Span<double>(c + i * ldc, n);
            if (beta == 0) row.Clear();
            else if (beta != 1) Numerics.Scale(row, beta);
        }
    }
}
