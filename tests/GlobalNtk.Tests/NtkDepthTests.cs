using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Ntk;
using GlobalNtk.Tests.Reference;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// The same NTK operator code on depth chains (docs/math.md#transformers): MLP (row-local per-layer sites) and
/// transformers (attention makes the sites non-row-local; LayerNorm parameters and embeddings
/// go through the generic rest term), against forward-mode AD of the reference models.
/// </summary>
public class NtkDepthTests
{
    private static void CheckCore(NtkOperators ops, Readout readout)
    {
        var core = ops.KroneckerCore;
        int n = ops.Linearization.StateShape.Size;
        var k = NtkChecks.Dense(ops.KKronecker);
        double tr = Enumerable.Range(0, n).Sum(i => k[i * n + i]);
        Assert.Equal(tr, core.TraceK, 1e-12 * tr);
        Assert.Equal(1.0, core.ModeCapture(core.MaxRank), 1e-12);
        NtkChecks.Adjoint(ops.OutputNtk(readout), 5);
    }

    [Theory]
    [InlineData(Activation.Tanh)]
    [InlineData(Activation.Gelu)]
    public void MlpOperatorsMatchWholeModelAd(Activation act)
    {
        const int b = 3, nIn = 2, h = 4, l = 3;
        var model = MlpModel.Create(nIn, h, l, 2, act, 1);
        model = (MlpModel)model.WithChainValues(model.Parameters.Flatten().Select(v => 2.0 * v).ToArray());
        var x = new Tensor(DepthChecks.Gaussian(b * nIn, new Random(101)), new AxisShape(("sample", b), ("input", nIn)));
        var lin = model.Linearize(x);
        var jac = DepthChecks.WholeModelJacobian(model.Parameters, src => ReferenceDepthModels.Mlp(nIn, h, l, act, src, x.Span.ToArray(), b));
        NtkChecks.All(lin, TransformerNtkTests.DenseJacobian(jac, lin.StateShape.Size), seed: 71);
        CheckCore(new NtkOperators(lin), model.Readout);
    }

    [Theory]
    [MemberData(nameof(TransformerTests.Configs), MemberType = typeof(TransformerTests))]
    public void TransformerOperatorsMatchWholeModelAd(string name)
    {
        var (model, x) = TransformerTests.Setup(name);
        var lin = model.Linearize(x);
        var jac = DepthChecks.WholeModelJacobian(model.Parameters,
            src => ReferenceDepthModels.Transformer(model.Config, src, x.Span.ToArray(), x.Shape.Sizes[0], x.Shape.Sizes[1]));
        NtkChecks.All(lin, TransformerNtkTests.DenseJacobian(jac, lin.StateShape.Size), seed: 81);
        var ops = new NtkOperators(lin);
        Assert.Contains(lin.Sites, s => !KroneckerCore.IsRowLocal(lin, s));
        Assert.True(ops.KroneckerCore.RestParameterCount > 0);   // LayerNorm gains and biases
        CheckCore(ops, model.Readout);
    }

    [Fact]
    public void FirstOrderIdentityOnDepthChains()
    {
        var (transformer, tx) = TransformerTests.Setup("gelu-causal");
        var mlp = MlpModel.Create(2, 4, 3, 2, Activation.Tanh, 3);
        var mx = new Tensor(DepthChecks.Gaussian(3 * 2, new Random(7)), new AxisShape(("sample", 3), ("input", 2)));
        foreach (var (model, x) in new (IChainModel, Tensor)[] { (transformer, tx), (mlp, mx) })
            NtkChecks.FirstOrderOnReadoutLoss(model, x, 91);

    }
}
