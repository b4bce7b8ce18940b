using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Blocks;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Ntk;
using GlobalNtk.Tests.Reference;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// Each block type once: its input JVP and parameter JVP against central finite differences of its
/// forward pass, the VJPs as exact adjoints on blocks of vectors, and its sites in the form
/// J_θ δθ = D (Û [δW, δb]ᵀ). Then a composed chain against an independent dual-number reference.
/// </summary>
public class BlockTests
{
    private const int Rows = 3, Count = 2;

    public static TheoryData<string> Blocks => new()
    {
        "affine", "affine-nobias", "tanh", "relu", "gelu", "layernorm", "layernorm-plain", "residual", "sequential",
    };

    private static StepBlock Make(string name) => name switch
    {
        "affine" => AffineBlock.Linear("fc", 4, 3),
        "affine-nobias" => AffineBlock.Linear("fc", 4, 3, bias: false),
        "tanh" => new ActivationBlock(4, Activation.Tanh),
        "relu" => new ActivationBlock(4, Activation.Relu),
        "gelu" => new ActivationBlock(4, Activation.Gelu),
        "layernorm" => new LayerNormBlock("norm", 4),
        "layernorm-plain" => new LayerNormBlock("norm", 4, epsilon: 1e-3, elementwiseAffine: false),
        "residual" => new ResidualBlock(new SequentialBlock(new LayerNormBlock("norm", 4), AffineBlock.Linear("fc", 4, 4), new ActivationBlock(4, Activation.Tanh))),
        "sequential" => new SequentialBlock(AffineBlock.Linear("fc1", 4, 5), new ActivationBlock(5, Activation.Gelu), AffineBlock.Linear("fc2", 5, 3, bias: false), new ActivationBlock(3, Activation.Tanh)),
        _ => throw new ArgumentException(name),
    };

    private static ParameterSet RandomParameters(StepBlock block, Random rng) =>
        new(block.ParameterSpecs.Select(s => new Parameter(s.Name, s.Shape, DepthChecks.Gaussian(s.Size, rng).Select(v => v + (s.Name.EndsWith("norm.weight") ? 1 : 0)).ToArray())));

    private static double[] Run(StepBlock block, ParameterSet ps, double[] u)
    {
        var y = new double[Rows * block.OutputWidth];
        block.Forward(ps, u, Rows, y);
        return y;
    }

    private static double[] Shift(double[] a, double[] d, double eps) => a.Zip(d, (x, v) => x + eps * v).ToArray();

    private static ParameterSet ShiftParameters(ParameterSet ps, double[] d, double eps)
    {
        return ps.WithValues(Shift(ps.Flatten(), d, eps));
    }

    [Theory]
    [MemberData(nameof(Blocks))]
    public void DerivativesMatchFiniteDifferencesAndAreAdjoint(string name)
    {
        var block = Make(name);
        var rng = new Random(11);
        var ps = RandomParameters(block, rng);
        int nIn = Rows * block.InputWidth, nOut = Rows * block.OutputWidth, m = block.ParameterSize;
        var u = DepthChecks.Gaussian(nIn, rng);
        var trace = block.Forward(ps, u, Rows, new double[nOut]);
        const double eps = 1e-6;

        // Input JVP, vector by vector of a block of Count, against central differences.
        var v = DepthChecks.Gaussian(Count * nIn, rng);
        var jv = new double[Count * nOut];
        trace.Jvp(v, jv, Count);
        for (int j = 0; j < Count; j++)
        {
            var vj = v.AsSpan(j * nIn, nIn).ToArray();
            var fd = Run(block, ps, Shift(u, vj, eps)).Zip(Run(block, ps, Shift(u, vj, -eps)), (a, b) => (a - b) / (2 * eps)).ToArray();
            Assert.True(DepthChecks.RelErr(jv.AsSpan(j * nOut, nOut), fd) < 1e-7, $"{name}: input JVP vs finite differences");
        }
        // Input VJP is the exact adjoint.
        var w = DepthChecks.Gaussian(Count * nOut, rng);
        var jtw = new double[Count * nIn];
        trace.Vjp(w, jtw, Count);
        AssertClose(Numerics.Dot(jv, w), Numerics.Dot(v, jtw), $"{name}: ⟨J v, w⟩ vs ⟨v, Jᵀ w⟩");

        if (m == 0) return;
        var dt = DepthChecks.Gaussian(Count * m, rng);
        var jt = new double[Count * nOut];
        trace.ParamJvp(dt, jt, Count);
        for (int j = 0; j < Count; j++)
        {
            var dj = dt.AsSpan(j * m, m).ToArray();
            var fd = Run(block, ShiftParameters(ps, dj, eps), u).Zip(Run(block, ShiftParameters(ps, dj, -eps), u), (a, b) => (a - b) / (2 * eps)).ToArray();
            Assert.True(DepthChecks.RelErr(jt.AsSpan(j * nOut, nOut), fd) < 1e-7, $"{name}: parameter JVP vs finite differences");
        }
        var jtq = new double[Count * m];
        trace.ParamVjp(w, jtq, Count);
        AssertClose(Numerics.Dot(jt, w), Numerics.Dot(dt, jtq), $"{name}: ⟨J_θ δθ, w⟩ vs ⟨δθ, J_θ* w⟩");

        // Sites: J_θ restricted to a site's W, b equals D(Û [δW, δb]ᵀ); D* is D's adjoint.
        foreach (var site in trace.Sites)
        {
            var only = new double[m];
            int off = 0, aw = site.Width + (site.Bias == null ? 0 : 1);
            var dw = new double[site.OutDim * aw];
            foreach (var spec in block.ParameterSpecs)
            {
                if (spec.Name == site.Weight)
                    for (int o = 0; o < site.OutDim; o++)
                        for (int c = 0; c < site.Width; c++) only[off + o * site.Width + c] = dw[o * aw + c] = rng.NextDouble() - 0.5;
                if (spec.Name == site.Bias)
                    for (int o = 0; o < site.OutDim; o++) only[off + o] = dw[o * aw + site.Width] = rng.NextDouble() - 0.5;
                off += spec.Size;
            }
            var expected = new double[nOut];
            trace.ParamJvp(only, expected, 1);
            var a = new double[Rows * site.OutDim];
            Gemm.Multiply(Trans.No, Trans.Yes, Rows, site.OutDim, aw, 1.0, site.Variables, aw, dw, aw, 0.0, a, site.OutDim);
            var got = new double[nOut];
            site.ApplyD(a, got, 1);
            Assert.True(DepthChecks.RelErr(got, expected) < 1e-13, $"{name}: site {site.Name} form");
            var aa = DepthChecks.Gaussian(Count * Rows * site.OutDim, rng);
            var da = new double[Count * nOut]; var dq = new double[aa.Length];
            site.ApplyD(aa, da, Count);
            site.ApplyDAdjoint(w, dq, Count);
            AssertClose(Numerics.Dot(da, w), Numerics.Dot(aa, dq), $"{name}: D of site {site.Name}");
        }
    }

    private static void AssertClose(double a, double b, string what) =>
        Assert.True(Math.Abs(a - b) <= 1e-12 * Math.Max(Math.Abs(a), Math.Abs(b)), $"{what}: {a} vs {b}");

    /// <summary>A pre-LN residual chain over (sequence, token) rows with a bias-free layer.</summary>
    private static BlockChain Composed(int nIn, int d) => new(nIn,
        new SequentialBlock(AffineBlock.Linear("embed", nIn, d), new ActivationBlock(d, Activation.Tanh)),
        new ResidualBlock(new SequentialBlock(new LayerNormBlock("layers.0.norm", d), AffineBlock.Linear("layers.0.fc1", d, 5),
            new ActivationBlock(5, Activation.Gelu), AffineBlock.Linear("layers.0.fc2", 5, d, bias: false))),
        new ResidualBlock(new SequentialBlock(new LayerNormBlock("layers.1.norm", d), AffineBlock.Linear("layers.1.fc1", d, d),
            new ActivationBlock(d, Activation.Tanh))));

    /// <summary>The same chain written out in scalar loops over dual numbers: rows are independent.</summary>
    private static Dual[] ComposedReference(ReferenceDepthModels.ParameterSource p, double[] x, int rows, int nIn, int d)
    {
        Dual[] Linear(string pre, Dual[] u, int o, bool bias)
        {
            var w = p(pre + ".weight"); var b = bias ? p(pre + ".bias") : null;
            var y = new Dual[o];
            for (int i = 0; i < o; i++)
            {
                Dual a = b == null ? 0.0 : b[i];
                for (int c = 0; c < u.Length; c++) a += w[i * u.Length + c] * u[c];
                y[i] = a;
            }
            return y;
        }
        Dual[] Norm(string pre, Dual[] u)
        {
            Dual mean = 0.0; foreach (var v in u) mean += v; mean = mean / u.Length;
            Dual var = 0.0; foreach (var v in u) var += (v - mean) * (v - mean); var = var / u.Length;
            var inv = 1.0 / Dual.Sqrt(var + 1e-5);
            var g = p(pre + ".weight"); var b = p(pre + ".bias");
            return u.Select((v, i) => (v - mean) * inv * g[i] + b[i]).ToArray();
        }
        Dual Gelu(Dual a) => 0.5 * a * (1.0 + Dual.Erf(a / Math.Sqrt(2.0)));
        // rows = S·N, state (sequence, layer, token, feature): the reference writes rows step by step.
        const int seq = 2; int tok = rows / seq;
        var z = new Dual[rows * 3 * d];
        for (int r = 0; r < rows; r++)
        {
            var u = Enumerable.Range(0, nIn).Select(i => (Dual)x[r * nIn + i]).ToArray();
            var h0 = Linear("embed", u, d, true).Select(Dual.Tanh).ToArray();
            var f = Linear("layers.0.fc2", Linear("layers.0.fc1", Norm("layers.0.norm", h0), 5, true).Select(Gelu).ToArray(), d, false);
            var h1 = h0.Zip(f, (a, b) => a + b).ToArray();
            var g = Linear("layers.1.fc1", Norm("layers.1.norm", h1), d, true).Select(Dual.Tanh).ToArray();
            var h2 = h1.Zip(g, (a, b) => a + b).ToArray();
            int s = r / tok, t = r % tok;
            foreach (var (h, k) in new[] { (h0, 0), (h1, 1), (h2, 2) })
                for (int i = 0; i < d; i++) z[((s * 3 + k) * tok + t) * d + i] = h[i];
        }
        return z;
    }

    [Fact]
    public void ComposedChainMatchesWholeModelAd()
    {
        const int nIn = 3, d = 4, seq = 2, tok = 3;
        var chain = Composed(nIn, d);
        var ps = chain.Initialize(seed: 4);
        ps = TestMath.Map(ps, (name, i, v) => v * 2 + (name.EndsWith("norm.weight") ? 0.3 * Math.Sin(i) : 0));
        var x = new Tensor(DepthChecks.Gaussian(seq * tok * nIn, new Random(5)), new AxisShape(("sequence", seq), ("token", tok), ("input", nIn)));
        var lin = chain.Linearize(ps, x);
        Assert.Equal(new AxisShape(("sequence", seq), ("layer", 3), ("token", tok), ("feature", d)), lin.StateShape);
        var reference = ComposedReference(DepthChecks.Values(ps), x.Span.ToArray(), seq * tok, nIn, d);
        Assert.True(DepthChecks.RelErr(lin.States.Span, reference.Select(v => v.V).ToArray()) < 1e-14);
        DepthChecks.StateAdjoint(lin, 3, 1);
        DepthChecks.ParamAdjoint(lin, 3, 2);
        DepthChecks.SiteAdjoint(lin, 2, 3);
        Assert.True(DepthChecks.SiteFormError(lin, 4) < 1e-13);
        var jac = DepthChecks.WholeModelJacobian(ps, src => ComposedReference(src, x.Span.ToArray(), seq * tok, nIn, d));
        // P K P* = whole-model NTK (≤ 1e-10) and every operator's adjoint identity.
        NtkChecks.All(lin, TransformerNtkTests.DenseJacobian(jac, lin.StateShape.Size), seed: 91);
        var ops = new NtkOperators(lin);
        Assert.True(ops.KroneckerCore.RestParameterCount > 0);   // LayerNorm γ, β
        Assert.All(lin.Sites, s => Assert.True(KroneckerCore.IsRowLocal(lin, s)));
    }

    [Fact]
    public void MlpBlockPathEqualsFusedPath()
    {
        var model = MlpModel.Create(inputs: 3, hidden: 5, layers: 3, outputs: 2, Activation.Gelu, seed: 2);
        var x = new Tensor(DepthChecks.Gaussian(4 * 3, new Random(6)), new AxisShape(("sample", 4), ("input", 3)));
        var a = model.Linearize(x); var b = model.LinearizeFused(x);
        Assert.Equal(b.StateShape, a.StateShape);
        Assert.True(DepthChecks.RelErr(a.States.Span, b.States.Span) < 1e-15);
        var rng = new Random(8);
        var e = DepthChecks.Gaussian(a.StateShape.Size * 2, rng);
        var na = new NtkOperators(a).NtkS.ApplyBlock(e, 2);
        var nb = new NtkOperators(b).NtkS.ApplyBlock(e, 2);
        Assert.True(DepthChecks.RelErr(na, nb) < 1e-13);
    }

    [Fact]
    public void ChainRejectsMismatchedWidthsAndSharedNames()
    {
        Assert.Contains("step 1 takes width 3", Assert.Throws<ArgumentException>(() =>
            new BlockChain(2, AffineBlock.Linear("a", 2, 4), AffineBlock.Linear("b", 3, 4))).Message);
        Assert.Contains("'a.weight' is declared by two blocks", Assert.Throws<ArgumentException>(() =>
            new BlockChain(2, AffineBlock.Linear("a", 2, 4), AffineBlock.Linear("a", 4, 4))).Message);
        var chain = new BlockChain(2, AffineBlock.Linear("a", 2, 4));
        var ps = new ParameterSet([new Parameter("a.weight", [4, 3]), new Parameter("a.bias", [4])]);
        Assert.Contains("'a.weight' has shape [4, 3], expected [4, 2]", Assert.Throws<ArgumentException>(() =>
            chain.Linearize(ps, new Tensor(new double[2], new AxisShape(("sample", 1), ("input", 2))))).Message);
    }
}
