using System.ComponentModel;
using System.Globalization;
using GlobalNtk.Analysis;
using GlobalNtk.Cli.Common;
using GlobalNtk.Cli.Reports;
using GlobalNtk.Dense;
using GlobalNtk.IO;
using GlobalNtk.Models;
using GlobalNtk.Tasks;
using GlobalNtk.Training;
using Spectre.Console.Cli;

namespace GlobalNtk.Cli.Commands;

/// <summary>Options of <c>analyze</c>.</summary>
public sealed class AnalyzeSettings : AnalysisSettings
{
    /// <summary>Model file or run folder.</summary>
    [CommandOption("-m|--model <PATH>")]
    [Description("Model weights (.safetensors) or a run folder from `train` (then every checkpoint, in training order).")]
    public string? Model { get; init; }

    /// <summary>Architecture override.</summary>
    [CommandOption("--arch <ARCH>")]
    [ArchListDescription("Architecture when the file's metadata has none.")]
    public string? Arch { get; init; }

    /// <summary>Model settings overriding the file's metadata.</summary>
    [CommandOption("--option <KEY=VALUE>")]
    [Description(ModelInputSettings.ModelOptionSeeInspectDescription)]
    public string[]? Options { get; init; }

    /// <summary>Task for the analysis batch.</summary>
    [CommandOption("--task <NAME>")]
    [TaskListDescription("Analyse on this task's fixed evaluation set (inputs and targets). A run folder defaults to its own task.")]
    public string? Task { get; init; }

    /// <summary>Trials of the task batch.</summary>
    [CommandOption("--trials <N>")]
    [Description("Trials in the task's evaluation batch (omitted: the task's own).")]
    public int? Trials { get; init; }

    /// <summary>Inputs file.</summary>
    [CommandOption("-i|--inputs <FILE>")]
    [Description("Analyse on these inputs .npy [[trials, steps, inputs]] instead of a task.")]
    public string? Inputs { get; init; }

    /// <summary>Inputs are [time, trial, input].</summary>
    [CommandOption("--time-major")]
    [Description(ModelInputSettings.TimeMajorDescription)]
    public bool TimeMajor { get; init; }

    /// <summary>Targets file.</summary>
    [CommandOption("--targets <FILE>")]
    [Description("Targets .npy in the outputs' shape (with --inputs): enables loss, SRB on the task error and task-mode learnability.")]
    public string? Targets { get; init; }

    /// <summary>Output folder.</summary>
    [CommandOption("-o|--out <DIR>")]
    [Description("Report folder to write (report.md, figures as PNG and SVG, CSVs, results.json): a new or empty folder, or with --force an earlier report.")]
    public string? Out { get; init; }

    /// <summary>Replace an earlier globalntk output.</summary>
    [CommandOption("--force")]
    [Description(OutputTarget.ForceDescription)]
    public bool Force { get; init; }

    /// <summary>Checkpoint cap.</summary>
    [CommandOption("--max-checkpoints <N>")]
    [Description("Analyse at most N evenly spaced checkpoints of a run folder (first and last kept; 0: all).")]
    [DefaultValue(0)]
    public int MaxCheckpoints { get; init; }
}

/// <summary><c>globalntk analyze</c>: the full analysis of a model or run folder, written as a report folder.</summary>
public sealed class AnalyzeCommand : CliCommand<AnalyzeSettings>
{
    /// <inheritdoc/>
    protected override CommandOutcome Run(AnalyzeSettings s, CliProgress progress, CancellationToken ct)
    {
        var options = s.ToOptions();
        string outDir = CliInputs.Required(s.Out, "--out");
        string modelPath = CliInputs.Required(s.Model, "--model");
        if (s.Task is not null && s.Inputs is not null) throw new CliInputException("give either --task or --inputs, not both.");
        if (s.Targets is not null && s.Inputs is null) throw new CliInputException("--targets needs --inputs.");
        if (s.Trials is int t) CliInputs.AtLeast(t, 1, "--trials");
        CliInputs.AtLeast(s.MaxCheckpoints, 0, "--max-checkpoints");

        bool isRun = Directory.Exists(modelPath);
        IReadOnlyList<CheckpointSource> sources;
        IReadOnlyDictionary<string, string> metadata;
        IChainModel first;
        if (isRun)
        {
            // --option applies to every checkpoint (e.g. settings an older file lacks).
            var given = CliInputs.KeyValues(s.Options, "--option");
            sources = AnalysisPipeline.RunFolder(modelPath, s.Arch, s.MaxCheckpoints, given);
            var firstPath = Checkpoints.List(modelPath)[0].Path;
            var loaded = ModelFile.Load(firstPath, string.IsNullOrWhiteSpace(s.Arch) ? null : s.Arch, given);
            first = loaded.Model; metadata = loaded.Metadata;
        }
        else
        {
            var loaded = CliInputs.Model(modelPath, s.Arch, settings: s.Options);
            first = loaded.Model; metadata = loaded.Metadata;
            sources = [new CheckpointSource(Path.GetFileNameWithoutExtension(modelPath), StepOf(metadata), () => loaded.Model)];
        }

        var (inputs, targets, batchText) = Batch(s, first, metadata, isRun);
        // fail fast (one line) if the batch does not fit the model
        ChainLinearization lin;
        try { lin = first.Linearize(inputs, options.Precision); }
        catch (ArgumentException ex) when (ex is not GlobalNtk.Operators.ShapeMismatchException)
        { throw new GlobalNtk.Operators.ShapeMismatchException($"analysis batch ({batchText}): {ex.Message}"); }
        CliInputs.RequireMemory(AnalysisMemory.Estimate(lin.StateShape.Size, options),
            $"analyze on {batchText} (--trials or --inputs)");

        using var folder = OutputFolder.Create(new OutputRequest(outDir, "analyze", s.Force,
            [new("--model", modelPath), new("--inputs", s.Inputs), new("--targets", s.Targets)]), OutputMarker.ReportKind);
        var analyses = progress.Run("Analysing", p => AnalysisPipeline.Run(sources, inputs, targets, options, p, ct));
        TrainingCurve? curve = null;
        if (isRun && File.Exists(Path.Combine(modelPath, Checkpoints.LogFile)))
            curve = TrainingCurve.FromLog(Checkpoints.ReadLog(modelPath));
        var report = new AnalysisReport(
            $"Global NTK analysis of {first.Arch} {(isRun ? $"run '{Path.GetFileName(Path.GetFullPath(modelPath).TrimEnd('/'))}'" : $"model '{Path.GetFileName(modelPath)}'")}",
            Setup(first, batchText, options, analyses.Count), analyses, curve, options,
            new Dictionary<string, object> { ["command"] = "analyze", ["model"] = modelPath });
        AnalysisReportWriter.Write(folder.WritePath, report);
        folder.Commit();
        var lines = AnalysisPipeline.Summary(analyses).Append($"report written to {folder.Display}/report.md").ToList();
        return new CommandOutcome(new { reportFolder = folder.Display, report }, lines);
    }

    private static (Tensor Inputs, Tensor? Targets, string Text) Batch(AnalyzeSettings s, IChainModel model, IReadOnlyDictionary<string, string> md, bool isRun)
    {
        if (s.Inputs is not null)
        {
            var inputs = CliInputs.Inputs(s.Inputs, timeMajor: s.TimeMajor);
            Tensor? targets = null;
            if (s.Targets is not null)
            {
                var lin = CliInputs.Linearize(model, inputs, s.Inputs);
                targets = CliInputs.Matching(s.Targets, model.Readout.OutputShape(lin.StateShape), "--targets", "outputs");
            }
            return (inputs, targets, $"inputs `{Path.GetFileName(s.Inputs)}` {inputs.Shape}" + (targets is null ? " (no targets)" : $" with targets `{Path.GetFileName(s.Targets)}`"));
        }
        string? taskName = s.Task ?? (isRun && md.TryGetValue("task", out var tn) ? tn : null);
        if (taskName is null) throw new CliInputException("give --task NAME or --inputs X.npy (a single model file has no default batch).");
        var options = new TaskOptions { Seed = s.SeedOrDefault, EvaluationTrials = s.Trials };
        // Same task as the model was trained on: use its trial length.
        if (md.TryGetValue("task", out var trained) && string.Equals(trained, taskName, StringComparison.OrdinalIgnoreCase)
            && md.TryGetValue("task_steps", out var ts) && int.TryParse(ts, NumberStyles.Integer, CultureInfo.InvariantCulture, out int steps))
            options = options with { Steps = steps };
        var task = CliInputs.Task(taskName, options);
        var ev = task.EvaluationSet;
        return (ev.Inputs, ev.Targets, $"the `{task.Name}` task's evaluation set {ev.Inputs.Shape} with its targets");
    }

    internal static int? StepOf(IReadOnlyDictionary<string, string> md) =>
        md.TryGetValue("step", out var v) && int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int s) ? s : null;

    internal static string Setup(IChainModel model, string batch, AnalysisOptions o, int checkpoints)
    {
        string md = string.Join(", ", model.Metadata.Where(kv => kv.Key is "arch" or "hidden_size" or "input_size" or "output_size" or "gain" or "layers" or "heads" or "d_model")
            .Select(kv => $"{kv.Key} = {kv.Value}"));
        return $"**Setup.** Model: {model.Arch} ({md}; {model.Parameters.TotalSize} chain parameters + readout). " +
               $"Batch: {batch}. {checkpoints} checkpoint(s) analysed. " + AnalysisSettings.Describe(o);
    }
}
