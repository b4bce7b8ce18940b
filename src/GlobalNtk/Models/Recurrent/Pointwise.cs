using System.Numerics;
using System.Numerics.Tensors;
using GlobalNtk.Models.Mlp;

namespace GlobalNtk.Models.Recurrent;

/// <summary>SIMD elementwise kernels for the gate math (System.Numerics.Tensors).</summary>
internal static class Pointwise
{
    /// <summary>y = φ(x).</summary>
    public static void Apply<T>(Activation act, ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (act == Activation.Tanh) TensorPrimitives.Tanh(x, y);
        else if (act == Activation.Relu) TensorPrimitives.Max(x, T.Zero, y);
        else throw new ArgumentException($"Recurrent cells support tanh and relu, not {act.Name()}.");
    }

    /// <summary>d = φ'(x) computed from the output y = φ(x) (tanh: 1 − y², relu: [y &gt; 0]); GELU is not invertible so not allowed here.</summary>
    public static void DerivativeFromOutput<T>(Activation act, ReadOnlySpan<T> y, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (act == Activation.Tanh) OneMinusSquare(y, d);
        else if (act != Activation.Relu) throw new ArgumentException($"Recurrent cells support tanh and relu, not {act.Name()}.");
        else for (int i = 0; i < y.Length; i++) d[i] = y[i] > T.Zero ? T.One : T.Zero;
    }

    /// <summary>d = 1 − y² (tanh' from tanh).</summary>
    public static void OneMinusSquare<T>(ReadOnlySpan<T> y, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T>
    {
        TensorPrimitives.Multiply(y, y, d);
        TensorPrimitives.Subtract(T.One, d, d);
    }

    /// <summary>d = y(1 − y) (σ' from σ).</summary>
    public static void SigmoidDerivative<T>(ReadOnlySpan<T> y, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T>
    {
        TensorPrimitives.Subtract(T.One, y, d);
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
