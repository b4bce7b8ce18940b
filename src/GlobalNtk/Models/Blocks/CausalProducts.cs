using System.Numerics;
using GlobalNtk.Dense;

namespace GlobalNtk.Models.Blocks;

/// <summary>
/// The per-head products of causal attention restricted to the unmasked half: an n×n matrix L
/// whose entries with column u &gt; row t are masked (scores) or zero (probabilities and their
/// tangents) is only ever computed and read on its <em>causal region</em>, the row blocks
/// [t₀, t₁) of <c>tile</c> rows times their column prefixes [0, t₁). Each product is one
/// <see cref="Gemm"/> call per row block (or per column block for Lᵀ), on the rectangular prefix
/// (or suffix), so no kernel of its own is needed; the work is about n²/2 + n·tile/2 of the n²
/// of the dense product.
/// </summary>
/// <remarks>
/// Contract for an input L: inside the region, the entries above the diagonal (in the diagonal
/// tiles) are zero; outside it L is never read. An output L is written only inside the region
/// (its entries above the diagonal get α·(the unmasked formula), which the caller zeroes or
/// overwrites). Sums: every entry of a product is the kernel's chain of fused multiply-adds over
/// the same nonzero terms, in the same order, as the dense product that also adds the masked
/// zeros, so the float64 and float32 results equal the dense ones bit for bit up to the kernel's
/// k-slice boundaries (one slice for k ≤ KC, which holds for the attention shapes).
/// With n ≤ tile there is one block, and each product is the dense call.
/// </remarks>
internal static class CausalProducts
{
    /// <summary>
    /// Rows per block for n tokens: 16 (two of the GEMM kernel's 8-row tiles, ~0.58 of the dense
    /// work at n = 100), or the whole matrix below 24 rows, where the saving would not pay for the
    /// extra calls.
    /// </summary>
    public static int TileFor(int n) => n < 24 ? n : 16;

    /// <summary>The end (exclusive) of row <paramref name="t"/>'s column prefix in the causal region.</summary>
    public static int RowEnd(int t, int n, int tile) => Math.Min(n, (t / tile + 1) * tile);

    /// <summary>
    /// C = α·A·Bᵀ + β·C on the causal region of the n×n C, for the n×k A and B given transposed:
    /// <paramref name="bt"/> = Bᵀ stored k×n (see <see cref="Transpose"/>), so that each row block
    /// reads its column prefix in place (a transposed B would be packed again for every block).
    /// </summary>
    public static void ABt<T>(int n, int k, int tile, T alpha, ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> bt, int ldbt,
        T beta, Span<T> c, int ldc) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int t0 = 0; t0 < n; t0 += tile)
        {
            int t1 = Math.Min(n, t0 + tile);
            GemmGeneric.Multiply(Trans.No, Trans.No, t1 - t0, t1, k, alpha, a[(t0 * lda)..], lda, bt, ldbt, beta, c[(t0 * ldc)..], ldc);
        }
    }

    /// <summary>dst (k×n, row stride n) = the transpose of the n×k <paramref name="src"/> (row stride <paramref name="lds"/>).</summary>
    public static void Transpose<T>(int n, int k, ReadOnlySpan<T> src, int lds, Span<T> dst) where T : unmanaged
    {
        for (int t = 0; t < n; t++)
        {
            var row = src.Slice(t * lds, k);
            for (int i = 0; i < k; i++) dst[i * n + t] = row[i];
        }
    }

    /// <summary>C = α·L·B + β·C for the n×n causal L (region contract above) and the n×m B.</summary>
    public static void LB<T>(int n, int m, int tile, T alpha, ReadOnlySpan<T> l, int ldl, ReadOnlySpan<T> b, int ldb,
        T beta, Span<T> c, int ldc) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int t0 = 0; t0 < n; t0 += tile)
        {
            int t1 = Math.Min(n, t0 + tile);
            GemmGeneric.Multiply(Trans.No, Trans.No, t1 - t0, m, t1, alpha, l[(t0 * ldl)..], ldl, b, ldb, beta, c[(t0 * ldc)..], ldc);
        }
    }

    /// <summary>
    /// C = α·Lᵀ·B + β·C for the n×n causal L and the n×m B: column block [u₀, u₁) of L has its
    /// nonzeros in rows u₀ … n − 1, so C's rows u₀ … u₁ − 1 read only those rows of L and B.
    /// </summary>
    public static void LtB<T>(int n, int m, int tile, T alpha, ReadOnlySpan<T> l, int ldl, ReadOnlySpan<T> b, int ldb,
        T beta, Span<T> c, int ldc) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int u0 = 0; u0 < n; u0 += tile)
        {
            int u1 = Math.Min(n, u0 + tile);
            GemmGeneric.Multiply(Trans.Yes, Trans.No, u1 - u0, m, n - u0, alpha, l[(u0 * ldl + u0)..], ldl, b[(u0 * ldb)..], ldb,
                beta, c[(u0 * ldc)..], ldc);
        }
    }
}
