using System.Text.Json;
using GlobalNtk.Analysis;
using GlobalNtk.Cli.Reports;
using Xunit;

namespace GlobalNtk.Tests;

public class CliReportTests
{
    internal static ModelAnalysis Synthetic(string label, int step, double scale)
    {
        double[] ev = Enumerable.Range(1, 10).Select(i => scale * Math.Pow(i, -1.5)).ToArray();
        var spec = new SpectrumResult("NTK_S", 96, ev, ev.Select(v => v * 1e-9).ToArray());
        var partial = new List<PartialRankResult> { new("trial", 2, 1.8, 0.01, 30), new("time", 6, 4.2 * scale, 0.1, 30), new("unit", 8, 5.5, 0.1, 30) };
        var rank = new RankResult("NTK_S", 96, 10 * scale, 0.1, 9.5 / scale, 0.2, 60, partial);
        var site = new SiteResult("hh", 12, 8, 24, 9, 216, 4.1, Enumerable.Range(1, 9).Select(i => 3.0 / i).ToArray(), Enumerable.Range(1, 9).Select(i => 1 - Math.Pow(0.5, i)).ToArray());
        int[] ranks = Enumerable.Range(1, 8).ToArray();
        var srb = new SrbResult("unit", ranks, ranks.Select(r => 1 + scale / (r + 1.0)).ToArray(), ranks.Select(r => r / 8.0).ToArray(), ranks.Select(r => r / 9.0).ToArray(), ranks.Select(r => r / 8.0).ToArray(), "MSE gradient on the targets");
        var tm = new LearnabilityResult([3, 2, 1], [[1, 0, 0], [0, 1, 0], [0, 0, 1]], [5 * scale, 2 * scale, 0.3 * scale], [0.1 * step / 100.0, 0.05 * step / 100.0, 0.01 * step / 100]);
        return new ModelAnalysis(label, step, "gru", [new("trial", 2), new("time", 6), new("unit", 8)], 300, 0.5 / scale, spec,
            spec with { Operator = "K", Eigenvalues = ev.Select(v => v / 2).ToArray() }, spec with { Operator = "P P*", Eigenvalues = ev.Select(v => v / 3 + 1).ToArray() },
            rank, rank with { Operator = "K" }, new KroneckerResult(216, 96, 10, Enumerable.Range(1, 9).Select(i => 1 - Math.Pow(0.6, i)).ToArray(), [site, site with { Name = "ih", Width = 3 }]), srb, tm,
            step == 0 ? null : new AlignmentResult("prev", 0.9, 0.01, 60));
    }

    [Fact]
    public void WritesEveryFigureCsvAndJson()
    {
        using var tmp = new TempDir();
        string dir = tmp.Path;
        var cps = new[] { Synthetic("init", 0, 1), Synthetic("ckpt-000050", 50, 1.5), Synthetic("ckpt-000100", 100, 2) };
        var curve = new TrainingCurve([1, 10, 20, 100], [1, 0.5, 0.2, 0.01], [0, 50, 100], [1.1, 0.3, 0.02], [0.3, 0.7, 0.95]);
        var report = new AnalysisReport("Test report", "Synthetic numbers.", cps, curve, new AnalysisOptions());
        var figs = AnalysisReportWriter.Write(dir, report);
        foreach (var f in figs) Assert.True(new FileInfo(Path.Combine(dir, f)).Length > 5000, f);
        foreach (var csv in new[] { "loss.csv", "spectra.csv", "effective_ranks.csv", "kronecker_core.csv", "srb.csv", "task_modes.csv", "alignment.csv" })
            Assert.True(File.Exists(Path.Combine(dir, csv)), csv);
        string md = File.ReadAllText(Path.Combine(dir, "report.md"));
        foreach (var f in figs) Assert.Contains($"({f})", md);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "results.json")));
        Assert.Equal(9.5 / 2, doc.RootElement.GetProperty("checkpoints")[2].GetProperty("ntkRank").GetProperty("value").GetDouble());
    }

    [Fact]
    public void PartialRankOutsideOneToItsAxisSizeIsShownAsNoise()
    {
        // The PR of an n×n PSD partial trace lies in [1, n]: an estimate outside is ratio noise and says so.
        var above = new PartialRankResult("feature", 64, 84.06, 19.2, 24);
        var below = new PartialRankResult("trial", 12, 0.978, 0.032, 12);
        var within = new PartialRankResult("trial", 12, 4.33, 0.05, 20);
        Assert.Equal("84.1 ± 19.2, above its size 64: estimator noise", AnalysisReportWriter.PartialValue(above));
        Assert.Equal("0.978 ± 0.032, below 1: estimator noise", AnalysisReportWriter.PartialValue(below));
        Assert.Equal("4.33", AnalysisReportWriter.PartialValue(within));
    }
}
