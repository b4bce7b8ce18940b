using GlobalNtk.Models;
using GlobalNtk.Ntk;
using MathNet.Numerics.LinearAlgebra;
using Xunit;

namespace GlobalNtk.Tests;

public class NtkKroneckerCoreTests
{
    private static (NtkTinyRnn Model, ChainLinearization Lin) Build(bool joint, string[]? rows = null)
    {
        var model = new NtkTinyRnn(4, 2, 0.6, 21, jointSite: joint, rowNames: rows);
        return (model, model.Linearize(NtkTinyRnn.RandomInputs(2, 5, 2, 22)));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void SiteSpectrumMatchesAnIndependentSvd(bool joint)
    {
        var (_, lin) = Build(joint);
        foreach (var site in lin.Sites)
        {
            var core = new KroneckerCore(lin).Sites.Single(c => c.Name == site.Name);
            var u = Matrix<double>.Build.Dense(site.Rows, site.AugmentedWidth, (i, j) => site.Variables.Span[i * site.AugmentedWidth + j]);
            var svd = u.Svd(true);
            var sv = svd.S.ToArray();
            double s1 = sv[0] * sv[0];
            for (int i = 0; i < core.Spectrum.Count; i++)
                Assert.InRange(core.Spectrum[i], (i < sv.Length ? sv[i] * sv[i] : 0) - 1e-12 * s1, (i < sv.Length ? sv[i] * sv[i] : 0) + 1e-12 * s1);
            int rank = sv.Count(s => s * s > Math.Max(site.Rows, site.AugmentedWidth) * 2.220446049250313e-16 * s1);
            Assert.Equal(rank, core.NumericalRank);
            Assert.Equal(core.Spectrum.Sum(), core.Trace, 1e-12 * core.Trace);
            double pr = Math.Pow(core.Spectrum.Sum(), 2) / core.Spectrum.Sum(x => x * x);
            Assert.Equal(pr, core.ParticipationRatio, 1e-12 * pr);
            // Left modes: orthonormal and Ĝ v_i = σ_i² v_i.
            var v = core.LeftModes(core.NumericalRank);
            var g = core.DenseGram();
            int n = site.Rows;
            for (int i = 0; i < core.NumericalRank; i++)
            {
                var vi = v.AsSpan(i * n, n);
                for (int k = 0; k <= i; k++)
                    Assert.Equal(i == k ? 1.0 : 0.0, GlobalNtk.Dense.Numerics.Dot(vi, v.AsSpan(k * n, n)), 1e-9);
                for (int r = 0; r < n; r++)
                {
                    double gv = 0;
                    for (int c = 0; c < n; c++) gv += g[r * n + c] * vi[c];
                    Assert.Equal(core.Spectrum[i] * vi[r], gv, 1e-9 * s1);
                }
            }
        }
    }

    [Fact]
    public void JointSiteWithTwoBiasColumnsIsRankDeficient()
    {
        var (_, lin) = Build(joint: true);
        var core = new KroneckerCore(lin);
        var site = core.Sites.Single();
        Assert.Equal(4 + 2 + 2, site.AugmentedWidth);
        Assert.Equal(site.AugmentedWidth - 1, site.NumericalRank);   // the two ones columns are equal
        Assert.Equal((long)site.NumericalRank * 4 + 4, core.RankBound);   // + the 4 gains outside the site
        // rank K ≤ the bound (here below the state dimension 40).
        var kDense = NtkChecks.Dense(new NtkOperators(lin).KKronecker);
        int s = lin.StateShape.Size;
        var ev = Matrix<double>.Build.Dense(s, s, (i, j) => kDense[i * s + j]).Evd().EigenValues.Select(e => e.Real).ToArray();
        int rankK = ev.Count(e => e > 1e-10 * ev.Max());
        Assert.True(rankK <= core.RankBound && core.RankBound < s, $"rank K = {rankK}, bound {core.RankBound}, dim {s}");
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    [InlineData(false, true)]
    public void ModeCaptureIsExactAgainstDenseTruncatedKernels(bool joint, bool forceGeneralPath)
    {
        var (_, lin) = Build(joint, forceGeneralPath ? ["row", "col"] : null);
        Assert.Equal(!forceGeneralPath, KroneckerCore.IsRowLocal(lin, lin.Sites[0]));
        var ops = new NtkOperators(lin);
        var core = ops.KroneckerCore;
        int s = lin.StateShape.Size;
        // tr K from the core equals the dense trace, and c(full) = 1.
        var kDense = NtkChecks.Dense(ops.KKronecker);
        double trDense = Enumerable.Range(0, s).Sum(i => kDense[i * s + i]);
        Assert.Equal(trDense, core.TraceK, 1e-12 * trDense);
        Assert.Equal(1.0, core.ModeCapture(core.MaxRank), 1e-12);
        Assert.True(core.RestTrace > 0);
        // c(r) against tr Σ_s D_s(Ĝ_{s,r} ⊗ I)D_s* + tr J_rest J_rest*, all dense, Ĝ_r from MathNet's SVD.
        double trRest = trDense - lin.Sites.Sum(site => DenseSiteTrace(lin, site, int.MaxValue));
        Assert.Equal(trRest, core.RestTrace, 1e-10 * trDense);
        var curve = core.ModeCaptureCurve();
        for (int r = 0; r <= core.MaxRank; r++)
        {
            double expected = (lin.Sites.Sum(site => DenseSiteTrace(lin, site, r)) + trRest) / trDense;
            Assert.Equal(expected, core.ModeCapture(r), 1e-10);
            if (r >= 1) Assert.Equal(core.ModeCapture(r), curve[r - 1]);
            if (r >= 1) Assert.True(core.ModeCapture(r) >= core.ModeCapture(r - 1) - 1e-15);
        }
    }

    /// <summary>tr(D (Ĝ_r ⊗ I) D*) with D materialised from ApplyDAdd and Ĝ_r from a dense SVD of Û.</summary>
    private static double DenseSiteTrace(ChainLinearization lin, WeightSite site, int r)
    {
        int n = site.Rows, m = site.OutDim, d = site.AugmentedWidth, s = lin.StateShape.Size;
        var u = Matrix<double>.Build.Dense(n, d, (i, j) => site.Variables.Span[i * d + j]);
        var svd = u.Svd(true);
        var gr = Matrix<double>.Build.Dense(n, n);
        for (int i = 0; i < Math.Min(r, svd.S.Count); i++)
            gr += svd.S[i] * svd.S[i] * svd.U.Column(i).OuterProduct(svd.U.Column(i));
        // Dense D: [s, n·m], column (row, c) = D e_(row,c).
        var eye = new double[n * m * n * m];
        for (int i = 0; i < n * m; i++) eye[i * n * m + i] = 1;
        var cols = new double[n * m * s];
        site.ApplyDAdd(eye, cols, n * m);
        var dMat = Matrix<double>.Build.Dense(s, n * m, (i, j) => cols[j * s + i]);
        var kron = gr.KroneckerProduct(Matrix<double>.Build.DenseIdentity(m));
        return (dMat * kron * dMat.Transpose()).Trace();
    }

    [Fact]
    public void InvalidSiteIsRejectedWithItsName()
    {
        var (_, lin) = Build(joint: true);
        var bad = new BadWidthLinearization(lin);
        var ex = Assert.Throws<ArgumentException>(() => new NtkOperators(bad).KKronecker.Apply(new double[lin.StateShape.Size]));
        Assert.Contains("rnn", ex.Message);
        Assert.Contains("width", ex.Message);
    }

    /// <summary>Wraps a linearisation, declaring a site width that disagrees with its weights.</summary>
    private sealed class BadWidthLinearization(ChainLinearization inner) : ChainLinearization
    {
        public override GlobalNtk.Dense.AxisShape StateShape => inner.StateShape;
        public override ParameterSet Parameters => inner.Parameters;
        public override ReadOnlyMemory<double> States => inner.States;
        public override IReadOnlyList<WeightSite> Sites => [new WrongWidth(inner.Sites[0])];
        public override void StateJvpAdd(int step, ReadOnlySpan<double> src, Span<double> dst, int count, double alpha = 1) => inner.StateJvpAdd(step, src, dst, count, alpha);
        public override void StateVjpAdd(int step, ReadOnlySpan<double> src, Span<double> dst, int count, double alpha = 1) => inner.StateVjpAdd(step, src, dst, count, alpha);
        public override void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> result, int count) => inner.ParamJvp(dTheta, result, count);
        public override void ParamVjp(ReadOnlySpan<double> q, Span<double> dTheta, int count) => inner.ParamVjp(q, dTheta, count);

        private sealed class WrongWidth(WeightSite s) : WeightSite
        {
            public override string Name => s.Name;
            public override IReadOnlyList<string> WeightParameters => s.WeightParameters;
            public override IReadOnlyList<string> BiasParameters => s.BiasParameters;
            public override int Rows => s.Rows;
            public override int Width => s.Width + 1;
            public override int OutDim => s.OutDim;
            public override ReadOnlyMemory<double> Variables => s.Variables;
            public override GlobalNtk.Dense.AxisShape RowShape => s.RowShape;
            public override void ApplyDAdd(ReadOnlySpan<double> a, Span<double> dst, int count) => s.ApplyDAdd(a, dst, count);
            public override void ApplyDAdjoint(ReadOnlySpan<double> q, Span<double> a, int count) => s.ApplyDAdjoint(q, a, count);
        }
    }
}
