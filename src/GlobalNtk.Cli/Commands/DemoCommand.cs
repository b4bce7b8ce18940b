using System.ComponentModel;
using System.Diagnostics;
using GlobalNtk.Analysis;
using GlobalNtk.Cli.Common;
using GlobalNtk.Cli.Reports;
using GlobalNtk.IO;
using GlobalNtk.Tasks;
using GlobalNtk.Training;
using Spectre.Console.Cli;

namespace GlobalNtk.Cli.Commands;

/// <summary>Options of <c>demo</c> (all optional).</summary>
public sealed class DemoSettings : AnalysisSettings
{
    /// <summary>Report folder.</summary>
    [CommandOption("-o|--out <DIR>")]
    [Description("Report folder to write (report.md, figures as PNG and SVG, CSVs, results.json, the training run): a new or empty folder, or with --force an earlier demo.")]
    [DefaultValue(CliDefaults.DemoOut)]
    public string Out { get; init; } = CliDefaults.DemoOut;

    /// <summary>Replace an earlier globalntk output.</summary>
    [CommandOption("--force")]
    [Description(OutputTarget.ForceDescription)]
    public bool Force { get; init; }

    /// <summary>Training steps.</summary>
    [CommandOption("--steps <N>")]
    [Description("Training steps.")]
    [DefaultValue(DemoDefaults.Steps)]
    public int Steps { get; init; } = DemoDefaults.Steps;

    /// <summary>Hidden units.</summary>
    [CommandOption("--hidden <H>")]
    [Description("GRU hidden units.")]
    [DefaultValue(DemoDefaults.Hidden)]
    public int Hidden { get; init; } = DemoDefaults.Hidden;

    /// <summary>Trial length.</summary>
    [CommandOption("--trial-steps <T>")]
    [Description("Trial length T in steps.")]
    [DefaultValue(DemoDefaults.TrialSteps)]
    public int TrialSteps { get; init; } = DemoDefaults.TrialSteps;

    /// <summary>Evaluation trials.</summary>
    [CommandOption("--trials <N>")]
    [Description("Trials of the fixed evaluation batch that every analysis uses.")]
    [DefaultValue(DemoDefaults.EvalTrials)]
    public int Trials { get; init; } = DemoDefaults.EvalTrials;

    /// <summary>Checkpoints analysed.</summary>
    [CommandOption("--checkpoints <N>")]
    [Description("Checkpoints to analyse, evenly spaced from initialisation to the end.")]
    [DefaultValue(DemoDefaults.Checkpoints)]
    public int Checkpoints { get; init; } = DemoDefaults.Checkpoints;
}

/// <summary>The demo's built-in defaults (small enough for about a minute of training on 2 cores).</summary>
public static class DemoDefaults
{
    /// <summary>GRU hidden units.</summary>
    public const int Hidden = 32;
    /// <summary>Training steps.</summary>
    public const int Steps = 600;
    /// <summary>Trial length (flip-flop steps).</summary>
    public const int TrialSteps = 60;
    /// <summary>Training batch.</summary>
    public const int Batch = 16;
    /// <summary>Evaluation/analysis trials.</summary>
    public const int EvalTrials = 12;
    /// <summary>Adam learning rate.</summary>
    public const double LearningRate = 0.01;
    /// <summary>Checkpoints analysed.</summary>
    public const int Checkpoints = 6;
}

/// <summary>
/// <c>globalntk demo</c>: trains a small GRU on flip-flop, analyses its global NTK at
/// initialisation, during and after training, and writes the report folder.
/// </summary>
public sealed class DemoCommand : CliCommand<DemoSettings>
{
    /// <inheritdoc/>
    protected override CommandOutcome Run(DemoSettings s, CliProgress progress, CancellationToken ct)
    {
        CliInputs.AtLeast(s.Steps, 1, "--steps");
        CliInputs.AtLeast(s.Hidden, 1, "--hidden");
        CliInputs.AtLeast(s.Checkpoints, 2, "--checkpoints");
        CliInputs.AtLeast(s.TrialSteps, 2, "--trial-steps");
        CliInputs.AtLeast(s.Trials, 1, "--trials");
        var options = s.ToOptions();
        int seed = s.SeedOrDefault;
        var clock = Stopwatch.StartNew();
        using var folder = OutputFolder.Create(new OutputRequest(s.Out, "demo", s.Force, []), OutputMarker.ReportKind);
        string runDir = folder.PathOf("run");
        var trainOptions = new TrainingOptions
        {
            Steps = s.Steps, BatchSize = DemoDefaults.Batch, LearningRate = DemoDefaults.LearningRate, Optimizer = "adam",
            CheckpointEvery = Math.Max(1, s.Steps / (s.Checkpoints - 1)), Seed = seed,
            Precision = options.Precision, // --precision f32 trains through the float32 operators too
        };
        var taskOptions = new TaskOptions { Steps = s.TrialSteps, EvaluationTrials = s.Trials };
        var trainer = CliInputs.WithinMemory($"--hidden {s.Hidden}", () => Trainer.Create("gru", s.Hidden, "flip-flop", trainOptions, gain: 1.0, taskOptions: taskOptions));
        var ev = trainer.Task.EvaluationSet;

        TrainingResult? trained = null;
        IReadOnlyList<ModelAnalysis>? analyses = null;
        double trainSeconds = 0;
        progress.Run("Demo", p =>
        {
            var overall = new OverlapProgress(p);
            // The analysis of each checkpoint starts as soon as training has written it: training is
            // sequential (about one core's work), so the other core analyses earlier checkpoints meanwhile.
            var gate = new StepGate();
            var steps = trainOptions.CheckpointSteps();
            var planned = AnalysisPipeline.Thin(steps.Count, s.Checkpoints).Select(i => steps[i]).ToArray();
            var sources = planned.Select(step => new CheckpointSource(Path.GetFileNameWithoutExtension(GlobalNtk.Training.Checkpoints.ModelPath(runDir, step)), step,
                () => { gate.WaitFor(step); return ModelFile.Load(GlobalNtk.Training.Checkpoints.ModelPath(runDir, step)).Model; })).ToArray();
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var analysis = Task.Factory.StartNew(() => AnalysisPipeline.Run(sources, ev.Inputs, ev.Targets, options, overall.Analysis, stop.Token),
                stop.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            // A failed analysis stops training too (its error is the one to report).
            var stopOnFailure = analysis.ContinueWith(t => { if (t.IsFaulted) stop.Cancel(); }, TaskScheduler.Default);
            try
            {
                try
                {
                    trained = trainer.Run(runDir, tp =>
                    {
                        gate.Reached(tp.Step);
                        overall.Training(double.IsFinite(tp.Loss) ? $"step {tp.Step}/{tp.TotalSteps}, loss {AnalysisReportWriter.F(tp.Loss)}" : $"step {tp.Step}/{tp.TotalSteps}",
                            (double)tp.Step / Math.Max(1, tp.TotalSteps));
                    }, stop.Token);
                }
                catch (OperationCanceledException) when (analysis.IsFaulted && !ct.IsCancellationRequested)
                {
                    analysis.GetAwaiter().GetResult();  // throws the analysis error that stopped training
                    throw;
                }
                gate.Close();
                trainSeconds = clock.Elapsed.TotalSeconds;
                overall.TrainingDone();
                var written = AnalysisPipeline.RunFolder(runDir, null, s.Checkpoints);
                if (written.Select(w => w.Step).SequenceEqual(planned.Select(x => (int?)x)))
                    analyses = analysis.GetAwaiter().GetResult();
                else
                {
                    // Training wrote other checkpoints than planned (it does not today): analyse what is there.
                    stop.Cancel();
                    Settle(analysis);
                    analyses = AnalysisPipeline.Run(written, ev.Inputs, ev.Targets, options, overall.Analysis, ct);
                }
            }
            finally
            {
                // Never leave the analysis running: it reads the run folder, which a failure removes.
                stop.Cancel();
                gate.Close();
                Settle(analysis);
                Settle(stopOnFailure);
            }
        });
        var first = analyses![0];
        var last = analyses[^1];
        string setup = $"**Setup.** A GRU with {s.Hidden} hidden units (PyTorch equations and initialisation, gain 1, seed {seed}) trained on 3-bit flip-flop " +
            $"(trials of {s.TrialSteps} steps) with Adam (learning rate {DemoDefaults.LearningRate}, batch {DemoDefaults.Batch}, gradient clipping 1) for {trained!.Steps} steps in {trainSeconds:F0} s. " +
            $"Every analysis uses the task's fixed evaluation set of shape {ev.Inputs.Shape} and its targets; {analyses.Count} checkpoints from initialisation to the end are analysed. " +
            AnalysisSettings.Describe(options) + " " +
            $"The checkpoints are in `run/` (safetensors, PyTorch names) with the training log `run/log.csv`.";
        var report = new AnalysisReport("GlobalNtk demo: the global NTK of a GRU learning flip-flop", setup, analyses,
            TrainingCurve.FromLog(trained.Log), options,
            new Dictionary<string, object> { ["command"] = "demo", ["trainingSeconds"] = trainSeconds, ["totalSeconds"] = clock.Elapsed.TotalSeconds });
        AnalysisReportWriter.Write(folder.WritePath, report);
        folder.Commit();
        string where = Path.Combine(folder.Display, "report.md");
        var lines = new List<string>
        {
            $"trained gru (H={s.Hidden}) on flip-flop: {trained.Steps} steps in {trainSeconds:F1} s, eval loss {AnalysisReportWriter.F(trained.InitialEvalLoss)} → {AnalysisReportWriter.F(trained.EvalLoss)}, accuracy {AnalysisReportWriter.F(trained.EvalAccuracy)}",
        };
        lines.AddRange(AnalysisPipeline.Summary(analyses));
        lines.Add($"total {clock.Elapsed.TotalSeconds:F1} s");
        lines.Add($"report: {where}");
        return new CommandOutcome(new { reportFolder = folder.Display, report = where, seconds = clock.Elapsed.TotalSeconds,
            training = new { trained.Steps, trained.InitialEvalLoss, trained.EvalLoss, trained.EvalAccuracy, seconds = trainSeconds },
            firstCheckpoint = first, lastCheckpoint = last }, lines);
    }

    /// <summary>Waits for <paramref name="task"/> to end, ignoring its outcome (an error already being reported wins).</summary>
    private static void Settle(Task task)
    {
        try { task.Wait(CancellationToken.None); }
        catch (AggregateException) { }
    }
}

/// <summary>
/// Training steps reached so far, for work that waits on them from another thread: a checkpoint
/// of step s is on disk once <see cref="Reached"/>(s) has been called.
/// </summary>
internal sealed class StepGate
{
    private readonly object _lock = new();
    private int _step = -1;
    private bool _closed;

    /// <summary>Training has reached <paramref name="step"/> (and written its checkpoint, if any).</summary>
    public void Reached(int step)
    {
        lock (_lock) { _step = Math.Max(_step, step); Monitor.PulseAll(_lock); }
    }

    /// <summary>Training has ended (finished, failed or cancelled): no further step will come.</summary>
    public void Close()
    {
        lock (_lock) { _closed = true; Monitor.PulseAll(_lock); }
    }

    /// <summary>Blocks until training has reached <paramref name="step"/>; throws <see cref="OperationCanceledException"/> if it ended before.</summary>
    public void WaitFor(int step)
    {
        lock (_lock)
        {
            while (_step < step && !_closed) Monitor.Wait(_lock);
            if (_step < step) throw new OperationCanceledException($"training ended before step {step}.");
        }
    }
}

/// <summary>One progress bar for training and the analysis running beside it (called from both threads).</summary>
internal sealed class OverlapProgress(ProgressCallback parent)
{
    // Shares of the bar: training is about a third of the work at the demo's defaults.
    private const double TrainingShare = 0.35;
    private readonly object _lock = new();
    private string _training = "", _analysis = "";
    private double _trainingFraction, _analysisFraction;

    /// <summary>Training progress.</summary>
    public void Training(string stage, double fraction) =>
        Update(() => { _training = stage; _trainingFraction = fraction; });

    /// <summary>Training has finished.</summary>
    public void TrainingDone() => Update(() => { _training = ""; _trainingFraction = 1; });

    /// <summary>Analysis progress (an <see cref="AnalysisPipeline.Run"/> callback).</summary>
    public void Analysis(string stage, double fraction) =>
        Update(() => { _analysis = stage; _analysisFraction = fraction; });

    private void Update(Action change)
    {
        lock (_lock)
        {
            change();
            string text = _training.Length == 0 ? $"analysis – {_analysis}"
                : _analysis.Length == 0 ? $"training – {_training}"
                : $"training – {_training}; analysis – {_analysis}";
            parent(text, TrainingShare * _trainingFraction + (1 - TrainingShare) * _analysisFraction);
        }
    }
}
