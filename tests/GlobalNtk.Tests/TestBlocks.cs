using GlobalNtk.Models.Blocks;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Recurrent;

namespace GlobalNtk.Tests;

/// <summary>
/// One small instance of each block type by name, shared by the block tests (the float64 derivative
/// checks and the float32 map checks): widths 2 to 8, attention over <see cref="Tokens"/> tokens.
/// </summary>
internal static class TestBlocks
{
    /// <summary>Tokens per sequence of the blocks that group rows by sequence.</summary>
    public const int Tokens = 3;

    /// <summary>The block named <paramref name="name"/> (each test lists the names it checks).</summary>
    public static StepBlock Make(string name) => name switch
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
        "attention" => new AttentionBlock("attn", 4, 2, Tokens, causal: false),
        "attention-causal-nobias" => new AttentionBlock("attn", 6, 3, Tokens, causal: true, bias: false),
        "embedding" => new EmbeddingBlock("embedding.weight", 5, 4),
        // No float32 arithmetic of its own (copies and sums): the float32 maps are the converting defaults.
        "positional-sinusoid" => PositionalEncodingBlock.Sinusoidal(4, Tokens, scale: 2.0),
        "positional-learned" => PositionalEncodingBlock.Learned("pos_embedding", 4, Tokens, Tokens + 1, scale: 1.5),
        // Recurrent cells: rows [z_prev, x] → z (docs/math.md#cells), 2 inputs, 3 hidden units, layer 1's names.
        "cell-rnn-tanh" => CellBlock.Create("rnn-tanh", 2, 3, layer: 1),
        "cell-rnn-relu-nobias" => CellBlock.Create("rnn-relu", 2, 3, bias: false),
        "cell-leaky-rnn" => CellBlock.Create(new RecurrentConfig("leaky-rnn", 2, 3, 1) { Alpha = 0.3, Activation = Activation.Tanh }),
        "cell-gru" => CellBlock.Create("gru", 2, 3),
        "cell-gru-nobias" => CellBlock.Create("gru", 2, 3, bias: false),
        "cell-lstm" => CellBlock.Create("lstm", 2, 3),
        "cell-lstm-nobias" => CellBlock.Create(new RecurrentConfig("lstm", 2, 3, 1) { Layers = 2, Bias = false }, layer: 1),
        "encoder-layer" => new SequentialBlock(
            new ResidualBlock(new SequentialBlock(new LayerNormBlock("norm1", 4), new AttentionBlock("attn", 4, 2, Tokens, causal: true))),
            new ResidualBlock(new SequentialBlock(new LayerNormBlock("norm2", 4), AffineBlock.Linear("linear1", 4, 8),
                new ActivationBlock(8, Activation.Gelu), AffineBlock.Linear("linear2", 8, 4)))),
        _ => throw new ArgumentException(name),
    };
}
