using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Transformer;

namespace GlobalNtk.Tests.Reference;

/// <summary>
/// Straightforward scalar-loop implementations of the MLP and of the transformer encoder
/// (PyTorch's equations, loops over heads and tokens; pre-LN or post-LN, final norm, positional
/// none / sinusoid / learned, √d scale), independent of the library's GEMM-based code, over
/// <see cref="Dual"/> numbers so that forward-mode AD gives the whole-model dz/dθ.
/// </summary>
public static class ReferenceDepthModels
{
    /// <summary>Parameter values by PyTorch name, with optional tangents.</summary>
    public delegate Dual[] ParameterSource(string name);

    /// <summary>MLP states [B, L, H] for inputs [B, N_in].</summary>
    public static Dual[] Mlp(int inputs, int hidden, int layers, Activation act, ParameterSource p, double[] x, int batch)
    {
        var z = new Dual[batch * layers * hidden];
        for (int b = 0; b < batch; b++)
        {
            var prev = new Dual[inputs];
            for (int i = 0; i < inputs; i++) prev[i] = x[b * inputs + i];
            for (int l = 0; l < layers; l++)
            {
                var w = p($"layers.{l}.weight"); var bias = p($"layers.{l}.bias");
                var next = new Dual[hidden];
                for (int o = 0; o < hidden; o++)
                {
                    Dual a = bias[o];
                    for (int i = 0; i < prev.Length; i++) a += w[o * prev.Length + i] * prev[i];
                    next[o] = Phi(act, a);
                    z[(b * layers + l) * hidden + o] = next[o];
                }
                prev = next;
            }
        }
        return z;
    }

    /// <summary>Transformer states [S, L+1, N, d]; x is [S, N, N_in] (or token ids [S, N]).</summary>
    public static Dual[] Transformer(TransformerConfig c, ParameterSource p, double[] x, int seqs, int tokens)
    {
        int d = c.Model, heads = c.Heads, dh = d / heads, f = c.FeedForward, L = c.Layers, n = tokens;
        var z = new Dual[seqs * (L + 1) * n * d];
        int Z(int s, int l, int t, int i) => ((s * (L + 1) + l) * n + t) * d + i;
        for (int s = 0; s < seqs; s++)
            for (int t = 0; t < n; t++)
                for (int i = 0; i < d; i++)
                {
                    Dual v;
                    if (c.Input == TransformerInput.Linear)
                    {
                        var w = p("input_proj.weight"); v = p("input_proj.bias")[i];
                        for (int k = 0; k < c.Inputs; k++) v += w[i * c.Inputs + k] * x[(s * n + t) * c.Inputs + k];
                    }
                    else v = p("embedding.weight")[(int)x[s * n + t] * d + i];
                    if (c.ScaleEmbedding) v = v * Math.Sqrt(d);
                    double angle = t / Math.Pow(10000.0, 2 * (i / 2) / (double)d);
                    z[Z(s, 0, t, i)] = c.Positional switch
                    {
                        TransformerPositional.Sinusoidal => v + (i % 2 == 0 ? Math.Sin(angle) : Math.Cos(angle)),
                        TransformerPositional.Learned => v + p("pos_embedding")[t * d + i],
                        _ => v,
                    };
                }

        for (int l = 0; l < L; l++)
        {
            string pre = $"layers.{l}.";
            var win = p(pre + "self_attn.in_proj_weight"); var bin = p(pre + "self_attn.in_proj_bias");
            var wo = p(pre + "self_attn.out_proj.weight"); var bo = p(pre + "self_attn.out_proj.bias");
            var w1 = p(pre + "linear1.weight"); var b1 = p(pre + "linear1.bias");
            var w2 = p(pre + "linear2.weight"); var b2 = p(pre + "linear2.bias");
            var g1 = p(pre + "norm1.weight"); var be1 = p(pre + "norm1.bias");
            var g2 = p(pre + "norm2.weight"); var be2 = p(pre + "norm2.bias");
            for (int s = 0; s < seqs; s++)
            {
                var cur = new Dual[n][]; var qkv = new Dual[n][];
                for (int t = 0; t < n; t++)
                {
                    cur[t] = new Dual[d];
                    for (int i = 0; i < d; i++) cur[t][i] = z[Z(s, l, t, i)];
                    var h = c.NormFirst ? LayerNorm(cur[t], g1, be1, c.LayerNormEps) : cur[t];
                    qkv[t] = new Dual[3 * d];
                    for (int r = 0; r < 3 * d; r++)
                    {
                        Dual a = bin[r];
                        for (int i = 0; i < d; i++) a += win[r * d + i] * h[i];
                        qkv[t][r] = a;
                    }
                }
                var o = new Dual[n][];
                for (int t = 0; t < n; t++) o[t] = new Dual[d];
                for (int hd = 0; hd < heads; hd++)
                    for (int t = 0; t < n; t++)
                    {
                        int allowed = c.Causal ? t + 1 : n;
                        var sc = new Dual[allowed];
                        double max = double.NegativeInfinity;
                        for (int u = 0; u < allowed; u++)
                        {
                            Dual a = 0.0;
                            for (int e = 0; e < dh; e++) a += qkv[t][hd * dh + e] * qkv[u][d + hd * dh + e];
                            sc[u] = a / Math.Sqrt(dh);
                            max = Math.Max(max, sc[u].V);
                        }
                        Dual sum = 0.0;
                        for (int u = 0; u < allowed; u++) { sc[u] = Dual.Exp(sc[u] - max); sum += sc[u]; }
                        for (int e = 0; e < dh; e++)
                        {
                            Dual acc = 0.0;
                            for (int u = 0; u < allowed; u++) acc += sc[u] / sum * qkv[u][2 * d + hd * dh + e];
                            o[t][hd * dh + e] = acc;
                        }
                    }
                for (int t = 0; t < n; t++)
                {
                    var z1 = new Dual[d];
                    for (int i = 0; i < d; i++)
                    {
                        Dual a = bo[i];
                        for (int j = 0; j < d; j++) a += wo[i * d + j] * o[t][j];
                        z1[i] = cur[t][i] + a;
                    }
                    if (!c.NormFirst) z1 = LayerNorm(z1, g1, be1, c.LayerNormEps);
                    var h2 = c.NormFirst ? LayerNorm(z1, g2, be2, c.LayerNormEps) : z1;
                    var m = new Dual[f];
                    for (int r = 0; r < f; r++)
                    {
                        Dual a = b1[r];
                        for (int i = 0; i < d; i++) a += w1[r * d + i] * h2[i];
                        m[r] = Phi(c.Activation, a);
                    }
                    var y = new Dual[d];
                    for (int i = 0; i < d; i++)
                    {
                        Dual a = b2[i];
                        for (int r = 0; r < f; r++) a += w2[i * f + r] * m[r];
                        y[i] = z1[i] + a;
                    }
                    if (!c.NormFirst) y = LayerNorm(y, g2, be2, c.LayerNormEps);
                    if (c.FinalNorm && l == L - 1) y = LayerNorm(y, p("norm.weight"), p("norm.bias"), c.FinalNormEps);
                    for (int i = 0; i < d; i++) z[Z(s, l + 1, t, i)] = y[i];
                }
            }
        }
        return z;
    }

    private static Dual[] LayerNorm(Dual[] x, Dual[] g, Dual[] b, double eps)
    {
        int d = x.Length;
        Dual mean = 0.0;
        foreach (var v in x) mean += v;
        mean = mean / d;
        Dual var = 0.0;
        foreach (var v in x) var += (v - mean) * (v - mean);
        var = var / d;
        var inv = 1.0 / Dual.Sqrt(var + eps);
        var y = new Dual[d];
        for (int i = 0; i < d; i++) y[i] = (x[i] - mean) * inv * g[i] + b[i];
        return y;
    }

    private static Dual Phi(Activation act, Dual a) => act switch
    {
        Activation.Tanh => Dual.Tanh(a),
        Activation.Relu => Dual.Relu(a),
        Activation.GeluTanh => 0.5 * a * (1.0 + Dual.Tanh(Math.Sqrt(2.0 / Math.PI) * (a + 0.044715 * a * a * a))),
        _ => 0.5 * a * (1.0 + Dual.Erf(a / Math.Sqrt(2.0))),
    };
}
