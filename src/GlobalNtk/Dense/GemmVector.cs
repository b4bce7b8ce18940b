using System.Numerics;
using System.Numerics.Tensors;

namespace GlobalNtk.Dense;

/// <summary>
/// Matrix–vector products (m = 1 or n = 1): a packed microkernel would waste MR−1 rows or NR−1
/// columns of every tile, so these run as dots / axpys over the stored rows (memory-bound anyway). With AVX-512,
/// <see cref="GemmDot"/> runs one column of C and one row over a transposed B instead (no buffer, several rows per pass).
/// </summary>
internal static unsafe class GemmVector
{
    /// <summary>n = 1: c[i·ldc] = alpha·Σ_p op(A)(i, p)·op(B)(p, 0) + beta·c[i·ldc].</summary>
    public static void ColumnResult<T>(Trans ta, Trans tb, int m, int k, T alpha,
        T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var buffers = GemmBuffers<T>.Rent();
        try
        {
            // op(B)(p, 0) is b[p·ldb] (No) or b[p] (Yes).
            var x = Contiguous(b, tb == Trans.No ? ldb : 1, k, buffers.PackB(k));
            if (ta == Trans.No)
            {
                for (int i = 0; i < m; i++)
                    Store(ref c[i * ldc], alpha * TensorPrimitives.Dot(new ReadOnlySpan<T>(a + i * lda, k), x), beta);
            }
            else
            {
                // op(A)(i, p) = a[p·lda + i]: accumulate rows of the stored A scaled by x[p].
                var y = new Span<T>(buffers.PackA(m), m);
                AccumulateRows(a, lda, k, m, x, y);
                for (int i = 0; i < m; i++) Store(ref c[i * ldc], alpha * y[i], beta);
            }
        }
        finally
        {
            GemmBuffers<T>.Return(buffers);
        }
    }

    /// <summary>m = 1: c[j] = alpha·Σ_p op(A)(0, p)·op(B)(p, j) + beta·c[j].</summary>
    public static void RowResult<T>(Trans ta, Trans tb, int n, int k, T alpha,
        T* a, nint lda, T* b, nint ldb, T beta, T* c)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var buffers = GemmBuffers<T>.Rent();
        try
        {
            // op(A)(0, p) is a[p] (No) or a[p·lda] (Yes).
            var x = Contiguous(a, ta == Trans.No ? 1 : lda, k, buffers.PackA(k));
            if (tb == Trans.Yes)
            {
                for (int j = 0; j < n; j++)
                    Store(ref c[j], alpha * TensorPrimitives.Dot(x, new ReadOnlySpan<T>(b + j * ldb, k)), beta);
            }
            else
            {
                var y = new Span<T>(buffers.PackB(n), n);
                AccumulateRows(b, ldb, k, n, x, y);
                for (int j = 0; j < n; j++) Store(ref c[j], alpha * y[j], beta);
            }
        }
        finally
        {
            GemmBuffers<T>.Return(buffers);
        }
    }

    /// <summary>y = Σ_p x[p]·row_p, row_p = s[p·lds .. p·lds + width).</summary>
    private static void AccumulateRows<T>(T* s, nint lds, int rows, int width, ReadOnlySpan<T> x, Span<T> y)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        y.Clear();
        for (int p = 0; p < rows; p++)
            TensorPrimitives.MultiplyAdd(new ReadOnlySpan<T>(s + p * lds, width), x[p], y, y);
    }

    /// <summary>The strided vector v[p·stride] as a contiguous span (copied into scratch unless stride is 1).</summary>
    private static ReadOnlySpan<T> Contiguous<T>(T* v, nint stride, int length, T* scratch) where T : unmanaged
    {
        if (stride == 1) return new ReadOnlySpan<T>(v, length);
        for (int p = 0; p < length; p++) scratch[p] = v[p * stride];
        return new ReadOnlySpan<T>(scratch, length);
    }

    private static void Store<T>(ref T c, T value, T beta) where T : unmanaged, IFloatingPointIeee754<T>
        => c = beta == T.Zero ? value : value + beta * c;
}
