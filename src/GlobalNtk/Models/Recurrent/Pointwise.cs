using System.Numerics.Tensors;
using GlobalNtk.Models.Mlp;

namespace GlobalNtk.Models.Recurrent;

/// <summary>SIMD elementwise kernels for the gate math (System.Numerics.Tensors).</summary>
internal static class Pointwise
{
    /// <summary>y = φ(x).</summary>
    public static void Apply(Activation act, ReadOnlySpan<double> x, Span<double> y)
    {
        if (act == Activation.Tanh) TensorPrimitives.Tanh(x, y);
        else if (act == Activation.Relu) TensorPrimitives.Max(x, 0.0, y);
        else throw new ArgumentException($"Recurrent cells support tanh and relu, not {act.Name()}.");
    }

    /// <summary>d = φ'(x) computed from the output y = φ(x) (tanh: 1 − y², relu: [y &gt; 0]); GELU is not invertible so not allowed here.</summary>
    public static void DerivativeFromOutput(Activation act, ReadOnlySpan<double> y, Span<double> d)
    {
        if (act == Activation.Tanh) OneMinusSquare(y, d);
        else if (act != Activation.Relu) throw new ArgumentException($"Recurrent cells support tanh and relu, not {act.Name()}.");
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

    /// <summary>Parses a recurrent nonlinearity: <c>tanh</c> or <c>relu</c> (GELU is for depth chains only).</summary>
    public static Activation Parse(string name)
    {
        var act = ActivationFunctions.Parse(name);
        return act is Activation.Tanh or Activation.Relu ? act
            : throw new ArgumentException($"Unknown recurrent activation '{name}' (valid: tanh, relu).");
    }
}
