using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Blocks;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Transformer;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// The float32 row maps of the block traces (<c>Jvp32</c>, <c>Vjp32</c>, the sites' float32 D and
/// D*), which a float32 linearisation runs from child to child without widening: each against the
/// float64 trace of the same block, and each pair against the adjoint identity.
/// </summary>
/// <remarks>
/// Tolerances. Against float64: 1e-6 normwise, as <see cref="BlockPrecisionTests"/> (inputs rounded
/// to float32, u₃₂ = 6e-8, and sgemm depths ≤ 12 here, so √k·u₃₂ ≲ 2e-7 per product, a few
/// products per block). Adjoint identity: ⟨J v, w⟩ and ⟨v, Jᵀ w⟩ are both formed in float64 from
/// float32 results; each carries the rounding of its own float32 products, so they agree to
/// ~1e-7 of ‖J v‖‖w‖ (1e-6 allowed). Measured against float64: 2.5e-8 to 1.4e-7 over every block
/// and site here (Gaussian parameters of scale 1/2). A float64 map would meet both to ~1e-15, so the test also
/// requires a difference above 1e-10 from the float64 trace for the blocks that really run in
/// float32 (they round their caches).
/// </remarks>
public class BlockFloat32MapTests
{
    private const int Tokens = TestBlocks.Tokens, Rows = 2 * Tokens, Count = 2;
    private const double Tolerance = 1e-6;

    public static TheoryData<string> Blocks => new()
    {
        "affine", "affine-nobias", "tanh", "gelu", "layernorm", "layernorm-plain", "residual", "sequential",
        "attention", "attention-causal-nobias", "positional-sinusoid", "encoder-layer",
    };


    /// <summary>Gaussian values of scale 1/2 (LayerNorm gains around 1): O(1) activations, softmax rows not saturated.</summary>
    private static ParameterSet RandomParameters(StepBlock block, Random rng) =>
        new(block.ParameterSpecs.Select(s => new Parameter(s.Name, s.Shape,
            TestMath.Gaussian(rng, s.Size).Select(v => 0.5 * v + (s.Name.EndsWith("norm.weight") || s.Name.EndsWith("norm1.weight") || s.Name.EndsWith("norm2.weight") ? 1 : 0)).ToArray())));

    [Theory]
    [MemberData(nameof(Blocks))]
    public void Float32MapsMatchFloat64AndAreAdjoint(string name)
    {
        var block = TestBlocks.Make(name);
        var rng = new Random(5);
        var ps = RandomParameters(block, rng);
        int nIn = Rows * block.InputWidth, nOut = Rows * block.OutputWidth;
        var u = TestMath.Gaussian(rng, nIn);
        var t64 = block.Forward(ps, u, Rows, new double[nOut]);
        var t32 = block.Forward(ps, u, Rows, new double[nOut], Precision.F32);
        bool native = block is not PositionalEncodingBlock;
        Assert.Equal(native, t32.IsSingle);
        Assert.False(t64.IsSingle);

        // J_u on float32 rows against the float64 trace on the same (float32-representable) rows.
        var v = Single(TestMath.Gaussian(rng, Count * nIn));
        var jv = new float[Count * nOut];
        t32.Jvp32(v, jv, Count);
        var jv64 = new double[Count * nOut];
        t64.Jvp(Float32.ToDouble(v), jv64, Count);
        AssertNear(Float32.ToDouble(jv), jv64, native, $"{name}: Jvp32");
        // The float64 entry point of the float32 trace (narrow once, float32 maps, widen once).
        var jvVia = new double[Count * nOut];
        t32.Jvp(Float32.ToDouble(v), jvVia, Count);
        AssertNear(jvVia, jv64, native, $"{name}: Jvp of the float32 trace");

        var w = Single(TestMath.Gaussian(rng, Count * nOut));
        var jtw = new float[Count * nIn];
        t32.Vjp32(w, jtw, Count);
        var jtw64 = new double[Count * nIn];
        t64.Vjp(Float32.ToDouble(w), jtw64, Count);
        AssertNear(Float32.ToDouble(jtw), jtw64, native, $"{name}: Vjp32");
        AssertAdjoint(jv, w, v, jtw, $"{name}: ⟨J v, w⟩ vs ⟨v, Jᵀ w⟩ in float32");

        // Sites: float32 Û and float32 D, D* against the float64 site.
        var s64 = t64.Sites; var s32 = t32.Sites;
        Assert.Equal(s64.Count, s32.Count);
        for (int i = 0; i < s64.Count; i++)
        {
            var (a, b) = (s64[i], s32[i]);
            Assert.Equal(a.Name, b.Name);
            Assert.Equal(a.RowLocal, b.RowLocal);
            Assert.NotNull(b.Variables32);
            // A site on the block's input: Û is that input rounded once (≤ 2⁻²⁴ relative). Inside a
            // sequential or residual block, Û is a float32 forward pass's rows: a few more float32
            // roundings (sgemm sums, bias, skip additions) carried through the children before it.
            double uTol = block is SequentialBlock or ResidualBlock ? 1e-6 : 1e-7;
            Assert.True(TestMath.RelativeError(Float32.ToDouble(b.Variables32), a.Variables) <= uTol, $"{name}/{a.Name}: Û rounded to float32");
            Assert.Equal(Float32.ToDouble(b.Variables32), b.Variables);   // widened on demand, exactly
            int siteLen = Rows * a.OutDim;
            var x = Single(TestMath.Gaussian(rng, Count * siteLen));
            var dx = new float[Count * nOut];
            b.ApplyD32!(x, dx, Count);
            var dx64 = new double[Count * nOut];
            a.ApplyD(Float32.ToDouble(x), dx64, Count);
            AssertNear(Float32.ToDouble(dx), dx64, false, $"{name}/{a.Name}: D in float32");
            var q = Single(TestMath.Gaussian(rng, Count * nOut));
            var dq = new float[Count * siteLen];
            b.ApplyDAdjoint32!(q, dq, Count);
            var dq64 = new double[Count * siteLen];
            a.ApplyDAdjoint(Float32.ToDouble(q), dq64, Count);
            AssertNear(Float32.ToDouble(dq), dq64, false, $"{name}/{a.Name}: D* in float32");
            AssertAdjoint(dx, q, x, dq, $"{name}/{a.Name}: ⟨D a, q⟩ vs ⟨a, D* q⟩ in float32");
            // The site's float64 maps of a float32 trace agree too (they convert once around the float32 ones).
            var dxVia = new double[Count * nOut];
            b.ApplyD(Float32.ToDouble(x), dxVia, Count);
            AssertNear(dxVia, dx64, false, $"{name}/{a.Name}: D of the float32 site");
        }
    }

    /// <summary>
    /// Rows numerous enough for the LayerNorm loops to run in parallel chunks: the float64 trace
    /// against the formula row by row and central differences (parallel chunks must not change a
    /// row's arithmetic), the float32 trace against the float64 one.
    /// </summary>
    [Fact]
    public void LayerNormRowsInParallelMatchTheFormulaAndFiniteDifferences()
    {
        const int rows = 400, d = 96;   // 38 400 elements: above the parallel threshold
        var block = new LayerNormBlock("norm", d);
        var rng = new Random(8);
        var ps = new ParameterSet([new Parameter("norm.weight", [d], TestMath.Gaussian(rng, d).Select(x => 1 + 0.3 * x).ToArray()),
            new Parameter("norm.bias", [d], TestMath.Gaussian(rng, d))]);
        var u = TestMath.Gaussian(rng, rows * d);
        var y = new double[rows * d];
        var trace = block.Forward(ps, u, rows, y);
        var g = ps["norm.weight"].Data; var b = ps["norm.bias"].Data;
        for (int r = 0; r < rows; r++)
        {
            var ur = u.AsSpan(r * d, d);
            double mean = ur.ToArray().Average(), var = ur.ToArray().Select(x => (x - mean) * (x - mean)).Average();
            for (int i = 0; i < d; i++)
            {
                double want = (ur[i] - mean) / Math.Sqrt(var + 1e-5) * g[i] + b[i];
                Assert.True(Math.Abs(y[r * d + i] - want) <= 1e-12 * (1 + Math.Abs(want)), $"row {r}, feature {i}: {y[r * d + i]} vs {want}");
            }
        }
        var v = TestMath.Gaussian(rng, 2 * rows * d);
        var jv = new double[2 * rows * d];
        trace.Jvp(v, jv, 2);
        const double eps = 1e-6;
        for (int j = 0; j < 2; j++)
        {
            var vj = v.AsSpan(j * rows * d, rows * d).ToArray();
            var up = u.Zip(vj, (a, c) => a + eps * c).ToArray(); var um = u.Zip(vj, (a, c) => a - eps * c).ToArray();
            var yp = new double[rows * d]; var ym = new double[rows * d];
            block.Forward(ps, up, rows, yp); block.Forward(ps, um, rows, ym);
            var fd = yp.Zip(ym, (a, c) => (a - c) / (2 * eps)).ToArray();
            Assert.True(TestMath.RelativeError(jv.AsSpan(j * rows * d, rows * d), fd) < 1e-7, "LayerNorm JVP vs central differences");
        }
        var w = TestMath.Gaussian(rng, 2 * rows * d);
        var jtw = new double[2 * rows * d];
        trace.Vjp(w, jtw, 2);
        double lhs = Numerics.Dot(jv, w), rhs = Numerics.Dot(v, jtw);
        Assert.True(Math.Abs(lhs - rhs) <= 1e-12 * Numerics.Norm(jv) * Numerics.Norm(w), "LayerNorm ⟨J v, w⟩ vs ⟨v, Jᵀ w⟩");

        var t32 = block.Forward(ps, u, rows, new double[rows * d], Precision.F32);
        var jv32 = new double[2 * rows * d];
        t32.Jvp(v, jv32, 2);
        AssertNear(jv32, jv, true, "LayerNorm float32 trace, parallel rows");
        var jtw32 = new double[2 * rows * d];
        t32.Vjp(w, jtw32, 2);
        AssertNear(jtw32, jtw, true, "LayerNorm float32 VJP, parallel rows");
    }

    /// <summary>
    /// A float32 transformer linearisation keeps every site's Û in float32 only (no float64 copy is
    /// made for K's applications), and its chain-level float32 D and D* agree with the float64
    /// linearisation's D and D* and with each other's adjoint.
    /// </summary>
    [Fact]
    public void Float32ChainSitesKeepAFloat32ÛAndTheirMapsMatchFloat64()
    {
        var config = new TransformerConfig(TransformerInput.Linear, 3, 8, 2, 2, 12, Activation.Gelu, Causal: true);
        var model = TransformerModel.Create(config, 3, seed: 4);
        var x = new Tensor(TestMath.Gaussian(new Random(2), 3 * 4 * 3), new AxisShape(("sequence", 3), ("token", 4), ("input", 3)));
        var lin64 = model.Linearize(x);
        var lin32 = model.Linearize(x, Precision.F32);
        var rng = new Random(6);
        int size = lin64.StateShape.Size;
        for (int i = 0; i < lin32.Sites.Count; i++)
        {
            var (a, b) = (lin64.Sites[i], lin32.Sites[i]);
            Assert.Equal(b.Rows * b.AugmentedWidth, b.VariablesSingle.Length);
            Assert.Equal(0, a.VariablesSingle.Length);
            int n = a.Rows * a.OutDim;
            var pre = Single(TestMath.Gaussian(rng, Count * n));
            var got = new double[Count * size];
            Assert.True(b.TryApplyDAddSingle(pre, got, Count));
            var want = new double[Count * size];
            a.ApplyDAdd(Float32.ToDouble(pre), want, Count);
            AssertNear(got, want, false, $"{a.Name}: D");
            var q = TestMath.Gaussian(rng, Count * size);
            var back = new float[Count * n];
            Assert.True(b.TryApplyDAdjointSingle(q, back, Count));
            var back64 = new double[Count * n];
            a.ApplyDAdjoint(q, back64, Count);
            AssertNear(Float32.ToDouble(back), back64, false, $"{a.Name}: D*");
            double lhs = Numerics.Dot(got, q), rhs = Numerics.Dot(Float32.ToDouble(pre), Float32.ToDouble(back));
            Assert.True(Math.Abs(lhs - rhs) <= Tolerance * Numerics.Norm(got) * Numerics.Norm(q), $"{a.Name}: ⟨D a, q⟩ vs ⟨a, D* q⟩");
        }
    }

    private static float[] Single(double[] a) => Float32.ToSingle(a);

    /// <summary>Within <see cref="Tolerance"/> normwise; above 1e-10 when <paramref name="rounded"/> (the float32 path rounded something).</summary>
    private static void AssertNear(ReadOnlySpan<double> got, ReadOnlySpan<double> want, bool rounded, string what)
    {
        double rel = TestMath.RelativeError(got, want);
        Assert.True(rel <= Tolerance, $"{what}: differs from float64 by {rel:E2}, over {Tolerance:E0}");
        if (rounded) Assert.True(rel > 1e-10, $"{what}: equals float64 to {rel:E2}; the float32 path did not run");
    }

    private static void AssertAdjoint(float[] jv, float[] w, float[] v, float[] jtw, string what)
    {
        double lhs = Float32.DotWide(jv, w), rhs = Float32.DotWide(v, jtw);
        double scale = Math.Sqrt(Float32.DotWide(jv, jv) * Float32.DotWide(w, w));
        Assert.True(Math.Abs(lhs - rhs) <= Tolerance * scale, $"{what}: {lhs} vs {rhs}");
    }
}
