using GlobalNtk.Analysis;
using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Recurrent;
using GlobalNtk.Models.Transformer;
using GlobalNtk.Ntk;
using GlobalNtk.Operators;
using MathNet.Numerics.LinearAlgebra;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>NtkAnalyzer's quantities on tiny models against dense computations written here.</summary>
public class AnalysisModelTests
{
    private const int B = 2, T = 3, In = 2, H = 3, O = 2;

    private static Matrix<double> Dense(LinearOperator op)
    {
        var d = op.Materialize();
        return Matrix<double>.Build.Dense(d.Rows, d.Columns, (i, j) => d[i, j]);
    }

    private static double Pr(Matrix<double> a) { double t = a.Trace(); return t * t / (a * a).Trace(); }

    [Fact]
    public void StackedLayerRanksMatchDenseAndFloat32RunsOnFloat32Blocks()
    {
        // Per-layer rank of a 2-layer GRU: PR of NTK_S masked to one layer's units, against the dense
        // matrix with exact budgets (Probes = n); then the f32 analysis, whose masked NTK_S must apply
        // float32 blocks natively and agree within 1e-4 relative (issue 12's bound for ranks).
        var model = RecurrentModel.Create(new RecurrentConfig("gru", In, H, O) { Seed = 2, Layers = 2 });
        var rng = new Random(3);
        var x = CliFixture.Random(rng, ("trial", B), ("time", T), ("input", In));
        var lin = model.Linearize(x);
        int n = lin.StateShape.Size, s = model.StateSize, sc = model.Config.LayerStateSize;
        var options = new AnalysisOptions { TopK = 2, Probes = 24, PartialBudget = 6, Seed = 9 };
        var r64 = new NtkAnalyzer(x, null, options).Analyze(model, "m");
        var r32 = new NtkAnalyzer(x, null, options with { Precision = Precision.F32 }).Analyze(model, "m");
        var ntk = Dense(new NtkOperators(lin).NtkS);
        Assert.Equal(2, r64.LayerRanks!.Count);
        for (int k = 0; k < 2; k++)
        {
            var rows = Enumerable.Range(0, n).Where(i => i % s >= k * sc && i % s < (k + 1) * sc).ToArray();
            var block = Matrix<double>.Build.Dense(rows.Length, rows.Length, (i, j) => ntk[rows[i], rows[j]]);
            var l64 = r64.LayerRanks[k];
            Assert.InRange(Pr(block), l64.Value - 4 * l64.StandardError - 1e-9, l64.Value + 4 * l64.StandardError + 1e-9);
            double rel = Math.Abs(r32.LayerRanks![k].Value - l64.Value) / l64.Value;
            Assert.True(rel <= 1e-4 && rel > 0, $"layer {k}: f32 {r32.LayerRanks[k].Value} vs f64 {l64.Value}");
        }
        var lin32 = model.Linearize(x, Precision.F32);
        var mask = new DiagonalOperator(lin32.StateShape, Enumerable.Range(0, n).Select(i => i % s < sc ? 1.0 : 0.0).ToArray());
        Assert.True(ProbeBlock.UsesFloat32(mask.Then(new NtkOperators(lin32).NtkSApplied).Then(mask)));
    }

    [Fact]
    public void RecurrentAnalysisMatchesDenseMatrices()
    {
        var model = RecurrentModel.Create("gru", In, H, O, seed: 2);
        var rng = new Random(3);
        var x = CliFixture.Random(rng, ("trial", B), ("time", T), ("input", In));
        var y = CliFixture.Random(rng, ("trial", B), ("time", T), ("output", O));
        int n = B * T * H;
        // budgets at or above every dimension: the estimators are exact
        var options = new AnalysisOptions { TopK = 4, Probes = n, PartialBudget = n, SpectrumBudget = 4 * n, SpectrumTolerance = 1e-12, Seed = 9 };
        var res = new NtkAnalyzer(x, y, options).Analyze(model, "m");

        var lin = model.Linearize(x);
        var ops = new NtkOperators(lin);
        var ntk = Dense(ops.NtkS);
        var k = Dense(ops.K);
        var evals = ntk.Evd(MathNet.Numerics.LinearAlgebra.Symmetricity.Symmetric).EigenValues.Select(c => c.Real).OrderByDescending(v => v).ToArray();
        for (int i = 0; i < 4; i++) Assert.Equal(evals[i], res.NtkSpectrum.Eigenvalues[i], 1e-8 * evals[0]);
        Assert.Equal(Pr(ntk), res.NtkRank.Value, 1e-9 * n);
        Assert.Equal(Pr(k), res.KRank.Value, 1e-9 * n);
        Assert.Equal(ntk.Trace(), res.NtkRank.Trace, 1e-9 * ntk.Trace());

        // partial effective rank keeping time: PR of M[t,t'] = Σ_{b,h} A[(b,t,h),(b,t',h)]
        var m = Matrix<double>.Build.Dense(T, T, (t, u) =>
        {
            double s = 0;
            for (int b = 0; b < B; b++) for (int h = 0; h < H; h++) s += ntk[(b * T + t) * H + h, (b * T + u) * H + h];
            return s;
        });
        var time = res.NtkRank.Partial.Single(p => p.Axis == "time");
        Assert.Equal(Pr(m), time.Value, 1e-9 * T);
        Assert.Equal(new[] { "trial", "time", "unit" }, res.NtkRank.Partial.Select(p => p.Axis));

        // loss and SRB with the MSE error e = Cᵀ ∂L/∂y, against the dense NTK and a dense PCA
        var states = lin.States.ToArray();
        var yhat = model.Readout.Forward(states, lin.StateShape).Span.ToArray();
        Assert.Equal(yhat.Zip(y.Span.ToArray(), (a, b) => (a - b) * (a - b)).Average(), res.Loss!.Value, 1e-14);
        var w = model.Readout.Weight;
        var e = new double[n];
        for (int r = 0; r < B * T; r++)
            for (int o = 0; o < O; o++)
                for (int h = 0; h < H; h++) e[r * H + h] += w.Data[o * H + h] * 2 * (yhat[r * O + o] - y.Span[r * O + o]) / yhat.Length;
        var dz = -(ntk * Vector<double>.Build.DenseOfArray(e));
        var z = Matrix<double>.Build.Dense(B * T, H, (i, j) => states[i * H + j]);
        var mean = z.ColumnSums() / (B * T);
        var v = Matrix<double>.Build.Dense(B * T, H, (i, j) => z[i, j] - mean[j]).Svd(true).VT.Transpose();
        for (int ri = 0; ri < res.Srb.Ranks.Length; ri++)
        {
            int r = res.Srb.Ranks[ri];
            var pi = Matrix<double>.Build.DiagonalIdentity(B * T).KroneckerProduct(v.SubMatrix(0, H, 0, r) * v.SubMatrix(0, H, 0, r).Transpose());
            var ev = Vector<double>.Build.DenseOfArray(e);
            double expected = ((pi * dz).L2Norm() / dz.L2Norm()) * ((pi * dz).L2Norm() / dz.L2Norm()) / (((pi * ev).L2Norm() / ev.L2Norm()) * ((pi * ev).L2Norm() / ev.L2Norm()));
            Assert.Equal(expected, res.Srb.Index[ri], 1e-8);
        }

        // task-mode learnability against the dense output NTK and a dense SVD of the targets
        var theta = Dense(ops.OutputNtk(model.Readout));
        var ym = Matrix<double>.Build.Dense(B * T, O, (i, j) => y.Span[i * O + j]);
        var svd = ym.Svd(true);
        for (int i = 0; i < O; i++)
        {
            var a = svd.U.Column(i); var bv = svd.VT.Row(i);
            var mi = Vector<double>.Build.Dense(B * T * O, q => a[q / O] * bv[q % O]);
            Assert.Equal(mi * (theta * mi), res.TaskModes!.Learnability[i], 1e-9 * theta.L2Norm());
        }

        // Kronecker core: the rank bound bounds the dense rank of K
        Assert.True(k.Rank() <= res.Kronecker.RankBound);
        Assert.Equal(k.Trace(), res.Kronecker.TraceK, 1e-9 * k.Trace());
        // The recurrent sites are row-local, so tr K is exact (no standard error).
        Assert.All(res.Kronecker.Sites, s => Assert.Equal("RowLocal", s.TraceMethod));
        Assert.Equal(0.0, res.Kronecker.TraceKStandardError);
    }

    [Fact]
    public void MlpAnalysisHasLayerAndUnitAxes()
    {
        var model = MlpModel.Create(inputs: 2, hidden: 4, layers: 3, outputs: 1, Activation.Tanh, seed: 1);
        var x = CliFixture.Random(new Random(2), ("sample", 5), ("input", 2));
        var y = CliFixture.Random(new Random(3), ("sample", 5), ("output", 1));
        var res = new NtkAnalyzer(x, y, new AnalysisOptions { TopK = 3, Probes = 8, PartialBudget = 8 }).Analyze(model, "mlp");
        var axes = model.Linearize(x).StateShape.Names.Skip(0).ToArray();
        Assert.Equal(axes.Where((a, i) => model.Linearize(x).StateShape.Sizes[i] > 1), res.NtkRank.Partial.Select(p => p.Axis));
        Assert.Contains(res.NtkRank.Partial, p => p.Axis == "layer");
        Assert.All(res.NtkSpectrum.Eigenvalues, v => Assert.True(double.IsFinite(v) && v > -1e-9));
        Assert.NotNull(res.TaskModes);
    }

    [Fact]
    public void TransformerAnalysisHasSequenceLayerTokenFeatureAxes()
    {
        var config = new TransformerConfig(TransformerInput.Linear, Inputs: 2, Model: 4, Heads: 2, Layers: 2, FeedForward: 6, Causal: true);
        var model = TransformerModel.Create(config, outputs: 2, seed: 1);
        var x = CliFixture.Random(new Random(2), ("sequence", 2), ("token", 3), ("input", 2));
        var res = new NtkAnalyzer(x, null, new AnalysisOptions { TopK = 3, Probes = 8, PartialBudget = 8 }).Analyze(model, "tf");
        Assert.Equal(new[] { "sequence", "layer", "token", "feature" }, res.NtkRank.Partial.Select(p => p.Axis));
        Assert.Equal("feature", res.Srb.VectorAxis);
        Assert.True(res.Kronecker.RankBound > 0);
        Assert.Null(res.TaskModes);

        // the report folder works for depth chains too (issue 5)
        using var dir = new TempDir();
        var figs = GlobalNtk.Cli.Reports.AnalysisReportWriter.Write(dir.Path,
            new GlobalNtk.Cli.Reports.AnalysisReport("transformer", "tiny", [res], null, new AnalysisOptions()));
        Assert.Contains("effective_ranks.png", figs);
        Assert.Contains("feature", File.ReadAllText(dir.File("effective_ranks.csv")));
    }
}
