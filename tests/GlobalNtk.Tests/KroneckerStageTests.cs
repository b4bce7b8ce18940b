using GlobalNtk.Analysis;
using GlobalNtk.Ntk;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>The analysis's Kronecker-core stage: the preset's exact limit and probes reach the core, with progress per site.</summary>
public class KroneckerStageTests
{
    [Fact]
    public void ExactLimitChoosesHutchinsonForAttentionAndReportsEachSite()
    {
        var (model, x) = TransformerTests.Setup("gelu-causal");
        var small = new AnalysisOptions { TopK = 2, SpectrumBudget = 8, Probes = 4, PartialBudget = 8 };
        var reports = new List<(string Stage, double Fraction)>();
        var est = new NtkAnalyzer(x, null, small with { KroneckerExactLimit = 0, KroneckerProbes = 200 })
            .Analyze(model, "m", progress: (s, fr) => reports.Add((s, fr))).Kronecker;
        var exact = new NtkAnalyzer(x, null, small with { KroneckerExactLimit = long.MaxValue })
            .Analyze(model, "m").Kronecker;
        // The exact run agrees with the core built directly (exact for every site).
        var direct = new NtkOperators(model.Linearize(x)).KroneckerCore;
        Assert.False(direct.IsEstimated);
        Assert.Equal(direct.TraceK, exact.TraceK, 1e-10 * direct.TraceK);
        Assert.Equal(0.0, exact.TraceKStandardError);
        foreach (var (e, d) in est.Sites.Zip(exact.Sites))
        {
            Assert.Equal(e.Name.EndsWith("in_proj") ? "Hutchinson" : "RowLocal", e.TraceMethod);
            Assert.Equal(d.Name.EndsWith("in_proj") ? "Exact" : "RowLocal", d.TraceMethod);
        }
        Assert.True(est.TraceKStandardError > 0);
        Assert.True(Math.Abs(est.TraceK - exact.TraceK) <= 4 * est.TraceKStandardError,
            $"estimate {est.TraceK} vs exact {exact.TraceK}, standard error {est.TraceKStandardError}");
        int sites = est.Sites.Count;
        for (int i = 1; i <= sites; i++) Assert.Contains(reports, r => r.Stage.StartsWith($"Kronecker core: site {i}/{sites} "));
        for (int i = 1; i < reports.Count; i++) Assert.True(reports[i].Fraction >= reports[i - 1].Fraction, $"{reports[i - 1]} then {reports[i]}");
    }

    [Fact]
    public void PresetsSetTheKroneckerBudgetAndBadValuesAreRejected()
    {
        Assert.Equal(16, AnalysisOptions.ForBudget(AnalysisBudget.Quick).KroneckerProbes);
        Assert.Equal(32, AnalysisOptions.ForBudget(AnalysisBudget.Default).KroneckerProbes);
        Assert.Equal(KroneckerCore.DefaultExactApplicationLimit, AnalysisOptions.ForBudget(AnalysisBudget.Thorough).KroneckerExactLimit);
        Assert.Throws<ArgumentException>(() => new AnalysisOptions { KroneckerProbes = 1 }.Validate());
        Assert.Throws<ArgumentException>(() => new AnalysisOptions { KroneckerExactLimit = -1 }.Validate());
        Assert.Equal(64, AnalysisOptions.ForBudget(AnalysisBudget.Quick).KroneckerRestExactLimit);
        Assert.Equal(128, AnalysisOptions.ForBudget(AnalysisBudget.Default).KroneckerRestExactLimit);
        Assert.Equal(long.MaxValue, AnalysisOptions.ForBudget(AnalysisBudget.Thorough).KroneckerRestExactLimit);
        Assert.Throws<ArgumentException>(() => new AnalysisOptions { KroneckerRestExactLimit = -1 }.Validate());
    }

    [Fact]
    public void RestTraceAboveTheLimitIsRecordedAsAnEstimate()
    {
        var (model, x) = TransformerTests.Setup("gelu-causal");
        var small = new AnalysisOptions { TopK = 2, SpectrumBudget = 8, Probes = 4, PartialBudget = 8, KroneckerExactLimit = long.MaxValue };
        var exact = new NtkAnalyzer(x, null, small with { KroneckerRestExactLimit = long.MaxValue }).Analyze(model, "m").Kronecker;
        var est = new NtkAnalyzer(x, null, small with { KroneckerRestExactLimit = 0, KroneckerProbes = 200 }).Analyze(model, "m").Kronecker;
        Assert.True(exact.RestParameterCount > 0);
        Assert.Equal("Exact", exact.RestTraceMethod);
        Assert.Equal(0.0, exact.TraceKStandardError);
        Assert.Equal("Hutchinson", est.RestTraceMethod);
        Assert.True(est.RestTraceStandardError > 0);
        Assert.Equal(est.RestTraceStandardError, est.TraceKStandardError, 1e-12 * est.TraceKStandardError);
        Assert.True(Math.Abs(est.RestTrace - exact.RestTrace) <= 4 * est.RestTraceStandardError,
            $"estimate {est.RestTrace} vs exact {exact.RestTrace}, standard error {est.RestTraceStandardError}");
    }
}
