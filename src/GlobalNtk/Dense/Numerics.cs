using System.Numerics.Tensors;

namespace GlobalNtk.Dense;

/// <summary>Small vector helpers shared across layers (SIMD via System.Numerics.Tensors).</summary>
public static class Numerics
{
    /// <summary>Throws <see cref="NonFiniteException"/> naming <paramref name="what"/> and the first bad index.</summary>
    public static void EnsureFinite(ReadOnlySpan<double> x, string what)
    {
        // Sum is NaN iff some element is NaN/Inf (or overflow); only then scan for the index.
        double s = TensorPrimitives.Sum(x);
        if (double.IsFinite(s)) return;
        for (int i = 0; i < x.Length; i++)
            if (!double.IsFinite(x[i]))
                throw new NonFiniteException($"{what}: element {i} of {x.Length} is {x[i]}.");
    }

    /// <summary>⟨x, y⟩.</summary>
    public static double Dot(ReadOnlySpan<double> x, ReadOnlySpan<double> y) => TensorPrimitives.Dot(x, y);
    /// <summary>‖x‖₂.</summary>
    public static double Norm(ReadOnlySpan<double> x) => TensorPrimitives.Norm(x);
    /// <summary>y += a·x.</summary>
    public static void Axpy(double a, ReadOnlySpan<double> x, Span<double> y) => TensorPrimitives.MultiplyAdd(x, a, y, y);
    /// <summary>x *= a.</summary>
    public static void Scale(Span<double> x, double a) => TensorPrimitives.Multiply(x, a, x);
}

/// <summary>A NaN or infinity was found in weights, inputs or results.</summary>
public sealed class NonFiniteException(string message) : Exception(message);
