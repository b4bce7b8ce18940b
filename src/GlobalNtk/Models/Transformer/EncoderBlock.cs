using GlobalNtk.Dense;
using GlobalNtk.Models.Mlp;

namespace GlobalNtk.Models.Transformer;

/// <summary>
/// One encoder block evaluated on a batch (docs/math.md#transformers): its weights and the forward caches that
/// its derivatives need. Rows c = s·N + t run over (sequence, token). Memory is
/// O(S·N·(d + d_ff) + S·heads·N²): LayerNorm'd tokens, q/k/v, attention probabilities, head
/// outputs, MLP activity and φ'. The site matrices Û (the inputs of in_proj, out_proj, linear1,
/// linear2 with a ones column) are stored augmented so that they serve both the forward products
/// and the Kronecker core. Pre-LN (norm_first) or post-LN; the last block may carry the encoder's
/// final norm.
/// </summary>
internal sealed class EncoderBlock
{
    public readonly int S, N, D, Heads, Dh, F;
    public readonly bool Causal, NormFirst, HasFinal;
    public readonly double Eps, FinalEps;
    public readonly Activation Act;
    public readonly double Scale;
    public readonly BlockNames Names;
    public readonly double[] Win, Bin, Wo, Bo, W1, B1, W2, B2, G1, Be1, G2, Be2;
    /// <summary>The final norm's gain and bias (empty without one).</summary>
    public readonly double[] G3, Be3;
    /// <summary>LN₁, LN₂ and the final norm: x̂ [S·N, d] and 1/σ [S·N].</summary>
    public readonly double[] Xhat1, Rstd1, Xhat2, Rstd2, Xhat3, Rstd3;
    /// <summary>in_proj's input, augmented [S·N, d+1]: LN₁(z) pre-LN, z post-LN.</summary>
    public readonly double[] QkvIn;
    /// <summary>Packed q, k, v [S·N, 3d].</summary>
    public readonly double[] Qkv;
    /// <summary>Attention probabilities [S, heads, N, N] (zero where masked).</summary>
    public readonly double[] Prob;
    /// <summary>Concatenated head outputs, augmented [S·N, d+1].</summary>
    public readonly double[] O;
    /// <summary>linear1's input, augmented [S·N, d+1]: LN₂(z') pre-LN, z' = LN₁(z + attn) post-LN.</summary>
    public readonly double[] FfIn;
    /// <summary>φ'(a₁) [S·N, d_ff] and m = φ(a₁) augmented [S·N, d_ff+1].</summary>
    public readonly double[] Dphi, M;

    public EncoderBlock(TransformerConfig c, ParameterSet ps, int layer, int sequences, int tokens)
    {
        S = sequences; N = tokens; D = c.Model; Heads = c.Heads; Dh = c.HeadDim; F = c.FeedForward;
        Causal = c.Causal; Act = c.Activation; Scale = 1.0 / Math.Sqrt(Dh);
        NormFirst = c.NormFirst; Eps = c.LayerNormEps;
        HasFinal = c.FinalNorm && layer == c.Layers - 1; FinalEps = c.FinalNormEps;
        Names = new BlockNames(layer);
        Win = ps[Names.InProjWeight].Data; Bin = ps[Names.InProjBias].Data;
        Wo = ps[Names.OutProjWeight].Data; Bo = ps[Names.OutProjBias].Data;
        W1 = ps[Names.Linear1Weight].Data; B1 = ps[Names.Linear1Bias].Data;
        W2 = ps[Names.Linear2Weight].Data; B2 = ps[Names.Linear2Bias].Data;
        G1 = ps[Names.Norm1Weight].Data; Be1 = ps[Names.Norm1Bias].Data;
        G2 = ps[Names.Norm2Weight].Data; Be2 = ps[Names.Norm2Bias].Data;
        G3 = HasFinal ? ps[TransformerModel.FinalNormWeight].Data : []; Be3 = HasFinal ? ps[TransformerModel.FinalNormBias].Data : [];
        int r = S * N;
        Xhat1 = new double[r * D]; Rstd1 = new double[r]; Xhat2 = new double[r * D]; Rstd2 = new double[r];
        Xhat3 = HasFinal ? new double[r * D] : []; Rstd3 = HasFinal ? new double[r] : [];
        QkvIn = new double[r * (D + 1)];
        Qkv = new double[r * 3 * D]; Prob = new double[S * Heads * N * N]; O = new double[r * (D + 1)];
        FfIn = new double[r * (D + 1)];
        Dphi = new double[r * F]; M = new double[r * (F + 1)];
    }

    /// <summary>Position of a stage in this block's evaluation order (see <see cref="BlockStage"/>).</summary>
    public int Rank(BlockStage s) => NormFirst || s is BlockStage.Input or BlockStage.Final ? (int)s : s switch
    {
        BlockStage.Qkv => 1, BlockStage.Attn => 2, BlockStage.Norm1 => 3, BlockStage.Hidden => 4, BlockStage.Out => 5, _ => 6, // Norm2
    };

    /// <summary>The stage whose value is the block's output (the next state).</summary>
    public BlockStage OutputStage => HasFinal ? BlockStage.Final : NormFirst ? BlockStage.Out : BlockStage.Norm2;

    /// <summary>The first stage after the input (where parameter perturbations can enter).</summary>
    public BlockStage FirstStage => NormFirst ? BlockStage.Norm1 : BlockStage.Qkv;

    /// <summary>Runs the block on z [S·N, d] (rows s·N + t), filling the caches; writes the block output to output.</summary>
    public void Forward(ReadOnlySpan<double> z, Span<double> output)
    {
        int r = S * N, d = D;
        if (NormFirst) LayerNormForward(z, G1, Be1, Eps, Xhat1, Rstd1, QkvIn, d + 1);
        else
        {
            var zz = z.Slice(0, r * d).ToArray(); var qin = QkvIn;
            Parallel.For(0, r, row => { zz.AsSpan(row * d, d).CopyTo(qin.AsSpan(row * (d + 1), d)); qin[row * (d + 1) + d] = 1.0; });
        }
        // qkv = u W_inᵀ + b_in
        Gemm.Multiply(Trans.No, Trans.Yes, r, 3 * d, d, 1.0, QkvIn, d + 1, Win, d, 0.0, Qkv, 3 * d);
        AddBiasRows(Qkv, Bin, r);
        Parallel.For(0, S * Heads, sh => AttentionForward(sh / Heads, sh % Heads));
        // r₁ = z + o W_oᵀ + b_o (kept in output); pre-LN: z' = r₁; post-LN: z' = LN₁(r₁)
        z.Slice(0, r * d).CopyTo(output);
        Gemm.Multiply(Trans.No, Trans.Yes, r, d, d, 1.0, O, d + 1, Wo, d, 1.0, output, d);
        AddBiasRows(output, Bo, r);
        if (NormFirst) LayerNormForward(output, G2, Be2, Eps, Xhat2, Rstd2, FfIn, d + 1);
        else
        {
            LayerNormForward(output, G1, Be1, Eps, Xhat1, Rstd1, FfIn, d + 1);
            for (int row = 0; row < r; row++) FfIn.AsSpan(row * (d + 1), d).CopyTo(output.Slice(row * d, d));
        }
        var a1 = new double[r * F];
        Gemm.Multiply(Trans.No, Trans.Yes, r, F, d, 1.0, FfIn, d + 1, W1, d, 0.0, a1, F);
        AddBiasRows(a1, B1, r);
        var m = M; var dphi = Dphi; var act = Act; int f = F;
        Parallel.For(0, r, row =>
        {
            act.Evaluate(a1.AsSpan(row * f, f), m.AsSpan(row * (f + 1), f), dphi.AsSpan(row * f, f));
            m[row * (f + 1) + f] = 1.0;
        });
        // r₂ = z' + m W₂ᵀ + b₂; pre-LN: z'' = r₂; post-LN: z'' = LN₂(r₂)
        Gemm.Multiply(Trans.No, Trans.Yes, r, d, F, 1.0, M, F + 1, W2, F, 1.0, output, d);
        AddBiasRows(output, B2, r);
        if (!NormFirst || HasFinal)
        {
            var y = new double[r * d];
            if (!NormFirst) { LayerNormForward(output, G2, Be2, Eps, Xhat2, Rstd2, y, d); y.CopyTo(output); }
            if (HasFinal) { LayerNormForward(output, G3, Be3, FinalEps, Xhat3, Rstd3, y, d); y.CopyTo(output); }
        }
    }

    private void AttentionForward(int s, int h)
    {
        int n = N, ld = 3 * D;
        var q = Qkv.AsSpan(s * n * ld + h * Dh);
        var k = Qkv.AsSpan(s * n * ld + D + h * Dh);
        var v = Qkv.AsSpan(s * n * ld + 2 * D + h * Dh);
        var p = Prob.AsSpan((s * Heads + h) * n * n, n * n);
        Gemm.Multiply(Trans.No, Trans.Yes, n, n, Dh, Scale, q, ld, k, ld, 0.0, p, n);
        Blocks.Softmax.Rows(p, n, Causal);
        // o_h = P V_h, written into the head's column block of O (augmented, ld d+1)
        Gemm.Multiply(Trans.No, Trans.No, n, Dh, n, 1.0, p, n, v, ld, 0.0, O.AsSpan(s * n * (D + 1) + h * Dh), D + 1);
        if (h == 0) for (int t = 0; t < n; t++) O[(s * n + t) * (D + 1) + D] = 1.0;
    }

    /// <summary>h = LN(x) row by row, written with leading dimension <paramref name="ld"/> (d + 1 adds the ones column).</summary>
    private void LayerNormForward(ReadOnlySpan<double> x, double[] g, double[] beta, double eps, double[] xhat, double[] rstd, double[] hs, int ld)
    {
        int d = D;
        var xs = x.Slice(0, S * N * d).ToArray();
        Parallel.For(0, S * N, row =>
        {
            var xr = xs.AsSpan(row * d, d);
            double mean = 0;
            for (int i = 0; i < d; i++) mean += xr[i];
            mean /= d;
            double var = 0;
            for (int i = 0; i < d; i++) { double c = xr[i] - mean; var += c * c; }
            var /= d;
            double rs = 1.0 / Math.Sqrt(var + eps);
            rstd[row] = rs;
            for (int i = 0; i < d; i++)
            {
                double xh = (xr[i] - mean) * rs;
                xhat[row * d + i] = xh;
                hs[row * ld + i] = xh * g[i] + beta[i];
            }
            if (ld > d) hs[row * ld + d] = 1.0;
        });
    }

    private static void AddBiasRows(Span<double> a, double[] bias, int rows)
    {
        int w = bias.Length;
        for (int r = 0; r < rows; r++) Numerics.Axpy(1.0, bias, a.Slice(r * w, w));
    }

    /// <summary>out += LN'(dx) for one row (c = cache row): g ⊙ (1/σ)(dx − mean dx − x̂·mean(x̂ ⊙ dx)).</summary>
    public static void LayerNormJvpAdd(ReadOnlySpan<double> xhat, double rstd, ReadOnlySpan<double> g, ReadOnlySpan<double> dx, Span<double> output)
    {
        int d = dx.Length;
        double m1 = 0, m2 = 0;
        for (int i = 0; i < d; i++) { m1 += dx[i]; m2 += xhat[i] * dx[i]; }
        m1 /= d; m2 /= d;
        for (int i = 0; i < d; i++) output[i] += g[i] * rstd * (dx[i] - m1 - xhat[i] * m2);
    }

    /// <summary>out += LN'ᵀ(gy) for one row: (1/σ)(ĝ − mean ĝ − x̂·mean(x̂ ⊙ ĝ)), ĝ = g ⊙ gy (the projection is symmetric).</summary>
    public static void LayerNormVjpAdd(ReadOnlySpan<double> xhat, double rstd, ReadOnlySpan<double> g, ReadOnlySpan<double> gy, Span<double> output)
    {
        int d = gy.Length;
        double m1 = 0, m2 = 0;
        for (int i = 0; i < d; i++) { double gh = g[i] * gy[i]; m1 += gh; m2 += xhat[i] * gh; }
        m1 /= d; m2 /= d;
        for (int i = 0; i < d; i++) output[i] += rstd * (g[i] * gy[i] - m1 - xhat[i] * m2);
    }
}
