using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Blocks;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Recurrent;
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
    // Rows: 2 sequences of Tokens tokens for the blocks that group rows by sequence.
    private const int Tokens = TestBlocks.Tokens, Rows = 2 * Tokens, Count = 2;

    public static TheoryData<string> Blocks => new()
    {
        "affine", "affine-nobias", "tanh", "relu", "gelu", "layernorm", "layernorm-plain", "residual", "sequential",
        "attention", "attention-causal-nobias", "embedding", "positional-sinusoid", "positional-learned",
        "cell-rnn-tanh", "cell-rnn-relu-nobias", "cell-leaky-rnn", "cell-gru", "cell-gru-nobias", "cell-lstm", "cell-lstm-nobias",
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
        var block = TestBlocks.Make(name);
        var rng = new Random(11);
        var ps = RandomParameters(block, rng);
        int nIn = Rows * block.InputWidth, nOut = Rows * block.OutputWidth, m = block.ParameterSize;
        // Token ids for an embedding: its input is discrete, so J_u = 0 and there is nothing to difference.
        bool ids = block is EmbeddingBlock;
        var u = ids ? Enumerable.Range(0, Rows).Select(r => (double)((3 * r + 1) % 5)).ToArray() : DepthChecks.Gaussian(nIn, rng);
        var trace = block.Forward(ps, u, Rows, new double[nOut]);
        const double eps = 1e-6;
        if (block is AttentionBlock or EmbeddingBlock or PositionalEncodingBlock)
            Assert.Equal(block is AttentionBlock ? 2 : 0, trace.Sites.Count);
        if (block is AttentionBlock)
        {
            // in_proj's D runs through the softmax over the sequence; out_proj's is the identity.
            Assert.False(trace.Sites[0].RowLocal);
            Assert.True(trace.Sites[1].RowLocal);
        }

        // Input JVP, vector by vector of a block of Count, against central differences.
        var v = DepthChecks.Gaussian(Count * nIn, rng);
        var jv = new double[Count * nOut];
        trace.Jvp(v, jv, Count);
        for (int j = 0; j < Count && ids; j++) Assert.All(jv, x => Assert.Equal(0.0, x));
        for (int j = 0; j < Count && !ids; j++)
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

        // The JVP/VJP of a part of the input row equal the full maps on the embedded part (a cell's state
        // part and input part take their own fast path; other blocks the default).
        var parts = block is CellBlock cb ? new[] { (0, cb.StateWidth), (cb.StateWidth, cb.InputSize) } : !ids && block.InputWidth > 1 ? [(1, block.InputWidth - 1)] : [];
        foreach (var (off, wd) in parts)
        {
            var vp = DepthChecks.Gaussian(Count * Rows * wd, rng);
            var full = new double[Count * nIn];
            for (int r = 0; r < Count * Rows; r++) vp.AsSpan(r * wd, wd).CopyTo(full.AsSpan(r * block.InputWidth + off, wd));
            var expectJ = new double[Count * nOut]; var gotJ = new double[Count * nOut];
            trace.Jvp(full, expectJ, Count);
            trace.JvpPart(off, wd, vp, gotJ, Count);
            Assert.True(DepthChecks.RelErr(gotJ, expectJ) < 1e-14, $"{name}: JvpPart({off}, {wd})");
            var gotV = new double[Count * Rows * wd];
            trace.VjpPart(off, wd, w, gotV, Count);
            var expectV = Enumerable.Range(0, Count * Rows).SelectMany(r => jtw.AsSpan(r * block.InputWidth + off, wd).ToArray()).ToArray();
            Assert.True(DepthChecks.RelErr(gotV, expectV) < 1e-14, $"{name}: VjpPart({off}, {wd})");
        }

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

        // A cell's sites cover all of its parameters (it has no J_rest term).
        if (name.StartsWith("cell", StringComparison.Ordinal))
            Assert.Equal(block.ParameterSpecs.Select(p => p.Name).Order(), trace.Sites.SelectMany(st => st.Weights.Concat(st.Biases)).Order());
        // Sites: J_θ restricted to a site's W, b equals D(Û [δW, δb]ᵀ); D* is D's adjoint.
        foreach (var site in trace.Sites)
        {
            // [δW_1 … δW_w, δb_1 … δb_nb] as [OutDim, aw], in Û's column order.
            var only = new double[m];
            int off = 0, aw = site.Width + site.Biases.Count;
            var dw = new double[site.OutDim * aw];
            Assert.Equal(site.Weight, site.Weights[0]);
            Assert.Equal(site.Width, site.Weights.Sum(wn => block.ParameterSpecs.First(p => p.Name == wn).Shape[1]));
            foreach (var spec in block.ParameterSpecs)
            {
                int wi = site.Weights.ToList().IndexOf(spec.Name), bi = site.Biases.ToList().IndexOf(spec.Name);
                if (wi >= 0)
                {
                    int col = site.Weights.Take(wi).Sum(wn => block.ParameterSpecs.First(p => p.Name == wn).Shape[1]), width = spec.Shape[1];
                    for (int o = 0; o < site.OutDim; o++)
                        for (int c = 0; c < width; c++) only[off + o * width + c] = dw[o * aw + col + c] = rng.NextDouble() - 0.5;
                }
                if (bi >= 0)
                    for (int o = 0; o < site.OutDim; o++) only[off + o] = dw[o * aw + site.Width + bi] = rng.NextDouble() - 0.5;
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

    /// <summary>
    /// A transformer composed by hand from the blocks — token embedding, √d scale and a learned
    /// positional table, pre-LN layers with causal bias-free attention and a tanh-GELU MLP, a final
    /// norm — against the scalar-loop dual-number transformer with the attention biases held at 0.
    /// </summary>
    [Fact]
    public void ComposedTransformerMatchesWholeModelAd()
    {
        const int vocab = 5, d = 4, heads = 2, f = 6, seq = 2, tok = 3;
        var c = new Models.Transformer.TransformerConfig(Models.Transformer.TransformerInput.Embedding, vocab, d, heads, 2, f, Activation.GeluTanh, Causal: true)
            { Positional = Models.Transformer.TransformerPositional.Learned, MaxPositions = tok + 1, ScaleEmbedding = true, FinalNorm = true, LayerNormEps = 1e-4 };
        StepBlock Layer(int l, bool last)
        {
            string p = $"layers.{l}.";
            var parts = new List<StepBlock>
            {
                new ResidualBlock(new SequentialBlock(new LayerNormBlock(p + "norm1", d, 1e-4), new AttentionBlock(p + "self_attn", d, heads, tok, causal: true, bias: false))),
                new ResidualBlock(new SequentialBlock(new LayerNormBlock(p + "norm2", d, 1e-4), AffineBlock.Linear(p + "linear1", d, f),
                    new ActivationBlock(f, Activation.GeluTanh), AffineBlock.Linear(p + "linear2", f, d))),
            };
            if (last) parts.Add(new LayerNormBlock("norm", d));
            return new SequentialBlock(parts.ToArray());
        }
        var chain = new BlockChain(1,
            new SequentialBlock(new EmbeddingBlock("embedding.weight", vocab, d), PositionalEncodingBlock.Learned("pos_embedding", d, tok, tok + 1, Math.Sqrt(d))),
            Layer(0, false), Layer(1, true));
        var ps = chain.Initialize(seed: 3);
        Assert.All(ps.Where(p => p.Name.EndsWith("norm1.weight")), p => Assert.All(p.Data, v => Assert.Equal(1.0, v)));
        Assert.DoesNotContain(ps, p => p.Name.Contains("in_proj_bias") || p.Name.Contains("out_proj.bias"));
        var rng = new Random(4);
        ps = TestMath.Map(ps, (_, _, v) => v + 0.3 * rng.NextDouble() - 0.15);
        var ids = Enumerable.Range(0, seq * tok).Select(_ => (double)rng.Next(vocab)).ToArray();
        var x = new Tensor(ids, new AxisShape(("sequence", seq), ("token", tok), ("input", 1)));
        var lin = chain.Linearize(ps, x);
        // The reference reads every parameter by name; the absent attention biases are zeros.
        Dual[] Reference(ReferenceDepthModels.ParameterSource src) =>
            ReferenceDepthModels.Transformer(c, name => ps.Contains(name) ? src(name) : new Dual[3 * d], ids, seq, tok);
        Assert.True(DepthChecks.RelErr(lin.States.Span, Reference(DepthChecks.Values(ps)).Select(v => v.V).ToArray()) < 1e-13);
        DepthChecks.StateAdjoint(lin, 2, 1);
        DepthChecks.ParamAdjoint(lin, 2, 2);
        DepthChecks.SiteAdjoint(lin, 2, 3);
        Assert.True(DepthChecks.SiteFormError(lin, 4) < 1e-13);
        var jac = DepthChecks.WholeModelJacobian(ps, Reference);
        // P K P* = whole-model NTK (≤ 1e-10) and every operator's adjoint identity.
        NtkChecks.All(lin, TransformerNtkTests.DenseJacobian(jac, lin.StateShape.Size), seed: 92);
        Assert.Equal(["layers.0.self_attn.in_proj", "layers.0.self_attn.out_proj", "layers.0.linear1", "layers.0.linear2"], lin.Sites.Take(4).Select(s => s.Name));
        Assert.Equal([false, true, true, true], lin.Sites.Take(4).Select(s => KroneckerCore.IsRowLocal(lin, s)));
    }

    [Fact]
    public void BiasFreeAttentionEqualsZeroBiases()
    {
        var rng = new Random(12);
        var free = new AttentionBlock("attn", 6, 3, Tokens, causal: true, bias: false);
        var full = new AttentionBlock("attn", 6, 3, Tokens, causal: true);
        var ps = RandomParameters(free, rng);
        var zero = new ParameterSet(full.ParameterSpecs.Select(s => ps.Contains(s.Name) ? ps[s.Name] : new Parameter(s.Name, s.Shape)));
        var u = DepthChecks.Gaussian(Rows * 6, rng);
        Assert.Equal(Run(full, zero, u), Run(free, ps, u));
        Assert.Equal(["attn.in_proj_weight", "attn.out_proj.weight"], free.ParameterSpecs.Select(s => s.Name));
        Assert.Contains("not whole sequences of 3 tokens", Assert.Throws<ArgumentException>(() => free.Forward(ps, u, Rows - 1, new double[Rows * 6])).Message);
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
        var attn = new BlockChain(2, new SequentialBlock(AffineBlock.Linear("a", 2, 4), new AttentionBlock("attn", 4, 2, tokens: 3, causal: false)));
        var pa = attn.Initialize(seed: 1);
        Assert.Contains("attention 'attn' works on sequences of 3 tokens, but the inputs (sequence=3, token=2, input=2) have 2 tokens per sequence", Assert.Throws<ArgumentException>(() =>
            attn.Linearize(pa, new Tensor(new double[12], new AxisShape(("sequence", 3), ("token", 2), ("input", 2))))).Message);
        Assert.Contains("no token axis", Assert.Throws<ArgumentException>(() =>
            attn.Linearize(pa, new Tensor(new double[6], new AxisShape(("sample", 3), ("input", 2))))).Message);
    }
}
