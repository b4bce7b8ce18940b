using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Transformer;
using GlobalNtk.Ntk;
using GlobalNtk.Training;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// A linearisation is a value: it captures a snapshot of θ, so training the model afterwards
/// changes neither its parameters nor any operator built on it.
/// </summary>
public class LinearizationSnapshotTests
{
    public static TheoryData<string> Families => new() { "gru", "lstm", "mlp", "transformer" };

    [Theory]
    [MemberData(nameof(Families))]
    public void TrainingAfterLinearisingLeavesTheLinearisationUnchanged(string family)
    {
        var (model, x, y) = Build(family);
        var lin = model.Linearize(x);
        var theta0 = lin.Parameters.Flatten();
        var ops = new NtkOperators(lin);
        var rng = new Random(7);
        var e = Enumerable.Range(0, lin.StateShape.Size).Select(_ => rng.NextDouble() - 0.5).ToArray();
        var dTheta = Enumerable.Range(0, lin.Parameters.TotalSize).Select(_ => rng.NextDouble() - 0.5).ToArray();
        var ntk0 = ops.NtkS.Apply(e);
        var k0 = ops.K.Apply(e);
        var jt0 = ops.Jtheta.Apply(dTheta);
        var sites0 = lin.Sites.Select(s => s.Variables.ToArray()).ToArray();

        // Ten Adam steps on the live model move every tensor by ~lr.
        var all = model.AllParameters;
        var grad = new double[all.TotalSize];
        var opt = new Adam(0.05);
        for (int i = 0; i < 10; i++)
        {
            ModelGradient.Compute(model, x, y, grad);
            opt.Step(all, grad);
        }
        var moved = model.Parameters.Flatten();
        Assert.True(Numerics.Norm(Diff(moved, theta0)) > 1e-2, "training did not move θ");
        Assert.NotSame(model.Parameters, lin.Parameters);

        Assert.Equal(theta0, lin.Parameters.Flatten());
        Assert.Equal(ntk0, ops.NtkS.Apply(e));
        Assert.Equal(k0, ops.K.Apply(e));
        Assert.Equal(jt0, ops.Jtheta.Apply(dTheta));
        for (int s = 0; s < sites0.Length; s++) Assert.Equal(sites0[s], lin.Sites[s].Variables.ToArray());
        // The model's new linearisation does differ: the test would see an alias.
        Assert.NotEqual(ntk0, new NtkOperators(model.Linearize(x)).NtkS.Apply(e));
    }

    private static double[] Diff(double[] a, double[] b) => a.Zip(b, (u, v) => u - v).ToArray();

    private static (IChainModel Model, Tensor X, Tensor Y) Build(string family)
    {
        var rng = new Random(3);
        Tensor Rand(params (string, int)[] axes) => CliFixture.Random(rng, axes);
        switch (family)
        {
            case "mlp":
                return (MlpModel.Create(inputs: 2, hidden: 4, layers: 3, outputs: 2, Activation.Tanh, seed: 1),
                    Rand(("sample", 3), ("input", 2)), Rand(("sample", 3), ("output", 2)));
            case "transformer":
                var config = new TransformerConfig(TransformerInput.Linear, Inputs: 2, Model: 4, Heads: 2, Layers: 2, FeedForward: 6, Causal: true);
                return (TransformerModel.Create(config, outputs: 2, seed: 1),
                    Rand(("sequence", 2), ("token", 3), ("input", 2)), Rand(("sequence", 2), ("token", 3), ("output", 2)));
            default:
                return (Models.Recurrent.RecurrentModel.Create(family, inputSize: 2, hiddenSize: 3, outputSize: 2, seed: 1),
                    Rand(("trial", 2), ("time", 4), ("input", 2)), Rand(("trial", 2), ("time", 4), ("output", 2)));
        }
    }
}
