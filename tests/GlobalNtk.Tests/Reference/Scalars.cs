namespace GlobalNtk.Tests.Reference;

/// <summary>The arithmetic a scalar-loop reference model needs, so one reference runs on plain values or on dual numbers.</summary>
public interface IRefScalar<T> where T : struct, IRefScalar<T>
{
    static abstract T Const(double value);
    static abstract T operator +(T a, T b);
    static abstract T operator -(T a, T b);
    static abstract T operator *(T a, T b);
    static abstract T Tanh(T a);
    static abstract T Sigmoid(T a);
    static abstract T Relu(T a);
    static abstract T Exp(T a);
    double Value { get; }
}

/// <summary>A plain float64.</summary>
public readonly struct Real(double value) : IRefScalar<Real>
{
    public double Value { get; } = value;
    public static Real Const(double value) => new(value);
    public static Real operator +(Real a, Real b) => new(a.Value + b.Value);
    public static Real operator -(Real a, Real b) => new(a.Value - b.Value);
    public static Real operator *(Real a, Real b) => new(a.Value * b.Value);
    public static Real Tanh(Real a) => new(Math.Tanh(a.Value));
    public static Real Sigmoid(Real a) => new(1.0 / (1.0 + Math.Exp(-a.Value)));
    public static Real Relu(Real a) => new(Math.Max(0.0, a.Value));
    public static Real Exp(Real a) => new(Math.Exp(a.Value));
}

/// <summary>A dual number v + t·ε (ε² = 0): forward-mode automatic differentiation, exact to rounding.</summary>
public readonly struct Dual(double value, double tangent) : IRefScalar<Dual>
{
    public double Value { get; } = value;
    public double Tangent { get; } = tangent;
    public static Dual Const(double value) => new(value, 0);
    public static Dual operator +(Dual a, Dual b) => new(a.Value + b.Value, a.Tangent + b.Tangent);
    public static Dual operator -(Dual a, Dual b) => new(a.Value - b.Value, a.Tangent - b.Tangent);
    public static Dual operator *(Dual a, Dual b) => new(a.Value * b.Value, a.Value * b.Tangent + a.Tangent * b.Value);
    public static Dual Tanh(Dual a) { double t = Math.Tanh(a.Value); return new(t, (1 - t * t) * a.Tangent); }
    public static Dual Sigmoid(Dual a) { double s = 1.0 / (1.0 + Math.Exp(-a.Value)); return new(s, s * (1 - s) * a.Tangent); }
    public static Dual Relu(Dual a) => a.Value > 0 ? a : new(0, 0);
    public static Dual Exp(Dual a) { double e = Math.Exp(a.Value); return new(e, e * a.Tangent); }
}
