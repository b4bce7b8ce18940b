using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Recurrent;
using GlobalNtk.Models.Transformer;
using GlobalNtk.Ntk;
using GlobalNtk.Operators;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// Float32 blocks of vectors through the operator interface (<c>LinearOperator.ApplyBlock(float)</c>):
/// the NTK operators of a float32 block chain keep them in float32 end to end; every other operator
/// widens them, applies its float64 map and rounds the result.
/// </summary>
/// <remarks>
/// Tolerance 1e-6 relative, normwise, against the float64 operators of the float64 linearisation
/// (as <see cref="BlockPrecisionTests"/>). The float32 state blocks add one rounding (u₃₂ = 6e-8) per
/// sweep step and per addition into the block, a few dozen in all on these 3-step chains, which
/// stays well inside it. The float32 path must also differ from the float64-vector path of the same
/// float32 linearisation by more than 1e-10 (the vectors really stayed float32), except the transformer's
/// fused NTK_S, where both vector paths sweep in float32 and agree exactly.
/// </remarks>
public class Float32VectorTests
{
    private const double Tolerance = 1e-6;

    private static (ChainLinearization Lin64, ChainLinearization Lin32) Transformer()
    {
        var config = new TransformerConfig(TransformerInput.Linear, 3, 8, 2, 2, 12, Activation.Gelu, Causal: true);
        var model = TransformerModel.Create(config, 3, seed: 4);
        var x = new Tensor(TestMath.Gaussian(new Random(2), 3 * 4 * 3), new AxisShape(("sequence", 3), ("token", 4), ("input", 3)));
        return (model.Linearize(x), model.Linearize(x, Precision.F32));
    }

    private static (ChainLinearization Lin64, ChainLinearization Lin32) Mlp()
    {
        var model = MlpModel.Create(5, 16, 3, 2, Activation.Tanh, 7);
        var x = new Tensor(TestMath.Gaussian(new Random(3), 6 * 5), new AxisShape(("sample", 6), ("input", 5)));
        return (model.Linearize(x), model.Linearize(x, Precision.F32));
    }

    public static TheoryData<string> Models => new() { "transformer", "mlp" };

    [Theory]
    [MemberData(nameof(Models))]
    public void NtkOperatorsOfAFloat32BlockChainKeepFloat32VectorsAndAgreeWithFloat64(string which)
    {
        var (lin64, lin32) = which == "mlp" ? Mlp() : Transformer();
        Assert.True(lin32.HasSingleStateMaps);
        Assert.False(lin64.HasSingleStateMaps);
        var o64 = new NtkOperators(lin64);
        var o32 = new NtkOperators(lin32);
        var pairs = new (string Name, LinearOperator F64, LinearOperator F32)[]
        {
            ("P", o64.P, o32.P), ("P*", o64.PAdjoint, o32.PAdjoint), ("P^-1", o64.PInverse, o32.PInverse),
            ("P^-*", o64.PInverse.Adjoint, o32.PInverse.Adjoint),
            ("K (Kronecker core)", o64.KKronecker, o32.KKronecker), ("NTK_S", o64.NtkS, o32.NtkS),
        };
        var rng = new Random(12);
        const int count = 3;
        foreach (var (name, a64, a32) in pairs)
        {
            var v = Float32.ToSingle(TestMath.Gaussian(rng, count * a64.Domain.Size));
            var v64 = Float32.ToDouble(v);
            var y = new float[count * a32.Range.Size];
            a32.ApplyBlock(v, y, count);
            double rel = TestMath.RelativeError(Float32.ToDouble(y), a64.ApplyBlock(v64, count));
            Assert.True(rel <= Tolerance, $"{which} {name}: float32 vectors differ from float64 by {rel:E2}");
            double own = TestMath.RelativeError(Float32.ToDouble(y), a32.ApplyBlock(v64, count));
            Assert.True(own <= Tolerance, $"{which} {name}: float32 against float64 vectors of the float32 linearisation: {own:E2}");
            // The sweeps add into the float32 block (rounded), the float64-vector path into float64. K of a
            // chain without a J_rest term adds each site's float32 result into zeros, where both are exact.
            // The fused NTK_S of a block chain (transformer) sweeps each step in float32 for float64 vectors too
            // and only adds float32-representable rows between steps, so there the two vector paths agree
            // exactly; that both ran in float32 shows as their distance from the float64 linearisation.
            if (name == "NTK_S" && which == "transformer")
                Assert.True(rel > 1e-10, $"{which} {name}: float32 vectors equal the float64 linearisation's result to {rel:E2}; float32 arithmetic did not run");
            else if (!name.StartsWith('K'))
                Assert.True(own > 1e-10, $"{which} {name}: float32 vectors equal float64 ones to {own:E2}; the float32 path did not run");
        }

        // Adjoint identity of the float32 sweeps and self-adjointness of K and NTK_S, on float32 blocks.
        foreach (var (name, a, adj) in new[] { ("P", o32.P, o32.PAdjoint), ("K", o32.KKronecker, o32.KKronecker), ("NTK_S", o32.NtkS, o32.NtkS), ("P^-1", o32.PInverse, o32.PInverse.Adjoint) })
        {
            int n = a.Domain.Size;
            var x = Float32.ToSingle(TestMath.Gaussian(rng, n)); var w = Float32.ToSingle(TestMath.Gaussian(rng, n));
            double gap = TestMath.Float32AdjointGap(a, adj, x, w);
            Assert.True(gap <= Tolerance, $"{which} {name}: ⟨A x, w⟩ vs ⟨x, A* w⟩, relative gap {gap:E2}");
        }
    }

    /// <summary>A float64 linearisation has no float32 state maps: its operators take float32 blocks through the converting default.</summary>
    [Fact]
    public void OperatorsWithoutAFloat32PathConvertFloat32Blocks()
    {
        var model = RecurrentModel.Create(new RecurrentConfig("gru", 3, 8, 2) { Layers = 2 });
        var x = new Tensor(TestMath.Gaussian(new Random(4), 2 * 5 * 3), model.InputShape(2, 5));
        var lin = model.Linearize(x, Precision.F64);
        Assert.False(lin.HasSingleStateMaps);
        var ops = new NtkOperators(lin);
        Assert.False(ops.K.AppliesFloat32Natively);
        var dense = new DenseOperator(TestMath.Gaussian(new Random(5), 4 * 3), 4, 3);
        var rng = new Random(6);
        // Composites of such operators (a Gram, K = J_θJ_θ*) widen once for the whole composite.
        foreach (var op in new[] { ops.NtkS, ops.P, ops.KKronecker, ops.K, dense, dense.Adjoint, dense.Gram(), dense.Adjoint.Gram() })
        {
            var v = Float32.ToSingle(TestMath.Gaussian(rng, 2 * op.Domain.Size));
            var y = new float[2 * op.Range.Size];
            op.ApplyBlock(v, y, 2);
            // Exactly the float64 map on the widened block, rounded once.
            Assert.Equal(Float32.ToSingle(op.ApplyBlock(Float32.ToDouble(v), 2)), y);
            var z = new float[2 * op.Domain.Size];
            op.ApplyAdjointBlock(y, z, 2);
            Assert.Equal(Float32.ToSingle(op.ApplyAdjointBlock(Float32.ToDouble(y), 2)), z);
        }
    }

    [Fact]
    public void Float32BlocksAreCheckedForShapeAndFiniteness()
    {
        var (_, lin32) = Mlp();
        var ops = new NtkOperators(lin32);
        int n = ops.NtkS.Domain.Size;
        Assert.Throws<ShapeMismatchException>(() => ops.NtkS.ApplyBlock(new float[n + 1], new float[n], 1));
        var bad = new float[n];
        bad[3] = float.NaN;
        var ex = Assert.Throws<NonFiniteException>(() => ops.NtkS.ApplyBlock(bad, new float[n], 1));
        Assert.Contains("NTK_S", ex.Message);
    }
}
