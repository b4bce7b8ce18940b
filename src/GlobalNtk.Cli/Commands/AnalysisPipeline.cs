using GlobalNtk.Analysis;
using GlobalNtk.Cli.Common;
using GlobalNtk.Cli.Reports;
using GlobalNtk.Dense;
using GlobalNtk.IO;
using GlobalNtk.Models;

namespace GlobalNtk.Cli.Commands;

/// <summary>A model to analyse: label, training step and how to load it (loaded only when its turn comes).</summary>
public sealed record CheckpointSource(string Label, int? Step, Func<IChainModel> Load);

/// <summary>Analyses a sequence of checkpoints on one batch, reporting progress (shared by analyze, demo and sweep).</summary>
public static class AnalysisPipeline
{
    /// <summary>Runs <see cref="NtkAnalyzer"/> on every source in order; progress spans [0, 1].</summary>
    public static IReadOnlyList<ModelAnalysis> Run(IReadOnlyList<CheckpointSource> sources, Tensor inputs, Tensor? targets,
        AnalysisOptions options, ProgressCallback progress, CancellationToken ct = default)
    {
        var analyzer = new NtkAnalyzer(inputs, targets, options);
        var results = new List<ModelAnalysis>();
        for (int i = 0; i < sources.Count; i++)
        {
            ct.ThrowIfCancellationRequested();
            var src = sources[i];
            int index = i;
            var model = src.Load();
            results.Add(analyzer.Analyze(model, src.Label, src.Step,
                (stage, f) => progress($"{src.Label} ({index + 1}/{sources.Count}): {stage}", (index + f) / sources.Count)));
        }
        return results;
    }

    /// <summary>Checkpoints of a run folder in training order, thinned to at most <paramref name="max"/> (first and last kept; 0 = all).</summary>
    public static IReadOnlyList<CheckpointSource> RunFolder(string dir, string? arch, int max, IReadOnlyDictionary<string, string>? settings = null)
    {
        var list = GlobalNtk.Training.Checkpoints.List(dir);
        if (list.Count == 0) throw new CliInputException($"--model '{dir}' is a folder without checkpoints (ckpt-NNNNNN.safetensors).");
        var chosen = Thin(list.Count, max).Select(i => list[i]).ToArray();
        return chosen.Select(c => new CheckpointSource(Path.GetFileNameWithoutExtension(c.Path), c.Step,
            () => ModelFile.Load(c.Path, string.IsNullOrWhiteSpace(arch) ? null : arch, settings).Model)).ToArray();
    }

    /// <summary>Indices 0..count−1 thinned to at most max evenly spaced ones (first and last kept).</summary>
    public static int[] Thin(int count, int max)
    {
        if (max <= 0 || count <= max) return Enumerable.Range(0, count).ToArray();
        if (max == 1) return [count - 1];
        return Enumerable.Range(0, max).Select(k => (int)Math.Round(k * (count - 1) / (double)(max - 1))).Distinct().ToArray();
    }

    /// <summary>Human-readable summary lines of analyses.</summary>
    public static IEnumerable<string> Summary(IEnumerable<ModelAnalysis> analyses)
    {
        foreach (var a in analyses)
        {
            string partial = string.Join(", ", a.NtkRank.Partial.Select(p => $"{p.Axis} {AnalysisReportWriter.PartialValue(p)}"));
            string loss = a.Loss is double l ? $", loss {AnalysisReportWriter.F(l)}" : "";
            string srb = a.Srb.Index.Length > 0 ? $", SRB(1) {AnalysisReportWriter.F(a.Srb.Index[0])}" : "";
            yield return $"{a.Label}: PR(NTK_S) {AnalysisReportWriter.F(a.NtkRank.Value)} ± {AnalysisReportWriter.F(a.NtkRank.StandardError)} ({partial}), λ₁ {AnalysisReportWriter.F(a.NtkSpectrum.Eigenvalues.FirstOrDefault())}, rank bound {a.Kronecker.RankBound}{srb}{loss}";
        }
    }
}
