using GlobalNtk.Dense;
using GlobalNtk.Estimators;
using GlobalNtk.Operators;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>Estimators that work within a budget: rank moments, partial ranks by plan, budgeted spectra, metering.</summary>
public class EstimatorBudgetTests
{
    private static readonly AxisShape Three = new(("trial", 4), ("time", 6), ("unit", 12));
    private static readonly AxisShape Four = new(("seq", 3), ("layer", 2), ("token", 5), ("feature", 6));

    private static (double Tr, double F2, double Pr) ExactPartial(LinearOperator a, string kept)
    {
        var m = Reductions.PartialTrace(a.Materialize(), a.Domain.Names.Where(n => n != kept));
        int n = m.Rows;
        double tr = m.Trace(), f2 = 0;
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) f2 += m[i, j] * m[j, i];
        return (tr, f2, tr * tr / f2);
    }

    private static void Within(double exact, Estimate e, double sigmas, string what)
    {
        Assert.True(e.StandardError > 0, $"{what}: standard error {e.StandardError}");
        Assert.True(Math.Abs(e.Value - exact) <= sigmas * e.StandardError, $"{what}: {e.Value} vs exact {exact} ± {e.StandardError}");
    }

    // Budgets that force each method on a kept axis of the given sizes.
    public static TheoryData<string, string, int, PartialRankMethod> PartialCases() => new()
    {
        { "three", "time", 60, PartialRankMethod.PerIndex },     // 6 kept × 10 probes
        { "three", "unit", 30, PartialRankMethod.Kronecker },    // 30/12 < 3 probes per index
        { "three", "trial", 400, PartialRankMethod.Exact },      // 4 × 72 = 288 ≤ 400
        { "four", "token", 40, PartialRankMethod.PerIndex },
        { "four", "feature", 16, PartialRankMethod.Kronecker },
        { "four", "layer", 12, PartialRankMethod.PerIndex },
    };

    [Theory]
    [MemberData(nameof(PartialCases))]
    public void PartialRankWithinBudgetMatchesDensePartialTrace(string which, string kept, int budget, PartialRankMethod method)
    {
        var shape = which == "three" ? Three : Four;
        var a = KnownSpectra.Rotated(shape, KnownSpectra.PowerLaw(shape.Size, 0.8), 9);
        var (tr, f2, pr) = ExactPartial(a, kept);
        var metered = new MeteredOperator(a, null);
        var est = EffectiveRank.PartialWithin(metered, [kept], budget, seed: 3);
        Assert.Equal(method, est.Plan.Method);
        Assert.True(metered.Applications <= budget, $"{metered.Applications} applications > budget {budget}");
        Assert.Equal(est.Plan.Applications, metered.Applications);
        if (method == PartialRankMethod.Exact)
        {
            Assert.Equal(pr, est.ParticipationRatio.Value, 1e-9 * pr);
            Assert.Equal(tr, est.Trace.Value, 1e-9 * tr);
            Assert.Equal(f2, est.FrobeniusSquared.Value, 1e-9 * f2);
            Assert.Equal(0, est.ParticipationRatio.StandardError);
            return;
        }
        Within(pr, est.ParticipationRatio, 4, $"{kept} PR");
        Within(tr, est.Trace, 4, $"{kept} tr M");
        Within(f2, est.FrobeniusSquared, 4, $"{kept} ‖M‖²");
        Assert.Equal(est, EffectiveRank.PartialWithin(a, [kept], budget, seed: 3));
    }

    [Theory]
    [InlineData("unit", 40)]      // Kronecker probes
    [InlineData("time", 36)]      // per-index, 6 probes
    [InlineData("feature", 20)]   // Kronecker on the 4-axis operator
    public void PartialMomentStandardErrorsMatchTheSpreadOverSeeds(string kept, int budget)
    {
        // tr M and ‖M‖_F² are (U-)statistics whose reported SE should match their spread over
        // independent seeds: the mean reported SE and the empirical SD agree within ~25% with
        // 300 seeds (the SD of an SD estimate from 300 draws is ~4%; SEs from few groups scatter more).
        var shape = kept == "feature" ? Four : Three;
        var a = KnownSpectra.Rotated(shape, KnownSpectra.PowerLaw(shape.Size, 0.6), 4).Materialize();
        var op = new MeteredOperator(a, null); // matrix-free view of the dense matrix (dense operators are exact)
        const int seeds = 300;
        var tr = new double[seeds]; var trSe = new double[seeds];
        var f2 = new double[seeds]; var f2Se = new double[seeds];
        for (int s = 0; s < seeds; s++)
        {
            var e = EffectiveRank.PartialWithin(op, [kept], budget, seed: 100 + s);
            Assert.NotEqual(PartialRankMethod.Exact, e.Plan.Method);
            tr[s] = e.Trace.Value; trSe[s] = e.Trace.StandardError;
            f2[s] = e.FrobeniusSquared.Value; f2Se[s] = e.FrobeniusSquared.StandardError;
        }
        var (exactTr, exactF2, _) = ExactPartial(a, kept);
        static double Sd(double[] x) { double m = x.Average(); return Math.Sqrt(x.Sum(v => (v - m) * (v - m)) / (x.Length - 1)); }
        // unbiased: the average over seeds is within 4 of its own standard errors
        Assert.True(Math.Abs(tr.Average() - exactTr) <= 4 * Sd(tr) / Math.Sqrt(seeds), $"tr M mean {tr.Average()} vs {exactTr}");
        Assert.True(Math.Abs(f2.Average() - exactF2) <= 4 * Sd(f2) / Math.Sqrt(seeds), $"‖M‖² mean {f2.Average()} vs {exactF2}");
        double rTr = trSe.Average() / Sd(tr), rF2 = f2Se.Average() / Sd(f2);
        Assert.InRange(rTr, 0.75, 1.25);
        Assert.InRange(rF2, 0.7, 1.3);
    }

    [Theory]
    [InlineData("three", "unit", false)]
    [InlineData("four", "feature", false)]
    [InlineData("four", "token", false)]
    [InlineData("three", "time", true)]
    [InlineData("four", "seq", true)]
    public void DeflatedPartialRankMatchesDenseAndShrinksItsError(string which, string kept, bool perIndex)
    {
        var shape = which == "three" ? Three : Four;
        var a = KnownSpectra.Rotated(shape, KnownSpectra.PowerLaw(shape.Size, 1.2), 5); // steep: the top carries most mass
        var (tr, f2, pr) = ExactPartial(a, kept);
        var eig = Spectral.TopEigenpairs(a, 8, seed: 1, new SpectrumBudget(100, 1e-4));
        var d = Deflation.FromEigenpairs(eig);
        int size = shape.Sizes[shape.IndexOf(kept)];
        int budget = perIndex ? 6 * size : 2 * size - 2; // 6 probes per index, or below 3: Kronecker
        var plain = EffectiveRank.PartialWithin(a, [kept], budget, seed: 7);
        var defl = EffectiveRank.PartialWithin(a, [kept], budget, seed: 7, d);
        Assert.Equal(perIndex ? PartialRankMethod.PerIndex : PartialRankMethod.Kronecker, defl.Plan.Method);
        Within(pr, defl.ParticipationRatio, 4, $"{kept} deflated PR");
        Within(tr, defl.Trace, 4, $"{kept} deflated tr M");
        Within(f2, defl.FrobeniusSquared, 4, $"{kept} deflated ‖M‖²");
        Assert.True(defl.FrobeniusSquared.StandardError < 0.5 * plain.FrobeniusSquared.StandardError,
            $"deflated SE {defl.FrobeniusSquared.StandardError} vs plain {plain.FrobeniusSquared.StandardError}");
    }

    [Fact]
    public void DeflatedKroneckerMomentsAreUnbiasedOverSeeds()
    {
        var a = KnownSpectra.Rotated(Three, KnownSpectra.PowerLaw(Three.Size, 1.0), 6);
        var (tr, f2, _) = ExactPartial(a, "unit");
        var d = Deflation.FromEigenpairs(Spectral.TopEigenpairs(a, 5, seed: 1, new SpectrumBudget(40, 1e-2)));
        const int seeds = 200;
        var ests = Enumerable.Range(0, seeds).Select(s => EffectiveRank.PartialWithin(a, ["unit"], 20, 500 + s, d)).ToArray();
        static double Sd(double[] x) { double m = x.Average(); return Math.Sqrt(x.Sum(v => (v - m) * (v - m)) / (x.Length - 1)); }
        var t = ests.Select(e => e.Trace.Value).ToArray();
        var f = ests.Select(e => e.FrobeniusSquared.Value).ToArray();
        Assert.True(Math.Abs(t.Average() - tr) <= 4 * Sd(t) / Math.Sqrt(seeds), $"tr M {t.Average()} vs {tr}");
        Assert.True(Math.Abs(f.Average() - f2) <= 4 * Sd(f) / Math.Sqrt(seeds), $"‖M‖² {f.Average()} vs {f2}");
        Assert.InRange(ests.Average(e => e.FrobeniusSquared.StandardError) / Sd(f), 0.75, 1.25);
    }

    [Fact]
    public void PartialRankPlanChoosesTheCheapestMethodThatFits()
    {
        Assert.Equal(new PartialRankPlan(PartialRankMethod.Exact, 50, 100), PartialRankPlan.Choose(2, 50, 100));
        Assert.Equal(new PartialRankPlan(PartialRankMethod.PerIndex, 10, 120), PartialRankPlan.Choose(12, 1000, 120));
        Assert.Equal(new PartialRankPlan(PartialRankMethod.Kronecker, 30, 60), PartialRankPlan.Choose(100, 1000, 61));
        // cost of the Kronecker path does not grow with the kept size
        Assert.Equal(PartialRankPlan.Choose(1000, 50, 60).Applications, PartialRankPlan.Choose(100_000, 50, 60).Applications);
        Assert.Throws<ArgumentOutOfRangeException>(() => PartialRankPlan.Choose(10, 10, 5));
    }

    [Theory]
    [InlineData("low-rank")]
    [InlineData("power-law")]
    public void RankMomentsAreUnbiasedAndDeflationShrinksTheirErrors(string name)
    {
        const int n = 300;
        var lambda = name == "low-rank" ? KnownSpectra.LowRank(n, 30) : KnownSpectra.PowerLaw(n);
        var a = KnownSpectra.Rotated(AxisShape.Vector(n), lambda, 3);
        double tr = lambda.Sum(), tr2 = lambda.Sum(x => x * x), pr = tr * tr / tr2;
        var plain = EffectiveRank.Moments(a, 60, seed: 5);
        Within(tr, plain.Trace, 4, "tr");
        Within(tr2, plain.TraceOfSquare, 4, "tr²");
        Within(pr, plain.ParticipationRatio, 4, "PR");
        Assert.Equal(60, plain.Applications);

        var eig = Spectral.TopEigenpairs(a, 10, seed: 1, new SpectrumBudget(120, 1e-6));
        var deflated = EffectiveRank.Moments(a, 60, seed: 5, Deflation.FromEigenpairs(eig));
        Assert.Equal(10, deflated.Deflated);
        Within(tr, deflated.Trace, 4, "deflated tr");
        Within(tr2, deflated.TraceOfSquare, 4, "deflated tr²");
        Within(pr, deflated.ParticipationRatio, 4, "deflated PR");
        Assert.True(deflated.Trace.StandardError < plain.Trace.StandardError);
        Assert.True(deflated.TraceOfSquare.StandardError < 0.5 * plain.TraceOfSquare.StandardError);

        // full budget: exact
        var exact = EffectiveRank.Moments(a, n, seed: 5);
        Assert.Equal(tr, exact.Trace.Value, 1e-9 * tr);
        Assert.Equal(pr, exact.ParticipationRatio.Value, 1e-9 * pr);
        Assert.Equal(0, exact.ParticipationRatio.StandardError);
    }

    [Fact]
    public void TraceStandardErrorMatchesHutchinsonTheory()
    {
        // Rademacher Hutchinson: Var(ωᵀAω) = 2(‖A‖_F² − Σ A_ii²); the reported SE² averages to Var/m.
        const int n = 80, m = 20;
        var a = KnownSpectra.Rotated(AxisShape.Vector(n), KnownSpectra.PowerLaw(n, 0.5), 2).Materialize();
        double f2 = 0, diag2 = 0;
        for (int i = 0; i < n; i++) { diag2 += a[i, i] * a[i, i]; for (int j = 0; j < n; j++) f2 += a[i, j] * a[i, j]; }
        double theory = Math.Sqrt(2 * (f2 - diag2) / m);
        var op = new MeteredOperator(a, null);
        double meanVar = Enumerable.Range(0, 400).Select(s => Math.Pow(EffectiveRank.Moments(op, m, s).Trace.StandardError, 2)).Average();
        Assert.InRange(Math.Sqrt(meanVar) / theory, 0.9, 1.1);
    }

    [Theory]
    [InlineData(12)]
    [InlineData(25)]
    [InlineData(47)]
    [InlineData(200)]
    public void BudgetedSpectrumNeverExceedsItsBudget(int budget)
    {
        var a = KnownSpectra.Rotated(AxisShape.Vector(400), KnownSpectra.Flat(400), 7); // flat: slow convergence
        var metered = new MeteredOperator(a, null);
        var r = Spectral.TopEigenpairs(metered, 6, seed: 3, new SpectrumBudget(budget, 1e-9));
        Assert.True(metered.Applications <= budget, $"{metered.Applications} > {budget}");
        Assert.Equal(metered.Applications, r.Applications);
        Assert.Equal(EigenStatus.BudgetExhausted, r.Status);
        Assert.False(r.Converged);
        Assert.Equal(budget, r.Budget);
        // Each Ritz value is within its true residual of an eigenvalue, so of the top of [1, 2).
        for (int i = 0; i < r.Values.Length; i++) Assert.True(r.Values[i] >= 1 - r.Residuals[i] && r.Values[i] <= 2 + r.Residuals[i]);
    }

    [Fact]
    public void BudgetedSpectrumConvergesToItsEigenvalueTolerance()
    {
        var lambda = KnownSpectra.PowerLaw(500, 1.0);
        var a = KnownSpectra.Rotated(AxisShape.Vector(500), lambda, 1);
        foreach (double tol in new[] { 1e-2, 1e-3, 1e-6 })
        {
            var metered = new MeteredOperator(a, null);
            var r = Spectral.TopEigenpairs(metered, 8, seed: 2, new SpectrumBudget(400, tol));
            Assert.Equal(EigenStatus.Converged, r.Status);
            Assert.True(metered.Applications < 400);
            for (int i = 0; i < 8; i++)
            {
                Assert.True(Math.Abs(r.Values[i] - lambda[i]) <= tol * lambda[0], $"tol {tol}: λ{i + 1} = {r.Values[i]} vs {lambda[i]}");
                Assert.True(r.ErrorBounds[i] <= tol * lambda[0] * (1 + 1e-12));
            }
        }
        // looser tolerance, fewer applications
        int Apps(double tol) => Spectral.TopEigenpairs(a, 8, 2, new SpectrumBudget(400, tol)).Applications;
        Assert.True(Apps(1e-2) < Apps(1e-8));
        Assert.Throws<ArgumentOutOfRangeException>(() => Spectral.TopEigenpairs(a, 8, 2, new SpectrumBudget(1, 1e-3)));
        Assert.Throws<ArgumentOutOfRangeException>(() => Spectral.TopEigenpairs(a, 8, 2, new SpectrumBudget(50, 0)));
    }

    [Fact]
    public void SmallBudgetedBlocksReachTheTopEigenvaluesWithFewerApplications()
    {
        // Top-20 within 120 applications: blocks of max(4, 20/4) = 5 give up to 24 Krylov steps where
        // the unbudgeted default block (30) gives 4. Checked against the known spectrum.
        var lambda = KnownSpectra.PowerLaw(2000, 0.7);
        var a = KnownSpectra.Rotated(AxisShape.Vector(2000), lambda, 4);
        var small = Spectral.TopEigenpairs(a, 20, 5, new SpectrumBudget(120, 1e-3));
        var large = Spectral.TopEigenpairs(a, 20, 5, tolerance: 1e-12, blockSize: 30, maxApplications: 120);
        double ErrorOf(EigenResult r) => Enumerable.Range(0, 20).Max(i => Math.Abs(r.Values[i] - lambda[i])) / lambda[0];
        Assert.True(small.Applications <= 120);
        Assert.True(ErrorOf(small) < 0.1 * ErrorOf(large), $"block 16: {ErrorOf(small):G3}, block 30: {ErrorOf(large):G3}");
    }

    [Fact]
    public void MemoryCappedBasisWithBlocksSmallerThanKRestartsCorrectly()
    {
        // A cap of 20 vectors for k = 5: a basis of 10, blocks of 3 and thick restarts that keep at least the top 5 Ritz vectors.
        var lambda = KnownSpectra.PowerLaw(600, 1.0);
        var a = KnownSpectra.Rotated(AxisShape.Vector(600), lambda, 8);
        var metered = new MeteredOperator(a, null);
        var r = Spectral.TopEigenpairs(metered, 5, 3, new SpectrumBudget(300, 1e-3), maxVectors: 20);
        Assert.True(metered.Applications <= 300);
        Assert.True(r.Restarts > 0);
        Assert.Equal(EigenStatus.Converged, r.Status);
        for (int i = 0; i < 5; i++) Assert.True(Math.Abs(r.Values[i] - lambda[i]) <= 1e-3 * lambda[0], $"λ{i + 1} = {r.Values[i]} vs {lambda[i]}");
    }

    [Fact]
    public void MeteredOperatorCountsAndReportsWithoutChangingResults()
    {
        var a = KnownSpectra.Rotated(Three, KnownSpectra.PowerLaw(Three.Size), 2);
        var totals = new List<long>();
        var m = new MeteredOperator(a, totals.Add);
        var x = OperatorTestUtil.RandomArray(new Random(1), Three.Size * 9);
        Assert.Equal(a.ApplyBlock(x, 9), m.ApplyBlock(x, 9));
        Assert.Equal(a.ApplyAdjointBlock(x, 9), m.ApplyAdjointBlock(x, 9));
        Assert.Equal(18, m.Applications);
        Assert.Equal(18, totals[^1]);
        Assert.True(totals.Count >= 2);
        Assert.Equal(totals.OrderBy(t => t), totals);
    }
}
