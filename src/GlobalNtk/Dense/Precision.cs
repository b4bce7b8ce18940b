namespace GlobalNtk.Dense;

/// <summary>
/// The floating-point precision an operator computes in. Vectors handed to and returned by the
/// operators are float64 in both cases; <see cref="F32"/> stores the linearisation's caches and
/// runs its products in float32, while reductions that cancel (traces, Gram matrices, Krylov
/// orthogonalisation) stay in float64.
/// </summary>
public enum Precision
{
    /// <summary>float64 throughout (the default).</summary>
    F64,
    /// <summary>float32 caches and products, float64 reductions.</summary>
    F32,
}

/// <summary>Names of <see cref="Precision"/> values as the CLI spells them.</summary>
public static class PrecisionNames
{
    /// <summary><c>f64</c> or <c>f32</c>.</summary>
    public static string Name(this Precision p) => p == Precision.F32 ? "f32" : "f64";

    /// <summary>Parses <c>f64</c>/<c>float64</c>/<c>f32</c>/<c>float32</c> (case-insensitive); false otherwise.</summary>
    public static bool TryParse(string? text, out Precision precision)
    {
        switch (text?.Trim().ToLowerInvariant())
        {
            case "f64" or "float64" or "double": precision = Precision.F64; return true;
            case "f32" or "float32" or "float": precision = Precision.F32; return true;
            default: precision = Precision.F64; return false;
        }
    }
}
