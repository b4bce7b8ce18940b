using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GlobalNtk.Dense;

/// <summary>
/// AVX2/FMA kernel in either precision, for CPUs without AVX-512: 6 rows × 2 vectors (8 float64 or
/// 16 float32 columns) = 12 ymm accumulators + 2 B vectors + 1 broadcast (of 16 registers).
/// Accumulation is in T, as in BLAS.
/// </summary>
/// <remarks>
/// One loop body (<c>Tile</c>) serves every use, compiled by the JIT once per variant, which a struct
/// type argument (<see cref="IAvx2Tile"/>) selects: full packed tiles; tiles cut by the edges of C
/// (the last vector under a lane mask, only the rows inside C stored, a 3-row body for at most 3
/// rows), written straight into C; and tiles that read an untransposed A where it is stored
/// (<see cref="MultiplyStoredA"/>: no packing of A, which for a product with few columns costs as
/// much memory traffic as the multiply-adds). Each element of C is the same chain of fused
/// multiply-adds over the k-slice in all of them, with the same α/β epilogue, so a product's bits do
/// not depend on the path.
/// </remarks>
internal unsafe struct Avx2Kernel<T> : IGemmKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public static int MR => 6;
    public static int NR => 2 * Vector256<T>.Count;
    public static int KC => 256;
    // The B̄ block KC·NC is what the panels stream from: 1 MiB in float64 (512 KiB lost 4–8 points on
    // 1000² and 2000² products, in two runs on the 2 MiB-L2 machine it was tuned on), 512 KiB in float32
    // (1 MiB was within the noise there, and most AVX2-only CPUs have 256 KiB – 1 MiB of L2); 256 KiB
    // blocks lost 5–10 points in both. MC, rows of A per pass, bounds the Ā buffer of a transposed A;
    // 252–504 rows lost 5–25 points on Aᵀ products (the pack then reads short runs of A's rows).
    public static int MC => typeof(T) == typeof(float) ? 4096 : 2048;
    public static int NC => 512;

    public static void Compute(int kc, T* a, T* b, T* c, nint ldc, T alpha, T beta) =>
        Tile<Avx2Full>(kc, a, 0, b, c, ldc, alpha, beta, 0, 6);

    /// <summary>
    /// A packed tile cut by the edges of C (<paramref name="rows"/> ≤ 6, <paramref name="cols"/> ≤ NR),
    /// written straight into C: only the vectors that hold columns of C are computed, the last one
    /// under a lane mask, only the rows inside C are stored, and at most 3 rows run a 3-row body.
    /// </summary>
    public static bool TryComputeEdge(int kc, T* a, T* b, T* c, nint ldc, T alpha, T beta, int rows, int cols)
    {
        if (rows <= 3) Cut<Avx2Rows3<Avx2Cut2>, Avx2Rows3<Avx2Cut1M>, Avx2Rows3<Avx2Cut2M>>(kc, a, 0, b, c, ldc, alpha, beta, rows, cols);
        else Cut<Avx2Cut2, Avx2Cut1M, Avx2Cut2M>(kc, a, 0, b, c, ldc, alpha, beta, rows, cols);
        return true;
    }

    public static bool MultipliesStoredA => true;

    /// <summary>
    /// The driver's blocks with A as stored: 6 rows of A (A(i, p) = a[i·lda + p]) are broadcast from
    /// their rows while the packed B̄ block's panels stream past them, so they stay in L1.
    /// </summary>
    public static void MultiplyStoredA(int m, int nc, int kc, T alpha, T* a, nint lda, T* pb, T beta, T* c, nint ldc)
    {
        int nr = NR;
        for (int i0 = 0; i0 < m; i0 += 6)
        {
            int rows = Math.Min(6, m - i0);
            T* ai = a + i0 * lda, ci = c + i0 * ldc;
            for (int j0 = 0; j0 < nc; j0 += nr)
            {
                int cols = Math.Min(nr, nc - j0);
                T* bj = pb + (nint)j0 * kc;
                if (rows <= 3) Cut<Avx2Rows3<Avx2Stored2>, Avx2Rows3<Avx2Stored1M>, Avx2Rows3<Avx2Stored2M>>(kc, ai, lda, bj, ci + j0, ldc, alpha, beta, rows, cols);
                else Cut<Avx2Stored2, Avx2Stored1M, Avx2Stored2M>(kc, ai, lda, bj, ci + j0, ldc, alpha, beta, rows, cols);
            }
        }
    }

    /// <summary>Picks the variant for a tile of <paramref name="cols"/> columns: whole vectors, or the last under a mask.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Cut<SWhole, SEdge1, SEdge2>(int kc, T* a, nint lda, T* b, T* c, nint ldc, T alpha, T beta, int rows, int cols)
        where SWhole : struct, IAvx2Tile where SEdge1 : struct, IAvx2Tile where SEdge2 : struct, IAvx2Tile
    {
        int l = Vector256<T>.Count;
        if (cols >= 2 * l) Tile<SWhole>(kc, a, lda, b, c, ldc, alpha, beta, 0, rows);
        else if (cols <= l) Tile<SEdge1>(kc, a, lda, b, c, ldc, alpha, beta, cols, rows);
        else Tile<SEdge2>(kc, a, lda, b, c, ldc, alpha, beta, cols - l, rows);
    }

    /// <summary>
    /// C[0:rows, 0:(nv−1)·L + last] = alpha·Σ_p A(:, p)·B̄(p, :) + beta·C over p &lt; kc, B̄ a packed
    /// NR-column panel (row p at b + p·NR). <typeparamref name="S"/> selects the variant: nv =
    /// <see cref="IAvx2Tile.Vectors"/> vectors per row; masked: the last vector holds only
    /// <paramref name="last"/> columns of C; stored A: A(r, p) = a[r·lda + p] (rows ≥
    /// <paramref name="rows"/> repeat the last row's broadcasts, so the loop has no branches), else a
    /// packed 6-row panel (A(r, p) = a[6p + r], zero past the edge).
    /// </summary>
    private static void Tile<S>(int kc, T* a, nint lda, T* b, T* c, nint ldc, T alpha, T beta, int last, int rows)
        where S : struct, IAvx2Tile
    {
        // The variant is a type argument, so the JIT compiles each one with its constants folded.
        int l = Vector256<T>.Count, nr = 2 * l, nv = S.Vectors;
        bool masked = S.Masked, stored = S.StoredA, three = S.Rows == 3;
        if (S.Full) rows = 6;
        nint o1 = stored ? Row(1, rows, lda) : 1, o2 = stored ? Row(2, rows, lda) : 2;
        nint o3 = stored ? Row(3, rows, lda) : 3, o4 = stored ? Row(4, rows, lda) : 4, o5 = stored ? Row(5, rows, lda) : 5;
        nint aps = stored ? 1 : 6;
        Vector256<T> mask = masked ? LaneMask(last) : default;
        // Fetch the C tile while the k-loop runs (its lines would otherwise stall the store phase).
        for (int r = 0; r < rows; r++)
        {
            T* cr = c + r * ldc;
            Sse.Prefetch0(cr);
            if (nv > 1) Sse.Prefetch0(cr + l);
        }
        Vector256<T> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<T> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        // The loop runs on B̄'s pointer alone (no counter): one more general register for A's row offsets.
        for (T* bEnd = b + kc * nr; b < bEnd; b += nr)
        {
            Vector256<T> b0 = Vector256.Load(b);
            Vector256<T> b1 = nv > 1 ? Vector256.Load(b + l) : default;
            Vector256<T> x = Vector256.Create(a[0]);
            c00 = Fma(x, b0, c00);
            if (nv > 1) c01 = Fma(x, b1, c01);
            x = Vector256.Create(a[o1]);
            c10 = Fma(x, b0, c10);
            if (nv > 1) c11 = Fma(x, b1, c11);
            x = Vector256.Create(a[o2]);
            c20 = Fma(x, b0, c20);
            if (nv > 1) c21 = Fma(x, b1, c21);
            if (!three)
            {
                x = Vector256.Create(a[o3]);
                c30 = Fma(x, b0, c30);
                if (nv > 1) c31 = Fma(x, b1, c31);
                x = Vector256.Create(a[o4]);
                c40 = Fma(x, b0, c40);
                if (nv > 1) c41 = Fma(x, b1, c41);
                x = Vector256.Create(a[o5]);
                c50 = Fma(x, b0, c50);
                if (nv > 1) c51 = Fma(x, b1, c51);
            }
            a += aps;
        }
        Vector256<T> va = Vector256.Create(alpha), vb = Vector256.Create(beta);
        bool beta0 = beta == T.Zero;
        PutRow(c, c00, c01, va, vb, beta0, nv, masked, mask);
        if (rows > 1) PutRow(c + ldc, c10, c11, va, vb, beta0, nv, masked, mask);
        if (rows > 2) PutRow(c + 2 * ldc, c20, c21, va, vb, beta0, nv, masked, mask);
        if (three) return;
        if (rows > 3) PutRow(c + 3 * ldc, c30, c31, va, vb, beta0, nv, masked, mask);
        if (rows > 4) PutRow(c + 4 * ldc, c40, c41, va, vb, beta0, nv, masked, mask);
        if (rows > 5) PutRow(c + 5 * ldc, c50, c51, va, vb, beta0, nv, masked, mask);
    }

    /// <summary>Offset of row r's broadcasts: rows past the last valid one repeat it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static nint Row(int r, int rows, nint lda) => (r < rows ? r : rows - 1) * lda;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PutRow(T* c, Vector256<T> x0, Vector256<T> x1, Vector256<T> va, Vector256<T> vb,
        bool beta0, int nv, bool masked, Vector256<T> mask)
    {
        Put(c, x0, va, vb, beta0, masked && nv == 1, mask);
        if (nv > 1) Put(c + Vector256<T>.Count, x1, va, vb, beta0, masked, mask);
    }

    /// <summary>C segment = alpha·acc (+ beta·C, fused as alpha·acc + (beta·C)); under <paramref name="mask"/> when <paramref name="masked"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(T* c, Vector256<T> acc, Vector256<T> va, Vector256<T> vb, bool beta0, bool masked, Vector256<T> mask)
    {
        if (!masked)
        {
            if (beta0) Vector256.Store(va * acc, c);
            else Vector256.Store(Fma(va, acc, vb * Vector256.Load(c)), c);
        }
        else
        {
            if (beta0) MaskStore(c, mask, va * acc);
            else MaskStore(c, mask, Fma(va, acc, vb * MaskLoad(c, mask)));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<T> Fma(Vector256<T> x, Vector256<T> y, Vector256<T> z)
    {
        if (typeof(T) == typeof(double)) return System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(x.AsDouble(), y.AsDouble(), z.AsDouble()).As<double, T>();
        if (typeof(T) == typeof(float)) return System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(x.AsSingle(), y.AsSingle(), z.AsSingle()).As<float, T>();
        throw new NotSupportedException();
    }

    /// <summary>All ones in the first <paramref name="count"/> lanes (1 ≤ count ≤ L).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<T> LaneMask(int count)
    {
        if (typeof(T) == typeof(double)) return Vector256.LessThan(Vector256<long>.Indices, Vector256.Create((long)count)).As<long, T>();
        if (typeof(T) == typeof(float)) return Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(count)).As<int, T>();
        throw new NotSupportedException();
    }

    /// <summary>Loads the masked lanes (zero elsewhere); masked-off lanes are not read.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<T> MaskLoad(T* p, Vector256<T> mask)
    {
        if (typeof(T) == typeof(double)) return Avx.MaskLoad((double*)p, mask.AsDouble()).As<double, T>();
        if (typeof(T) == typeof(float)) return Avx.MaskLoad((float*)p, mask.AsSingle()).As<float, T>();
        throw new NotSupportedException();
    }

    /// <summary>Stores the masked lanes; masked-off lanes are not written.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MaskStore(T* p, Vector256<T> mask, Vector256<T> x)
    {
        if (typeof(T) == typeof(double)) Avx.MaskStore((double*)p, mask.AsDouble(), x.AsDouble());
        else if (typeof(T) == typeof(float)) Avx.MaskStore((float*)p, mask.AsSingle(), x.AsSingle());
        else throw new NotSupportedException();
    }
}

/// <summary>Compile-time choice of an <see cref="Avx2Kernel{T}"/> tile variant.</summary>
internal interface IAvx2Tile
{
    /// <summary>Vectors of C per row (1 or 2).</summary>
    static abstract int Vectors { get; }
    /// <summary>The last vector is cut by the right edge of C (masked stores, and loads of C).</summary>
    static abstract bool Masked { get; }
    /// <summary>A read where it is stored (row stride lda, any row count) rather than from a packed panel.</summary>
    static abstract bool StoredA { get; }
    /// <summary>A whole packed tile: all 6 rows stored (a constant for the JIT).</summary>
    static virtual bool Full => false;
    /// <summary>Rows the body multiplies: 6, or 3 for a tile of at most 3 rows.</summary>
    static virtual int Rows => 6;
}

/// <summary><typeparamref name="S"/> with a 3-row body (rows 3–5 neither multiplied nor stored).</summary>
internal struct Avx2Rows3<S> : IAvx2Tile where S : struct, IAvx2Tile
{
    public static int Vectors => S.Vectors;
    public static bool Masked => S.Masked;
    public static bool StoredA => S.StoredA;
    public static int Rows => 3;
}

internal struct Avx2Full : IAvx2Tile { public static int Vectors => 2; public static bool Masked => false; public static bool StoredA => false; public static bool Full => true; }
internal struct Avx2Cut2 : IAvx2Tile { public static int Vectors => 2; public static bool Masked => false; public static bool StoredA => false; }
internal struct Avx2Cut1M : IAvx2Tile { public static int Vectors => 1; public static bool Masked => true; public static bool StoredA => false; }
internal struct Avx2Cut2M : IAvx2Tile { public static int Vectors => 2; public static bool Masked => true; public static bool StoredA => false; }
internal struct Avx2Stored2 : IAvx2Tile { public static int Vectors => 2; public static bool Masked => false; public static bool StoredA => true; }
internal struct Avx2Stored1M : IAvx2Tile { public static int Vectors => 1; public static bool Masked => true; public static bool StoredA => true; }
internal struct Avx2Stored2M : IAvx2Tile { public static int Vectors => 2; public static bool Masked => true; public static bool StoredA => true; }
