using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

using static GlobalNtk.Dense.Avx512Lanes;

namespace GlobalNtk.Dense;

/// <summary>
/// AVX-512 products of depth 1 or 2 with B transposed and few rows: C = alpha·Σ_{p&lt;k} op(A)(:, p)·op(B)(p, :) + beta·C,
/// one or two outer products, vectors along n (a row of C at a time, op(A)(i, p) broadcast). With B transposed, row
/// p of op(B) is column p of the stored B (stride ldb): copied once into contiguous vectors unless it already is one.
/// </summary>
/// <remarks>
/// Bits: the packed path's (<see cref="Avx512Kernel{T}"/>): its accumulator starts at zero and takes p = 0, 1 by fused
/// multiply-adds, s = fma(a₁, b₁, fma(a₀, b₀, 0)) (the fma with +0, not a product, so that a −0 product gives +0 as
/// there), then C = alpha·s (beta = 0, C not read) or fma(alpha, s, beta·C), as its epilogue.
/// Why: at k ≤ 2 the packed and direct paths spend their time packing and in per-tile overheads for one or two
/// multiply-adds per element of C; here each element costs one or two FMAs and its store, four rows of C per load of
/// B. Measured (% of OpenBLAS, one thread, f64 / f32, off → on, medians of alternated rounds): 6×695×1 A·Bᵀ 70 / 55 →
/// 204 / 264, 4×325×2 A·Bᵀ 82 / 71 → 188 / 146, 7×368×1 Aᵀ·Bᵀ 53 / 86 → 154 / 286, 2×2000×2 Aᵀ·Bᵀ 50 / 63 → 126 / 143,
/// 32×500×2 A·Bᵀ 122 / 123 → 184 / 170, 16×40×2 Aᵀ·Bᵀ 56 / 165 → 100 / 210, 20×3000×1 96 / 86 → 156 / 208, 8×64×2
/// 115 / 104 → 226 / 233, 2×8×1 256 / 254 → 396 / 380; the 160-shape sweep (three rounds each) 121.3 / 132.9 →
/// 123.7 / 135.3 % geometric mean, no shape it takes slower. With B as stored (rows of op(B) in place) it lost to the
/// direct path's shallow kernel (64×64×2 A·B 126 → 56, 236×1510×2 86 → 61, one row per pass), so it stays off there.
/// </remarks>
internal static unsafe class GemmOuter
{
    /// <summary>Whether the route runs at all (mutable for the benchmark's A/B only).</summary>
    internal static bool Enabled = true;

    /// <summary>Most rows of C (more: the direct path's tiles amortise their setup; a tuning knob).</summary>
    internal static int MaxRows = 32;

    /// <summary>Least columns of C (fewer: most lanes of the row vector idle; a tuning knob).</summary>
    internal static int MinColumns = 8;

    /// <summary>Whether <see cref="Run{T}"/> takes the product (AVX-512 only): k ≤ 2, B transposed, 2 ≤ m ≤ <see cref="MaxRows"/>, n ≥ <see cref="MinColumns"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Takes(Trans tb, int m, int n, int k)
        => k <= 2 && tb == Trans.Yes && m >= 2 && m <= MaxRows && n >= MinColumns && Enabled;

    /// <summary>Below this many elements per copied column of B the copy lives on the stack, not in a rented buffer.</summary>
    private const int StackColumn = 2048;

    /// <summary>C = alpha·op(A)·Bᵀ + beta·C for 1 ≤ k ≤ 2 (alpha ≠ 0); beta = 0 never reads C.</summary>
    [SkipLocalsInit]
    public static void Run<T>(Trans ta, int m, int n, int k, T alpha, T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        // op(B)(p, j) = b[j·ldb + p]: contiguous along j only for k = 1 with ldb = 1.
        if (k == 1 && ldb == 1)
        {
            Rows(ta, m, n, k, alpha, a, lda, b, b, beta, c, ldc);
            return;
        }
        if (n <= StackColumn)
        {
            T* cols = stackalloc T[k * n];
            Columns(n, k, b, ldb, cols);
            Rows(ta, m, n, k, alpha, a, lda, cols, cols + (k - 1) * n, beta, c, ldc);
            return;
        }
        var buffers = GemmBuffers<T>.Rent();
        try
        {
            T* cols = buffers.PackB(k * n);
            Columns(n, k, b, ldb, cols);
            Rows(ta, m, n, k, alpha, a, lda, cols, cols + (k - 1) * n, beta, c, ldc);
        }
        finally
        {
            GemmBuffers<T>.Return(buffers);
        }
    }

    /// <summary>The k columns of the stored B (n × k, stride ldb) as k contiguous rows of n.</summary>
    private static void Columns<T>(int n, int k, T* b, nint ldb, T* cols) where T : unmanaged
    {
        if (k == 1)
        {
            for (int j = 0; j < n; j++) cols[j] = b[j * ldb];
            return;
        }
        T* c1 = cols + n;
        for (int j = 0; j < n; j++)
        {
            cols[j] = b[j * ldb];
            c1[j] = b[j * ldb + 1];
        }
    }

    /// <summary>
    /// Each row i of C from op(A)(i, 0..k−1) broadcast against the rows b0 (and b1 for k = 2) of op(B), four rows of C
    /// per pass (each vector of B loaded once for them).
    /// </summary>
    private static void Rows<T>(Trans ta, int m, int n, int k, T alpha, T* a, nint lda, T* b0, T* b1, T beta, T* c, nint ldc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        // op(A)(i, p) = a[i·lda + p] (No) or a[p·lda + i] (Yes).
        nint si = ta == Trans.No ? lda : 1, sp = ta == Trans.No ? 1 : lda;
        int i = 0;
        for (; i + 4 <= m; i += 4) Block<T, C4>(n, k, alpha, a + i * si, si, sp, b0, b1, beta, c + i * ldc, ldc);
        switch (m - i)
        {
            case 3: Block<T, C3>(n, k, alpha, a + i * si, si, sp, b0, b1, beta, c + i * ldc, ldc); break;
            case 2: Block<T, C2>(n, k, alpha, a + i * si, si, sp, b0, b1, beta, c + i * ldc, ldc); break;
            case 1: Block<T, C1>(n, k, alpha, a + i * si, si, sp, b0, b1, beta, c + i * ldc, ldc); break;
        }
    }

    /// <summary>R rows of C (row r: op(A)(r, ·) at a + r·si, p apart by sp), whole vectors along n, then a masked one.</summary>
    private static void Block<T, R>(int n, int k, T alpha, T* a, nint si, nint sp, T* b0, T* b1, T beta, T* c, nint ldc)
        where T : unmanaged, IFloatingPointIeee754<T> where R : struct, ICount
    {
        int nr = R.Count, l = Vector512<T>.Count, whole = n - n % l;
        bool two = k == 2;
        Vector512<T> x00 = X(a, sp, two, 0), x01 = X(a, sp, two, 1);
        Vector512<T> x10 = nr > 1 ? X(a + si, sp, two, 0) : default, x11 = nr > 1 ? X(a + si, sp, two, 1) : default;
        Vector512<T> x20 = nr > 2 ? X(a + 2 * si, sp, two, 0) : default, x21 = nr > 2 ? X(a + 2 * si, sp, two, 1) : default;
        Vector512<T> x30 = nr > 3 ? X(a + 3 * si, sp, two, 0) : default, x31 = nr > 3 ? X(a + 3 * si, sp, two, 1) : default;
        Vector512<T> va = Vector512.Create(alpha), vb = Vector512.Create(beta), mask = Vector512<T>.AllBitsSet;
        bool beta0 = beta == T.Zero;
        for (int j = 0, end = whole; ; end = n, mask = LaneMask<T>(n - whole))
        {
            for (; j < end; j += l)
            {
                // Whole vectors under an all-lanes mask, then the last, partial one: one step, written once.
                Vector512<T> y0 = MaskLoad(b0 + j, mask), y1 = two ? MaskLoad(b1 + j, mask) : default;
                Put(Sum(x00, x01, y0, y1, two), va, vb, beta0, c + j, mask);
                if (nr > 1) Put(Sum(x10, x11, y0, y1, two), va, vb, beta0, c + ldc + j, mask);
                if (nr > 2) Put(Sum(x20, x21, y0, y1, two), va, vb, beta0, c + 2 * ldc + j, mask);
                if (nr > 3) Put(Sum(x30, x31, y0, y1, two), va, vb, beta0, c + 3 * ldc + j, mask);
            }
            if (end == n) break;
        }
    }

    /// <summary>op(A)(r, p) broadcast (zero for p = 1 of a k = 1 product).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> X<T>(T* ar, nint sp, bool two, int p) where T : unmanaged, IFloatingPointIeee754<T>
        => p == 0 ? Vector512.Create(ar[0]) : Vector512.Create(two ? ar[sp] : T.Zero);

    /// <summary>The packed path's accumulator: fma(x₁, y₁, fma(x₀, y₀, 0)) (the first with +0, as there).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Sum<T>(Vector512<T> x0, Vector512<T> x1, Vector512<T> y0, Vector512<T> y1, bool two) where T : unmanaged
    {
        Vector512<T> s = Fma(x0, y0, Vector512<T>.Zero);
        return two ? Fma(x1, y1, s) : s;
    }

    /// <summary>The packed path's epilogue on the masked lanes: alpha·s (beta = 0, C not read) or fma(alpha, s, beta·C).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put<T>(Vector512<T> s, Vector512<T> va, Vector512<T> vb, bool beta0, T* c, Vector512<T> mask)
        where T : unmanaged, IFloatingPointIeee754<T>
        => MaskStore(c, mask, beta0 ? va * s : Fma(va, s, vb * MaskLoad(c, mask)));
}
