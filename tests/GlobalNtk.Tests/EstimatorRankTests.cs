using GlobalNtk.Dense;
using GlobalNtk.Estimators;
using GlobalNtk.Operators;
using Xunit;
using static GlobalNtk.Tests.OperatorTestUtil;

namespace GlobalNtk.Tests;

public class EstimatorRankTests
{
    private static double Pr(double[] l) => Math.Pow(l.Sum(), 2) / l.Sum(x => x * x);

    [Theory]
    [InlineData("low-rank")]
    [InlineData("flat")]
    [InlineData("power-law")]
    public void ParticipationRatioIsWithinStandardErrors(string name)
    {
        const int n = 300;
        var lambda = name switch { "low-rank" => KnownSpectra.LowRank(n, 10), "flat" => KnownSpectra.Flat(n), _ => KnownSpectra.PowerLaw(n) };
        var op = KnownSpectra.Rotated(AxisShape.Vector(n), lambda, 3);
        var est = EffectiveRank.ParticipationRatio(op, 150, seed: 5);
        double exact = Pr(lambda);
        Assert.True(est.StandardError > 0);
        Assert.True(Math.Abs(est.Value - exact) <= 4 * est.StandardError, $"{name}: {est.Value} vs {exact} ± {est.StandardError}");
        Assert.Equal(est, EffectiveRank.ParticipationRatio(op, 150, seed: 5));
    }

    [Fact]
    public void KroneckerWithIdentityMultipliesPrByH()
    {
        // PR(G ⊗ I_H) = H·PR(G) (docs/math.md#effective-rank), exact with a full probe budget.
        var g = KnownSpectra.Dense(KnownSpectra.PowerLaw(20, 0.7), 2).View(new AxisShape(("time", 20)), new AxisShape(("time", 20)));
        var k = g.Kron(LinearOperator.Identity(new AxisShape(("unit", 5))));
        double prG = Pr(KnownSpectra.PowerLaw(20, 0.7));
        var full = EffectiveRank.ParticipationRatio(k, 100, 0);
        Assert.Equal(0, full.StandardError);
        Assert.Equal(5 * prG, full.Value, 9);
        // Partial rank in time traces out the unit axis: tr_unit(G ⊗ I) = 5G, PR = PR(G).
        Assert.Equal(prG, EffectiveRank.Partial(k, ["time"], 10, 0).Value, 9);
        Assert.Equal(prG, EffectiveRank.OfMatrix(g.Materialize()), 9);
        Assert.Equal(prG, EffectiveRank.OfSpectrum(KnownSpectra.PowerLaw(20, 0.7)), 12);
    }

    [Fact]
    public void PartialRankMatchesDensePartialTraceWithinStandardErrors()
    {
        var shape = new AxisShape(("trial", 4), ("time", 6), ("unit", 12)); // traced (trial, unit) = 48 > 30 probes
        var a = KnownSpectra.Rotated(shape, KnownSpectra.PowerLaw(shape.Size, 0.8), 9);
        double exact = EffectiveRank.OfMatrix(Reductions.PartialTrace(a.Materialize(), ["trial", "unit"]));
        var est = EffectiveRank.Partial(a, ["time"], 30, seed: 1);
        Assert.Equal(30, est.Probes);
        Assert.True(est.StandardError > 0);
        Assert.True(Math.Abs(est.Value - exact) <= 4 * est.StandardError, $"{est.Value} vs {exact} ± {est.StandardError}");
        var ex = Assert.Throws<ShapeMismatchException>(() => EffectiveRank.Partial(a, ["layer"], 10, 0));
        Assert.Contains("layer", ex.Message);
    }

    [Fact]
    public void AlignmentAndRelativeDifferenceMatchDenseValues()
    {
        const int n = 200;
        var a = KnownSpectra.Dense(KnownSpectra.PowerLaw(n, 0.5), 1);
        var b = KnownSpectra.Dense(KnownSpectra.PowerLaw(n, 0.5), 2); // same spectrum, other eigenvectors
        var c = a + 0.5 * b;
        var cm = c.Materialize().Matrix;
        double ac = Numerics.Dot(a.Matrix, cm), aa = Numerics.Dot(a.Matrix, a.Matrix), cc = Numerics.Dot(cm, cm);
        var al = OperatorComparison.Alignment(a, c, 100, 3);
        Assert.True(Math.Abs(al.Value - ac / Math.Sqrt(aa * cc)) <= 4 * al.StandardError, $"{al.Value} vs {ac / Math.Sqrt(aa * cc)} ± {al.StandardError}");
        Assert.Equal(1.0, OperatorComparison.Alignment(a, a * 3.0, 20, 0).Value, 12);

        var rd = OperatorComparison.RelativeDifference(c, a, 100, 4);
        double diff = Math.Sqrt(0.25 * Numerics.Dot(b.Matrix, b.Matrix) / aa);
        Assert.True(Math.Abs(rd.Value - diff) <= 4 * rd.StandardError, $"{rd.Value} vs {diff} ± {rd.StandardError}");
        Assert.Equal(0.0, OperatorComparison.RelativeDifference(a, a, 10, 0).Value);
        Assert.Equal(diff, OperatorComparison.RelativeDifference(c, a, n, 0).Value, 10); // exact with full budget

        Assert.Throws<ShapeMismatchException>(() => OperatorComparison.Alignment(a, RandomDense(new Random(1), AxisShape.Vector(n), AxisShape.Vector(n, "j")), 10, 0));
    }
}

public class EstimatorPairedRankTests
{
    [Theory]
    [InlineData("time")]
    [InlineData("unit")]
    public void PairedPartialRankMatchesDensePartialTraceWithinStandardErrors(string kept)
    {
        var shape = new AxisShape(("trial", 4), ("time", 6), ("unit", 12));
        var a = KnownSpectra.Rotated(shape, KnownSpectra.PowerLaw(shape.Size, 0.8), 9);
        var traced = shape.Names.Where(n => n != kept).ToArray();
        double exact = EffectiveRank.OfMatrix(Reductions.PartialTrace(a.Materialize(), traced));
        var est = EffectiveRank.PartialPaired(a, [kept], 300, seed: 2);
        Assert.True(est.StandardError > 0);
        Assert.True(Math.Abs(est.Value - exact) <= 4 * est.StandardError, $"{kept}: {est.Value} vs {exact} ± {est.StandardError}");
        Assert.Equal(est, EffectiveRank.PartialPaired(a, [kept], 300, seed: 2));
    }

    [Fact]
    public void PairedPartialRankOfKroneckerCore()
    {
        // tr_unit(G ⊗ I_H) = H·G: PR_time = PR(G).
        var lambda = KnownSpectra.PowerLaw(20, 0.7);
        var g = KnownSpectra.Dense(lambda, 2).View(new AxisShape(("time", 20)), new AxisShape(("time", 20)));
        var k = g.Kron(LinearOperator.Identity(new AxisShape(("unit", 8))));
        double exact = EffectiveRank.OfSpectrum(lambda);
        var est = EffectiveRank.PartialPaired(k, ["time"], 200, seed: 1);
        Assert.True(Math.Abs(est.Value - exact) <= 4 * est.StandardError, $"{est.Value} vs {exact} ± {est.StandardError}");
    }
}
