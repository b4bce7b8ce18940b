using System.Text.Json;
using GlobalNtk.Analysis;
using GlobalNtk.Cli.Commands;
using GlobalNtk.Models.Recurrent;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>Budget presets, the estimator record in results.json, and progress inside stages.</summary>
public class AnalysisBudgetTests
{
    [Fact]
    public void PresetsScaleTheCostAndTheHelpQuotesIt()
    {
        var q = AnalysisOptions.ForBudget(AnalysisBudget.Quick);
        var d = AnalysisOptions.ForBudget(AnalysisBudget.Default);
        var t = AnalysisOptions.ForBudget(AnalysisBudget.Thorough);
        Assert.Equal(new AnalysisOptions(), d);
        Assert.True(q.PlannedApplications(3) < d.PlannedApplications(3) && d.PlannedApplications(3) < t.PlannedApplications(3));
        Assert.True(q.SpectrumTolerance > d.SpectrumTolerance && d.SpectrumTolerance > t.SpectrumTolerance);
        foreach (var o in new[] { q, d, t }) o.Validate();
        // --help quotes the cost of each preset for a 3-axis state: keep the text and the presets together.
        var help = typeof(AnalysisSettings).GetProperty(nameof(AnalysisSettings.Budget))!
            .GetCustomAttributes(typeof(System.ComponentModel.DescriptionAttribute), false).Cast<System.ComponentModel.DescriptionAttribute>().Single().Description;
        foreach (var (name, o) in new[] { ("quick", q), ("default", d), ("thorough", t) })
        {
            long cost = o.PlannedApplications(3);
            string quoted = System.Text.RegularExpressions.Regex.Match(help, name + @" ~(\d+)").Groups[1].Value;
            Assert.True(quoted.Length > 0, $"help does not quote the cost of {name}");
            Assert.InRange(long.Parse(quoted), cost * 0.9, cost * 1.1);
            Assert.Contains($"≤ {o.SpectrumBudget} ", help);
        }
    }

    [Fact]
    public void BudgetOptionSelectsThePresetAndExplicitOptionsOverrideIt()
    {
        var s = new AnalysisSettings { Budget = "quick", Probes = 7 };
        var o = s.ToOptions();
        Assert.Equal("quick", o.Budget);
        Assert.Equal(7, o.Probes);
        Assert.Equal(AnalysisOptions.ForBudget(AnalysisBudget.Quick).SpectrumBudget, o.SpectrumBudget);
        Assert.Equal(1e-4, new AnalysisSettings { Tolerance = "1e-4" }.ToOptions().SpectrumTolerance);
    }

    [Fact]
    public void BadBudgetOptionsGiveOneErrorLine()
    {
        using var f = new CliFixture();
        foreach (var (opt, value) in new[] { ("--budget", "huge"), ("--tolerance", "2"), ("--partial-budget", "3"), ("--spectrum-budget", "1") })
        {
            var r = CliTestHost.Run("analyze", "--model", f.ModelPath, "--inputs", f.X, "--out", f.Dir.File("rep"), "--quiet", opt, value);
            CliTestHost.AssertOneLineError(r, opt);
            Assert.Equal(2, r.Exit);
            Assert.Empty(f.Extra());
        }
    }

    [Fact]
    public void ResultsRecordEveryEstimatesMethodBudgetAndError()
    {
        using var f = new CliFixture();
        string rep = f.Dir.File("rep");
        var r = CliTestHost.Run("analyze", "--model", f.ModelPath, "--inputs", f.X, "--out", rep, "--quiet", "--budget", "quick", "--probes", "6");
        Assert.True(r.Exit == 0, r.Err);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(rep, "results.json")));
        var c = json.RootElement.GetProperty("checkpoints")[0];
        foreach (var name in new[] { "ntkSpectrum", "kSpectrum", "propagationSpectrum" })
        {
            var s = c.GetProperty(name);
            Assert.False(string.IsNullOrEmpty(s.GetProperty("method").GetString()));
            Assert.False(string.IsNullOrEmpty(s.GetProperty("status").GetString()));
            Assert.True(s.GetProperty("applications").GetInt32() <= s.GetProperty("budget").GetInt32());
            Assert.Equal(s.GetProperty("eigenvalues").GetArrayLength(), s.GetProperty("errorBounds").GetArrayLength());
        }
        var rank = c.GetProperty("ntkRank");
        Assert.False(string.IsNullOrEmpty(rank.GetProperty("method").GetString()));
        Assert.True(rank.GetProperty("applications").GetInt32() > 0);
        foreach (var p in rank.GetProperty("partial").EnumerateArray())
        {
            Assert.Contains(p.GetProperty("method").GetString(), new[] { "Exact", "PerIndex", "Kronecker" });
            Assert.True(p.GetProperty("applications").GetInt64() <= AnalysisOptions.ForBudget(AnalysisBudget.Quick).PartialBudget);
            Assert.True(p.GetProperty("standardError").GetDouble() >= 0);
            Assert.Equal(AnalysisOptions.ForBudget(AnalysisBudget.Quick).PartialBudget, p.GetProperty("budget").GetInt64());
            Assert.False(string.IsNullOrEmpty(p.GetProperty("status").GetString()));
            if (p.GetProperty("method").GetString() == "Kronecker")
                Assert.Contains(p.GetProperty("keptProbe").GetString(), new[] { "rademacher", "index" });
            // Traced axes drawn with index factors, when any: other axes of the state, with Rademacher ψ only.
            if (p.TryGetProperty("tracedIndexAxes", out var ti) && ti.ValueKind == JsonValueKind.String)
            {
                Assert.Equal("rademacher", p.GetProperty("keptProbe").GetString());
                foreach (var a in ti.GetString()!.Split(','))
                {
                    Assert.NotEqual(p.GetProperty("axis").GetString(), a);
                    Assert.Contains(a, new[] { "trial", "time", "unit" });
                }
            }
        }
        Assert.Equal(6, rank.GetProperty("budget").GetInt32());
        Assert.True(rank.GetProperty("applications").GetInt32() <= 6);
        Assert.Equal("quick", json.RootElement.GetProperty("options").GetProperty("budget").GetString());
        Assert.Contains("**Estimators at", File.ReadAllText(Path.Combine(rep, "report.md")));
        Assert.True(File.Exists(Path.Combine(rep, "estimators.csv")));
    }

    [Fact]
    public void ProgressCountsApplicationsInsideStagesAndNeverGoesBack()
    {
        var model = RecurrentModel.Create("gru", 3, 6, 2, seed: 1);
        var rng = new Random(2);
        var x = CliFixture.Random(rng, ("trial", 3), ("time", 12), ("input", 3));
        var reports = new List<(string Stage, double Fraction)>();
        var options = new AnalysisOptions { TopK = 3, SpectrumBudget = 30, Probes = 8, PartialBudget = 12 };
        var res = new NtkAnalyzer(x, null, options).Analyze(model, "m", progress: (s, fr) => reports.Add((s, fr)));
        Assert.Contains(reports, r => r.Stage.StartsWith("NTK_S spectrum: ") && r.Stage.Contains("/30 applications"));
        Assert.Contains(reports, r => r.Stage.Contains("ETA"));
        Assert.Contains(reports, r => r.Stage.StartsWith("effective rank of K: "));
        for (int i = 1; i < reports.Count; i++) Assert.True(reports[i].Fraction >= reports[i - 1].Fraction, $"{reports[i - 1]} then {reports[i]}");
        Assert.Equal(1.0, reports[^1].Fraction);
        // the reported applications never exceed the stage's plan for the spectra
        foreach (var s in new[] { res.NtkSpectrum, res.KSpectrum, res.PropagationSpectrum }) Assert.True(s.Applications <= 30);
    }
}
