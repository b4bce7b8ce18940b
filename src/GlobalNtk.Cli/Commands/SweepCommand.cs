using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using GlobalNtk.Analysis;
using GlobalNtk.Cli.Common;
using GlobalNtk.Cli.Reports;
using GlobalNtk.IO;
using GlobalNtk.Tasks;
using GlobalNtk.Training;
using Spectre.Console.Cli;

namespace GlobalNtk.Cli.Commands;

/// <summary>Options of <c>sweep</c>.</summary>
public sealed class SweepSettings : AnalysisSettings
{
    /// <summary>Task.</summary>
    [CommandOption("--task <NAME>")]
    [TaskListDescription("Task to train on.")]
    public string? Task { get; init; }

    /// <summary>Architecture.</summary>
    [CommandOption("--arch <ARCH>")]
    [ArchListDescription("Architecture.")]
    public string? Arch { get; init; }

    /// <summary>Gains.</summary>
    [CommandOption("--gains <LIST>")]
    [Description("Comma-separated initial recurrent gains g.")]
    [DefaultValue(CliDefaults.SweepGains)]
    public string Gains { get; init; } = CliDefaults.SweepGains;

    /// <summary>Output folder.</summary>
    [CommandOption("-o|--out <DIR>")]
    [Description("Report folder (sweep.md, figures as PNG and SVG, sweep.csv, results.json, one run folder per gain): a new or empty folder, or with --force an earlier sweep.")]
    public string? Out { get; init; }

    /// <summary>Replace an earlier globalntk output.</summary>
    [CommandOption("--force")]
    [Description(OutputTarget.ForceDescription)]
    public bool Force { get; init; }

    /// <summary>Hidden units.</summary>
    [CommandOption("--hidden <H>")]
    [Description("Hidden units.")]
    [DefaultValue(CliDefaults.SweepHidden)]
    public int Hidden { get; init; } = CliDefaults.SweepHidden;

    /// <summary>Training steps.</summary>
    [CommandOption("--steps <N>")]
    [Description("Training steps per gain.")]
    [DefaultValue(CliDefaults.SweepSteps)]
    public int Steps { get; init; } = CliDefaults.SweepSteps;

    /// <summary>Learning rate.</summary>
    [CommandOption("--lr <RATE>")]
    [Description("Adam learning rate.")]
    [DefaultValue(CliDefaults.SweepLearningRate)]
    public double LearningRate { get; init; } = CliDefaults.SweepLearningRate;

    /// <summary>Batch size.</summary>
    [CommandOption("--batch <N>")]
    [Description("Training batch size.")]
    [DefaultValue(CliDefaults.SweepBatch)]
    public int Batch { get; init; } = CliDefaults.SweepBatch;

    /// <summary>Trial length.</summary>
    [CommandOption("--trial-steps <T>")]
    [Description("Trial length T in steps (omitted: the task's own).")]
    public int? TrialSteps { get; init; }

    /// <summary>Evaluation trials.</summary>
    [CommandOption("--trials <N>")]
    [Description("Trials of the fixed evaluation / analysis batch.")]
    [DefaultValue(CliDefaults.SweepTrials)]
    public int Trials { get; init; } = CliDefaults.SweepTrials;

    /// <summary>Shard i/N.</summary>
    [CommandOption("--shard <I/N>")]
    [Description("Run only the gains of shard I of N (0-based; gain k belongs to shard k mod N); assemble the report with --merge.")]
    public string? Shard { get; init; }

    /// <summary>Merge shard folders.</summary>
    [CommandOption("--merge")]
    [Description("Assemble the report from the shard folders given as arguments (their settings are used) instead of training.")]
    public bool Merge { get; init; }

    /// <summary>Shard folders to merge.</summary>
    [CommandArgument(0, "[SHARD_DIRS]")]
    [Description("With --merge: the shard folders written by --shard.")]
    public string[] Dirs { get; init; } = [];
}

/// <summary>One gain's outcome.</summary>
public sealed record SweepPoint(double Gain, ModelAnalysis Init, double InitialEvalLoss, double FinalEvalLoss, double FinalAccuracy,
    double[] FinalLearnedFraction, string RunFolder);

/// <summary>
/// <c>globalntk sweep</c>: trains at each initial recurrent gain and relates NTK_S's effective
/// rank at initialisation to what gets learned (final loss, per-task-mode learned fraction).
/// </summary>
public sealed class SweepCommand : CliCommand<SweepSettings>
{
    /// <inheritdoc/>
    protected override CommandOutcome Run(SweepSettings s, CliProgress progress, CancellationToken ct)
    {
        if (s.Merge) return SweepShards.Merge(s);
        if (s.Dirs.Length > 0) throw new CliInputException($"unexpected argument '{s.Dirs[0]}' (folders are only taken with --merge).");
        var (shardIndex, shardCount) = s.Shard is null ? (0, 1) : ReproduceCommand.ParseShard(s.Shard);
        string taskName = CliInputs.Required(s.Task, "--task");
        string arch = CliInputs.Required(s.Arch, "--arch");
        string outDir = CliInputs.Required(s.Out, "--out");
        var gains = CliInputs.Numbers(s.Gains, "--gains");
        if (gains.Any(g => g < 0)) throw new CliInputException($"--gains must be ≥ 0, got '{s.Gains}'.");
        if (!ModelRegistry.Contains(arch)) throw new CliInputException($"unknown arch '{arch}' (valid: {string.Join(", ", ModelRegistry.Architectures)}).");
        CliInputs.AtLeast(s.Hidden, 1, "--hidden");
        CliInputs.AtLeast(s.Steps, 1, "--steps");
        CliInputs.AtLeast(s.Batch, 1, "--batch");
        CliInputs.AtLeast(s.Trials, 1, "--trials");
        if (!(s.LearningRate > 0) || !double.IsFinite(s.LearningRate)) throw new CliInputException($"--lr must be a finite number > 0, got {s.LearningRate}.");
        var options = s.ToOptions();
        int seed = s.SeedOrDefault;
        var taskOptions = new TaskOptions { Steps = s.TrialSteps, EvaluationTrials = s.Trials };
        CliInputs.Task(taskName, taskOptions with { Seed = seed }); // unknown task → one line before any work
        var clock = Stopwatch.StartNew();

        using var folder = OutputFolder.Create(new OutputRequest(outDir, "sweep", s.Force, []), OutputMarker.ReportKind);
        var points = new List<SweepPoint>();
        progress.Run("Sweep", p =>
        {
            for (int gi = 0; gi < gains.Length; gi++)
            {
                if (gi % shardCount != shardIndex) continue;
                double g = gains[gi];
                var sub = CliProgress.Sub(p, (double)gi / gains.Length, (gi + 1.0) / gains.Length, $"gain {g.ToString(CultureInfo.InvariantCulture)}");
                var trainOptions = new TrainingOptions
                {
                    Steps = s.Steps, BatchSize = s.Batch, LearningRate = s.LearningRate, Optimizer = "adam",
                    CheckpointEvery = 0, Seed = seed,
                    Precision = options.Precision, // --precision f32 trains through the float32 operators too
                };
                var trainer = CliInputs.WithinMemory($"--hidden {s.Hidden}, --batch {s.Batch}", () => Trainer.Create(arch, s.Hidden, taskName, trainOptions, gain: g, taskOptions: taskOptions));
                var ev = trainer.Task.EvaluationSet;
                // The model at initialisation (training makes new models; this one stays as it is).
                var init = new NtkAnalyzer(ev.Inputs, ev.Targets, options)
                    .Analyze(trainer.Model, $"g={g.ToString(CultureInfo.InvariantCulture)} init", 0, (st, f) => sub($"analysis at init: {st}", 0.5 * f));
                string runDir = folder.PathOf($"run-g{g.ToString("0.###", CultureInfo.InvariantCulture)}");
                var result = trainer.Run(runDir, tp => sub($"training step {tp.Step}/{tp.TotalSteps}", 0.5 + 0.5 * tp.Step / Math.Max(1, tp.TotalSteps)), ct);
                var yhat = ModelGradient.Predict(trainer.Model, ev.Inputs, options.Precision);
                var learned = TaskModes.Of(ev.Targets.Span, trainer.Task.OutputSize).LearnedFractions(yhat.Span);
                var point = new SweepPoint(g, init, result.InitialEvalLoss, result.EvalLoss, result.EvalAccuracy, learned, Path.GetFileName(runDir));
                File.WriteAllText(Path.Combine(runDir, SweepShards.PointFile), CliJson.Serialize(point) + "\n");
                points.Add(point);
            }
        });
        if (s.Shard is not null) return SweepShards.Finish(folder, s, shardIndex, shardCount, points, clock.Elapsed.TotalSeconds);
        var summary = Write(folder.WritePath, s, arch, taskName, points, options, clock.Elapsed.TotalSeconds);
        folder.Commit();
        var lines = points.Select(pt =>
            $"g = {pt.Gain.ToString(CultureInfo.InvariantCulture)}: PR(NTK_S) at init {AnalysisReportWriter.F(pt.Init.NtkRank.Value)} ± {AnalysisReportWriter.F(pt.Init.NtkRank.StandardError)}, " +
            $"eval loss {AnalysisReportWriter.F(pt.InitialEvalLoss)} → {AnalysisReportWriter.F(pt.FinalEvalLoss)}, accuracy {AnalysisReportWriter.F(pt.FinalAccuracy)}, " +
            $"learned fractions [{string.Join(", ", pt.FinalLearnedFraction.Select(AnalysisReportWriter.F))}]").ToList();
        lines.Add($"Spearman correlation of PR(NTK_S) at init with final loss: {AnalysisReportWriter.F(summary.RankLossCorrelation)}");
        lines.Add($"report: {Path.Combine(folder.Display, "sweep.md")}");
        return new CommandOutcome(new { reportFolder = folder.Display, summary }, lines);
    }

    /// <summary>What the sweep report states (also results.json).</summary>
    public sealed record SweepSummary(string Task, string Arch, int Hidden, int Steps, double LearningRate, AnalysisOptions Options,
        IReadOnlyList<SweepPoint> Points, double RankLossCorrelation, double Seconds);

    internal static SweepSummary Write(string dir, SweepSettings s, string arch, string task, List<SweepPoint> points, AnalysisOptions options, double seconds)
    {
        double[] g = points.Select(p => p.Gain).ToArray();
        double[] pr = points.Select(p => p.Init.NtkRank.Value).ToArray();
        double[] loss = points.Select(p => p.FinalEvalLoss).ToArray();
        double rho = Spearman(pr, loss);
        var summary = new SweepSummary(task, arch, s.Hidden, s.Steps, s.LearningRate, options, points, rho, seconds);
        int modes = points.Min(p => p.FinalLearnedFraction.Length);
        var axes = points[0].Init.NtkRank.Partial.Select(p => p.Axis).ToArray();

        var header = new List<string> { "gain", "pr_ntk_init", "pr_ntk_init_se" };
        header.AddRange(axes.Select(a => $"pr_ntk_init_{a}"));
        header.AddRange(["pr_k_init", "initial_eval_loss", "final_eval_loss", "final_accuracy"]);
        for (int i = 0; i < modes; i++) header.AddRange([$"rho_init_mode{i + 1}", $"learned_fraction_mode{i + 1}"]);
        var csv = new Csv(header.ToArray());
        foreach (var p in points)
        {
            var row = new List<object?> { p.Gain, p.Init.NtkRank.Value, p.Init.NtkRank.StandardError };
            row.AddRange(axes.Select(a => (object?)(p.Init.NtkRank.Partial.FirstOrDefault(q => q.Axis == a)?.Value)));
            row.AddRange([p.Init.KRank.Value, p.InitialEvalLoss, p.FinalEvalLoss, p.FinalAccuracy]);
            for (int i = 0; i < modes; i++) row.AddRange([p.Init.TaskModes?.Learnability.ElementAtOrDefault(i), p.FinalLearnedFraction[i]]);
            csv.Row(row.ToArray());
        }
        csv.Save(Path.Combine(dir, "sweep.csv"));

        var rankSeries = new List<Series> { new("PR(NTK_S) full", g, pr, Error: points.Select(p => p.Init.NtkRank.StandardError).ToArray()) };
        foreach (var a in axes)
        {
            var at = points.Select(p => p.Init.NtkRank.Partial.FirstOrDefault(q => q.Axis == a)).ToArray();
            rankSeries.Add(new($"PR(NTK_S) {a}", g, at.Select(q => q?.Value ?? double.NaN).ToArray(), Error: at.Select(q => q?.StandardError ?? double.NaN).ToArray()));
        }
        rankSeries.Add(new("PR(K) full", g, points.Select(p => p.Init.KRank.Value).ToArray(), Dashed: true, Error: points.Select(p => p.Init.KRank.StandardError).ToArray()));
        Plots.Lines(Path.Combine(dir, "rank_vs_gain.png"), "Effective rank of NTK_S at initialisation", "initial recurrent gain g", "effective rank PR", rankSeries, logY: true);
        Plots.Lines(Path.Combine(dir, "loss_vs_gain.png"), "What gets learned: final loss", "initial recurrent gain g", "evaluation loss (MSE)",
            [new("after training", g, loss), new("at initialisation", g, points.Select(p => p.InitialEvalLoss).ToArray(), Dashed: true)], logY: true);
        var lf = Enumerable.Range(0, modes).Select(i => new Series($"task mode {i + 1}", g, points.Select(p => p.FinalLearnedFraction[i]).ToArray())).ToList();
        Plots.Lines(Path.Combine(dir, "learned_fraction_vs_gain.png"), "Learned fraction of each task mode after training", "initial recurrent gain g", "‖a_i^T Ŷ‖ / σ_i", lf, horizontalLine: 1, horizontalLineLabel: "fully learned");
        var order = Enumerable.Range(0, pr.Length).OrderBy(i => pr[i]).ToArray();
        Plots.Lines(Path.Combine(dir, "loss_vs_rank.png"), "Final loss against the effective rank at initialisation", "PR(NTK_S) at initialisation", "final evaluation loss (MSE)",
            [new("one gain per point", order.Select(i => pr[i]).ToArray(), order.Select(i => loss[i]).ToArray())], logY: true);

        var F = AnalysisReportWriter.F;
        var md = new StringBuilder();
        md.AppendLine($"# Initial-gain sweep: {arch} on {task}").AppendLine();
        md.AppendLine($"**Setup.** {arch} with {s.Hidden} hidden units, PyTorch initialisation with the recurrent weights scaled by g ∈ {{{string.Join(", ", g.Select(x => x.ToString(CultureInfo.InvariantCulture)))}}}; " +
            $"each trained with Adam (learning rate {s.LearningRate.ToString(CultureInfo.InvariantCulture)}, batch {s.Batch}) for {s.Steps} steps, same seed. NTK_S is analysed at initialisation on the task's fixed evaluation set " +
            $"({points[0].Init.NtkRank.Dimension} state dimensions; budget preset `{options.Budget}`: {options.Probes} probes, {options.PartialBudget} applications per partial rank, spectra ≤ {options.SpectrumBudget} applications). Total {seconds:F0} s.").AppendLine();
        md.AppendLine($"**Key numbers.** Spearman rank correlation between PR(NTK_S) at initialisation and the final evaluation loss: {F(rho)} over {points.Count} gains. " +
            string.Join("; ", points.Select(p => $"g = {p.Gain.ToString(CultureInfo.InvariantCulture)}: PR {F(p.Init.NtkRank.Value)}, final loss {F(p.FinalEvalLoss)}")) + ".").AppendLine();
        md.AppendLine("![Figure 1](rank_vs_gain.png)").AppendLine();
        md.AppendLine($"**Figure 1.** Participation-ratio effective rank of NTK_S (full and partial along each state axis) and of K at initialisation, against the initial gain g, log scale; error bars: one standard error. PR(NTK_S) ranges from {F(pr.Min())} to {F(pr.Max())}. Data: `sweep.csv`.").AppendLine();
        md.AppendLine("![Figure 2](loss_vs_gain.png)").AppendLine();
        md.AppendLine($"**Figure 2.** Evaluation loss at initialisation (dashed) and after {s.Steps} training steps (solid) against g, log scale. Lowest final loss {F(loss.Min())} at g = {g[Array.IndexOf(loss, loss.Min())].ToString(CultureInfo.InvariantCulture)}. Data: `sweep.csv`.").AppendLine();
        md.AppendLine("![Figure 3](learned_fraction_vs_gain.png)").AppendLine();
        md.AppendLine($"**Figure 3.** Learned fraction ‖a_iᵀŶ‖/σ_i of each task mode (SVD of the targets) after training, against g. Data: `sweep.csv`.").AppendLine();
        md.AppendLine("![Figure 4](loss_vs_rank.png)").AppendLine();
        md.AppendLine($"**Figure 4.** Final evaluation loss against PR(NTK_S) at initialisation, one point per gain (Spearman ρ = {F(rho)}). Data: `sweep.csv`.").AppendLine();
        md.AppendLine("Each gain's run (checkpoints at start and end, `log.csv`) is in its `run-g…` folder; all numbers are in `results.json`.");
        File.WriteAllText(Path.Combine(dir, "sweep.md"), md.ToString());
        File.WriteAllText(Path.Combine(dir, "results.json"), CliJson.Document("sweep", summary));
        return summary;
    }

    /// <summary>Spearman rank correlation (average ranks for ties); NaN for fewer than 3 points or a constant series.</summary>
    public static double Spearman(double[] x, double[] y) => x.Length != y.Length ? double.NaN : GlobalNtk.Study.StudyStatistics.Spearman(x, y);
}
