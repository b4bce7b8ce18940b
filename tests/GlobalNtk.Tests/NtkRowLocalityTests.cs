using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Ntk;
using GlobalNtk.Tests.Reference;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// Declared row-locality of depth-chain sites (MLP layers, token-local transformer sites), the
/// Hutchinson path for costly non-row-local sites, and the per-layer rank bound (docs/math.md#kronecker-core).
/// </summary>
public class NtkRowLocalityTests
{
    private static ChainLinearization Mlp()
    {
        var model = MlpModel.Create(2, 4, 3, 2, Activation.Tanh, 5);
        var x = new Tensor(DepthChecks.Gaussian(3 * 2, new Random(17)), new AxisShape(("sample", 3), ("input", 2)));
        return model.Linearize(x);
    }

    internal static ChainLinearization Transformer(string name)
    {
        var (model, x) = TransformerTests.Setup(name);
        return model.Linearize(x);
    }

    public static TheoryData<string> Cases => new() { "mlp", "gelu-causal", "relu", "embedding" };
    private static ChainLinearization Build(string name) => name == "mlp" ? Mlp() : Transformer(name);

    [Theory]
    [MemberData(nameof(Cases))]
    public void RowLocalPathMatchesGeneralPathAndDenseTrace(string name)
    {
        var lin = Build(name);
        var ops = new NtkOperators(lin);
        var core = ops.KroneckerCore;
        Assert.Contains(core.Sites, s => s.Method == TraceMethod.RowLocal);
        foreach (var s in core.Sites)
        {
            // Only the attention projections are not token-local.
            Assert.Equal(s.Name.EndsWith("in_proj") ? TraceMethod.Exact : TraceMethod.RowLocal, s.Method);
            var general = KroneckerCore.GeneralTraces(lin, s);
            Assert.Equal(general.Trace, s.TraceK, 1e-10 * general.Trace);
            for (int i = 0; i < s.AugmentedWidth; i++)
                Assert.Equal(general.Contributions[i], s.ModeContributions[i], 1e-10 * general.Trace);
        }
        int n = lin.StateShape.Size;
        var k = NtkChecks.Dense(ops.KKronecker);
        double tr = Enumerable.Range(0, n).Sum(i => k[i * n + i]);
        Assert.Equal(tr, core.TraceK, 1e-10 * tr);
        Assert.False(core.IsEstimated);
        Assert.Equal(0.0, core.TraceKStandardError);
        Assert.InRange(core.RankBound, 1, core.StateDimension);
    }

    [Fact]
    public void HutchinsonEstimateIsWithinFourStandardErrors()
    {
        var lin = Transformer("gelu-causal");
        var exact = new KroneckerCore(lin);
        var est = new KroneckerCore(lin, exactApplicationLimit: 0, probes: 200, seed: 3);
        Assert.True(est.IsEstimated);
        Assert.Contains(est.Sites, s => s.Method == TraceMethod.Hutchinson);
        foreach (var (e, x) in est.Sites.Zip(exact.Sites))
        {
            Assert.Equal(e.Name.EndsWith("in_proj") ? TraceMethod.Hutchinson : TraceMethod.RowLocal, e.Method);
            if (e.Method != TraceMethod.Hutchinson) { Assert.Equal(x.TraceK, e.TraceK, 1e-12 * x.TraceK); continue; }
            Assert.True(e.TraceStandardError > 0);
            Assert.True(Math.Abs(e.TraceK - x.TraceK) <= 4 * e.TraceStandardError,
                $"{e.Name}: estimate {e.TraceK} vs exact {x.TraceK}, standard error {e.TraceStandardError}");
            double exactTop = x.ModeContributions[0], estTop = e.ModeContributions[0];
            Assert.True(Math.Abs(estTop - exactTop) <= 4 * e.CumulativeStandardError(1), $"{e.Name}: top mode {estTop} vs {exactTop}");
        }
        Assert.True(Math.Abs(est.TraceK - exact.TraceK) <= 4 * est.TraceKStandardError);
        Assert.True(est.TraceKStandardError < 0.2 * est.TraceK);   // the probes carry information
        Assert.Throws<ArgumentOutOfRangeException>(() => new KroneckerCore(lin, probes: 1));
    }

    [Fact]
    public void RankBoundIsClampedPerLayerAndAtTheStateDimension()
    {
        // MLP: 3 samples, 3 layers of 4 units: each layer's Σ rank(Ĝ)·m_s ≤ its 12 state scalars.
        var lin = Mlp();
        var core = new KroneckerCore(lin);
        long layerSize = (long)lin.Trials * lin.StateSize;
        long expected = core.Sites.GroupBy(s => s.Site.StateStep).Sum(g => Math.Min(layerSize, g.Sum(s => s.RankBound))) + core.RestParameterCount;
        Assert.Equal(Math.Min(expected, core.StateDimension), core.RankBound);
        Assert.All(core.Sites, s => Assert.NotNull(s.Site.StateStep));
        var tlin = Transformer("relu");
        var t = new KroneckerCore(tlin);
        Assert.True(t.Sites.Sum(s => s.RankBound) > t.StateDimension);   // the naive bound is vacuous here
        Assert.InRange(t.RankBound, 1, t.StateDimension);
    }
}
