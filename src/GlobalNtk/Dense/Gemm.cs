namespace GlobalNtk.Dense;

/// <summary>Whether a GEMM operand is used as stored or transposed.</summary>
public enum Trans { No, Yes }

/// <summary>
/// Row-major float64 matrix multiply: <c>C = alpha·op(A)·op(B) + beta·C</c>, with op(A) m×k,
/// op(B) k×n, C m×n; <c>lda/ldb/ldc</c> are row strides in elements (so strided row sets,
/// e.g. one time step of a [trial, time, unit] array, are operands without copies).
/// </summary>
public static partial class Gemm
{
    /// <summary>C = alpha·op(A)·op(B) + beta·C (row-major, strided rows).</summary>
    public static void Multiply(Trans ta, Trans tb, int m, int n, int k, double alpha,
        ReadOnlySpan<double> a, int lda, ReadOnlySpan<double> b, int ldb, double beta, Span<double> c, int ldc)
    {
        // Reference implementation; the optimised kernel replaces the body.
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                {
                    double av = ta == Trans.No ? a[i * lda + p] : a[p * lda + i];
                    double bv = tb == Trans.No ? b[p * ldb + j] : b[j * ldb + p];
                    s += av * bv;
                }
                ref double cij = ref c[i * ldc + j];
                cij = beta == 0 ? alpha * s : alpha * s + beta * cij;
            }
        }
    }
}
