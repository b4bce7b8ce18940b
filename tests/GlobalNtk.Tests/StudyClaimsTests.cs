using GlobalNtk.Study;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>The verdict logic on synthetic unit results whose answer is known by construction.</summary>
public class StudyClaimsTests
{
    private static readonly StudyScale Scale = StudyScale.Test with { Seeds = [1, 2, 3, 4] };

    /// <summary>
    /// Synthetic results for every unit of the plan: PR(NTK_S) = c·H^slope, SRB = srb, transformer
    /// PR/dim = frac, C4 loss decreasing (or increasing) in PR, learned fraction increasing in ρ.
    /// </summary>
    private static List<UnitResult> Synthetic(double slope, double srb, double frac, double exact, bool lossFallsWithRank)
    {
        var plan = StudyPlan.Of(Scale);
        var list = new List<UnitResult>();
        foreach (var u in plan.Units)
        {
            var noise = new Random(u.Id.Sum(ch => (int)ch) * 31 + u.Id.Length); // stable across processes
            double jitter = 1 + 0.01 * (noise.NextDouble() - 0.5);
            if (u.Kind == UnitKind.Exactness)
            {
                list.Add(new UnitResult(u, "units/" + u.Id, new ExactnessResult(10, 20, exact * jitter, exact * jitter, 1e4 * exact * jitter), null, null, null, null));
                continue;
            }
            int dim = 100 * u.Hidden;
            double pr = u.Arch == "transformer" ? frac * dim * jitter : 3 * Math.Pow(u.Hidden, slope) * jitter * (1 + u.Gain);
            double loss = lossFallsWithRank ? 1 / pr : pr;
            Snapshot Snap(int step) => new(step, loss, dim, pr, 0.01, 2 * pr, 0.01, 10 * pr,
                Enumerable.Repeat(srb * jitter, 4).ToArray(), [0.5, 0.6, 0.7, 0.8, 0.9, 1, 1, 1], 0.5,
                [1 * u.Gain + jitter, 2 * u.Gain + jitter, 0.1 * jitter], [0.5 * u.Gain + jitter, 0.9 * u.Gain + jitter, 0.01 * jitter]);
            list.Add(new UnitResult(u, "units/" + u.Id, null, Snap(0), Snap(Scale.Steps), [new(0, loss, 0.5)], 0.5));
        }
        return list;
    }

    [Fact]
    public void EveryClaimIsSupportedWhenTheDataSaySo()
    {
        var v = StudyClaims.Evaluate(Scale, Synthetic(slope: 0.1, srb: 3, frac: 0.01, exact: 1e-15, lossFallsWithRank: true), 7);
        Assert.Equal(["C1", "C2", "C3", "C4", "C5"], v.Select(c => c.Id));
        Assert.All(v, c => Assert.True(c.Verdict == Verdict.Supported, $"{c.Id}: {c.Verdict} {string.Join("; ", c.Statistics.Select(s => s.Estimate))}"));
        var c2 = v.Single(c => c.Id == "C2");
        Assert.All(c2.Statistics, s => Assert.InRange(s.Estimate.Value, 0.09, 0.11));
    }

    [Fact]
    public void EveryClaimFailsWhenTheDataContradictIt()
    {
        var v = StudyClaims.Evaluate(Scale, Synthetic(slope: 1.0, srb: 0.5, frac: 0.5, exact: 1e-3, lossFallsWithRank: false), 7);
        foreach (var id in new[] { "C1", "C2", "C3", "C5" })
            Assert.Equal(Verdict.NotSupported, v.Single(c => c.Id == id).Verdict);
        // C4: loss rises with rank, the first statistic lies entirely above 0
        Assert.Equal(Verdict.NotSupported, v.Single(c => c.Id == "C4").Verdict);
    }

    [Fact]
    public void AnIntervalStraddlingTheThresholdIsInconclusive()
    {
        var s = new ClaimStatistic("x", new Interval(0.5, 0.2, 0.8, 3), 0.5, PredictBelow: true);
        Assert.False(s.Holds); Assert.False(s.Fails);
        var nan = new ClaimStatistic("x", new Interval(double.NaN, double.NaN, double.NaN, 0), 0.5, PredictBelow: true);
        Assert.False(nan.Holds); Assert.False(nan.Fails);
        var results = Synthetic(0.1, 3, 0.01, 1e-15, true);
        // C5 with no transformer runs: no data, so inconclusive rather than supported
        var v = StudyClaims.Evaluate(Scale, results.Where(r => r.Unit.Arch != "transformer" || r.Exactness is not null).ToList(), 7);
        Assert.Equal(Verdict.Inconclusive, v.Single(c => c.Id == "C5").Verdict);
    }

    [Fact]
    public void VerdictsDoNotDependOnTheOrderOfResults()
    {
        var r = Synthetic(0.3, 1.5, 0.02, 1e-15, true);
        var a = StudyClaims.Evaluate(Scale, r, 9);
        var shuffled = r.OrderBy(x => x.Unit.Id.Length).ThenByDescending(x => x.Unit.Id, StringComparer.Ordinal).ToList();
        var b = StudyClaims.Evaluate(Scale, shuffled, 9);
        Assert.Equal(a.SelectMany(c => c.Statistics.Select(s => s.Estimate)), b.SelectMany(c => c.Statistics.Select(s => s.Estimate)));
    }
}
