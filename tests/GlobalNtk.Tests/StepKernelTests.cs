using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Blocks;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Transformer;
using GlobalNtk.Ntk;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// The Kronecker-core K evaluated step by step (<c>ChainLinearization.TryAddStepKernel</c>: one
/// cotangent sweep into every parameter of a step and one tangent sweep back, which the Kronecker K
/// of a block chain uses when a step holds several sites or LayerNorm gains), and the float32
/// parameter sweeps it runs on (<c>TangentActive32</c>, <c>CotangentActive32</c>, the affine and
/// LayerNorm float32 parameter maps).
/// </summary>
/// <remarks>
/// References: central finite differences of the float64 forward pass (h = 1e-5: truncation
/// O(h²) ≈ 1e-10 relative, rounding ≈ 1e-16/h = 1e-11; 1e-7 allowed); the float64 sum over the sites
/// Σ_s D_s (Û Ûᵀ ⊗ I) D_s* x plus the generic J_rest J_rest* x through the restricted parameter maps
/// (the Kronecker form term by term; same operator, another summation order: 1e-12); the dense
/// generic K = J_θ J_θ*; the whole-model NTK (dz/dθ)(dz/dθ)* for P K P*. Float32 against float64:
/// 1e-6 normwise, as <see cref="BlockPrecisionTests"/> (inputs and caches rounded to float32,
/// u₃₂ = 6e-8, sgemm depths ≤ 30 here, a few sweeps: ≲ 5e-7); the float32 results must also differ
/// from float64 by more than 1e-10, which shows that they really ran in float32.
/// </remarks>
public class StepKernelTests
{
    private const int Tokens = 3, Rows = 2 * Tokens, Count = 2;
    private const double F32Tolerance = 1e-6;

    public static TheoryData<string> Blocks => new() { "affine", "affine-nobias", "layernorm", "sequential", "pre-ln-layer", "post-ln-layer" };

    private static StepBlock Make(string name) => name switch
    {
        "affine" => AffineBlock.Linear("fc", 4, 3),
        "affine-nobias" => AffineBlock.Linear("fc", 4, 3, bias: false),
        "layernorm" => new LayerNormBlock("norm", 4),
        "sequential" => new SequentialBlock(AffineBlock.Linear("fc1", 4, 5), new LayerNormBlock("norm", 5), new ActivationBlock(5, Activation.Gelu), AffineBlock.Linear("fc2", 5, 4, bias: false)),
        "pre-ln-layer" => new SequentialBlock(
            new ResidualBlock(new SequentialBlock(new LayerNormBlock("norm1", 4), new AttentionBlock("attn", 4, 2, Tokens, causal: true))),
            new ResidualBlock(new SequentialBlock(new LayerNormBlock("norm2", 4), AffineBlock.Linear("linear1", 4, 8),
                new ActivationBlock(8, Activation.Gelu), AffineBlock.Linear("linear2", 8, 4)))),
        "post-ln-layer" => new SequentialBlock(
            new ResidualBlock(new AttentionBlock("attn", 4, 2, Tokens, causal: false)), new LayerNormBlock("norm1", 4),
            new ResidualBlock(new SequentialBlock(AffineBlock.Linear("linear1", 4, 8), new ActivationBlock(8, Activation.Gelu), AffineBlock.Linear("linear2", 8, 4))),
            new LayerNormBlock("norm2", 4)),
        _ => throw new ArgumentException(name),
    };

    /// <summary>θ + h·δθ in the block's compact order (Gaussian values of scale 1/2, LayerNorm gains around 1).</summary>
    private static ParameterSet Parameters(StepBlock block, double[] theta, double[]? dTheta = null, double h = 0)
    {
        var ps = new List<Parameter>();
        int o = 0;
        foreach (var s in block.ParameterSpecs)
        {
            var data = new double[s.Size];
            for (int i = 0; i < s.Size; i++) data[i] = theta[o + i] + (dTheta == null ? 0 : h * dTheta[o + i]);
            ps.Add(new Parameter(s.Name, s.Shape, data));
            o += s.Size;
        }
        return new ParameterSet(ps);
    }

    private static double[] RandomTheta(StepBlock block, Random rng)
    {
        var theta = TestMath.Gaussian(rng, block.ParameterSize).Select(v => 0.5 * v).ToArray();
        int o = 0;
        foreach (var s in block.ParameterSpecs)
        {
            if (s.Shape.Length == 1 && s.Name.Contains("norm") && s.Name.EndsWith(".weight")) for (int i = 0; i < s.Size; i++) theta[o + i] += 1;
            o += s.Size;
        }
        return theta;
    }

    private static float[] Single(double[] v) => v.Select(x => (float)x).ToArray();
    private static double[] Double(float[] v) => v.Select(x => (double)x).ToArray();
    private static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> b) { double s = 0; for (int i = 0; i < a.Length; i++) s += a[i] * b[i]; return s; }
    private static double Norm(ReadOnlySpan<double> a) => Math.Sqrt(Dot(a, a));

    /// <summary>
    /// J_u δu + J_θ δθ in one tangent sweep against central differences of the forward pass; the
    /// cotangent sweep against it by the adjoint identity; and both float32 sweeps (and the float64
    /// entries of a float32 trace, which sweep in float32 between one narrowing and one widening)
    /// against float64.
    /// </summary>
    [Theory]
    [MemberData(nameof(Blocks))]
    public void ParameterSweepsMatchDifferencesFloat64AndAreAdjoint(string name)
    {
        var block = Make(name);
        var rng = new Random(11);
        var theta = RandomTheta(block, rng);
        var ps = Parameters(block, theta);
        int nIn = Rows * block.InputWidth, nOut = Rows * block.OutputWidth, m = block.ParameterSize;
        // Inputs, directions and cotangents rounded to float32 so that both precisions see the same numbers.
        var u = Double(Single(TestMath.Gaussian(rng, nIn)));
        var t64 = block.Forward(ps, u, Rows, new double[nOut]);
        var t32 = block.Forward(ps, u, Rows, new double[nOut], Precision.F32);
        var du = Double(Single(TestMath.Gaussian(rng, Count * nIn)));
        var dth = Double(Single(TestMath.Gaussian(rng, Count * m)));
        var g = Double(Single(TestMath.Gaussian(rng, Count * nOut)));

        var tan = new double[Count * nOut];
        t64.TangentActive(du, dth, tan, Count, default);
        // Central differences of the forward pass along (δu, δθ) of vector 0.
        const double h = 1e-5;
        var plus = new double[nOut]; var minus = new double[nOut];
        block.Forward(Parameters(block, theta, dth[..m], h), u.Zip(du, (a, b) => a + h * b).ToArray(), Rows, plus);
        block.Forward(Parameters(block, theta, dth[..m], -h), u.Zip(du, (a, b) => a - h * b).ToArray(), Rows, minus);
        var fd = plus.Zip(minus, (a, b) => (a - b) / (2 * h)).ToArray();
        Assert.True(TestMath.RelativeError(tan.AsSpan(0, nOut), fd) < 1e-7, $"{name}: tangent vs differences {TestMath.RelativeError(tan.AsSpan(0, nOut), fd):E2}");

        var cin = new double[Count * nIn]; var cth = new double[Count * m];
        t64.CotangentActive(g, cin, cth, Count, default);
        double lhs = Dot(tan, g), rhs = Dot(du, cin) + Dot(dth, cth);
        Assert.True(Math.Abs(lhs - rhs) <= 1e-12 * (Norm(tan) * Norm(g) + Norm(du) * Norm(cin) + Norm(dth) * Norm(cth)), $"{name}: float64 adjoint {lhs} vs {rhs}");

        // Float32 sweeps on float32 blocks.
        var tan32 = new float[Count * nOut];
        t32.TangentActive32(Single(du), Single(dth), tan32, Count, default);
        var cin32 = new float[Count * nIn]; var cth32 = new float[Count * m];
        t32.CotangentActive32(Single(g), cin32, cth32, Count, default);
        double eT = TestMath.RelativeError(Double(tan32), tan), eI = TestMath.RelativeError(Double(cin32), cin), eP = TestMath.RelativeError(Double(cth32), cth);
        Assert.True(eT is <= F32Tolerance and > 1e-10, $"{name}: float32 tangent {eT:E2}");
        Assert.True(eI is <= F32Tolerance and > 1e-10, $"{name}: float32 input cotangent {eI:E2}");
        Assert.True(eP is <= F32Tolerance and > 1e-10, $"{name}: float32 parameter cotangent {eP:E2}");
        double l32 = Dot(Double(tan32), g), r32 = Dot(du, Double(cin32)) + Dot(dth, Double(cth32));
        double scale = Norm(Double(tan32)) * Norm(g) + Norm(du) * Norm(Double(cin32)) + Norm(dth) * Norm(Double(cth32));
        Assert.True(Math.Abs(l32 - r32) <= F32Tolerance * scale, $"{name}: float32 adjoint {l32} vs {r32} (scale {scale:E2})");

        // The parameter part alone (no input tangent; cotangent without dIn), float32 against float64.
        var pj = new double[Count * nOut]; var pj32 = new float[Count * nOut];
        t64.TangentActive(default, dth, pj, Count, default);
        t32.TangentActive32(default, Single(dth), pj32, Count, default);
        Assert.True(TestMath.RelativeError(Double(pj32), pj) is <= F32Tolerance and > 1e-10, $"{name}: float32 J_θ {TestMath.RelativeError(Double(pj32), pj):E2}");
        var pv32 = new float[Count * m];
        t32.CotangentActive32(Single(g), default, pv32, Count, default);
        Assert.True(TestMath.RelativeError(Double(pv32), cth) <= F32Tolerance, $"{name}: float32 J_θ* {TestMath.RelativeError(Double(pv32), cth):E2}");

        // The float64 entry points of the float32 trace.
        var tanW = new double[Count * nOut];
        t32.TangentActive(du, dth, tanW, Count, default);
        Assert.True(TestMath.RelativeError(tanW, tan) is <= F32Tolerance and > 1e-10, $"{name}: float64 entry of the float32 tangent {TestMath.RelativeError(tanW, tan):E2}");
        var cinW = new double[Count * nIn]; var cthW = new double[Count * m];
        t32.CotangentActive(g, cinW, cthW, Count, default);
        Assert.True(TestMath.RelativeError(cinW, cin) <= F32Tolerance && TestMath.RelativeError(cthW, cth) <= F32Tolerance,
            $"{name}: float64 entry of the float32 cotangent {TestMath.RelativeError(cinW, cin):E2} / {TestMath.RelativeError(cthW, cth):E2}");
    }

    public static TheoryData<string> Chains => new()
    {
        "transformer-preln-causal", "transformer-postln-finalnorm", "transformer-embedding-learned", "mlp-layernorm", "mlp-preln-residual", "mlp-plain",
    };

    private static (Func<Precision, ChainLinearization> Linearize, bool HasRest) MakeChain(string name)
    {
        var rng = new Random(7);
        if (name.StartsWith("transformer"))
        {
            const int seqs = 2, tokens = 4, inputs = 3;
            bool embedding = name.Contains("embedding");
            var config = new TransformerConfig(embedding ? TransformerInput.Embedding : TransformerInput.Linear, embedding ? 5 : inputs, 8, 2, 2, 12,
                Activation.Gelu, Causal: name.Contains("causal"))
            {
                NormFirst = !name.Contains("postln"), FinalNorm = name.Contains("finalnorm"),
                Positional = embedding ? TransformerPositional.Learned : TransformerPositional.Sinusoidal, MaxPositions = 5,
            };
            var model = TransformerModel.Create(config, 2, seed: 3);
            var x = embedding
                ? new Tensor(Enumerable.Range(0, seqs * tokens).Select(_ => (double)rng.Next(5)).ToArray(), new AxisShape(("sequence", seqs), ("token", tokens)))
                : new Tensor(TestMath.Gaussian(rng, seqs * tokens * inputs), new AxisShape(("sequence", seqs), ("token", tokens), ("input", inputs)));
            return (p => ((IChainModel)model).Linearize(x, p), true);
        }
        var chain = name switch
        {
            "mlp-layernorm" => new BlockChain(3,
                new SequentialBlock(AffineBlock.Linear("l0", 3, 6), new LayerNormBlock("n0", 6), new ActivationBlock(6, Activation.Tanh)),
                new SequentialBlock(AffineBlock.Linear("l1", 6, 6), new LayerNormBlock("n1", 6), new ActivationBlock(6, Activation.Gelu)),
                new SequentialBlock(AffineBlock.Linear("l2", 6, 6, bias: false), new ActivationBlock(6, Activation.Tanh))),
            "mlp-preln-residual" => new BlockChain(3,
                new SequentialBlock(AffineBlock.Linear("l0", 3, 6), new ActivationBlock(6, Activation.Tanh)),
                new ResidualBlock(new SequentialBlock(new LayerNormBlock("n1", 6), AffineBlock.Linear("l1a", 6, 10), new ActivationBlock(10, Activation.Gelu), AffineBlock.Linear("l1b", 10, 6))),
                new ResidualBlock(new SequentialBlock(new LayerNormBlock("n2", 6), AffineBlock.Linear("l2a", 6, 10), new ActivationBlock(10, Activation.Tanh), AffineBlock.Linear("l2b", 10, 6)))),
            "mlp-plain" => new BlockChain(3,
                new SequentialBlock(AffineBlock.Linear("l0", 3, 6), new ActivationBlock(6, Activation.Tanh)),
                new SequentialBlock(AffineBlock.Linear("l1", 6, 6), new ActivationBlock(6, Activation.Tanh))),
            _ => throw new ArgumentException(name),
        };
        // Parameters away from initialisation (LayerNorm γ = 1, β = 0 would hide terms).
        var ps = new ParameterSet(chain.ParameterSpecs.Select(s => new Parameter(s.Name, s.Shape,
            TestMath.Gaussian(rng, s.Size).Select(v => 0.5 * v + (s.Shape.Length == 1 && s.Name.StartsWith('n') && s.Name.EndsWith(".weight") ? 1 : 0)).ToArray())));
        var xin = new Tensor(TestMath.Gaussian(rng, 5 * 3), new AxisShape(("sample", 5), ("input", 3)));
        return (p => chain.Linearize(ps, xin, p), name != "mlp-plain");
    }

    /// <summary>Σ_s D_s (Û Ûᵀ ⊗ I) D_s* x + J_rest J_rest* x in float64, term by term through the sites' maps and the restricted parameter maps.</summary>
    private static double[] SiteSumPlusRest(ChainLinearization lin, double[] x, int count)
    {
        int n = lin.StateShape.Size;
        var y = new double[count * n];
        foreach (var s in lin.Sites)
        {
            int rows = s.Rows, d = s.AugmentedWidth, m = s.OutDim;
            var u = s.Variables.Span;
            var a = new double[count * rows * m];
            s.ApplyDAdjoint(x, a, count);
            for (int j = 0; j < count; j++)
            {
                var c = new double[d * m];
                for (int r = 0; r < rows; r++)
                    for (int p = 0; p < d; p++)
                        for (int q = 0; q < m; q++) c[p * m + q] += u[r * d + p] * a[(j * rows + r) * m + q];
                for (int r = 0; r < rows; r++)
                    for (int q = 0; q < m; q++)
                    {
                        double v = 0;
                        for (int p = 0; p < d; p++) v += u[r * d + p] * c[p * m + q];
                        a[(j * rows + r) * m + q] = v;
                    }
            }
            s.ApplyDAdd(a, y, count);
        }
        var map = new SiteParameterMap(lin);
        if (map.RestSize > 0)
        {
            var gr = new double[count * map.RestSize]; var t = new double[count * n];
            lin.ParamVjpSubset(map.Rest, x, gr, count);
            lin.ParamJvpSubset(map.Rest, gr, t, count);
            for (int i = 0; i < y.Length; i++) y[i] += t[i];
        }
        return y;
    }

    /// <summary>
    /// The step-by-step K equals the Kronecker form term by term and the generic J_θ J_θ* (float64),
    /// and its float32 form agrees with them within the float32 tolerance and is symmetric; the
    /// Kronecker K operator (which takes the step path when a step holds several sites or J_rest)
    /// and P K P* against the whole-model NTK, in both precisions.
    /// </summary>
    [Theory]
    [MemberData(nameof(Chains))]
    public void StepKernelIsTheKroneckerKInBothPrecisions(string name)
    {
        var (linearize, hasRest) = MakeChain(name);
        var lin64 = linearize(Precision.F64);
        var lin32 = linearize(Precision.F32);
        int n = lin64.StateShape.Size;
        var rng = new Random(3);
        var x = Double(Single(TestMath.Gaussian(rng, Count * n)));
        var reference = SiteSumPlusRest(lin64, x, Count);
        var ops64 = new NtkOperators(lin64);
        var generic = new double[Count * n];
        ops64.K.ApplyBlock(x, generic, Count);
        Assert.True(TestMath.RelativeError(reference, generic) < 1e-12, $"{name}: term-by-term Kronecker form vs J_θ J_θ*: {TestMath.RelativeError(reference, generic):E2}");
        Assert.Equal(hasRest, new SiteParameterMap(lin64).RestSize > 0);

        var step = new double[Count * n];
        Assert.True(lin64.TryAddStepKernel(x, step, Count));
        Assert.True(TestMath.RelativeError(step, reference) < 1e-12, $"{name}: float64 step kernel {TestMath.RelativeError(step, reference):E2}");
        var kk = new double[Count * n];
        ops64.KKronecker.ApplyBlock(x, kk, Count);
        Assert.True(TestMath.RelativeError(kk, reference) < 1e-12, $"{name}: float64 Kronecker K {TestMath.RelativeError(kk, reference):E2}");

        // Float32 state blocks through the float32 linearisation's sweeps.
        Assert.True(lin32.HasSingleStateMaps, $"{name}: float32 state maps");
        var x32 = Single(x);
        var step32 = new float[Count * n];
        Assert.True(lin32.TryAddStepKernel(x32, step32, Count));
        double e32 = TestMath.RelativeError(Double(step32), reference);
        Assert.True(e32 is <= F32Tolerance and > 1e-10, $"{name}: float32 step kernel {e32:E2}");
        var ops32 = new NtkOperators(lin32);
        var kk32 = new float[Count * n];
        ops32.KKronecker.ApplyBlock(x32, kk32, Count);
        Assert.True(TestMath.RelativeError(Double(kk32), reference) <= F32Tolerance, $"{name}: float32 Kronecker K {TestMath.RelativeError(Double(kk32), reference):E2}");
        // Float64 vectors through the float32 linearisation (the estimators' path).
        var kk32w = new double[Count * n];
        ops32.KKronecker.ApplyBlock(x, kk32w, Count);
        Assert.True(TestMath.RelativeError(kk32w, reference) <= F32Tolerance, $"{name}: float32 K on float64 vectors {TestMath.RelativeError(kk32w, reference):E2}");

        // Symmetry of the float32 K: ⟨K x, w⟩ = ⟨x, K w⟩.
        var w32 = Single(TestMath.Gaussian(rng, n));
        var kx = new float[n]; var kw = new float[n];
        ops32.KKronecker.ApplyBlock(x32.AsSpan(0, n), kx, 1);
        ops32.KKronecker.ApplyBlock(w32, kw, 1);
        double l = Dot(Double(kx), Double(w32)), r = Dot(Double(x32[..n]), Double(kw));
        double scale = Norm(Double(kx)) * Norm(Double(w32)) + Norm(Double(x32[..n])) * Norm(Double(kw));
        Assert.True(Math.Abs(l - r) <= F32Tolerance * scale, $"{name}: float32 K symmetry {l} vs {r} (scale {scale:E2})");

        // P K P* = (dz/dθ)(dz/dθ)*, the whole-model NTK, in float64 and with float32 vectors.
        var whole = new double[Count * n];
        ops64.WholeModelNtk.ApplyBlock(x, whole, Count);
        var ntk = new double[Count * n];
        ops64.NtkS.ApplyBlock(x, ntk, Count);
        Assert.True(TestMath.RelativeError(ntk, whole) < 1e-11, $"{name}: NTK_S vs whole-model NTK {TestMath.RelativeError(ntk, whole):E2}");
        var ntk32 = new float[Count * n];
        ops32.NtkS.ApplyBlock(x32, ntk32, Count);
        Assert.True(TestMath.RelativeError(Double(ntk32), whole) <= F32Tolerance, $"{name}: float32 NTK_S vs whole-model NTK {TestMath.RelativeError(Double(ntk32), whole):E2}");
    }

    /// <summary>
    /// The fused NTK_S of block chains (one cotangent sweep back, one tangent sweep forward) is
    /// P K P* applied stage by stage (P*, the Kronecker K, P as separate operators), and symmetric.
    /// </summary>
    [Theory]
    [MemberData(nameof(Chains))]
    public void FusedStateNtkIsPKPStarInBothPrecisions(string name)
    {
        var (linearize, hasRest) = MakeChain(name);
        var lin64 = linearize(Precision.F64);
        var lin32 = linearize(Precision.F32);
        int n = lin64.StateShape.Size;
        var rng = new Random(11);
        var x = Double(Single(TestMath.Gaussian(rng, Count * n)));
        var ops64 = new NtkOperators(lin64);
        var w = new double[Count * n]; var kw = new double[Count * n]; var staged = new double[Count * n];
        ops64.PAdjoint.ApplyBlock(x, w, Count);
        ops64.KKronecker.ApplyBlock(w, kw, Count);
        ops64.P.ApplyBlock(kw, staged, Count);

        var fused = new double[Count * n];
        Assert.True(lin64.TryApplyStateNtk(x, fused, Count));
        Assert.True(TestMath.RelativeError(fused, staged) < 1e-12, $"{name}: fused NTK_S vs P K P* stage by stage {TestMath.RelativeError(fused, staged):E2}");
        var viaOperator = new double[Count * n];
        ops64.NtkS.ApplyBlock(x, viaOperator, Count);
        Assert.True(TestMath.RelativeError(viaOperator, staged) < 1e-12, $"{name}: NTK_S operator {TestMath.RelativeError(viaOperator, staged):E2}");
        // A chain with one site per step and no J_rest keeps K's per-site path, so NTK_S is not fused there.
        Assert.Equal(hasRest || name.StartsWith("transformer"), new KroneckerKernelOperator(lin64).ByStep);

        // Symmetric: ⟨NTK_S x, u⟩ = ⟨x, NTK_S u⟩.
        var u = TestMath.Gaussian(rng, n);
        var nu = new double[n];
        Assert.True(lin64.TryApplyStateNtk(u, nu, 1));
        double l = Dot(fused.AsSpan(0, n), u), r = Dot(x.AsSpan(0, n), nu);
        Assert.True(Math.Abs(l - r) <= 1e-12 * (Norm(fused.AsSpan(0, n)) * Norm(u) + Norm(x.AsSpan(0, n)) * Norm(nu)), $"{name}: symmetry {l} vs {r}");

        // Float32 state blocks and float64 vectors through the float32 linearisation.
        var fused32 = new float[Count * n];
        Assert.True(lin32.TryApplyStateNtk(Single(x), fused32, Count));
        double e32 = TestMath.RelativeError(Double(fused32), staged);
        Assert.True(e32 is <= F32Tolerance and > 1e-10, $"{name}: float32 fused NTK_S {e32:E2}");
        var fused32w = new double[Count * n];
        Assert.True(lin32.TryApplyStateNtk(x, fused32w, Count));
        Assert.True(TestMath.RelativeError(fused32w, staged) <= F32Tolerance, $"{name}: float32 fused NTK_S on float64 vectors {TestMath.RelativeError(fused32w, staged):E2}");
    }
}
