using System.Globalization;
using GlobalNtk.Dense;
using GlobalNtk.Models;

namespace GlobalNtk.Training;

/// <summary>Hyper-parameters of a training run (stored in every checkpoint's metadata).</summary>
public sealed record TrainingOptions
{
    /// <summary>Total number of parameter updates.</summary>
    public int Steps { get; init; } = 1000;
    /// <summary>Trials per training batch.</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Learning rate η.</summary>
    public double LearningRate { get; init; } = 1e-3;
    /// <summary><c>adam</c> or <c>sgd</c>.</summary>
    public string Optimizer { get; init; } = "adam";
    /// <summary>Gradient-norm clipping threshold (global L2 norm, as torch.nn.utils.clip_grad_norm_); 0 = off.</summary>
    public double ClipNorm { get; init; } = 1.0;
    /// <summary>Stop once a training batch's loss is ≤ this (after applying that step's update); 0 = never.</summary>
    public double LossTolerance { get; init; }
    /// <summary>Checkpoint (and evaluate) every this many updates; 0 = only at the start and the end.</summary>
    public int CheckpointEvery { get; init; } = 100;
    /// <summary>Seed of the model initialisation and of the training batches.</summary>
    public int Seed { get; init; }
    /// <summary>
    /// The precision each gradient is computed in (<see cref="ModelGradient.Compute(IChainModel, Tensor, Tensor, Span{double}, Precision)"/>):
    /// with <see cref="Precision.F32"/> the forward pass, e = Cᵀ ∂L/∂y, P* and J_θ* run in float32. The
    /// parameters, the optimiser's state and every update stay float64.
    /// </summary>
    public Precision Precision { get; init; } = Precision.F64;

    /// <summary>
    /// Whether the update that reaches <paramref name="step"/> writes a checkpoint: the last one and
    /// every <see cref="CheckpointEvery"/>-th (an early stop writes one as well). Step 0 always has one.
    /// </summary>
    public bool IsCheckpointStep(int step) => step == 0 || step == Steps || (CheckpointEvery > 0 && step % CheckpointEvery == 0);

    /// <summary>The steps of the checkpoints a fresh run writes when it does not stop early, in order.</summary>
    public IReadOnlyList<int> CheckpointSteps() => Enumerable.Range(0, Steps + 1).Where(IsCheckpointStep).ToArray();

    /// <summary>Throws a one-line <see cref="ArgumentException"/> for an out-of-range value.</summary>
    public void Validate()
    {
        if (Steps < 0) throw new ArgumentException($"Training steps must be ≥ 0, got {Steps}.");
        if (BatchSize < 1) throw new ArgumentException($"Batch size must be ≥ 1, got {BatchSize}.");
        if (!(LearningRate > 0) || !double.IsFinite(LearningRate)) throw new ArgumentException($"Learning rate must be a finite number > 0, got {LearningRate}.");
        if (!Training.Optimizer.Names.Contains((Optimizer ?? "").Trim().ToLowerInvariant()))
            throw new ArgumentException($"Unknown optimizer '{Optimizer}' (valid: {string.Join(", ", Training.Optimizer.Names)}).");
        if (!(ClipNorm >= 0) || !double.IsFinite(ClipNorm)) throw new ArgumentException($"Gradient clip norm must be a finite number ≥ 0, got {ClipNorm}.");
        if (!(LossTolerance >= 0) || !double.IsFinite(LossTolerance)) throw new ArgumentException($"Loss tolerance must be a finite number ≥ 0, got {LossTolerance}.");
        if (CheckpointEvery < 0) throw new ArgumentException($"Checkpoint interval must be ≥ 0, got {CheckpointEvery}.");
    }

    /// <summary>As metadata strings.</summary>
    public IReadOnlyDictionary<string, string> ToMetadata()
    {
        var c = CultureInfo.InvariantCulture;
        return WithPrecision(new Dictionary<string, string>
        {
            ["steps"] = Steps.ToString(c),
            ["batch"] = BatchSize.ToString(c),
            ["lr"] = LearningRate.ToString("R", c),
            ["optimizer"] = Optimizer.Trim().ToLowerInvariant(),
            ["clip_norm"] = ClipNorm.ToString("R", c),
            ["loss_tolerance"] = LossTolerance.ToString("R", c),
            ["checkpoint_every"] = CheckpointEvery.ToString(c),
            ["train_seed"] = Seed.ToString(c),
        });
    }

    // The precision is recorded only when it is not the default, so float64 runs write the metadata they always wrote.
    private IReadOnlyDictionary<string, string> WithPrecision(Dictionary<string, string> md)
    {
        if (Precision != Precision.F64) md["precision"] = Precision.Name();
        return md;
    }

    /// <summary>Parses <see cref="ToMetadata"/>'s keys; a missing or malformed key throws naming it.</summary>
    public static TrainingOptions FromMetadata(IReadOnlyDictionary<string, string> md)
    {
        var c = CultureInfo.InvariantCulture;
        string Get(string k) => md.TryGetValue(k, out var v) ? v : throw new ArgumentException($"checkpoint metadata has no '{k}' (not written by train?).");
        int Int(string k) => int.TryParse(Get(k), NumberStyles.Integer, c, out int v) ? v : throw new ArgumentException($"checkpoint metadata '{k}' = '{md[k]}' is not an integer.");
        double Real(string k) => double.TryParse(Get(k), NumberStyles.Float, c, out double v) ? v : throw new ArgumentException($"checkpoint metadata '{k}' = '{md[k]}' is not a number.");
        var o = new TrainingOptions
        {
            Steps = Int("steps"), BatchSize = Int("batch"), LearningRate = Real("lr"), Optimizer = Get("optimizer"),
            ClipNorm = Real("clip_norm"), LossTolerance = Real("loss_tolerance"), CheckpointEvery = Int("checkpoint_every"), Seed = Int("train_seed"),
            Precision = !md.TryGetValue("precision", out var p) ? Precision.F64
                : PrecisionNames.TryParse(p, out var precision) ? precision
                : throw new ArgumentException($"checkpoint metadata 'precision' = '{p}' is not f64 or f32."),
        };
        o.Validate();
        return o;
    }
}

/// <summary>Reported after every update (and once at the start) for progress bars.</summary>
/// <param name="Step">Updates done.</param>
/// <param name="TotalSteps">Updates planned.</param>
/// <param name="Loss">Training loss of the last batch (NaN before the first update).</param>
/// <param name="EvalLoss">Evaluation loss when evaluated at this step.</param>
/// <param name="EvalAccuracy">Task accuracy on the evaluation set when evaluated at this step.</param>
public sealed record TrainingProgress(int Step, int TotalSteps, double Loss, double? EvalLoss, double? EvalAccuracy);

/// <summary>One row of <c>log.csv</c>.</summary>
/// <param name="Step">Updates done after this row's update (0: the initial evaluation).</param>
/// <param name="Loss">MSE of the training batch used by update <paramref name="Step"/>, before it.</param>
/// <param name="GradNorm">Gradient norm of that update, before clipping.</param>
/// <param name="EvalLoss">MSE on the evaluation set after the update (only at checkpoints).</param>
/// <param name="EvalAccuracy">Task accuracy on the evaluation set after the update (only at checkpoints).</param>
public sealed record TrainingLogRow(int Step, double? Loss, double? GradNorm, double? EvalLoss, double? EvalAccuracy);

/// <summary>What a run did.</summary>
public sealed record TrainingResult
{
    /// <summary>Output folder (null when run without one).</summary>
    public string? Directory { get; init; }
    /// <summary>Updates done in total (including those before a resume).</summary>
    public int Steps { get; init; }
    /// <summary>Step the run started from (0, or the resumed checkpoint's).</summary>
    public int StartStep { get; init; }
    /// <summary>Training loss of the last batch (NaN if no update was made).</summary>
    public double FinalLoss { get; init; }
    /// <summary>Evaluation-set MSE after the last update.</summary>
    public double EvalLoss { get; init; }
    /// <summary>Evaluation-set task accuracy after the last update.</summary>
    public double EvalAccuracy { get; init; }
    /// <summary>Evaluation-set MSE at the start of this run.</summary>
    public double InitialEvalLoss { get; init; }
    /// <summary>Whether the loss tolerance stopped the run early.</summary>
    public bool StoppedEarly { get; init; }
    /// <summary>The last checkpoint written (null without a folder).</summary>
    public string? LastCheckpoint { get; init; }
    /// <summary>Wall-clock seconds of this run.</summary>
    public double Seconds { get; init; }
    /// <summary>The whole log (rows up to <see cref="Steps"/>).</summary>
    public IReadOnlyList<TrainingLogRow> Log { get; init; } = [];
}
