using GlobalNtk.Study;
using Xunit;

namespace GlobalNtk.Tests;

public class StudyStatisticsTests
{
    [Fact]
    public void SpearmanOfMonotoneSeriesIsOneAndOfReversedMinusOne()
    {
        double[] x = [1, 2, 3, 4, 5];
        Assert.Equal(1.0, StudyStatistics.Spearman(x, x.Select(v => Math.Exp(v)).ToArray()), 12);
        Assert.Equal(-1.0, StudyStatistics.Spearman(x, x.Select(v => -v * v).ToArray()), 12);
    }

    [Fact]
    public void SpearmanMatchesTheTextbookValueWithTies()
    {
        // x ranks 1, 2.5, 2.5, 4, 5; y ranks 2, 1, 4, 3, 5: Pearson of the ranks by hand.
        double[] x = [1, 2, 2, 3, 4], y = [20, 10, 40, 30, 50];
        double[] rx = [1, 2.5, 2.5, 4, 5], ry = [2, 1, 4, 3, 5];
        double mx = rx.Average(), my = ry.Average();
        double num = rx.Zip(ry, (a, b) => (a - mx) * (b - my)).Sum();
        double den = Math.Sqrt(rx.Sum(a => (a - mx) * (a - mx)) * ry.Sum(b => (b - my) * (b - my)));
        Assert.Equal(num / den, StudyStatistics.Spearman(x, y), 12);
        Assert.Equal(rx, StudyStatistics.Ranks(x));
    }

    [Fact]
    public void SpearmanIsNaNForTooFewPointsOrAConstantSeries()
    {
        Assert.True(double.IsNaN(StudyStatistics.Spearman([1, 2], [3, 4])));
        Assert.True(double.IsNaN(StudyStatistics.Spearman([1, 2, 3], [5, 5, 5])));
    }

    [Fact]
    public void SlopeRecoversAnExactLine()
    {
        double[] x = [0, 1, 2, 3];
        Assert.Equal(-0.75, StudyStatistics.Slope(x, x.Select(v => 2 - 0.75 * v).ToArray()), 12);
        Assert.True(double.IsNaN(StudyStatistics.Slope([1, 1], [2, 3])));
    }

    [Fact]
    public void QuantileInterpolatesLinearly()
    {
        double[] s = [0, 10, 20, 30];
        Assert.Equal(0, StudyStatistics.Quantile(s, 0));
        Assert.Equal(15, StudyStatistics.Quantile(s, 0.5), 12);
        Assert.Equal(30, StudyStatistics.Quantile(s, 1));
        Assert.Equal(2.5, StudyStatistics.Quantile(s, 0.25 / 3), 12);
    }

    [Fact]
    public void BootstrapIsDeterministicPerSeedAndBracketsTheMean()
    {
        var rng = new Random(5);
        var v = Enumerable.Range(0, 40).Select(_ => rng.NextDouble()).ToArray();
        var a = StudyStatistics.MeanInterval(v, 11);
        var b = StudyStatistics.MeanInterval(v, 11);
        var c = StudyStatistics.MeanInterval(v, 12);
        Assert.Equal(a, b);
        Assert.NotEqual(a.Low, c.Low);
        Assert.Equal(v.Average(), a.Value, 14);
        Assert.True(a.Low < a.Value && a.Value < a.High);
        // uniform(0,1): sd 0.289, so the 95 % interval of the mean of 40 is about ±1.96·0.289/√40 = ±0.09
        double half = (a.High - a.Low) / 2;
        Assert.InRange(half, 0.06, 0.12);
    }

    [Fact]
    public void BootstrapOfConstantDataIsAPoint()
    {
        var i = StudyStatistics.MeanInterval([3, 3, 3], 1);
        Assert.Equal(new Interval(3, 3, 3, 3), i);
    }

    [Fact]
    public void ClusterBootstrapResamplesWholeSeeds()
    {
        // Two seeds, each perfectly increasing on its own: every resample is +1.
        var clusters = new[] { new[] { (1.0, 1.0), (2.0, 2.0), (3.0, 3.0) }, new[] { (1.5, 1.2), (2.5, 2.2), (3.5, 3.2) } };
        var s = StudyStatistics.SpearmanInterval(clusters, 3);
        Assert.True(s.Value > 0.9 && s.Low > 0.8, $"{s}");
        Assert.Equal(2, s.Samples);
    }

    [Fact]
    public void EmptyInputGivesNaN()
    {
        var i = StudyStatistics.MeanInterval([], 1);
        Assert.True(double.IsNaN(i.Value) && double.IsNaN(i.Low) && i.Samples == 0);
    }
}
