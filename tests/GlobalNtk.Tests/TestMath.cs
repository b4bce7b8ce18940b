using GlobalNtk.Dense;
using GlobalNtk.Operators;

namespace GlobalNtk.Tests;

/// <summary>
/// The test maths every test shares, written once: seeded random vectors, relative errors and the
/// adjoint identity. Other helpers (<c>RecurrentTestKit</c>, <c>DepthChecks</c>, <c>NtkChecks</c>,
/// <c>OperatorTestUtil</c>) call these rather than keeping their own copies.
/// </summary>
internal static class TestMath
{
    /// <summary><paramref name="n"/> entries uniform in [−<paramref name="scale"/>, <paramref name="scale"/>) from <paramref name="rng"/>.</summary>
    public static double[] Uniform(Random rng, int n, double scale = 1.0)
    {
        var v = new double[n];
        RandomProbes.Uniform(rng, v, scale);
        return v;
    }

    /// <summary><paramref name="n"/> entries uniform in [−<paramref name="scale"/>, <paramref name="scale"/>) from a generator seeded with <paramref name="seed"/>.</summary>
    public static double[] Uniform(int n, int seed, double scale = 1.0) => Uniform(new Random(seed), n, scale);

    /// <summary>A copy of <paramref name="p"/> with entry <paramref name="i"/> set to <paramref name="value"/> (parameters are immutable).</summary>
    public static GlobalNtk.Models.Parameter WithEntry(GlobalNtk.Models.Parameter p, int i, double value)
    {
        var a = p.ToArray();
        a[i] = value;
        return p.WithValues(a);
    }

    /// <summary>The parameters with every value mapped by <paramref name="f"/>(name, index, value).</summary>
    public static GlobalNtk.Models.ParameterSet Map(GlobalNtk.Models.ParameterSet ps, Func<string, int, double, double> f) =>
        new(ps.Select(p => p.WithValues(p.ToArray().Select((v, i) => f(p.Name, i, v)).ToArray())));

    /// <summary>A tensor of the given shape with entries uniform in [−1, 1).</summary>
    public static Tensor Uniform(Random rng, AxisShape shape) => new(Uniform(rng, shape.Size), shape);

    /// <summary><paramref name="n"/> standard normal entries (the library's one sampler).</summary>
    public static double[] Gaussian(Random rng, int n) => RandomProbes.Gaussian(rng, n);

    /// <summary>‖actual − expected‖ / ‖expected‖ (the denominator floored at 1e-300).</summary>
    public static double RelativeError(ReadOnlySpan<double> actual, ReadOnlySpan<double> expected)
    {
        if (actual.Length != expected.Length) throw new ArgumentException($"RelativeError: lengths {actual.Length} vs {expected.Length}.");
        double num = 0, den = 0;
        for (int i = 0; i < actual.Length; i++) { double e = actual[i] - expected[i]; num += e * e; den += expected[i] * expected[i]; }
        return Math.Sqrt(num) / Math.Max(Math.Sqrt(den), 1e-300);
    }

    /// <summary>|a − b| / max(|a|, |b|) (the denominator floored at 1e-300).</summary>
    public static double RelativeDifference(double a, double b) =>
        Math.Abs(a - b) / Math.Max(Math.Max(Math.Abs(a), Math.Abs(b)), 1e-300);

    /// <summary>
    /// Relative gap of the adjoint identity ⟨A X, Y⟩ = ⟨X, A* Y⟩ on a random block of
    /// <paramref name="count"/> vectors X (domain) and Y (range) drawn from <paramref name="rng"/>:
    /// |⟨AX, Y⟩ − ⟨X, A*Y⟩| / (‖AX‖‖Y‖ + ‖X‖‖A*Y‖).
    /// </summary>
    public static double AdjointError(LinearOperator op, Random rng, int count = 3)
    {
        var x = Uniform(rng, op.Domain.Size * count);
        var y = Uniform(rng, op.Range.Size * count);
        var ax = op.ApplyBlock(x, count);
        var aty = op.ApplyAdjointBlock(y, count);
        double lhs = Numerics.Dot(ax, y), rhs = Numerics.Dot(x, aty);
        double scale = Numerics.Norm(ax) * Numerics.Norm(y) + Numerics.Norm(x) * Numerics.Norm(aty);
        return Math.Abs(lhs - rhs) / scale;
    }

    /// <summary>
    /// Relative gap of the adjoint identity ⟨A x, w⟩ = ⟨x, A* w⟩ on float32 blocks of <paramref name="count"/>
    /// vectors, A* applied by <paramref name="adjoint"/>'s forward map, or (null) by A's own adjoint map:
    /// |⟨Ax, w⟩ − ⟨x, A*w⟩| / (‖Ax‖‖w‖), every sum in float64.
    /// </summary>
    public static double Float32AdjointGap(LinearOperator a, LinearOperator? adjoint, float[] x, float[] w, int count = 1)
    {
        var ax = new float[w.Length];
        var aw = new float[x.Length];
        a.ApplyBlock(x, ax, count);
        if (adjoint is null) a.ApplyAdjointBlock(w, aw, count);
        else adjoint.ApplyBlock(w, aw, count);
        double lhs = Float32.DotWide(ax, w), rhs = Float32.DotWide(x, aw);
        return Math.Abs(lhs - rhs) / Math.Sqrt(Float32.DotWide(ax, ax) * Float32.DotWide(w, w));
    }
}
