using GlobalNtk.Dense;
using GlobalNtk.Operators;

namespace GlobalNtk.Tests;

/// <summary>Reference dense linear algebra (naive loops) for checking operators and estimators.</summary>
internal static class OperatorTestUtil
{
    /// <summary>Entries uniform in [−1, 1) (<see cref="TestMath.Uniform(Random, int, double)"/>).</summary>
    public static double[] RandomArray(Random rng, int n) => TestMath.Uniform(rng, n);

    public static DenseOperator RandomDense(Random rng, AxisShape domain, AxisShape range) =>
        new(RandomArray(rng, domain.Size * range.Size), domain, range);

    /// <summary>C = A·B for row-major A (m×k), B (k×n).</summary>
    public static double[] MatMul(double[] a, double[] b, int m, int k, int n)
    {
        var c = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int p = 0; p < k; p++)
            {
                double av = a[i * k + p];
                for (int j = 0; j < n; j++) c[i * n + j] += av * b[p * n + j];
            }
        return c;
    }

    public static double[] Transpose(double[] a, int m, int n)
    {
        var t = new double[m * n];
        for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) t[j * m + i] = a[i * n + j];
        return t;
    }

    public static double MaxAbsDiff(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"lengths {a.Length} vs {b.Length}");
        double d = 0;
        for (int i = 0; i < a.Length; i++) d = Math.Max(d, Math.Abs(a[i] - b[i]));
        return d;
    }

    public static double MaxAbs(ReadOnlySpan<double> a)
    {
        double d = 0;
        foreach (var v in a) d = Math.Max(d, Math.Abs(v));
        return d;
    }

    /// <summary>Relative error of the adjoint identity ⟨A X, Y⟩ = ⟨X, A* Y⟩ on a random block of 3.</summary>
    public static double AdjointError(LinearOperator op, int seed) => TestMath.AdjointError(op, new Random(seed));


    /// <summary>Symmetric matrix Q diag(λ) Qᵀ with a random orthogonal Q (Gram–Schmidt of a random matrix).</summary>
    public static double[] SymmetricWithSpectrum(Random rng, double[] lambda)
    {
        int n = lambda.Length;
        var q = RandomArray(rng, n * n); // rows are vectors
        for (int i = 0; i < n; i++)
        {
            var qi = q.AsSpan(i * n, n);
            for (int pass = 0; pass < 2; pass++)
                for (int j = 0; j < i; j++)
                {
                    var qj = q.AsSpan(j * n, n);
                    Numerics.Axpy(-Numerics.Dot(qi, qj), qj, qi);
                }
            Numerics.Scale(qi, 1.0 / Numerics.Norm(qi));
        }
        var a = new double[n * n];
        for (int k = 0; k < n; k++)
        {
            var qk = q.AsSpan(k * n, n);
            for (int i = 0; i < n; i++)
            {
                double s = lambda[k] * qk[i];
                for (int j = 0; j < n; j++) a[i * n + j] += s * qk[j];
            }
        }
        for (int i = 0; i < n; i++) for (int j = 0; j < i; j++) a[i * n + j] = a[j * n + i] = 0.5 * (a[i * n + j] + a[j * n + i]);
        return a;
    }
}

/// <summary>Operators with known spectra for estimator tests.</summary>
internal static class KnownSpectra
{
    public static double[] LowRank(int n, int rank) => Enumerable.Range(0, n).Select(i => i < rank ? 1.0 + 0.5 * i : 0.0).ToArray();
    public static double[] Flat(int n) => Enumerable.Range(0, n).Select(i => 1.0 + (double)i / n).ToArray();
    public static double[] PowerLaw(int n, double exponent = 1.0) => Enumerable.Range(1, n).Select(i => Math.Pow(i, -exponent)).ToArray();

    /// <summary>Matrix-free H₃H₂H₁ diag(λ) H₁H₂H₃ with random Householder reflections (spectrum exactly λ).</summary>
    public static LinearOperator Rotated(AxisShape shape, double[] lambda, int seed)
    {
        var rng = new Random(seed);
        var d = new DiagonalOperator(shape, lambda);
        LinearOperator h = LinearOperator.Identity(shape);
        for (int r = 0; r < 3; r++)
            h = (LinearOperator.Identity(shape) - 2.0 * RankOneOperator.Projector(OperatorTestUtil.RandomArray(rng, shape.Size), shape)) * h;
        return h.Adjoint * d * h;
    }

    /// <summary>Dense symmetric matrix with spectrum λ (random orthogonal eigenvectors).</summary>
    public static DenseOperator Dense(double[] lambda, int seed) =>
        new(OperatorTestUtil.SymmetricWithSpectrum(new Random(seed), lambda), lambda.Length, lambda.Length);
}
