using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Blocks;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Recurrent;
using GlobalNtk.Ntk;
using GlobalNtk.Operators;
using GlobalNtk.Tests.Reference;
using Xunit;

namespace GlobalNtk.Tests.Recurrent;

/// <summary>
/// The generic recurrent chain over cell blocks (<see cref="RecurrentBlockChain"/>): against
/// PyTorch's own stacked, bias-free and h0 nets (tests/fixtures/make_fixtures.py), against the
/// whole-model NTK, and operator by operator against the hand-fused linearisations, which it must
/// equal to rounding (1e-12 relative: the same float64 maths in another summation order).
/// </summary>
public class RecurrentBlockChainTests
{
    private static Tensor Inputs(IO.SafetensorsFile f)
    {
        var x = f.Tensors["x"];
        return new Tensor(x.Data, new AxisShape(("trial", x.Shape[0]), ("time", x.Shape[1]), ("input", x.Shape[2])));
    }

    private static double[] Row(Parameter p, int j) => p.Data.AsSpan(j * p.Shape[1], p.Shape[1]).ToArray();

    [Theory]
    [MemberData(nameof(PyTorchStackedFixtureTests.Fixtures), MemberType = typeof(PyTorchStackedFixtureTests))]
    public void GenericChainMatchesPyTorchAndTheWholeModelNtk(string name)
    {
        var (model, f) = PyTorchStackedFixtureTests.Load(name);
        var lin = model.LinearizeBlocks(Inputs(f));
        Assert.IsNotType<StackedRecurrentLinearization>(lin);
        Assert.True(DepthChecks.RelErr(lin.States.Span, f.Tensors["z"].Data) < 1e-12, $"{name}: states");
        var ops = new NtkOperators(lin);
        for (int j = 0; j < 2; j++)
        {
            Assert.True(DepthChecks.RelErr(ops.WholeModelJacobian.Apply(Row(f.Tensors["dtheta"], j)), Row(f.Tensors["jvp"], j)) < 1e-9, $"{name}: (dz/dθ) δθ");
            Assert.True(DepthChecks.RelErr(ops.WholeModelJacobian.ApplyAdjoint(Row(f.Tensors["q"], j)), Row(f.Tensors["vjp"], j)) < 1e-9, $"{name}: (dz/dθ)* q");
            // P K P* (Kronecker-core K) is the whole-model NTK that PyTorch's autograd computed.
            Assert.True(DepthChecks.RelErr(ops.NtkS.Apply(Row(f.Tensors["q"], j)), Row(f.Tensors["ntk"], j)) < 1e-10, $"{name}: P K P* vs autograd J Jᵀ");
        }
        DepthChecks.StateAdjoint(lin, 3, 1);
        DepthChecks.ParamAdjoint(lin, 3, 2);
        DepthChecks.SiteAdjoint(lin, 2, 3);
        Assert.True(DepthChecks.SiteFormError(lin, 4) < 1e-12, $"{name}: Σ D_s(δW_s Û) + J_rest = J_θ");
        // Every operator's adjoint, P P⁻¹ = I, Kronecker K = J_θ J_θ*, P K P* = whole-model NTK (≤ 1e-10).
        NtkChecks.All(lin, null, seed: 5);
        Assert.All(lin.Sites, s => Assert.True(KroneckerCore.IsRowLocal(lin, s)));
        if (model.Config.LearnInitialState) Assert.True(ops.KroneckerCore.RestParameterCount > 0);   // h0 is in no site
        AssertSameOperators(lin, model.Linearize(Inputs(f)), name);
    }

    [Theory]
    [InlineData("gru")]
    [InlineData("lstm")]
    [InlineData("rnn-tanh")]
    [InlineData("rnn-relu")]
    [InlineData("leaky-rnn")]
    public void GenericChainEqualsTheFusedSingleLayerPath(string arch)
    {
        var model = RecurrentModel.Create(new RecurrentConfig(arch, 2, 4, 2) { Seed = 3, Gain = 1.5, Alpha = 0.3 });
        model = model.WithInitialState(DepthChecks.Gaussian(model.StateSize, new Random(4)));
        var x = new Tensor(DepthChecks.Gaussian(3 * 5 * 2, new Random(5)), model.InputShape(3, 5));
        var fused = model.Linearize(x);
        Assert.IsType<RecurrentLinearization>(fused);
        var generic = model.LinearizeBlocks(x);
        AssertSameOperators(generic, fused, arch);
        DepthChecks.StateAdjoint(generic, 2, 1);
        Assert.True(DepthChecks.SiteFormError(generic, 4) < 1e-12);
    }

    /// <summary>Every operator of <paramref name="a"/> equals <paramref name="b"/>'s on blocks of 3 vectors, and so do the sites.</summary>
    internal static void AssertSameOperators(ChainLinearization a, ChainLinearization b, string what, double tol = 1e-12)
    {
        Assert.Equal(b.StateShape, a.StateShape);
        Assert.Equal(b.Parameters.Select(p => p.Name), a.Parameters.Select(p => p.Name));
        Assert.True(DepthChecks.RelErr(a.States.Span, b.States.Span) <= 1e-14, $"{what}: states");
        const int count = 3;
        int s = a.StateShape.Size, m = a.Parameters.TotalSize;
        var rng = new Random(17);
        var e = DepthChecks.Gaussian(count * s, rng);
        var th = DepthChecks.Gaussian(count * m, rng);
        var oa = new NtkOperators(a); var ob = new NtkOperators(b);
        foreach (var (name, x, y) in new (string, LinearOperator, LinearOperator)[]
        {
            ("P", oa.P, ob.P), ("P*", oa.PAdjoint, ob.PAdjoint), ("P⁻¹", oa.PInverse, ob.PInverse), ("K", oa.K, ob.K),
            ("K Kronecker", oa.KKronecker, ob.KKronecker), ("NTK_S", oa.NtkS, ob.NtkS), ("whole-model NTK", oa.WholeModelNtk, ob.WholeModelNtk),
        })
            Assert.True(DepthChecks.RelErr(x.ApplyBlock(e, count), y.ApplyBlock(e, count)) <= tol, $"{what}: {name}");
        foreach (var (name, x, y) in new (string, LinearOperator, LinearOperator)[] { ("J_θ", oa.Jtheta, ob.Jtheta), ("dz/dθ", oa.WholeModelJacobian, ob.WholeModelJacobian) })
        {
            Assert.True(DepthChecks.RelErr(x.ApplyBlock(th, count), y.ApplyBlock(th, count)) <= tol, $"{what}: {name}");
            Assert.True(DepthChecks.RelErr(x.ApplyAdjointBlock(e, count), y.ApplyAdjointBlock(e, count)) <= tol, $"{what}: {name}*");
        }
        Assert.Equal(b.Sites.Count, a.Sites.Count);
        for (int i = 0; i < a.Sites.Count; i++)
        {
            WeightSite sa = a.Sites[i], sb = b.Sites[i];
            Assert.Equal(sb.WeightParameters, sa.WeightParameters);
            Assert.Equal(sb.BiasParameters, sa.BiasParameters);
            Assert.Equal((sb.Rows, sb.Width, sb.OutDim), (sa.Rows, sa.Width, sa.OutDim));
            Assert.True(DepthChecks.RelErr(sa.Variables.Span, sb.Variables.Span) <= 1e-15, $"{what}: Û of site {sa.Name}");
            var da = DepthChecks.Gaussian(count * sa.Rows * sa.OutDim, rng);
            var ya = new double[count * s]; var yb = new double[count * s];
            sa.ApplyDAdd(da, ya, count); sb.ApplyDAdd(da, yb, count);
            Assert.True(DepthChecks.RelErr(ya, yb) <= tol, $"{what}: D of site {sa.Name}");
            var ga = new double[da.Length]; var gb = new double[da.Length];
            sa.ApplyDAdjoint(e, ga, count); sb.ApplyDAdjoint(e, gb, count);
            Assert.True(DepthChecks.RelErr(ga, gb) <= tol, $"{what}: D* of site {sa.Name}");
        }
        Assert.Equal(ob.KroneckerCore.RestParameterCount, oa.KroneckerCore.RestParameterCount);
    }

    [Fact]
    public void ChainOfGenericBlocksEqualsTheCellBlockChain()
    {
        // A bias-free 2-layer Elman net twice: as cell blocks, and composed from nn.Linear on the row
        // [h, x] (W = [W_hh | W_ih]) and tanh. The same function of the same θ (reshaped), so the
        // same states and the same NTK_S; the chain derives everything from whichever blocks it gets.
        const int n = 2, h = 3, trials = 2, steps = 4;
        var config = new RecurrentConfig("rnn-tanh", n, h, 1) { Layers = 2, Bias = false };
        var cells = new RecurrentBlockChain(n, [CellBlock.Create(config, 0), CellBlock.Create(config, 1)], initialStateName: "h0");
        var composed = new RecurrentBlockChain(n,
        [
            new SequentialBlock(new AffineBlock("l0", h + n, h, "l0.weight", null), new ActivationBlock(h, Activation.Tanh)),
            new SequentialBlock(new AffineBlock("l1", h + h, h, "l1.weight", null), new ActivationBlock(h, Activation.Tanh)),
        ], initialStateName: "h0");
        Assert.Equal(new[] { 2, 3 }, cells.InitialState!.Shape);
        var pc = cells.Initialize(seed: 2);
        var rng = new Random(3);
        pc = new ParameterSet(pc.Select(p => p.Name == "h0" ? new Parameter("h0", p.Shape, DepthChecks.Gaussian(2 * h, rng)) : p));
        var pg = new ParameterSet(Enumerable.Range(0, 2).Select(k =>
        {
            var ih = pc[$"rnn.weight_ih_l{k}"]; var hh = pc[$"rnn.weight_hh_l{k}"];
            int ni = ih.Shape[1];
            var w = new double[h * (h + ni)];
            for (int o = 0; o < h; o++)
            {
                hh.Data.AsSpan(o * h, h).CopyTo(w.AsSpan(o * (h + ni), h));
                ih.Data.AsSpan(o * ni, ni).CopyTo(w.AsSpan(o * (h + ni) + h, ni));
            }
            return new Parameter($"l{k}.weight", [h, h + ni], w);
        }).Append(pc["h0"].Clone()));
        var x = new Tensor(DepthChecks.Gaussian(trials * steps * n, rng), new AxisShape(("trial", trials), ("time", steps), ("input", n)));
        var a = cells.Linearize(pc, x); var g = composed.Linearize(pg, x);
        Assert.True(DepthChecks.RelErr(g.States.Span, a.States.Span) < 1e-15);
        var e = DepthChecks.Gaussian(2 * a.StateShape.Size, rng);
        Assert.True(DepthChecks.RelErr(new NtkOperators(g).NtkS.ApplyBlock(e, 2), new NtkOperators(a).NtkS.ApplyBlock(e, 2)) < 1e-12);
        NtkChecks.All(g, null, seed: 7);
        Assert.True(DepthChecks.SiteFormError(g, 8) < 1e-12);
    }

    [Fact]
    public void ChainRejectsBadCompositionsAndInputs()
    {
        var config = new RecurrentConfig("gru", 2, 3, 1) { Layers = 2 };
        Assert.Contains("layer 1 maps rows of width 7 to 3", Assert.Throws<ArgumentException>(() =>
            new RecurrentBlockChain(2, [CellBlock.Create(config, 0), CellBlock.Create("gru", 4, 3, layer: 1)])).Message);
        Assert.Contains("declared by two layers", Assert.Throws<ArgumentException>(() =>
            new RecurrentBlockChain(2, [CellBlock.Create(config, 0), CellBlock.Create("gru", 3, 3)])).Message);
        Assert.Contains("does not hold the 6 hidden units", Assert.Throws<ArgumentException>(() =>
            new RecurrentBlockChain(2, [CellBlock.Create(config, 0), CellBlock.Create(config, 1)], "h0", [3])).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => CellBlock.Create(config, 2));
        var chain = new RecurrentBlockChain(2, [CellBlock.Create(config, 0), CellBlock.Create(config, 1)], "h0");
        var ps = chain.Initialize(seed: 1);
        var x = new Tensor(new double[2 * 3 * 2], new AxisShape(("trial", 2), ("time", 3), ("input", 2)));
        Assert.Contains("takes no initial-state input", Assert.Throws<ArgumentException>(() =>
            chain.Linearize(ps, x, new Tensor(new double[2 * 6], new AxisShape(("trial", 2), ("unit", 6))))).Message);
        Assert.Contains("unexpected tensor 'extra'", Assert.Throws<ArgumentException>(() =>
            chain.Linearize(new ParameterSet(ps.Append(new Parameter("extra", [1]))), x)).Message);
        Assert.Contains("Missing parameter 'h0'", Assert.Throws<ArgumentException>(() =>
            chain.Linearize(new ParameterSet(ps.Where(p => p.Name != "h0")), x)).Message);
        Assert.Contains("inputs must be (trial, time, input = 2)", Assert.Throws<ArgumentException>(() =>
            chain.Linearize(ps, new Tensor(new double[6], new AxisShape(("trial", 2), ("input", 3))))).Message);
    }
}
