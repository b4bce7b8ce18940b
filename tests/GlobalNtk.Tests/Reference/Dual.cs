namespace GlobalNtk.Tests.Reference;

/// <summary>
/// A forward-mode dual number v + ε·d (ε² = 0) for differentiating independent reference
/// implementations inside the tests: seeding one parameter's tangent gives a column of dz/dθ.
/// </summary>
public readonly struct Dual(double value, double tangent = 0.0)
{
    /// <summary>Value.</summary>
    public double V { get; } = value;
    /// <summary>Tangent (directional derivative).</summary>
    public double D { get; } = tangent;

    public static implicit operator Dual(double v) => new(v);
    public static Dual operator +(Dual a, Dual b) => new(a.V + b.V, a.D + b.D);
    public static Dual operator -(Dual a, Dual b) => new(a.V - b.V, a.D - b.D);
    public static Dual operator -(Dual a) => new(-a.V, -a.D);
    public static Dual operator *(Dual a, Dual b) => new(a.V * b.V, a.D * b.V + a.V * b.D);
    public static Dual operator /(Dual a, Dual b) => new(a.V / b.V, (a.D * b.V - a.V * b.D) / (b.V * b.V));
    public static bool operator >(Dual a, Dual b) => a.V > b.V;
    public static bool operator <(Dual a, Dual b) => a.V < b.V;

    public static Dual Exp(Dual a) { double e = Math.Exp(a.V); return new(e, e * a.D); }
    public static Dual Sqrt(Dual a) { double s = Math.Sqrt(a.V); return new(s, a.D / (2 * s)); }
    public static Dual Tanh(Dual a) { double t = Math.Tanh(a.V); return new(t, (1 - t * t) * a.D); }
    public static Dual Sin(Dual a) => new(Math.Sin(a.V), Math.Cos(a.V) * a.D);
    public static Dual Cos(Dual a) => new(Math.Cos(a.V), -Math.Sin(a.V) * a.D);
    /// <summary>max(0, a) with derivative 0 at 0 (PyTorch's convention).</summary>
    public static Dual Relu(Dual a) => a.V > 0 ? a : new Dual(0.0, 0.0);
    /// <summary>erf, derivative 2/√π·exp(−a²).</summary>
    public static Dual Erf(Dual a) => new(MathNet.Numerics.SpecialFunctions.Erf(a.V), 2.0 / Math.Sqrt(Math.PI) * Math.Exp(-a.V * a.V) * a.D);

    public override string ToString() => $"{V} + {D}ε";
}
