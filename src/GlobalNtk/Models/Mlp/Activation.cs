namespace GlobalNtk.Models.Mlp;

/// <summary>Pointwise nonlinearity of a depth-chain layer (MLP hidden layer, transformer MLP).</summary>
public enum Activation
{
    /// <summary>tanh.</summary>
    Tanh,
    /// <summary>max(0, x); derivative 0 at 0, as PyTorch.</summary>
    Relu,
    /// <summary>Exact GELU x·Φ(x) = ½x(1 + erf(x/√2)) (PyTorch's default, <c>approximate='none'</c>).</summary>
    Gelu,
    /// <summary>The tanh approximation ½x(1 + tanh(√(2/π)(x + 0.044715x³))) (<c>nn.GELU(approximate='tanh')</c>).</summary>
    GeluTanh,
}

/// <summary>Values and derivatives of <see cref="Activation"/>s, in float64.</summary>
public static class ActivationFunctions
{
    private const double InvSqrt2 = 0.70710678118654752440;
    private const double InvSqrt2Pi = 0.39894228040143267794;
    private const double Sqrt2OverPi = 0.79788456080286535588;
    private const double GeluCubic = 0.044715;

    /// <summary>Parses <c>tanh</c>, <c>relu</c>, <c>gelu</c>, <c>gelu_tanh</c> (case-insensitive).</summary>
    public static Activation Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "tanh" => Activation.Tanh,
        "relu" => Activation.Relu,
        "gelu" => Activation.Gelu,
        "gelu_tanh" or "gelu-tanh" => Activation.GeluTanh,
        _ => throw new ArgumentException($"Unknown activation '{name}' (expected tanh, relu, gelu or gelu_tanh)."),
    };

    /// <summary>Lower-case name as accepted by <see cref="Parse"/>.</summary>
    public static string Name(this Activation a) => a == Activation.GeluTanh ? "gelu_tanh" : a.ToString().ToLowerInvariant();

    /// <summary>φ(x).</summary>
    public static double Value(this Activation a, double x) => a switch
    {
        Activation.Tanh => Math.Tanh(x),
        Activation.Relu => x > 0 ? x : 0.0,
        Activation.GeluTanh => 0.5 * x * (1.0 + Math.Tanh(Sqrt2OverPi * (x + GeluCubic * x * x * x))),
        _ => 0.5 * x * (1.0 + MathNet.Numerics.SpecialFunctions.Erf(x * InvSqrt2)),
    };

    /// <summary>φ'(x).</summary>
    public static double Derivative(this Activation a, double x)
    {
        switch (a)
        {
            case Activation.Tanh: { double t = Math.Tanh(x); return 1.0 - t * t; }
            case Activation.Relu: return x > 0 ? 1.0 : 0.0;
            case Activation.GeluTanh:
            {
                // d/dx ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³)
                double t = Math.Tanh(Sqrt2OverPi * (x + GeluCubic * x * x * x));
                return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * Sqrt2OverPi * (1.0 + 3.0 * GeluCubic * x * x);
            }
            default:
                // d/dx xΦ(x) = Φ(x) + x·pdf(x)
                return 0.5 * (1.0 + MathNet.Numerics.SpecialFunctions.Erf(x * InvSqrt2)) + x * InvSqrt2Pi * Math.Exp(-0.5 * x * x);
        }
    }

    /// <summary>value[i] = φ(pre[i]) and deriv[i] = φ'(pre[i]).</summary>
    public static void Evaluate(this Activation a, ReadOnlySpan<double> pre, Span<double> value, Span<double> deriv)
    {
        if (a == Activation.Gelu)
        {
            // One erf per element: φ = xΦ(x), φ' = Φ(x) + x·pdf(x).
            for (int i = 0; i < pre.Length; i++)
            {
                double x = pre[i], cdf = 0.5 * (1.0 + MathNet.Numerics.SpecialFunctions.Erf(x * InvSqrt2));
                value[i] = x * cdf;
                deriv[i] = cdf + x * InvSqrt2Pi * Math.Exp(-0.5 * x * x);
            }
            return;
        }
        for (int i = 0; i < pre.Length; i++)
        {
            value[i] = a.Value(pre[i]);
            deriv[i] = a.Derivative(pre[i]);
        }
    }
}
