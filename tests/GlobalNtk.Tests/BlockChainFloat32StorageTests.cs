using System.Runtime.InteropServices;
using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Transformer;
using GlobalNtk.Ntk;
using GlobalNtk.Operators;
using Xunit;
using Tensor = GlobalNtk.Dense.Tensor;

namespace GlobalNtk.Tests;

/// <summary>
/// Block chains (transformers, MLPs) on a float32 linearisation keep their trajectory in float32
/// (<see cref="ChainLinearization.StatesSingle"/>; <see cref="ChainLinearization.States"/> widens it
/// once, on request) and run J_θ and J_θ* natively on float32 blocks, so that the generic
/// K = J_θJ_θ* keeps δθ in float32; float64 linearisations are unchanged.
/// </summary>
public class BlockChainFloat32StorageTests
{
    public static TheoryData<string> Chains => new() { "transformer", "transformer-postln", "mlp" };

    private static (ChainLinearization Lin64, ChainLinearization Lin32) Linearize(string name)
    {
        if (name == "mlp")
        {
            var mlp = MlpModel.Create(3, 7, 3, 2, Activation.Tanh, seed: 5);
            var xm = new Tensor(TestMath.Uniform(9 * 3, 6), new AxisShape(("trial", 9), ("input", 3)));
            return (mlp.Linearize(xm, Precision.F64), mlp.Linearize(xm, Precision.F32));
        }
        var config = new TransformerConfig(TransformerInput.Linear, 3, 8, 2, 2, 12, Activation.Gelu, Causal: true) { NormFirst = name != "transformer-postln" };
        var model = (IChainModel)TransformerModel.Create(config, 2, seed: 3);
        var x = new Tensor(TestMath.Uniform(2 * 5 * 3, 4), new AxisShape(("sequence", 2), ("token", 5), ("input", 3)));
        return (model.Linearize(x, Precision.F64), model.Linearize(x, Precision.F32));
    }

    private static Trajectory TrajectoryOf(ChainLinearization lin) => Assert.IsType<Models.Blocks.BlockChainLinearization>(lin).Trajectory;

    private static double[] ArrayOf(ReadOnlyMemory<double> m) => TrajectoryAssertions.ArrayOf(m);

    [Theory]
    [MemberData(nameof(Chains))]
    public void Float32StatesAreStoredOnceAndWidenedExactlyOnRequest(string name)
    {
        var (lin64, lin32) = Linearize(name);
        // Each state is a row of the float32 forward pass (float32 rows from block to block), and that pass
        // tracks the float64 one to ~1e-6 on these nets (docs/math.md#numerics): 1e-5 has margin.
        TrajectoryAssertions.StoredOnceAndWidenedOnRequest(lin64, lin32, TrajectoryOf(lin32), 1e-5);

        // Float64: no float32 view, and States is the stored array itself.
        Assert.Equal(0, lin64.StatesSingle.Length);
        Assert.True(TrajectoryOf(lin64).IsWidened);
        Assert.Same(ArrayOf(lin64.States), ArrayOf(lin64.States));
    }

    /// <summary>
    /// J_θ and J_θ* on float32 blocks: native (δθ never widened) and within 1e-5 of the float64
    /// linearisation's maps (issue 12's bar for operator applications; float32 products on
    /// float32 caches carry ~1e-6 relative error on these nets) and of the converting default on the
    /// same float32 linearisation; the pair is adjoint to float32 accuracy.
    /// </summary>
    [Theory]
    [MemberData(nameof(Chains))]
    public void ParameterMapsRunNativelyOnFloat32Blocks(string name)
    {
        var (lin64, lin32) = Linearize(name);
        Assert.True(lin32.HasSingleParamMaps);
        Assert.False(lin64.HasSingleParamMaps);
        int n = lin32.StateShape.Size, m = lin32.Parameters.TotalSize, count = 3;
        var rng = new Random(11);
        var dTheta = Float32.ToSingle(TestMath.Gaussian(rng, count * m));
        var q = Float32.ToSingle(TestMath.Gaussian(rng, count * n));
        var (dThetaWide, qWide) = (Float32.ToDouble(dTheta), Float32.ToDouble(q));

        var jv = new float[count * n];
        Assert.True(lin32.TryParamJvp(dTheta, jv, count));
        var jv64 = new double[count * n]; lin64.ParamJvp(dThetaWide, jv64, count);
        var jvConverted = new double[count * n]; lin32.ParamJvp(dThetaWide, jvConverted, count);
        Assert.True(TestMath.RelativeError(Float32.ToDouble(jv), jv64) <= 1e-5, $"J_θ {TestMath.RelativeError(Float32.ToDouble(jv), jv64):E2}");
        Assert.True(TestMath.RelativeError(Float32.ToDouble(jv), jvConverted) <= 1e-5);

        var jt = new float[count * m];
        Assert.True(lin32.TryParamVjp(q, jt, count));
        var jt64 = new double[count * m]; lin64.ParamVjp(qWide, jt64, count);
        var jtConverted = new double[count * m]; lin32.ParamVjp(qWide, jtConverted, count);
        Assert.True(TestMath.RelativeError(Float32.ToDouble(jt), jt64) <= 1e-5, $"J_θ* {TestMath.RelativeError(Float32.ToDouble(jt), jt64):E2}");
        Assert.True(TestMath.RelativeError(Float32.ToDouble(jt), jtConverted) <= 1e-5);

        // ⟨J δθ, q⟩ = ⟨δθ, J* q⟩ per vector, both sides accumulated in float64 from float32 results.
        for (int j = 0; j < count; j++)
        {
            double lhs = Float32.DotWide(jv.AsSpan(j * n, n), q.AsSpan(j * n, n));
            double rhs = Float32.DotWide(dTheta.AsSpan(j * m, m), jt.AsSpan(j * m, m));
            double scale = Math.Sqrt(Float32.DotWide(jv.AsSpan(j * n, n), jv.AsSpan(j * n, n)) * Float32.DotWide(q.AsSpan(j * n, n), q.AsSpan(j * n, n)));
            Assert.True(Math.Abs(lhs - rhs) <= 1e-5 * scale, $"adjoint identity, vector {j}: {lhs:R} against {rhs:R}");
        }

        // The generic K on float32 blocks applies natively and agrees with the float64 K.
        var o32 = new NtkOperators(lin32);
        Assert.True(o32.Jtheta.AppliesFloat32Natively);
        Assert.True(o32.K.AppliesFloat32Natively);
        var k32 = new float[count * n]; o32.K.ApplyBlock(q, k32, count);
        var k64 = new double[count * n]; new NtkOperators(lin64).K.ApplyBlock(qWide, k64, count);
        Assert.True(TestMath.RelativeError(Float32.ToDouble(k32), k64) <= 1e-5, $"K {TestMath.RelativeError(Float32.ToDouble(k32), k64):E2}");
    }

    [Fact]
    public void ParameterMapsRejectShortBlocks()
    {
        var (_, lin32) = Linearize("mlp");
        int n = lin32.StateShape.Size, m = lin32.Parameters.TotalSize;
        Assert.Throws<ArgumentException>(() => lin32.TryParamJvp(new float[m], new float[n - 1], 1));
        Assert.Throws<ArgumentException>(() => lin32.TryParamVjp(new float[n], new float[m - 1], 1));
    }

    [Fact]
    public void TrimDropsEveryRetainedArray()
    {
        var pool = new ScratchPool(1L << 30);
        var a = pool.Rent(ScratchPool.SmallLength + 1);
        pool.Return(a);
        Assert.True(pool.RetainedBytes > 0);
        pool.Trim();
        Assert.Equal(0, pool.RetainedBytes);
        Assert.NotSame(a, pool.Rent(ScratchPool.SmallLength + 1));
    }
}
