using System.Numerics.Tensors;

namespace GlobalNtk.Models.Recurrent;

/// <summary>Pointwise nonlinearity φ of a recurrent cell (nn.RNN's <c>nonlinearity</c>, the leaky RNN's φ).</summary>
public enum Activation
{
    /// <summary>φ = tanh.</summary>
    Tanh,
    /// <summary>φ = max(0, ·).</summary>
    Relu,
}

/// <summary>SIMD elementwise kernels for the gate math (System.Numerics.Tensors).</summary>
internal static class Pointwise
{
    /// <summary>y = φ(x).</summary>
    public static void Apply(Activation act, ReadOnlySpan<double> x, Span<double> y)
    {
        if (act == Activation.Tanh) TensorPrimitives.Tanh(x, y);
        else TensorPrimitives.Max(x, 0.0, y);
    }

    /// <summary>d = φ'(x) computed from the output y = φ(x) (tanh: 1 − y², relu: [y &gt; 0]).</summary>
    public static void DerivativeFromOutput(Activation act, ReadOnlySpan<double> y, Span<double> d)
    {
        if (act == Activation.Tanh) OneMinusSquare(y, d);
        else for (int i = 0; i < y.Length; i++) d[i] = y[i] > 0 ? 1.0 : 0.0;
    }

    /// <summary>d = 1 − y² (tanh' from tanh).</summary>
    public static void OneMinusSquare(ReadOnlySpan<double> y, Span<double> d)
    {
        TensorPrimitives.Multiply(y, y, d);
        TensorPrimitives.Subtract(1.0, d, d);
    }

    /// <summary>d = y(1 − y) (σ' from σ).</summary>
    public static void SigmoidDerivative(ReadOnlySpan<double> y, Span<double> d)
    {
        TensorPrimitives.Subtract(1.0, y, d);
        TensorPrimitives.Multiply(y, d, d);
    }

    public static string Name(Activation act) => act == Activation.Tanh ? "tanh" : "relu";

    public static Activation Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "tanh" => Activation.Tanh,
        "relu" => Activation.Relu,
        _ => throw new ArgumentException($"Unknown activation '{name}' (valid: tanh, relu)."),
    };
}
