using GlobalNtk.Dense;
using GlobalNtk.Estimators;
using GlobalNtk.Operators;
using Xunit;
using static GlobalNtk.Tests.OperatorTestUtil;

namespace GlobalNtk.Tests;

public class EstimatorSpectralTests
{
    [Fact]
    public void TopTenEigenvaluesOf2000DimensionalOperatorTo1e8()
    {
        const int n = 2000;
        var lambda = KnownSpectra.PowerLaw(n);
        var op = KnownSpectra.Rotated(AxisShape.Vector(n), lambda, 11);
        var r = Spectral.TopEigenpairs(op, 10, seed: 1);
        Assert.True(r.Converged);
        for (int i = 0; i < 10; i++)
        {
            Assert.True(Math.Abs(r.Values[i] - lambda[i]) <= 1e-8 * lambda[i], $"λ{i}: {r.Values[i]} vs {lambda[i]}");
            Assert.True(r.Residuals[i] <= 1e-8, $"residual {i}: {r.Residuals[i]}");
            Assert.Equal(1.0, Numerics.Norm(r.Vectors[i]), 10);
            for (int j = 0; j < i; j++) Assert.True(Math.Abs(Numerics.Dot(r.Vectors[i], r.Vectors[j])) < 1e-8);
            // Residual reported = recomputed.
            var av = op.Apply(r.Vectors[i]);
            Numerics.Axpy(-r.Values[i], r.Vectors[i], av);
            Assert.Equal(r.Residuals[i], Numerics.Norm(av), 12);
        }
    }

    [Fact]
    public void EigenpairsOfDenseMatricesWithKnownSpectraAndRestarts()
    {
        var lambda = KnownSpectra.PowerLaw(200);
        var a = KnownSpectra.Dense(lambda, 4);
        // A small basis forces restarts.
        var r = Spectral.TopEigenpairs(a, 6, seed: 2, blockSize: 8, maxBasis: 24);
        Assert.True(r.Converged);
        Assert.True(r.Restarts > 0);
        for (int i = 0; i < 6; i++) Assert.True(Math.Abs(r.Values[i] - lambda[i]) <= 1e-9 * lambda[0], $"λ{i}: {r.Values[i]} vs {lambda[i]}");
        Assert.Equal(r.Values, Spectral.TopEigenpairs(a, 6, seed: 2, blockSize: 8, maxBasis: 24).Values);
    }

    [Fact]
    public void LowRankOperatorsAndWholeSpaceAreExact()
    {
        // Rank 5 with k = 8: the Krylov space becomes invariant; the rest are zeros.
        var lambda = KnownSpectra.LowRank(120, 5);
        var r = Spectral.TopEigenpairs(KnownSpectra.Rotated(AxisShape.Vector(120), lambda, 3), 8, seed: 0);
        var sorted = lambda.OrderDescending().Take(8).ToArray();
        for (int i = 0; i < 8; i++) Assert.True(Math.Abs(r.Values[i] - sorted[i]) < 1e-10, $"λ{i}: {r.Values[i]} vs {sorted[i]}");
        Assert.All(r.Residuals, x => Assert.True(x < 1e-9));

        var small = KnownSpectra.Dense([3, 2, 1, -4], 1);
        var all = Spectral.TopEigenpairs(small, 4, 0);
        Assert.Equal(new[] { 3.0, 2, 1, -4 }, all.Values.Select(v => Math.Round(v, 10)));
        var mag = Spectral.TopEigenpairs(small, 2, 0, order: EigenOrder.LargestMagnitude);
        Assert.Equal(new[] { -4.0, 3 }, mag.Values.Select(v => Math.Round(v, 10)));
    }

    [Fact]
    public void NonSelfAdjointOperatorIsRejected()
    {
        var a = RandomDense(new Random(1), AxisShape.Vector(100), AxisShape.Vector(100));
        var ex = Assert.Throws<InvalidOperationException>(() => Spectral.TopEigenpairs(a, 3, 0));
        Assert.Contains("self-adjoint", ex.Message);
        Assert.Throws<ShapeMismatchException>(() => Spectral.TopEigenpairs(RandomDense(new Random(1), AxisShape.Vector(10), AxisShape.Vector(5)), 1, 0));
    }

    [Theory]
    [InlineData(180, 90)]   // tall: Krylov on A*A
    [InlineData(70, 160)]   // wide: Krylov on AA*
    public void SingularTripletsWithResiduals(int rows, int cols)
    {
        // A = H_r Σ H_c with Householder reflections: singular values exactly σ.
        int r = Math.Min(rows, cols);
        var sigma = Enumerable.Range(0, r).Select(i => 10.0 * Math.Pow(0.9, i)).ToArray();
        var diag = new double[rows * cols];
        for (int i = 0; i < r; i++) diag[i * cols + i] = sigma[i];
        var rng = new Random(rows);
        var dom = AxisShape.Vector(cols, "in"); var ran = AxisShape.Vector(rows, "out");
        var hc = LinearOperator.Identity(dom) - 2.0 * RankOneOperator.Projector(RandomArray(rng, cols), dom);
        var hr = LinearOperator.Identity(ran) - 2.0 * RankOneOperator.Projector(RandomArray(rng, rows), ran);
        var a = hr * new DenseOperator(diag, dom, ran) * hc;

        var svd = Spectral.TopSingularTriplets(a, 5, seed: 3);
        Assert.True(svd.Converged);
        for (int i = 0; i < 5; i++)
        {
            Assert.True(Math.Abs(svd.Values[i] - sigma[i]) <= 1e-10 * sigma[0], $"σ{i}: {svd.Values[i]} vs {sigma[i]}");
            Assert.True(svd.Residuals[i] <= 1e-8 * sigma[0], $"residual {i}: {svd.Residuals[i]}");
            var av = a.Apply(svd.Right[i]);
            Numerics.Axpy(-svd.Values[i], svd.Left[i], av);
            var atu = a.ApplyAdjoint(svd.Left[i]);
            Numerics.Axpy(-svd.Values[i], svd.Right[i], atu);
            Assert.Equal(svd.Residuals[i], Math.Sqrt(Numerics.Dot(av, av) + Numerics.Dot(atu, atu)), 10);
        }
        var norm = Spectral.OperatorNorm(a, 1);
        Assert.Equal(sigma[0], norm.Value, 8);
        Assert.True(norm.Residual < 1e-6);
    }
}
