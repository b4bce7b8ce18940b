using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Transformer;
using GlobalNtk.Tests.Reference;
using Xunit;

namespace GlobalNtk.Tests;

public class TransformerTests
{
    private const int S = 3, N = 4;

    /// <summary>
    /// Named test configurations: linear input + GELU + causal, linear + ReLU, embedding + GELU +
    /// causal (pre-LN, sinusoid); post-LN + ReLU + eps 1e-3 without positions; post-LN + tanh-GELU
    /// + learned positions + final norm + causal; pre-LN embedding with √d scale, final norm, eps 1e-6.
    /// </summary>
    public static TransformerConfig Config(string name) => name switch
    {
        "gelu-causal" => new TransformerConfig(TransformerInput.Linear, 3, 4, 2, 2, 6, Activation.Gelu, Causal: true),
        "relu" => new TransformerConfig(TransformerInput.Linear, 3, 4, 2, 2, 6, Activation.Relu, Causal: false),
        "embedding" => new TransformerConfig(TransformerInput.Embedding, 5, 4, 2, 2, 6, Activation.Gelu, Causal: true),
        "post-ln" => new TransformerConfig(TransformerInput.Linear, 3, 4, 2, 2, 6, Activation.Relu, Causal: false)
            { NormFirst = false, LayerNormEps = 1e-3, Positional = TransformerPositional.None },
        "post-ln-final-learned" => new TransformerConfig(TransformerInput.Linear, 3, 4, 2, 2, 6, Activation.GeluTanh, Causal: true)
            { NormFirst = false, FinalNorm = true, FinalNormEps = 1e-4, Positional = TransformerPositional.Learned, MaxPositions = N + 1 },
        "pre-scaled-final" => new TransformerConfig(TransformerInput.Embedding, 5, 4, 2, 2, 6, Activation.GeluTanh, Causal: false)
            { FinalNorm = true, LayerNormEps = 1e-6, ScaleEmbedding = true },
        _ => throw new ArgumentException(name),
    };

    public static TheoryData<string> Configs => new() { "gelu-causal", "relu", "embedding", "post-ln", "post-ln-final-learned", "pre-scaled-final" };

    /// <summary>A model with every parameter perturbed (non-unit LayerNorm gains, non-zero biases) and inputs.</summary>
    public static (TransformerModel Model, Tensor X) Setup(string name, int seed = 1, int chunkRows = 4096)
    {
        var c = Config(name);
        var model = TransformerModel.Create(c, 2, seed);
        model.ChunkRows = chunkRows;
        var rng = new Random(seed + 50);
        model = model.WithParameters(new ParameterSet(model.Parameters.Select(p =>
        {
            var noise = DepthChecks.Gaussian(p.Size, rng);
            return p.WithValues(p.ToArray().Select((v, i) => v + 0.3 * noise[i]).ToArray());
        }).Concat(model.Readout.Parameters)));
        Tensor x;
        if (c.Input == TransformerInput.Linear)
            x = new Tensor(DepthChecks.Gaussian(S * N * c.Inputs, rng), new AxisShape(("sequence", S), ("token", N), ("input", c.Inputs)));
        else
            x = new Tensor(Enumerable.Range(0, S * N).Select(_ => (double)rng.Next(c.Inputs)).ToArray(), new AxisShape(("sequence", S), ("token", N)));
        return (model, x);
    }

    private static double[] Layer(ReadOnlySpan<double> z, TransformerConfig c, int k)
    {
        int w = N * c.Model, steps = c.Layers + 1;
        var rows = new double[S * w];
        for (int s = 0; s < S; s++) z.Slice((s * steps + k) * w, w).CopyTo(rows.AsSpan(s * w));
        return rows;
    }

    private static void SetLayer(Span<double> z, TransformerConfig c, int k, double[] rows)
    {
        int w = N * c.Model, steps = c.Layers + 1;
        for (int s = 0; s < S; s++) rows.AsSpan(s * w, w).CopyTo(z.Slice((s * steps + k) * w));
    }

    /// <summary>Block l evaluated on given inputs with given parameters.</summary>
    private static double[] Block(TransformerConfig c, ParameterSet ps, int l, double[] zin)
    {
        var y = new double[zin.Length];
        new EncoderBlock(c, ps, l, S, N).Forward(zin, y);
        return y;
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public void ForwardMatchesIndependentLoopImplementation(string name)
    {
        var (model, x) = Setup(name);
        var lin = model.Linearize(x);
        var c = model.Config;
        Assert.Equal(new AxisShape(("sequence", S), ("layer", c.Layers + 1), ("token", N), ("feature", c.Model)), lin.StateShape);
        var reference = ReferenceDepthModels.Transformer(c, DepthChecks.Values(model.Parameters), x.Span.ToArray(), S, N);
        Assert.True(DepthChecks.RelErr(lin.States.Span, reference.Select(v => v.V).ToArray()) < 1e-13);
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public void StateJvpAndVjpMatchFiniteDifferences(string name)
    {
        var (model, x) = Setup(name, chunkRows: N); // one sequence per chunk
        var c = model.Config;
        var lin = model.Linearize(x);
        var z = lin.States.Span.ToArray();
        var rng = new Random(7);
        const double eps = 1e-6;
        for (int k = 1; k < lin.Steps; k++)
        {
            var v = DepthChecks.Gaussian(z.Length, rng);
            var jvp = new double[z.Length];
            lin.StateJvpAdd(k, v, jvp, 1);
            var prev = Layer(z, c, k - 1); var dv = Layer(v, c, k - 1);
            var plus = Block(c, model.Parameters, k - 1, prev.Zip(dv, (a, b) => a + eps * b).ToArray());
            var minus = Block(c, model.Parameters, k - 1, prev.Zip(dv, (a, b) => a - eps * b).ToArray());
            var fd = new double[z.Length];
            SetLayer(fd, c, k, plus.Zip(minus, (a, b) => (a - b) / (2 * eps)).ToArray());
            double err = DepthChecks.RelErr(jvp, fd);
            Assert.True(err < 1e-6, $"A_{k} JVP vs finite differences: {err:E2}");
            var w = DepthChecks.Gaussian(z.Length, rng);
            var vjp = new double[z.Length];
            lin.StateVjpAdd(k, w, vjp, 1);
            Assert.True(Math.Abs(Numerics.Dot(vjp, v) - Numerics.Dot(fd, w)) < 1e-6 * Numerics.Norm(vjp) * Numerics.Norm(v), $"A_{k} VJP");
        }
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public void ParamJvpAndVjpMatchFiniteDifferences(string name)
    {
        var (model, x) = Setup(name, chunkRows: 2 * N);
        var c = model.Config;
        var lin = model.Linearize(x);
        var z = lin.States.Span.ToArray();
        double[] Immediate(ParameterSet ps)
        {
            var y = new double[z.Length];
            // Step 0 depends on the input only; block l on the unperturbed z_l (docs/math.md#global-ntk).
            SetLayer(y, c, 0, Layer(new TransformerModel(c, ps, model.Readout).Linearize(x).States.Span, c, 0));
            for (int l = 0; l < c.Layers; l++) SetLayer(y, c, l + 1, Block(c, ps, l, Layer(z, c, l)));
            return y;
        }
        DepthChecks.ParamJacobianMatchesFiniteDifferences(lin, model.Parameters, Immediate, new Random(8));
    }

    [Theory]
    [InlineData("gelu-causal", 4096, 1)]
    [InlineData("gelu-causal", N, 3)]
    [InlineData("relu", 2 * N, 2)]
    [InlineData("embedding", N, 2)]
    [InlineData("post-ln", N, 2)]
    [InlineData("post-ln-final-learned", 2 * N, 3)]
    [InlineData("pre-scaled-final", 4096, 2)]
    public void AdjointIdentitiesHold(string name, int chunkRows, int count)
    {
        var (model, x) = Setup(name, chunkRows: chunkRows);
        var lin = model.Linearize(x);
        DepthChecks.StateAdjoint(lin, count, 21);
        DepthChecks.ParamAdjoint(lin, count, 22);
        DepthChecks.SiteAdjoint(lin, count, 23);
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public void SiteFormPlusLayerNormRestEqualsParamJvp(string name)
    {
        var (model, x) = Setup(name, chunkRows: N);
        var lin = model.Linearize(x);
        Assert.True(DepthChecks.SiteFormError(lin, 4) < 1e-13);
    }

    [Fact]
    public void SitesFollowMath8()
    {
        var (model, x) = Setup("gelu-causal");
        var lin = model.Linearize(x);
        var names = lin.Sites.Select(s => s.Name).ToArray();
        Assert.Equal(["input_proj",
            "layers.0.self_attn.in_proj", "layers.0.self_attn.out_proj", "layers.0.linear1", "layers.0.linear2",
            "layers.1.self_attn.in_proj", "layers.1.self_attn.out_proj", "layers.1.linear1", "layers.1.linear2"], names);
        var inProj = lin.Sites[1];
        Assert.Equal(["layers.0.self_attn.in_proj_weight"], inProj.WeightParameters);
        Assert.Equal(["layers.0.self_attn.in_proj_bias"], inProj.BiasParameters);
        Assert.Equal((S * N, 4, 12), (inProj.Rows, inProj.Width, inProj.OutDim));
        Assert.Equal(new AxisShape(("sequence", S), ("token", N)), inProj.RowShape);
        Assert.Equal(6, lin.Sites[4].Width);
        // Embedding tables and LayerNorm parameters are not sites.
        var (emb, xe) = Setup("embedding");
        Assert.DoesNotContain(emb.Linearize(xe).Sites, s => s.WeightParameters.Contains("embedding.weight"));
        Assert.DoesNotContain(lin.Sites, s => s.WeightParameters.Any(p => p.Contains("norm")));
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public void PropagatedTangentEqualsWholeModelForwardModeAd(string name)
    {
        var (model, x) = Setup(name, chunkRows: N);
        var lin = model.Linearize(x);
        var jac = DepthChecks.WholeModelJacobian(model.Parameters,
            src => ReferenceDepthModels.Transformer(model.Config, src, x.Span.ToArray(), S, N));
        var dTheta = DepthChecks.Gaussian(model.Parameters.TotalSize, new Random(10));
        var expected = new double[lin.StateShape.Size];
        for (int i = 0; i < dTheta.Length; i++) Numerics.Axpy(dTheta[i], jac[i], expected);
        double err = DepthChecks.RelErr(DepthChecks.TotalTangent(lin, dTheta), expected);
        Assert.True(err < 1e-12, $"P J_θ δθ vs forward-mode AD of the reference: {err:E2}");
    }

    [Fact]
    public void CausalMaskStopsInformationFlowingBackwards()
    {
        var (model, x) = Setup("gelu-causal");
        var c = model.Config;
        var lin = model.Linearize(x);
        // Perturb only the last token of layer 0: no earlier token of layer 1 may move.
        var v = new double[lin.StateShape.Size];
        for (int s = 0; s < S; s++) for (int i = 0; i < c.Model; i++) v[((s * (c.Layers + 1)) * N + N - 1) * c.Model + i] = 1.0;
        var y = new double[v.Length];
        lin.StateJvpAdd(1, v, y, 1);
        for (int s = 0; s < S; s++)
            for (int t = 0; t < N; t++)
            {
                double norm = 0;
                for (int i = 0; i < c.Model; i++) norm += Math.Abs(y[((s * (c.Layers + 1) + 1) * N + t) * c.Model + i]);
                if (t < N - 1) Assert.Equal(0.0, norm);
                else Assert.True(norm > 0);
            }
    }

    [Fact]
    public void BadInputsRaiseClearErrors()
    {
        var (model, x) = Setup("gelu-causal");
        var e = Assert.Throws<ArgumentException>(() => model.Linearize(new Tensor(new AxisShape(("sequence", 2), ("token", 3), ("input", 7)))));
        Assert.Contains("input = 3", e.Message);
        var (emb, _) = Setup("embedding");
        var ids = new Tensor(new double[] { 0, 1, 5, 2 }, new AxisShape(("sequence", 1), ("token", 4)));
        Assert.Contains("token id 5", Assert.Throws<ArgumentException>(() => emb.Linearize(ids)).Message);
        Assert.Contains("divisible", Assert.Throws<ArgumentException>(() => TransformerModel.Create(Config("relu") with { Heads = 3 }, 2, 1)).Message);
        var missing = new ParameterSet(model.Parameters.Where(p => p.Name != "layers.1.norm2.bias").Select(p => p.Clone()));
        Assert.Contains("layers.1.norm2.bias", Assert.Throws<ArgumentException>(() => new TransformerModel(model.Config, missing, model.Readout)).Message);
        x.Span[2] = double.PositiveInfinity;
        Assert.Throws<NonFiniteException>(() => model.Linearize(x));
    }

    [Fact]
    public void ParameterNamesAreThoseOfPyTorchEncoderLayers()
    {
        var model = TransformerModel.Create(Config("gelu-causal"), 2, 1);
        Assert.Equal(["input_proj.weight", "input_proj.bias",
            "layers.0.self_attn.in_proj_weight", "layers.0.self_attn.in_proj_bias",
            "layers.0.self_attn.out_proj.weight", "layers.0.self_attn.out_proj.bias",
            "layers.0.linear1.weight", "layers.0.linear1.bias", "layers.0.linear2.weight", "layers.0.linear2.bias",
            "layers.0.norm1.weight", "layers.0.norm1.bias", "layers.0.norm2.weight", "layers.0.norm2.bias"],
            model.Parameters.Take(14).Select(p => p.Name));
        Assert.Equal([12, 4], model.Parameters["layers.1.self_attn.in_proj_weight"].Shape);
        Assert.All(model.Parameters["layers.0.norm1.weight"].Data, v => Assert.Equal(1.0, v));
        Assert.All(model.Parameters["layers.0.self_attn.in_proj_bias"].Data, v => Assert.Equal(0.0, v));
    }
    /// <summary>
    /// The block chain (the default) and the hand-fused path compute the same linearisation: states,
    /// A_k, J_θ, the sites (names, Û, D, step, row-locality) and NTK_S, K on blocks of vectors.
    /// </summary>
    [Theory]
    [MemberData(nameof(Configs))]
    public void BlockChainEqualsFusedPath(string name)
    {
        var (model, x) = Setup(name, chunkRows: N);
        var a = model.Linearize(x);
        var b = model.LinearizeFused(x);
        Assert.Equal(b.StateShape, a.StateShape);
        Assert.True(DepthChecks.RelErr(a.States.Span, b.States.Span) < 1e-14);
        Assert.Equal(b.Sites.Select(s => (s.Name, s.StateStep, s.Rows, s.Width, s.OutDim, s.RowShape)), a.Sites.Select(s => (s.Name, s.StateStep, s.Rows, s.Width, s.OutDim, s.RowShape)));
        for (int i = 0; i < a.Sites.Count; i++)
        {
            Assert.Equal(b.Sites[i].WeightParameters, a.Sites[i].WeightParameters);
            Assert.Equal(b.Sites[i].BiasParameters, a.Sites[i].BiasParameters);
            Assert.True(DepthChecks.RelErr(a.Sites[i].Variables.Span, b.Sites[i].Variables.Span) < 1e-14, a.Sites[i].Name);
            Assert.Equal(Ntk.KroneckerCore.IsRowLocal(b, b.Sites[i]), Ntk.KroneckerCore.IsRowLocal(a, a.Sites[i]));
            Assert.Equal(!a.Sites[i].Name.EndsWith("in_proj"), Ntk.KroneckerCore.IsRowLocal(a, a.Sites[i]));
        }
        var rng = new Random(9);
        int size = a.StateShape.Size;
        var e = DepthChecks.Gaussian(3 * size, rng);
        var oa = new Ntk.NtkOperators(a); var ob = new Ntk.NtkOperators(b);
        Assert.True(DepthChecks.RelErr(oa.NtkS.ApplyBlock(e, 3), ob.NtkS.ApplyBlock(e, 3)) < 1e-12);
        Assert.True(DepthChecks.RelErr(oa.KKronecker.ApplyBlock(e, 3), ob.KKronecker.ApplyBlock(e, 3)) < 1e-12);
        Assert.Equal(ob.KroneckerCore.RestParameterCount, oa.KroneckerCore.RestParameterCount);
        var dt = DepthChecks.Gaussian(2 * a.Parameters.TotalSize, rng);
        var ja = new double[2 * size]; var jb = new double[2 * size];
        a.ParamJvp(dt, ja, 2); b.ParamJvp(dt, jb, 2);
        Assert.True(DepthChecks.RelErr(ja, jb) < 1e-12);
    }
}
