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
/// multiply-adds per element of C; here each element costs one or two FMAs and its store. Measured (% of OpenBLAS, one
/// thread, f64 / f32, off → on, medians of three alternated rounds): 6×695×1 A·Bᵀ 84 / 56 → 190 / 330, 4×325×2 A·Bᵀ
/// 86 / 69 → 176 / 148, 7×368×1 Aᵀ·Bᵀ 64 / 68 → 165 / 348, 3×19×1 Aᵀ·Bᵀ 116 / 184 → 202 / 361, 2×2000×2 Aᵀ·Bᵀ
/// 47 / 62 → 133 / 141, 32×500×2 A·Bᵀ 122 / 124 → 155 / 128, 8×64×2 116 / 103 → 209 / 223, 2×8×1 253 / 254 → 430 / 353;
/// the 160-shape sweep's geometric mean 124.0 / 134.1 → 125.9 / 139.1 %.
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

    /// <summary>Each row i of C from op(A)(i, 0..k−1) broadcast against the rows b0 (and b1 for k = 2) of op(B).</summary>
    private static void Rows<T>(Trans ta, int m, int n, int k, T alpha, T* a, nint lda, T* b0, T* b1, T beta, T* c, nint ldc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        // op(A)(i, p) = a[i·lda + p] (No) or a[p·lda + i] (Yes).
        nint si = ta == Trans.No ? lda : 1, sp = ta == Trans.No ? 1 : lda;
        int l = Vector512<T>.Count, whole = n - n % l;
        Vector512<T> va = Vector512.Create(alpha), vb = Vector512.Create(beta), tailMask = LaneMask<T>(n - whole);
        bool beta0 = beta == T.Zero;
        for (int i = 0; i < m; i++, c += ldc)
        {
            T* ai = a + i * si;
            Vector512<T> x0 = Vector512.Create(ai[0]), x1 = Vector512.Create(k == 2 ? ai[sp] : T.Zero);
            int j = 0;
            for (; j < whole; j += l)
            {
                Vector512<T> s = Fma(x0, Vector512.Load(b0 + j), Vector512<T>.Zero);
                if (k == 2) s = Fma(x1, Vector512.Load(b1 + j), s);
                Vector512.Store(beta0 ? va * s : Fma(va, s, vb * Vector512.Load(c + j)), c + j);
            }
            if (j < n)
            {
                Vector512<T> s = Fma(x0, MaskLoad(b0 + j, tailMask), Vector512<T>.Zero);
                if (k == 2) s = Fma(x1, MaskLoad(b1 + j, tailMask), s);
                MaskStore(c + j, tailMask, beta0 ? va * s : Fma(va, s, vb * MaskLoad(c + j, tailMask)));
            }
        }
    }
}
