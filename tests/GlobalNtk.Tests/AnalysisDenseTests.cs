using GlobalNtk.Analysis;
using GlobalNtk.Dense;
using GlobalNtk.Operators;
using MathNet.Numerics.LinearAlgebra;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>SRB(r) and task-mode learnability against dense computations written independently here.</summary>
public class AnalysisDenseTests
{
    private static DenseOperator Dense(Matrix<double> m, AxisShape shape) =>
        new(Enumerable.Range(0, m.RowCount * m.ColumnCount).Select(k => m[k / m.ColumnCount, k % m.ColumnCount]).ToArray(), shape, shape);

    private static Matrix<double> RandomPsd(int n, int rank, Random rng)
    {
        var g = Matrix<double>.Build.Dense(n, rank, (_, _) => rng.NextDouble() * 2 - 1);
        return g * g.Transpose();
    }


    [Fact]
    public void SrbMatchesDenseProjection()
    {
        var rng = new Random(7);
        int b = 3, t = 4, s = 5, n = b * t * s;
        var shape = new AxisShape(("trial", b), ("time", t), ("unit", s));
        // activity with a dominant direction so the PCA is well separated
        var states = TestMath.Uniform(rng, n);
        for (int i = 0; i < b * t; i++) states[i * s] += 3 * (i % 3 - 1);
        var ntk = RandomPsd(n, 9, rng);
        var e = TestMath.Uniform(rng, n);
        int[] ranks = [1, 2, 3, 5];
        var res = SelfReferentialBias.Compute(Dense(ntk, shape), states, e, ranks, "test");

        // dense reference: PCA by SVD of the centred activity, Π_r = I ⊗ V_r V_rᵀ as an n×n matrix
        var z = Matrix<double>.Build.Dense(b * t, s, (i, j) => states[i * s + j]);
        var mean = z.ColumnSums() / (b * t);
        var zc = Matrix<double>.Build.Dense(b * t, s, (i, j) => z[i, j] - mean[j]);
        var v = zc.Svd(true).VT.Transpose();
        var dz = -(ntk * Vector<double>.Build.DenseOfArray(e));
        var ev = Vector<double>.Build.DenseOfArray(e);
        for (int k = 0; k < ranks.Length; k++)
        {
            var vr = v.SubMatrix(0, s, 0, ranks[k]);
            var pi = Matrix<double>.Build.DiagonalIdentity(b * t).KroneckerProduct(vr * vr.Transpose());
            double fz = (pi * dz).L2Norm() / dz.L2Norm(); fz *= fz;
            double fe = (pi * ev).L2Norm() / ev.L2Norm(); fe *= fe;
            Assert.Equal(fz, res.UpdateFraction[k], 10);
            Assert.Equal(fe, res.ErrorFraction[k], 10);
            Assert.Equal(fz / fe, res.Index[k], 9);
        }
        Assert.Equal("unit", res.VectorAxis);
        // full rank captures everything
        var full = SelfReferentialBias.Compute(Dense(ntk, shape), states, e, [s], "test");
        Assert.Equal(1.0, full.Index[0], 12);
    }

    [Fact]
    public void SrbRejectsWrongErrorLength()
    {
        var shape = new AxisShape(("trial", 2), ("time", 2), ("unit", 2));
        var op = Dense(Matrix<double>.Build.DenseIdentity(8), shape);
        var ex = Assert.Throws<ShapeMismatchException>(() => SelfReferentialBias.Compute(op, new double[8], new double[7], [1], "x"));
        Assert.Contains("error has 7 values", ex.Message);
    }

    [Fact]
    public void LearnabilityAndLearnedFractionMatchDenseSvd()
    {
        var rng = new Random(11);
        int rows = 12, outs = 3, n = rows * outs;
        var y = TestMath.Uniform(rng, n);
        var theta = RandomPsd(n, 20, rng);
        var shape = new AxisShape(("row", rows), ("output", outs));
        var modes = TaskModes.Of(y, outs);
        var rho = modes.Learnability(Dense(theta, shape));
        var yhat = TestMath.Uniform(rng, n);
        var learned = modes.LearnedFractions(yhat);

        var ym = Matrix<double>.Build.Dense(rows, outs, (i, j) => y[i * outs + j]);
        var svd = ym.Svd(true);
        var yh = Matrix<double>.Build.Dense(rows, outs, (i, j) => yhat[i * outs + j]);
        Assert.Equal(outs, modes.Count);
        for (int i = 0; i < outs; i++)
        {
            Assert.Equal(svd.S[i], modes.SingularValues[i], 10);
            var a = svd.U.Column(i); var bv = svd.VT.Row(i);
            var m = Vector<double>.Build.Dense(n, k => a[k / outs] * bv[k % outs]);
            Assert.Equal(m * (theta * m) / (m * m), rho[i], 9);
            Assert.Equal((yh.TransposeThisAndMultiply(a)).L2Norm() / svd.S[i], learned[i], 10);
        }
        // the targets themselves are fully learned
        Assert.All(modes.LearnedFractions(y), f => Assert.Equal(1.0, f, 10));
    }

    [Fact]
    public void TaskModesDropNullModes()
    {
        // rank-1 targets over 3 channels: one mode
        var y = new double[4 * 3];
        for (int r = 0; r < 4; r++) for (int j = 0; j < 3; j++) y[r * 3 + j] = (r + 1) * (j - 1.5);
        var modes = TaskModes.Of(y, 3);
        Assert.Equal(1, modes.Count);
    }
}
