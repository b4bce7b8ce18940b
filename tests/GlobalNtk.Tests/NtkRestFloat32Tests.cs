using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Recurrent;
using GlobalNtk.Models.Transformer;
using GlobalNtk.Ntk;
using GlobalNtk.Operators;
using Xunit;
using Tensor = GlobalNtk.Dense.Tensor;

namespace GlobalNtk.Tests;

/// <summary>
/// The Kronecker core's J_rest term (the transformer's LayerNorm gains) on a float32 linearisation
/// runs the restricted J_θ on float32 image blocks (no float64 state-sized block): the restricted
/// float32 maps agree with the float64 ones and are adjoint, and the exact and Hutchinson rest traces
/// and the step groups equal those of the float64-block path on the same linearisation up to the
/// order of float64 sums (the images are the same float32 values, squared and summed in float64).
/// </summary>
public class NtkRestFloat32Tests
{
    private static (ChainLinearization Lin64, ChainLinearization Lin32) Transformer(bool postLn = false)
    {
        var config = new TransformerConfig(TransformerInput.Linear, 3, 8, 2, 2, 12, Activation.Gelu, Causal: true) { NormFirst = !postLn };
        var model = (IChainModel)TransformerModel.Create(config, 2, seed: 3);
        var x = new Tensor(TestMath.Uniform(2 * 5 * 3, 4), new AxisShape(("sequence", 2), ("token", 5), ("input", 3)));
        return (model.Linearize(x, Precision.F64), model.Linearize(x, Precision.F32));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RestrictedFloat32MapsMatchFloat64AndAreAdjoint(bool postLn)
    {
        var (lin64, lin32) = Transformer(postLn);
        var map = new SiteParameterMap(lin32);
        int k = map.RestSize, n = lin32.StateShape.Size, count = 3;
        Assert.True(k > 0);
        Assert.True(lin32.HasSingleParamMaps);
        Assert.False(lin64.TryParamJvpSubset(map.Rest, new float[count * k], new float[count * n], count));

        var e = Float32.ToSingle(TestMath.Uniform(count * k, 11));
        var y = new float[count * n];
        Assert.True(lin32.TryParamJvpSubset(map.Rest, e, y, count));
        var y64 = new double[count * n];
        lin64.ParamJvpSubset(map.Rest, Float32.ToDouble(e), y64, count);
        // float32 products on float32 caches: ~1e-6 relative on this net; 1e-5 is issue 12's bar.
        Assert.True(TestMath.RelativeError(Float32.ToDouble(y), y64) <= 1e-5, "J_rest on float32 blocks against float64");

        var q = Float32.ToSingle(TestMath.Uniform(count * n, 12));
        var g = new float[count * k];
        Assert.True(lin32.TryParamVjpSubset(map.Rest, q, g, count));
        var g64 = new double[count * k];
        lin64.ParamVjpSubset(map.Rest, Float32.ToDouble(q), g64, count);
        Assert.True(TestMath.RelativeError(Float32.ToDouble(g), g64) <= 1e-5, "J_rest* on float32 blocks against float64");

        double lhs = Float32.DotWide(y, q), rhs = Float32.DotWide(e, g);
        Assert.True(Math.Abs(lhs - rhs) <= 1e-5 * Math.Max(Math.Abs(lhs), 1), $"⟨J e, q⟩ = {lhs:R} against ⟨e, J* q⟩ = {rhs:R}");

        // The restricted maps are the full float32 maps restricted to the rest tensors.
        var ps = lin32.Parameters; int m = ps.TotalSize;
        var full = new float[count * m];
        var offsets = lin32.SubsetLayout(map.Rest, out _);
        for (int j = 0; j < count; j++)
            for (int i = 0; i < ps.Count; i++)
                if (offsets[i] >= 0) e.AsSpan(j * k + offsets[i], ps[i].Size).CopyTo(full.AsSpan(j * m + ps.OffsetOf(i), ps[i].Size));
        var yFull = new float[count * n];
        Assert.True(lin32.TryParamJvp(full, yFull, count));
        Assert.True(TestMath.RelativeError(Float32.ToDouble(y), Float32.ToDouble(yFull)) <= 1e-6, "restricted J_rest against the full float32 J_θ");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RestTracesOnFloat32ImagesAreTheFloat64BlockPaths(bool postLn)
    {
        var (_, lin32) = Transformer(postLn);
        var view = new Float64SiteView(lin32);   // no float32 parameter maps: float64 image blocks
        Assert.False(view.HasSingleParamMaps);
        var map = new SiteParameterMap(lin32);
        var key = RngKey.FromSeed(5);

        var exact = KroneckerCore.RestTraceOf(lin32, map, long.MaxValue, 6, key);
        var exactView = KroneckerCore.RestTraceOf(view, map, long.MaxValue, 6, key);
        Assert.Equal(TraceMethod.Exact, exact.Method);
        Assert.Equal(exactView.Applications, exact.Applications);
        Assert.True(Math.Abs(exact.Trace - exactView.Trace) <= 1e-12 * exactView.Trace, $"exact rest trace {exact.Trace:R} against {exactView.Trace:R}");

        var est = KroneckerCore.RestTraceOf(lin32, map, 0, 6, key);
        var estView = KroneckerCore.RestTraceOf(view, map, 0, 6, key);
        Assert.Equal(TraceMethod.Hutchinson, est.Method);
        Assert.True(Math.Abs(est.Trace - estView.Trace) <= 1e-12 * estView.Trace, $"Hutchinson rest trace {est.Trace:R} against {estView.Trace:R}");
        Assert.True(Math.Abs(est.StandardError - estView.StandardError) <= 1e-10 * estView.StandardError, "standard error");

        var groups = KroneckerCore.RestGroups(lin32, map, out int a);
        var groupsView = KroneckerCore.RestGroups(view, map, out int aView);
        Assert.Equal(aView, a);
        Assert.Equal(groupsView.Select(x => string.Join(",", x)), groups.Select(x => string.Join(",", x)));
        Assert.True(groups.Count < map.RestSize, "one group holds a scalar of every step");
    }

    /// <summary>
    /// Recurrent nets with a learnable h0 (their J_rest term) in one and two layers: the float32
    /// restricted J_θ (the full float32 J_θ on a scattered δθ) gives the rest trace of the
    /// float64-block path on the same linearisation up to the order of float64 sums, and K's J_rest
    /// term on float32 blocks agrees with the float64 linearisation's.
    /// </summary>
    [Theory]
    [InlineData("gru", 1)]
    [InlineData("lstm", 2)]
    public void LearnableH0RestRunsOnFloat32Blocks(string arch, int layers)
    {
        var rnn = RecurrentModel.Create(new RecurrentConfig(arch, 3, 6, 2) { Seed = 7, Layers = layers, LearnInitialState = true });
        var x = new Tensor(TestMath.Uniform(3 * 5 * 3, 8), rnn.InputShape(3, 5));
        var (lin64, lin32) = (rnn.Linearize(x, Precision.F64), rnn.Linearize(x, Precision.F32));
        Assert.True(lin32.HasSingleParamMaps);
        var map = new SiteParameterMap(lin32);
        Assert.True(map.RestSize > 0);
        var key = RngKey.FromSeed(2);
        var view = new Float64SiteView(lin32);
        foreach (long limit in new[] { long.MaxValue, 0L })
        {
            var native = KroneckerCore.RestTraceOf(lin32, map, limit, 6, key);
            var wide = KroneckerCore.RestTraceOf(view, map, limit, 6, key);
            Assert.True(Math.Abs(native.Trace - wide.Trace) <= 1e-12 * wide.Trace, $"rest trace (limit {limit}) {native.Trace:R} against {wide.Trace:R}");
        }

        var ops64 = new NtkOperators(lin64); var ops32 = new NtkOperators(lin32);
        int n = lin32.StateShape.Size, count = 2;
        var q = Float32.ToSingle(TestMath.Uniform(count * n, 3));
        var y32 = new float[count * n];
        ops32.KKronecker.ApplyBlock(q, y32, count);
        var y64 = new double[count * n];
        ops64.KKronecker.ApplyBlock(Float32.ToDouble(q), y64, count);
        // float32 maps on float32 caches: ~1e-6 relative on this net; 1e-5 is issue 12's bar.
        Assert.True(TestMath.RelativeError(Float32.ToDouble(y32), y64) <= 1e-5, "K (Kronecker) on float32 blocks against float64");
    }
}
