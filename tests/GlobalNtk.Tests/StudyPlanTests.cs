using GlobalNtk.Study;
using Xunit;

namespace GlobalNtk.Tests;

public class StudyPlanTests
{
    [Theory]
    [InlineData("test")]
    [InlineData("quick")]
    [InlineData("paper")]
    public void ShardsPartitionThePlanForEveryCount(string scale)
    {
        var plan = StudyPlan.Of(StudyScale.Named(scale));
        Assert.Equal(plan.Units.Count, plan.Units.Select(u => u.Id).Distinct().Count());
        for (int n = 1; n <= 7; n++)
        {
            var all = Enumerable.Range(0, n).SelectMany(i => plan.Shard(i, n)).Select(u => u.Id).ToArray();
            Assert.Equal(plan.Units.Count, all.Length);
            Assert.Equal(plan.Units.Select(u => u.Id).OrderBy(x => x, StringComparer.Ordinal), all.OrderBy(x => x, StringComparer.Ordinal));
        }
    }

    [Fact]
    public void PlanAndFingerprintAreReproducibleAndDifferBetweenScales()
    {
        Assert.Equal(StudyPlan.Of(StudyScale.Quick).Fingerprint, StudyPlan.Of(StudyScale.Quick).Fingerprint);
        Assert.NotEqual(StudyPlan.Of(StudyScale.Quick).Fingerprint, StudyPlan.Of(StudyScale.Paper).Fingerprint);
    }

    [Fact]
    public void PaperScaleHasAtLeastFiveSeedsPerCellAndEveryClaimIsCovered()
    {
        var s = StudyScale.Paper;
        Assert.True(s.Seeds.Length >= 5);
        var plan = StudyPlan.Of(s);
        foreach (var label in new[] { "rnn-tanh", "rnn-relu", "leaky-rnn", "gru", "lstm", "stacked gru", "mlp", "transformer" })
            Assert.Equal(s.Seeds.Length, plan.Units.Count(u => u.Kind == UnitKind.Exactness && u.Label == label));
        Assert.All(plan.Units.Where(u => u.Label == "stacked gru"), u => Assert.Equal("2", u.ModelOptions["layers"]));
        foreach (int h in new[] { 16, 32, 64, 128 })
            Assert.Equal(s.Seeds.Length, plan.Units.Count(u => u.Kind == UnitKind.Training && u.Arch == "gru" && u.Task == "flip-flop" && u.Hidden == h && u.Gain == 1));
        Assert.Contains(0.25, s.Gains);
        Assert.Contains(2.0, s.Gains);
        Assert.Equal(s.Seeds.Length, plan.Units.Count(u => u.Kind == UnitKind.Training && u.Arch == "transformer" && u.Task == "n-back"));
    }

    [Fact]
    public void UnitCountsMatchWhatHelpStates()
    {
        // reproduce --help quotes 57 quick units and 115 paper units (shared runs counted once)
        Assert.Equal(57, StudyPlan.Of(StudyScale.Quick).Units.Count);
        Assert.Equal(115, StudyPlan.Of(StudyScale.Paper).Units.Count);
        Assert.Contains("57 units", GlobalNtk.Cli.Commands.ReproduceCommand.ScaleHelp);
        Assert.Contains("115 units", GlobalNtk.Cli.Commands.ReproduceCommand.ScaleHelp);
    }

    [Fact]
    public void BadShardsAndScalesAreRejected()
    {
        var plan = StudyPlan.Of(StudyScale.Test);
        Assert.Throws<ArgumentException>(() => plan.Shard(3, 3));
        Assert.Throws<ArgumentException>(() => plan.Shard(0, 0));
        Assert.Throws<ArgumentException>(() => StudyScale.Named("huge"));
    }
}
