using GlobalNtk.Dense;
using GlobalNtk.Estimators;
using GlobalNtk.Operators;
using Xunit;
using static GlobalNtk.Tests.OperatorTestUtil;

namespace GlobalNtk.Tests;

public class EstimatorTraceTests
{
    private const int N = 300;

    public static IEnumerable<object[]> Spectra() =>
    [
        ["low-rank", KnownSpectra.LowRank(N, 10)],
        ["flat", KnownSpectra.Flat(N)],
        ["power-law", KnownSpectra.PowerLaw(N)],
    ];

    /// <summary>Theoretical SE of Rademacher Hutchinson: Var(ωᵀAω) = 2(‖A‖_F² − Σ a_ii²) for symmetric A.</summary>
    private static double HutchinsonSe(DenseOperator a, int m)
    {
        double f2 = Numerics.Dot(a.Matrix, a.Matrix), d2 = 0;
        for (int i = 0; i < a.Rows; i++) d2 += a[i, i] * a[i, i];
        return Math.Sqrt(2 * (f2 - d2) / m);
    }

    [Theory]
    [MemberData(nameof(Spectra))]
    public void HutchinsonIsWithinStandardErrorsAndItsErrorMatchesTheory(string name, double[] lambda)
    {
        var a = KnownSpectra.Dense(lambda, 1);
        var est = TraceEstimators.Hutchinson(a, 200, seed: 3);
        double exact = lambda.Sum();
        Assert.Equal(200, est.Probes);
        Assert.True(Math.Abs(est.Value - exact) <= 4 * est.StandardError, $"{name}: {est.Value} vs {exact} ± {est.StandardError}");
        double theory = HutchinsonSe(a, 200);
        Assert.InRange(est.StandardError / theory, 0.6, 1.5);
        Assert.Equal(est, TraceEstimators.Hutchinson(a, 200, seed: 3));        // same seed → same answer
        Assert.NotEqual(est.Value, TraceEstimators.Hutchinson(a, 200, seed: 4).Value);
    }

    [Fact]
    public void ExactWhenBudgetReachesDimension()
    {
        var a = KnownSpectra.Dense(KnownSpectra.PowerLaw(40), 2);
        var t = TraceEstimators.Hutchinson(a * 1.0, 40, 0);
        Assert.Equal(0, t.StandardError);
        Assert.Equal(a.Trace(), t.Value, 12);
        Assert.Equal(a.Trace(), TraceEstimators.HutchPlusPlus(a, 50, 0).Value, 12);
        var rect = RandomDense(new Random(1), AxisShape.Vector(30), AxisShape.Vector(20, "j"));
        Assert.Equal(Numerics.Dot(rect.Matrix, rect.Matrix), TraceEstimators.FrobeniusNormSquared(rect, 30, 0).Value, 10);
    }

    [Fact]
    public void HutchPlusPlusIsNearExactOnRankTenWithThirtyProbes()
    {
        var lambda = KnownSpectra.LowRank(N, 10);
        var est = TraceEstimators.HutchPlusPlus(KnownSpectra.Rotated(AxisShape.Vector(N), lambda, 5), 30, seed: 1);
        Assert.Equal(30, est.Probes);
        Assert.True(Math.Abs(est.Value - lambda.Sum()) < 1e-10 * lambda.Sum(), $"{est.Value} vs {lambda.Sum()}");
    }

    [Theory]
    [MemberData(nameof(Spectra))]
    public void HutchPlusPlusIsWithinStandardErrorsAndBeatsHutchinsonOnDecayingSpectra(string name, double[] lambda)
    {
        var a = KnownSpectra.Dense(lambda, 6);
        var hpp = TraceEstimators.HutchPlusPlus(a, 90, seed: 2);
        double exact = lambda.Sum();
        Assert.True(Math.Abs(hpp.Value - exact) <= 4 * hpp.StandardError + 1e-10 * exact, $"{name}: {hpp.Value} vs {exact} ± {hpp.StandardError}");
        // With a decaying spectrum the deflated remainder is smaller than the whole: lower variance per probe.
        if (name != "flat") Assert.True(hpp.StandardError < HutchinsonSe(a, 90), name);
    }

    [Fact]
    public void FrobeniusAndTraceOfSquareAreUnbiased()
    {
        var rng = new Random(7);
        var rect = RandomDense(rng, AxisShape.Vector(400), AxisShape.Vector(60, "j"));
        var fro = TraceEstimators.FrobeniusNormSquared(rect, 200, 1);
        double f2 = Numerics.Dot(rect.Matrix, rect.Matrix);
        Assert.True(Math.Abs(fro.Value - f2) <= 4 * fro.StandardError, $"{fro.Value} vs {f2}");

        // Non-symmetric square A: tr(A²) = Σ a_ij a_ji differs from ‖A‖_F².
        var a = RandomDense(rng, AxisShape.Vector(N), AxisShape.Vector(N));
        double tr2 = 0;
        for (int i = 0; i < N; i++) for (int j = 0; j < N; j++) tr2 += a[i, j] * a[j, i];
        var est = TraceEstimators.TraceOfSquare(a, 250, 2);
        Assert.True(Math.Abs(est.Value - tr2) <= 4 * est.StandardError, $"{est.Value} vs {tr2} ± {est.StandardError}");
        Assert.Equal(tr2, TraceEstimators.TraceOfSquare(a, N, 0).Value, 9);

        // Symmetric: the one-application form.
        var s = KnownSpectra.Dense(KnownSpectra.PowerLaw(N), 3);
        double exact = KnownSpectra.PowerLaw(N).Sum(l => l * l);
        var sym = TraceEstimators.TraceOfSquare(s, 200, 3);
        Assert.True(Math.Abs(sym.Value - exact) <= 4 * sym.StandardError);
    }

    [Fact]
    public void RejectsBadArguments()
    {
        var rect = RandomDense(new Random(1), AxisShape.Vector(10), AxisShape.Vector(5, "j"));
        Assert.Throws<ShapeMismatchException>(() => TraceEstimators.Hutchinson(rect, 10, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => TraceEstimators.Hutchinson(KnownSpectra.Dense([1, 2, 3], 1), 0, 0));
    }
}
