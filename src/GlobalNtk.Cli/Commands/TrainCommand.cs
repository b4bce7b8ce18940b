using System.ComponentModel;
using System.Globalization;
using GlobalNtk.Cli.Common;
using GlobalNtk.IO;
using GlobalNtk.Tasks;
using GlobalNtk.Training;
using Spectre.Console.Cli;

namespace GlobalNtk.Cli.Commands;

/// <summary>
/// <c>globalntk train</c>: trains a model on a generated task, writing checkpoints
/// (<c>ckpt-NNNNNN.safetensors</c>, PyTorch names), <c>log.csv</c> and <c>summary.json</c> to
/// <c>--out</c>; <c>--resume</c> continues the run in <c>--out</c> from its last checkpoint.
/// </summary>
public sealed class TrainCommand : CliCommand<TrainCommand.Settings>
{
    /// <summary>Options of <c>train</c> (null = default, so <c>--resume</c> can tell what was given).</summary>
    public sealed class Settings : PrecisionSettings
    {
        /// <summary>Task name.</summary>
        [CommandOption("--task <NAME>")]
        [TaskListDescription("Task to train on. Required unless --resume.")]
        public string? Task { get; init; }

        /// <summary>Architecture.</summary>
        [CommandOption("--arch <ARCH>")]
        [ArchListDescription("Architecture.")]
        [DefaultValue(CliDefaults.Arch), NullWhenOmitted]
        public string? Arch { get; init; }

        /// <summary>Hidden width.</summary>
        [CommandOption("--hidden <H>")]
        [Description("Hidden units H.")]
        [DefaultValue(CliDefaults.Hidden), NullWhenOmitted]
        public int? Hidden { get; init; }

        /// <summary>Total updates.</summary>
        [CommandOption("--steps <N>")]
        [Description("Total number of updates (with --resume: the new total; omitted: the run's own).")]
        [DefaultValue(CliDefaults.Steps), NullWhenOmitted]
        public int? Steps { get; init; }

        /// <summary>Learning rate.</summary>
        [CommandOption("--lr <RATE>")]
        [Description("Learning rate.")]
        [DefaultValue(CliDefaults.LearningRate), NullWhenOmitted]
        public double? LearningRate { get; init; }

        /// <summary>Optimizer.</summary>
        [CommandOption("--optimizer <NAME>")]
        [Description("sgd or adam.")]
        [DefaultValue(CliDefaults.Optimizer), NullWhenOmitted]
        public string? Optimizer { get; init; }

        /// <summary>Initial recurrent gain.</summary>
        [CommandOption("--gain <G>")]
        [Description("Initial gain g on the recurrent weights.")]
        [DefaultValue(CliDefaults.Gain), NullWhenOmitted]
        public double? Gain { get; init; }

        /// <summary>Seed.</summary>
        [CommandOption("--seed <SEED>")]
        [Description("Seed of the initialisation and the training batches (same seed, same run).")]
        [DefaultValue(CliDefaults.Seed), NullWhenOmitted]
        public int? Seed { get; init; }

        /// <summary>Output folder.</summary>
        [CommandOption("-o|--out <DIR>")]
        [Description("Run folder for checkpoints, log.csv and summary.json (required): a new or empty folder, or with --force an earlier run.")]
        public string? Out { get; init; }

        /// <summary>Replace an earlier run.</summary>
        [CommandOption("--force")]
        [Description(OutputTarget.ForceDescription)]
        public bool Force { get; init; }

        /// <summary>Continue from the last checkpoint in --out.</summary>
        [CommandOption("--resume")]
        [Description("Continue the run in --out from its last checkpoint (model and optimizer state); only --steps may change.")]
        public bool Resume { get; init; }

        /// <summary>Batch size.</summary>
        [CommandOption("--batch <B>")]
        [Description("Trials per training batch.")]
        [DefaultValue(CliDefaults.Batch), NullWhenOmitted]
        public int? Batch { get; init; }

        /// <summary>Checkpoint interval.</summary>
        [CommandOption("--checkpoint-every <N>")]
        [Description("Checkpoint and evaluate every N updates (0: only at the start and the end).")]
        [DefaultValue(CliDefaults.CheckpointEvery), NullWhenOmitted]
        public int? CheckpointEvery { get; init; }

        /// <summary>Gradient clipping.</summary>
        [CommandOption("--clip <NORM>")]
        [Description("Clip the global gradient norm to this (0: off).")]
        [DefaultValue(CliDefaults.Clip), NullWhenOmitted]
        public double? Clip { get; init; }

        /// <summary>Early stop.</summary>
        [CommandOption("--loss-tolerance <L>")]
        [Description("Stop once a training batch's MSE is at most L (0: never).")]
        [DefaultValue(CliDefaults.LossTolerance), NullWhenOmitted]
        public double? LossTolerance { get; init; }

        /// <summary>Trial length.</summary>
        [CommandOption("--trial-steps <T>")]
        [Description("Trial length T in steps (omitted: the task's own).")]
        public int? TrialSteps { get; init; }

        /// <summary>Input noise.</summary>
        [CommandOption("--noise <SIGMA>")]
        [Description("Gaussian input noise on training batches, in units of the task's input scale.")]
        [DefaultValue(CliDefaults.Noise), NullWhenOmitted]
        public double? Noise { get; init; }

        /// <summary>Stacked layers.</summary>
        [CommandOption("--layers <L>")]
        [Description("Number of stacked layers (recurrent: num_layers as in nn.GRU; depth models: their layers).")]
        public int? Layers { get; init; }

        /// <summary>Bias-free recurrent layers.</summary>
        [CommandOption("--no-bias")]
        [Description("Recurrent layers without bias_ih/bias_hh (nn.GRU(bias=False)).")]
        public bool? NoBias { get; init; }

        /// <summary>Model options.</summary>
        [CommandOption("--option <KEY=VALUE>")]
        [Description("Architecture option, repeatable (e.g. alpha=0.2 for leaky-rnn, layers=2 for depth models).")]
        public string[]? ModelOptions { get; init; }
    }

    /// <inheritdoc/>
    protected override CommandOutcome Run(Settings s, CliProgress progress, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(s.Out)) throw new CliInputException("train: --out DIR is required.");
        var request = new OutputRequest(s.Out, "train", s.Force, []);
        Trainer trainer;
        OutputFolder folder;
        if (s.Resume)
        {
            var given = new (string Name, object? Value)[]
            {
                ("--task", s.Task), ("--arch", s.Arch), ("--hidden", s.Hidden), ("--lr", s.LearningRate), ("--optimizer", s.Optimizer),
                ("--gain", s.Gain), ("--seed", s.Seed), ("--batch", s.Batch), ("--checkpoint-every", s.CheckpointEvery), ("--clip", s.Clip),
                ("--loss-tolerance", s.LossTolerance), ("--trial-steps", s.TrialSteps), ("--noise", s.Noise), ("--option", s.ModelOptions),
                ("--layers", s.Layers), ("--no-bias", s.NoBias), ("--precision", s.Precision),
            }.Where(g => g.Value is not null).Select(g => g.Name).ToList();
            if (given.Count > 0)
                throw new CliInputException($"train --resume continues with the checkpoint's settings; only --steps may change (got {string.Join(", ", given)}).");
            if (s.Force) throw new CliInputException("train: give either --resume (continue the run in --out) or --force (replace it), not both.");
            folder = OutputFolder.Resume(request);
            try
            {
                trainer = Trainer.Resume(folder.Target, s.Steps);
                folder.CheckRun(Trainer.RunIdentity(Checkpoints.ReadMetadata(Checkpoints.List(folder.Target)[^1].Path)));
            }
            catch { folder.Dispose(); throw; }
        }
        else
        {
            if (string.IsNullOrWhiteSpace(s.Task))
                throw new CliInputException($"train: --task is required (valid: {string.Join(", ", TaskRegistry.Names)}).");
            var options = new TrainingOptions
            {
                Steps = s.Steps ?? CliDefaults.Steps, BatchSize = s.Batch ?? CliDefaults.Batch, LearningRate = s.LearningRate ?? CliDefaults.LearningRate,
                Optimizer = s.Optimizer ?? CliDefaults.Optimizer, ClipNorm = s.Clip ?? CliDefaults.Clip, LossTolerance = s.LossTolerance ?? CliDefaults.LossTolerance,
                CheckpointEvery = s.CheckpointEvery ?? CliDefaults.CheckpointEvery, Seed = s.Seed ?? CliDefaults.Seed,
                Precision = s.ComputePrecision,
            };
            int hidden = s.Hidden ?? CliDefaults.Hidden;
            if (hidden < 1) throw new CliInputException($"train: --hidden must be ≥ 1, got {hidden}.");
            var modelOptions = CliInputs.KeyValues(s.ModelOptions, "--option");
            if (s.Layers is int layers)
            {
                if (layers < 1) throw new CliInputException($"train: --layers must be ≥ 1, got {layers}.");
                modelOptions["layers"] = layers.ToString(CultureInfo.InvariantCulture);
            }
            if (s.NoBias == true)
            {
                string arch = (s.Arch ?? CliDefaults.Arch).Trim().ToLowerInvariant();
                if (!Models.Recurrent.RecurrentConfig.Architectures.Contains(arch))
                    throw new CliInputException($"train: --no-bias applies to recurrent nets ({string.Join(", ", Models.Recurrent.RecurrentConfig.Architectures)}), not '{arch}'.");
                modelOptions["bias"] = "false";
            }
            trainer = CliInputs.WithinMemory($"--hidden {hidden}, --batch {options.BatchSize}", () => Trainer.Create(s.Arch ?? CliDefaults.Arch, hidden, s.Task, options, s.Gain ?? CliDefaults.Gain,
                new TaskOptions { Steps = s.TrialSteps, InputNoise = s.Noise ?? CliDefaults.Noise }, modelOptions));
            folder = OutputFolder.Create(request, OutputMarker.RunKind, trainer.RunIdentity());
            // A new run is written in place (an interrupted one stays resumable); a replacement
            // (--force) is built aside and swapped in only when it has finished.
            if (!folder.Replacing)
            {
                try { folder.Place(); }
                catch { folder.Dispose(); throw; }
            }
        }

        TrainingResult result;
        string dir = folder.Display;
        using (folder)
        {
            var t = trainer;
            try
            {
                result = progress.Run($"train {t.Model.Arch} on {t.Task.Name}", report =>
                    t.Run(folder.WritePath, p => report(Stage(p), p.TotalSteps == 0 ? 1 : (double)p.Step / p.TotalSteps), cancellationToken, folder.Journal));
            }
            catch (OperationCanceledException) when (!folder.Replacing)
            {
                folder.Commit(); // interrupted, not failed: the checkpoints so far stay resumable
                throw;
            }
            // Any other failure: disposing without Commit undoes every file this run wrote.
            folder.Commit();
        }
        if (result.LastCheckpoint is not null) result = result with { LastCheckpoint = Path.Combine(dir, Path.GetFileName(result.LastCheckpoint)), Directory = dir };

        var c = CultureInfo.InvariantCulture;
        var data = new
        {
            Out = dir, Arch = trainer.Model.Arch, Task = trainer.Task.Name, Steps = result.Steps, StartStep = result.StartStep,
            Resumed = s.Resume, FinalLoss = Finite(result.FinalLoss), EvalLoss = result.EvalLoss, EvalAccuracy = result.EvalAccuracy,
            InitialEvalLoss = result.InitialEvalLoss, StoppedEarly = result.StoppedEarly, LastCheckpoint = result.LastCheckpoint,
            Log = Path.Combine(dir, Checkpoints.LogFile), Seconds = result.Seconds, AccuracyDefinition = trainer.Task.AccuracyDefinition,
        };
        var lines = new List<string>
        {
            $"Trained {trainer.Model.Arch} on {trainer.Task.Name}: steps {result.StartStep} → {result.Steps}{(result.StoppedEarly ? " (stopped early: loss tolerance reached)" : "")} in {result.Seconds.ToString("F1", c)} s.",
            $"Eval MSE {result.InitialEvalLoss.ToString("G4", c)} → {result.EvalLoss.ToString("G4", c)}; accuracy {result.EvalAccuracy.ToString("F3", c)} ({trainer.Task.AccuracyDefinition}).",
            $"Last checkpoint: {result.LastCheckpoint}",
            $"Log: {Path.Combine(dir, Checkpoints.LogFile)}",
        };
        return new CommandOutcome(data, lines);
    }

    private static string Stage(TrainingProgress p) =>
        double.IsNaN(p.Loss) ? $"step {p.Step}/{p.TotalSteps}"
            : $"step {p.Step}/{p.TotalSteps}, loss {p.Loss.ToString("G3", CultureInfo.InvariantCulture)}";

    private static double? Finite(double v) => double.IsFinite(v) ? v : null;
}
