using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Blocks;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Transformer;
using GlobalNtk.Ntk;
using GlobalNtk.Operators;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// The float32 block path (<see cref="Precision.F32"/>) against the float64 one on the same model
/// and batch: every NTK operator applied to the same block of vectors, compared normwise.
/// </summary>
/// <remarks>
/// Tolerance 1e-6 relative, normwise: ten times tighter than the 1e-5 for operator
/// applications, and still ten times the measured error. Why it holds: the float32 path rounds
/// the cached Û, W, φ' and x̂ to float32 (relative u₃₂ = 6e-8 each) and runs each product as an
/// sgemm of depth k ≤ 24 here, whose error grows like √k·u₃₂ ≈ 3e-7 for random data. An
/// application of NTK_S = P J_θ J_θ* P* passes about a dozen such products, but their errors are
/// independent and partly average out: the measured differences are 2e-8 to 1.1e-7 for every
/// operator below. A float64 result would differ by ~1e-15, so the test also asserts a difference
/// above 1e-10, which shows the float32 path actually ran. The transformers add the attention
/// core (float32 Q, K, V, P; sgemm depths ≤ 24) and pass each vector through ~4 blocks per
/// layer; their softmax statistics and the softmax Jacobian's row sum stay float64, so the same
/// bound holds: measured 7e-9 to 1.3e-7 over every operator and variant.
/// </remarks>
public class BlockPrecisionTests
{
    private const double Tolerance = 1e-6;

    public static TheoryData<Activation> Activations => new() { Activation.Tanh, Activation.Relu, Activation.Gelu };

    [Theory]
    [MemberData(nameof(Activations))]
    public void MlpOperatorsInFloat32AgreeWithFloat64(Activation act)
    {
        var model = MlpModel.Create(5, 24, 3, 2, act, 7);
        var x = new Tensor(TestMath.Gaussian(new Random(3), 6 * 5), new AxisShape(("sample", 6), ("input", 5)));
        var lin64 = model.Linearize(x);
        var lin32 = ((IChainModel)model).Linearize(x, Precision.F32);
        Assert.Equal(Precision.F64, lin64.Precision);
        Assert.Equal(Precision.F32, lin32.Precision);
        CompareAll(lin64, lin32, seed: 11);
    }

    /// <summary>LayerNorm, a residual connection and a bias-free affine block, in float32 and float64.</summary>
    [Fact]
    public void LayerNormResidualChainInFloat32AgreesWithFloat64()
    {
        const int w = 16;
        var chain = new BlockChain(6,
            new SequentialBlock(AffineBlock.Linear("layers.0", 6, w), new LayerNormBlock("norms.0", w), new ActivationBlock(w, Activation.Gelu)),
            new ResidualBlock(new SequentialBlock(new LayerNormBlock("norms.1", w), AffineBlock.Linear("layers.1", w, w, bias: false), new ActivationBlock(w, Activation.Tanh))),
            new ResidualBlock(new SequentialBlock(new LayerNormBlock("norms.2", w, elementwiseAffine: false), AffineBlock.Linear("layers.2", w, w), new ActivationBlock(w, Activation.Tanh))));
        var rng = new Random(9);
        // LayerNorm γ, β away from 1, 0, so their float32 path is exercised with generic values.
        var ps = new ParameterSet(chain.Initialize(seed: 5).Select(p => !p.Name.StartsWith("norms", StringComparison.Ordinal) ? p
            : p.WithValues(p.Values.ToArray().Zip(TestMath.Gaussian(rng, p.Size), (v, g) => v + 0.3 * g).ToArray())));
        var x = new Tensor(TestMath.Gaussian(new Random(4), 5 * 6), new AxisShape(("sample", 5), ("input", 6)));
        var lin64 = chain.Linearize(ps, x);
        var lin32 = chain.Linearize(ps, x, Precision.F32);
        Assert.Equal(Precision.F32, lin32.Precision);
        CompareAll(lin64, lin32, seed: 12);
    }

    /// <summary>Transformer variants: (pre-LN?, causal?, token embedding?, positional encoding, final norm?, √d scale?).</summary>
    public static TheoryData<bool, bool, bool, TransformerPositional, bool, bool> Transformers => new()
    {
        { true, true, false, TransformerPositional.Sinusoidal, false, false },
        { false, false, true, TransformerPositional.Sinusoidal, true, false },
        { true, false, true, TransformerPositional.Learned, false, true },
        { false, true, false, TransformerPositional.None, false, false },
    };

    /// <summary>
    /// The transformer (attention core, embedding, positional encoding, LayerNorm, residuals) in
    /// float32 against float64: every operator, as for the MLP.
    /// </summary>
    [Theory]
    [MemberData(nameof(Transformers))]
    public void TransformerOperatorsInFloat32AgreeWithFloat64(bool preLn, bool causal, bool embedding, TransformerPositional positional, bool finalNorm, bool scale)
    {
        const int seqs = 3, tokens = 5, inputs = 4;
        var config = new TransformerConfig(embedding ? TransformerInput.Embedding : TransformerInput.Linear, embedding ? 7 : inputs, 16, 2, 2, 24,
            Activation.Gelu, causal) { NormFirst = preLn, FinalNorm = finalNorm, Positional = positional, MaxPositions = 6, ScaleEmbedding = scale };
        var model = TransformerModel.Create(config, 2, seed: 3);
        var rng = new Random(5);
        var x = embedding
            ? new Tensor(Enumerable.Range(0, seqs * tokens).Select(_ => (double)rng.Next(7)).ToArray(), new AxisShape(("sequence", seqs), ("token", tokens)))
            : new Tensor(TestMath.Gaussian(rng, seqs * tokens * inputs), new AxisShape(("sequence", seqs), ("token", tokens), ("input", inputs)));
        var lin64 = model.Linearize(x);
        var lin32 = ((IChainModel)model).Linearize(x, Precision.F32);
        Assert.Equal(Precision.F64, lin64.Precision);
        Assert.Equal(Precision.F32, lin32.Precision);
        CompareAll(lin64, lin32, seed: 13);
    }

    /// <summary>
    /// The attention core alone (no affine block around it, whose float32 path would otherwise
    /// account for the whole difference): forward, J_u and J_uᵀ in float32 against float64, with
    /// scores scaled up so that the softmax rows are peaked and rowsum(P ⊙ x) cancels.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AttentionCoreInFloat32AgreesWithFloat64(bool causal)
    {
        const int width = 6, heads = 3, tokens = 4, rows = 3 * tokens, count = 2;
        var core = new AttentionCoreBlock(width, heads, tokens, causal);
        Assert.True(core.Supports(Precision.F32));
        var rng = new Random(21);
        var input = TestMath.Gaussian(rng, rows * 3 * width).Select(v => 3 * v).ToArray();
        var ps = new ParameterSet([]);
        var y64 = new double[rows * width]; var y32 = new double[rows * width];
        var t64 = core.Forward(ps, input, rows, y64);
        var t32 = core.Forward(ps, input, rows, y32, Precision.F32);
        Assert.True(Relative(y32, y64) is <= Tolerance and > 1e-10, $"forward: {Relative(y32, y64):E2}");
        var dIn = TestMath.Gaussian(rng, count * rows * 3 * width);
        var dOut = TestMath.Gaussian(rng, count * rows * width);
        var j64 = new double[dOut.Length]; var j32 = new double[dOut.Length];
        t64.Jvp(dIn, j64, count); t32.Jvp(dIn, j32, count);
        Assert.True(Relative(j32, j64) is <= Tolerance and > 1e-10, $"J_u: {Relative(j32, j64):E2}");
        var v64 = new double[dIn.Length]; var v32 = new double[dIn.Length];
        t64.Vjp(dOut, v64, count); t32.Vjp(dOut, v32, count);
        Assert.True(Relative(v32, v64) is <= Tolerance and > 1e-10, $"J_u*: {Relative(v32, v64):E2}");
    }

    [Fact]
    public void BlocksWithoutAFloat32PathRefuseItNamingTheBlock()
    {
        var chain = new BlockChain(3,
            new SequentialBlock(AffineBlock.Linear("layers.0", 3, 4), new DoublingBlock(4)),
            new SequentialBlock(AffineBlock.Linear("layers.1", 4, 4), new ActivationBlock(4, Activation.Tanh)));
        var ps = chain.Initialize(seed: 1);
        var x = new Tensor(TestMath.Gaussian(new Random(2), 2 * 3), new AxisShape(("sample", 2), ("input", 3)));
        Assert.NotNull(chain.Linearize(ps, x, Precision.F64));
        var ex = Assert.Throws<NotSupportedException>(() => chain.Linearize(ps, x, Precision.F32));
        Assert.Contains("DoublingBlock", ex.Message);
        Assert.Contains("f32", ex.Message);
        var direct = Assert.Throws<NotSupportedException>(() => new DoublingBlock(4).Forward(ps, new double[4], 1, new double[4], Precision.F32));
        Assert.Contains("DoublingBlock", direct.Message);
        Assert.False(chain.Steps[0].Supports(Precision.F32));
        Assert.True(chain.Steps[1].Supports(Precision.F32));
    }

    /// <summary>A block written before float32 existed: it overrides nothing precision-related.</summary>
    private sealed class DoublingBlock(int width) : StepBlock
    {
        public override int InputWidth => width;
        public override int OutputWidth => width;

        public override BlockTrace Forward(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output)
        {
            for (int i = 0; i < rows * width; i++) output[i] = 2 * input[i];
            return new Trace(this, rows);
        }

        private sealed class Trace(DoublingBlock b, int rows) : BlockTrace(b, rows)
        {
            public override void Jvp(ReadOnlySpan<double> dIn, Span<double> dOut, int count)
            {
                for (int i = 0; i < count * Rows * b.InputWidth; i++) dOut[i] = 2 * dIn[i];
            }

            public override void Vjp(ReadOnlySpan<double> dOut, Span<double> dIn, int count) => Jvp(dOut, dIn, count);
        }
    }

    private static void CompareAll(ChainLinearization lin64, ChainLinearization lin32, int seed)
    {
        Assert.Equal(lin64.StateShape, lin32.StateShape);
        Assert.True(Relative(lin32.States.Span, lin64.States.Span) <= Tolerance, "forward states");
        var o64 = new NtkOperators(lin64);
        var o32 = new NtkOperators(lin32);
        var pairs = new (string Name, LinearOperator F64, LinearOperator F32)[]
        {
            ("P", o64.P, o32.P), ("P*", o64.PAdjoint, o32.PAdjoint), ("P^-1", o64.PInverse, o32.PInverse),
            ("J_theta", o64.Jtheta, o32.Jtheta), ("J_theta*", o64.Jtheta.Adjoint, o32.Jtheta.Adjoint),
            ("K", o64.K, o32.K), ("K (Kronecker core)", o64.KKronecker, o32.KKronecker),
            ("NTK_S", o64.NtkS, o32.NtkS), ("dz/dtheta", o64.WholeModelJacobian, o32.WholeModelJacobian),
        };
        var rng = new Random(seed);
        const int count = 3;
        foreach (var (name, a64, a32) in pairs)
        {
            var v = TestMath.Gaussian(rng, count * a64.Domain.Size);
            double rel = Relative(a32.ApplyBlock(v, count), a64.ApplyBlock(v, count));
            Assert.True(rel <= Tolerance, $"{name}: float32 differs from float64 by {rel:E2} (normwise), over {Tolerance:E0}");
            if (name is "J_theta" or "K" or "NTK_S")
                Assert.True(rel > 1e-10, $"{name}: float32 equals float64 to {rel:E2}: the float32 path did not run");
        }
    }

    /// <summary>‖a − b‖ / ‖b‖.</summary>
    private static double Relative(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        double d = 0, n = 0;
        for (int i = 0; i < b.Length; i++) { d += (a[i] - b[i]) * (a[i] - b[i]); n += b[i] * b[i]; }
        return Math.Sqrt(d / n);
    }
}
