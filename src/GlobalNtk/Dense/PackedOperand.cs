using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace GlobalNtk.Dense;

/// <summary>
/// A right-hand GEMM operand op(B) (k × n) packed once into the microkernel's panel layout, for a
/// product repeated with the same B and a new A every time (a recurrent net's W_hh in each of its T
/// steps). <see cref="Gemm.MultiplyPacked{T}"/> then skips B's packing, a full read and write of B
/// that a product with few rows of A cannot amortise. Results are bit-identical to
/// <see cref="Gemm.Multiply(Trans, Trans, int, int, int, double, ReadOnlySpan{double}, int, ReadOnlySpan{double}, int, double, Span{double}, int)"/>
/// on the stored operand (the same k-slices and tiles) wherever that runs its blocked kernel, i.e.
/// except for a single row of A or a product of at most 128 multiply-adds, which the packed path
/// also runs through the kernel: a row's result depends only on k and the kernel, never on m.
/// </summary>
/// <remarks>
/// Holds a reference to the stored operand (which must not change afterwards) and uses it, unpacked,
/// whenever the packed form does not apply: another kernel selected (tests force each kernel on their
/// thread), or a product shape that <see cref="Gemm.Multiply(Trans, Trans, int, int, int, double, ReadOnlySpan{double}, int, ReadOnlySpan{double}, int, double, Span{double}, int)"/>
/// runs without packing.
/// </remarks>
internal sealed unsafe class PackedOperand<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly T[] _packed;
    private readonly int _offset; // elements from the array start to the 64-byte aligned packed data

    /// <summary>Packs op(B) of the stored <paramref name="b"/> (row stride <paramref name="ldb"/>) for the kernel selected now.</summary>
    public PackedOperand(Trans tb, int k, int n, T[] b, int ldb) : this(tb, k, n, b, ldb, null) { }

    /// <summary>
    /// Packs op(B) into <paramref name="storage"/> when it is given: a pinned array (never moved by the
    /// GC) of at least <see cref="StorageLength"/> elements that the caller owns and re-uses for the
    /// next operand once this one is no longer used (a product's right operand that changes per call).
    /// </summary>
    public PackedOperand(Trans tb, int k, int n, T[] b, int ldb, T[]? storage)
    {
        if (k < 1 || n < 1) throw new ArgumentException($"PackedOperand: k = {k} and n = {n} must be positive.");
        (int sr, int sc) = tb == Trans.No ? (k, n) : (n, k);
        if (ldb < sc || b.Length < (long)(sr - 1) * ldb + sc)
            throw new ArgumentException($"PackedOperand: B stored {sr}×{sc} with row stride {ldb} does not fit a span of {b.Length}.");
        Trans = tb; K = k; N = n; Source = b; Ldb = ldb;
        Kernel = Gemm.SelectedKernel;
        long length = Gemm.PackedLength<T>(Kernel, k, n);
        if (length < 0) { _packed = []; return; } // a kernel without a packed path: always the stored form
        if (storage is not null && storage.Length < length + 64 / sizeof(T))
            throw new ArgumentException($"PackedOperand: storage of {storage.Length} elements is shorter than the {length + 64 / sizeof(T)} a {k}×{n} operand needs.");
        _packed = storage ?? GC.AllocateUninitializedArray<T>(checked((int)length + 64 / sizeof(T)), pinned: true);
        nint p = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_packed));
        _offset = (int)((((p + 63) & ~(nint)63) - p) / sizeof(T));
        fixed (T* pb = b) Gemm.PackAll(Kernel, tb, pb, ldb, k, n, Data);
    }

    /// <summary>Elements of pinned storage a k × n operand needs for the kernel selected now (at least 1).</summary>
    public static long StorageLength(int k, int n) => Math.Max(1, Gemm.PackedLength<T>(Gemm.SelectedKernel, k, n) + 64 / sizeof(T));

    /// <summary>Whether B is used transposed.</summary>
    public Trans Trans { get; }
    /// <summary>Rows of op(B).</summary>
    public int K { get; }
    /// <summary>Columns of op(B).</summary>
    public int N { get; }
    /// <summary>The stored operand (never written).</summary>
    public T[] Source { get; }
    /// <summary>Row stride of <see cref="Source"/>.</summary>
    public int Ldb { get; }
    /// <summary>The kernel the panels were packed for.</summary>
    internal Gemm.KernelKind Kernel { get; }
    /// <summary>The packed panels (the array is pinned).</summary>
    internal T* Data => (T*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_packed)) + _offset;
    /// <summary>Whether the packed panels exist (false: every product uses <see cref="Source"/>).</summary>
    internal bool HasPanels => _packed.Length > 0;
}

public static partial class Gemm
{
    /// <summary>
    /// C = alpha·op(A)·op(B) + beta·C with op(B) pre-packed (<see cref="PackedOperand{T}"/>), on up to
    /// <paramref name="maxThreads"/> threads; bit-identical to <see cref="Multiply(Trans, Trans, int, int, int, double, ReadOnlySpan{double}, int, ReadOnlySpan{double}, int, double, Span{double}, int)"/> on the stored B.
    /// </summary>
    internal static unsafe void MultiplyPacked<T>(Trans ta, int m, T alpha, ReadOnlySpan<T> a, int lda,
        PackedOperand<T> b, T beta, Span<T> c, int ldc, int maxThreads)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = b.N, k = b.K;
        KernelKind kind = SelectedKernel;
        // Another kernel (or alpha = 0) uses the stored B. Every other shape, thin or tiny ones
        // included, runs the packed kernel, so a row's result never depends on how many rows are
        // multiplied with it: a caller may split the rows of A any way and get the same bits.
        if (!b.HasPanels || kind != b.Kernel || alpha == T.Zero)
        {
            Validate("Gemm.MultiplyPacked", ta, b.Trans, m, n, k, a.Length, lda, b.Source.Length, b.Ldb, c.Length, ldc);
            if (m == 0) return;
            fixed (T* pa = a, pb = b.Source, pc = c)
                Run(kind, ta, b.Trans, m, n, k, alpha, pa, lda, pb, b.Ldb, beta, pc, ldc, maxThreads);
            return;
        }
        Validate("Gemm.MultiplyPacked", ta, b.Trans, m, n, k, a.Length, lda, long.MaxValue, b.Ldb, c.Length, ldc);
        fixed (T* pa = a, pc = c)
        {
            if (typeof(T) != typeof(double) && typeof(T) != typeof(float))
                throw new NotSupportedException($"GEMM in {typeof(T).Name} is not available (float64 and float32 only).");
            switch (kind)
            {
                case KernelKind.Avx512: SplitPacked<T, Avx512Kernel<T>>(ta, m, n, k, alpha, pa, lda, b, beta, pc, ldc, maxThreads); break;
                case KernelKind.Avx2: SplitPacked<T, Avx2Kernel<T>>(ta, m, n, k, alpha, pa, lda, b, beta, pc, ldc, maxThreads); break;
                default: SplitPacked<T, ScalarKernel<T>>(ta, m, n, k, alpha, pa, lda, b, beta, pc, ldc, maxThreads); break;
            }
        }
    }

    /// <summary>Elements of the packed form of a k × n operand for <paramref name="kind"/> (−1: no packed path for T).</summary>
    internal static long PackedLength<T>(KernelKind kind, int k, int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) != typeof(double) && typeof(T) != typeof(float)) return -1;
        return kind switch
        {
            KernelKind.Avx512 => GemmDriver<T, Avx512Kernel<T>>.PackedLength(k, n),
            KernelKind.Avx2 => GemmDriver<T, Avx2Kernel<T>>.PackedLength(k, n),
            _ => GemmDriver<T, ScalarKernel<T>>.PackedLength(k, n),
        };
    }

    /// <summary>Packs op(B) for <paramref name="kind"/> into <paramref name="dst"/> (<see cref="PackedLength{T}"/> elements).</summary>
    internal static unsafe void PackAll<T>(KernelKind kind, Trans tb, T* b, nint ldb, int k, int n, T* dst) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) != typeof(double) && typeof(T) != typeof(float)) return;
        switch (kind)
        {
            case KernelKind.Avx512: GemmDriver<T, Avx512Kernel<T>>.PackAll(tb, b, ldb, k, n, dst); break;
            case KernelKind.Avx2: GemmDriver<T, Avx2Kernel<T>>.PackAll(tb, b, ldb, k, n, dst); break;
            default: GemmDriver<T, ScalarKernel<T>>.PackAll(tb, b, ldb, k, n, dst); break;
        }
    }

    /// <summary>
    /// Splits a pre-packed product over threads. Along m no thread re-packs anything (B is packed
    /// already), so m is preferred whenever its MR tiles balance no worse than n's NR tiles plus the
    /// per-thread re-packing of A.
    /// </summary>
    private static unsafe void SplitPacked<T, K>(Trans ta, int m, int n, int k, T alpha, T* a, nint lda,
        PackedOperand<T> b, T beta, T* c, nint ldc, int maxThreads)
        where T : unmanaged, IFloatingPointIeee754<T>
        where K : struct, IGemmKernel<T>
    {
        int threads = Math.Min(maxThreads, Environment.ProcessorCount);
        T* packed = b.Data;
        if (threads <= 1 || (long)m * n * k < ParallelThreshold)
        {
            GemmDriver<T, K>.SerialPacked(ta, m, n, k, alpha, a, lda, packed, n, 0, beta, c, ldc);
            return;
        }
        double costM = SlowestShare(m, K.MR, threads) * n * k;
        double costN = SlowestShare(n, K.NR, threads) * m * k + 8.0 * m * k;
        bool splitN = costN < costM;
        int unit = splitN ? K.NR : K.MR, length = splitN ? n : m, tiles = (length + unit - 1) / unit;
        int parts = Math.Min(threads, tiles);
        if (parts <= 1)
        {
            GemmDriver<T, K>.SerialPacked(ta, m, n, k, alpha, a, lda, packed, n, 0, beta, c, ldc);
            return;
        }
        nint ia = (nint)a, ic = (nint)c, ip = (nint)packed;
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part =>
        {
            int lo = (int)((long)tiles * part / parts) * unit;
            int hi = Math.Min(length, (int)((long)tiles * (part + 1) / parts) * unit);
            T* pa = (T*)ia, pc = (T*)ic, pp = (T*)ip;
            if (splitN)
                GemmDriver<T, K>.SerialPacked(ta, m, hi - lo, k, alpha, pa, lda, pp, n, lo, beta, pc + lo, ldc);
            else
                GemmDriver<T, K>.SerialPacked(ta, hi - lo, n, k, alpha, ta == Trans.No ? pa + lo * lda : pa + lo, lda, pp, n, 0, beta, pc + lo * ldc, ldc);
        });
    }
}
