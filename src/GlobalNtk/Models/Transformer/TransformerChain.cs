using GlobalNtk.Models.Blocks;

namespace GlobalNtk.Models.Transformer;

/// <summary>
/// A <see cref="TransformerConfig"/> as a composition of step blocks (docs/math.md#transformers,
/// #models-as-chains), with PyTorch's parameter names:
/// <list type="bullet">
/// <item>step 0: <c>input_proj</c> (<see cref="AffineBlock"/>) or <c>embedding</c>
/// (<see cref="EmbeddingBlock"/>), then the scale c and the positional encoding
/// (<see cref="PositionalEncodingBlock"/>, left out when c = 1 and there is none);</item>
/// <item>pre-LN layer l: z + attn(LN₁(z)), then z' + mlp(LN₂(z')), as two <see cref="ResidualBlock"/>s;</item>
/// <item>post-LN layer l: LN₁(z + attn(z)), then LN₂(z' + mlp(z'));</item>
/// <item>with a final encoder norm, the last layer ends with <c>norm</c>.</item>
/// </list>
/// attn is <see cref="AttentionBlock"/>, mlp is linear1 → φ → linear2.
/// </summary>
internal static class TransformerChain
{
    /// <summary>The chain of <paramref name="c"/> on sequences of <paramref name="tokens"/> tokens (attention and positions need N).</summary>
    public static BlockChain Build(TransformerConfig c, int tokens)
    {
        c.Validate();
        int d = c.Model;
        var steps = new StepBlock[c.Layers + 1];
        StepBlock embed = c.Input == TransformerInput.Linear
            ? AffineBlock.Linear("input_proj", c.Inputs, d)
            : new EmbeddingBlock(TransformerModel.EmbeddingWeight, c.Inputs, d);
        double scale = c.EmbeddingScale;
        PositionalEncodingBlock? pos = c.Positional switch
        {
            TransformerPositional.Sinusoidal => PositionalEncodingBlock.Sinusoidal(d, tokens, scale),
            TransformerPositional.Learned => PositionalEncodingBlock.Learned(TransformerModel.PositionalWeight, d, tokens, c.MaxPositions, scale),
            _ => scale == 1.0 ? null : PositionalEncodingBlock.None(d, tokens, scale),
        };
        steps[0] = pos is null ? embed : new SequentialBlock(embed, pos);
        for (int l = 0; l < c.Layers; l++) steps[l + 1] = Layer(c, l, tokens);
        return new BlockChain(c.Input == TransformerInput.Linear ? c.Inputs : 1, steps);
    }

    /// <summary>Encoder layer <paramref name="l"/> (nn.TransformerEncoderLayer, plus the final norm on the last layer).</summary>
    private static StepBlock Layer(TransformerConfig c, int l, int tokens)
    {
        int d = c.Model, f = c.FeedForward;
        string prefix = $"layers.{l}.";
        var attn = new AttentionBlock(prefix + "self_attn", d, c.Heads, tokens, c.Causal);
        var norm1 = new LayerNormBlock(prefix + "norm1", d, c.LayerNormEps);
        var norm2 = new LayerNormBlock(prefix + "norm2", d, c.LayerNormEps);
        StepBlock Mlp() => new SequentialBlock(AffineBlock.Linear(prefix + "linear1", d, f), new ActivationBlock(f, c.Activation), AffineBlock.Linear(prefix + "linear2", f, d));
        var parts = c.NormFirst
            ? new List<StepBlock> { new ResidualBlock(new SequentialBlock(norm1, attn)), new ResidualBlock(new SequentialBlock(norm2, Mlp())) }
            : [new ResidualBlock(attn), norm1, new ResidualBlock(Mlp()), norm2];
        if (c.FinalNorm && l == c.Layers - 1) parts.Add(new LayerNormBlock("norm", d, c.FinalNormEps));
        return new SequentialBlock(parts.ToArray());
    }
}
