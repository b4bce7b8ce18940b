using System.Numerics;
using GlobalNtk.Dense;

namespace GlobalNtk.Tests;

/// <summary>
/// One GEMM test case: random op(A), op(B) and C (uniform entries) with rows <c>pad</c> elements longer than their
/// widths, starting <c>offset</c> elements into their arrays; C followed by 8 guard rows, full of NaN where β = 0 (which
/// must overwrite it without reading it); C₀ a copy of C before the product. Drawn in the order A, B, C.
/// </summary>
internal sealed unsafe class GemmCase<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>The product's operands and C with raw pointers to their first elements (offset applied).</summary>
    public delegate void Pointers(T* a, T* b, T* c);

    public Trans Ta { get; }
    public Trans Tb { get; }
    public int M { get; }
    public int N { get; }
    public int K { get; }
    public double Alpha { get; }
    public double Beta { get; }
    public int Lda { get; }
    public int Ldb { get; }
    public int Ldc { get; }
    public int Offset { get; }
    public T[] A { get; }
    public T[] B { get; }
    public T[] C { get; }
    public T[] C0 { get; }

    /// <summary>One past C's last element (the guard rows start here).</summary>
    public int CEnd => Offset + (M - 1) * Ldc + N;

    public T Al => T.CreateTruncating(Alpha);
    public T Be => T.CreateTruncating(Beta);

    public GemmCase(Random rng, Trans ta, Trans tb, int m, int n, int k, double alpha, double beta, int pad, int offset)
    {
        (Ta, Tb, M, N, K, Alpha, Beta, Offset) = (ta, tb, m, n, k, alpha, beta, offset);
        int aRows = ta == Trans.No ? m : k, aCols = ta == Trans.No ? k : m;
        int bRows = tb == Trans.No ? k : n, bCols = tb == Trans.No ? n : k;
        (Lda, Ldb, Ldc) = (aCols + pad, bCols + pad, n + pad);
        A = Random(rng, offset + (aRows - 1) * Lda + aCols);
        B = Random(rng, offset + (bRows - 1) * Ldb + bCols);
        C = Random(rng, CEnd + 8 * Ldc);
        if (beta == 0)
            for (int i = 0; i < m; i++) C.AsSpan(offset + i * Ldc, n).Fill(T.NaN);
        C0 = (T[])C.Clone();
    }

    /// <summary>Runs <paramref name="run"/> on the pinned operands and C.</summary>
    public void Run(Pointers run)
    {
        fixed (T* pa = A, pb = B, pc = C) run(pa + Offset, pb + Offset, pc + Offset);
    }

    /// <summary>C = α·op(A)·op(B) + β·C through <see cref="Gemm.Multiply{T}"/>.</summary>
    public void Multiply()
        => Gemm.Multiply(Ta, Tb, M, N, K, Al, A.AsSpan(Offset), Lda, B.AsSpan(Offset), Ldb, Be, C.AsSpan(Offset), Ldc);

    /// <summary>A copy of C₀ with the product run on it by the packed AVX-512 path (<c>GemmDriver.Serial</c>): its bits.</summary>
    public T[] Packed()
    {
        T[] packed = (T[])C0.Clone();
        fixed (T* pa = A, pb = B, pp = packed)
            GemmDriver<T, Avx512Kernel<T>>.Serial(Ta, Tb, M, N, K, Al, pa + Offset, Lda, pb + Offset, Ldb, Be, pp + Offset, Ldc);
        return packed;
    }

    /// <summary><see cref="GemmReference.AssertNaive"/> on this case (depth: the longest rounding chain, k unless the route's is shorter).</summary>
    public void AssertNaive(string label, int depth = -1)
        => GemmReference.AssertNaive(Ta, Tb, M, N, K, Alpha, Beta, A, Lda, B, Ldb, C0, C, Ldc, Offset, CEnd, label, depth);

    private static T[] Random(Random rng, int count) => Array.ConvertAll(TestMath.Uniform(rng, count), v => T.CreateTruncating(v));
}
