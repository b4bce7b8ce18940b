using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Blocks;
using GlobalNtk.Models.Mlp;
using Xunit;
using Tensor = GlobalNtk.Dense.Tensor;

namespace GlobalNtk.Tests;

/// <summary>
/// A float32 forward pass keeps its rows in float32 from block to block and from step to step (no
/// float64 row scratch): a composite block's float32 output is its children's float32 passes run
/// one after another on float32 rows, and a float32 chain's state at step k is step k's float32 pass
/// on the float32 state of step k − 1, bit for bit. An embedding still checks its token ids before
/// any rounding.
/// </summary>
public class BlockFloat32RowsTests
{
    private const int Rows = 6;

    private static ParameterSet Parameters(StepBlock block, int seed) =>
        new(block.ParameterSpecs.Select(s => new Parameter(s.Name, s.Shape,
            TestMath.Uniform(s.Size, seed + s.Name.Length).Select(v => v + (s.Name.EndsWith("norm.weight") ? 1 : 0)).ToArray())));

    /// <summary>The child's float32 pass on float32 rows: its public float32 entry point on the exactly widened rows, rounded back (exact).</summary>
    private static float[] Child(StepBlock c, ParameterSet ps, float[] input, int rows)
    {
        var y = new double[rows * c.OutputWidth];
        c.Forward(ps, Float32.ToDouble(input), rows, y, Precision.F32);
        return Float32.ToSingle(y);
    }

    [Fact]
    public void SequentialAndResidualPassFloat32RowsFromChildToChild()
    {
        var children = new StepBlock[]
        {
            new LayerNormBlock("norm", 4), AffineBlock.Linear("fc1", 4, 5), new ActivationBlock(5, Activation.Gelu),
            AffineBlock.Linear("fc2", 5, 4), new ActivationBlock(4, Activation.Tanh),
        };
        var inner = new SequentialBlock(children);
        var block = new ResidualBlock(inner);
        var ps = Parameters(block, 3);
        var u = TestMath.Uniform(Rows * 4, 7).Select(v => 3 * v).ToArray();

        var cur = Float32.ToSingle(u);
        foreach (var c in children) cur = Child(c, ps, cur, Rows);
        var seq = new double[Rows * 4];
        inner.Forward(ps, u, Rows, seq, Precision.F32);
        Assert.Equal(Float32.ToDouble(cur), seq);   // float64 rows between children would round differently

        var skip = Float32.ToSingle(u);
        var expected = cur.Select((v, i) => v + skip[i]).ToArray();   // the skip path adds float32 rows, in float32
        var res = new double[Rows * 4];
        block.Forward(ps, u, Rows, res, Precision.F32);
        Assert.Equal(Float32.ToDouble(expected), res);

        // Float64 is the float64 composition, exactly.
        var cur64 = u;
        foreach (var c in children) { var y = new double[Rows * c.OutputWidth]; c.Forward(ps, cur64, Rows, y); cur64 = y; }
        var seq64 = new double[Rows * 4];
        inner.Forward(ps, u, Rows, seq64);
        Assert.Equal(cur64, seq64);
    }

    [Fact]
    public void ChainStatesAreEachStepsFloat32PassOnTheFloat32StateBefore()
    {
        var chain = new BlockChain(3,
            new SequentialBlock(AffineBlock.Linear("l0", 3, 4), new ActivationBlock(4, Activation.Tanh)),
            new ResidualBlock(new SequentialBlock(new LayerNormBlock("n1", 4), AffineBlock.Linear("l1", 4, 4), new ActivationBlock(4, Activation.Gelu))),
            new SequentialBlock(AffineBlock.Linear("l2", 4, 4), new ActivationBlock(4, Activation.Tanh)));
        var ps = chain.Initialize(seed: 2);
        int trials = 5;
        var x = new Tensor(TestMath.Uniform(trials * 3, 9), new AxisShape(("trial", trials), ("input", 3)));
        var lin = chain.Linearize(ps, x, Precision.F32);
        var z = lin.StatesSingle.ToArray();   // (trial, layer, unit)
        int t = chain.Steps.Count, w = chain.Width;
        float[] Step(int k) => Enumerable.Range(0, trials).SelectMany(b => z.AsSpan((b * t + k) * w, w).ToArray()).ToArray();

        var first = new double[trials * w];
        chain.Steps[0].Forward(ps, x.Span, trials, first, Precision.F32);
        Assert.Equal(first, Float32.ToDouble(Step(0)));
        for (int k = 1; k < t; k++)
            Assert.Equal(Child(chain.Steps[k], ps, Step(k - 1), trials), Step(k));   // float64 rows between steps would differ

        var lin64 = chain.Linearize(ps, x, Precision.F64);
        Assert.True(TestMath.RelativeError(lin.States.ToArray(), lin64.States.ToArray()) <= 1e-6, "float32 states against float64");
    }

    [Fact]
    public void EmbeddingChecksTokenIdsBeforeRoundingInFloat32()
    {
        const int vocabulary = 7, d = 4;
        var chain = new BlockChain(1,
            new SequentialBlock(new EmbeddingBlock("emb.weight", vocabulary, d), AffineBlock.Linear("l0", d, d)),
            new SequentialBlock(AffineBlock.Linear("l1", d, d), new ActivationBlock(d, Activation.Tanh)));
        var ps = chain.Initialize(seed: 4);
        var ids = new double[] { 3, 0, 6, 2 };
        var x = new Tensor(ids, new AxisShape(("trial", 4), ("input", 1)));
        var lin32 = chain.Linearize(ps, x, Precision.F32);
        var lin64 = chain.Linearize(ps, x, Precision.F64);
        Assert.True(TestMath.RelativeError(lin32.States.ToArray(), lin64.States.ToArray()) <= 1e-6);

        // 3 + 1e-9 rounds to 3 in float32: it must be refused in both precisions, naming the id.
        foreach (var p in new[] { Precision.F64, Precision.F32 })
        {
            var bad = new Tensor(new[] { 3, 3 + 1e-9, 6, 2 }, new AxisShape(("trial", 4), ("input", 1)));
            var ex = Assert.Throws<ArgumentException>(() => chain.Linearize(ps, bad, p));
            Assert.Contains("token id", ex.Message);
            Assert.Contains("row 1", ex.Message);
        }
    }
}
