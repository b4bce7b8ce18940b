using GlobalNtk.Dense;
using GlobalNtk.Operators;

namespace GlobalNtk.Tasks;

/// <summary>One batch of a task: inputs and targets in the layout the model and its readout use.</summary>
/// <remarks>Recurrent tasks: inputs (trial, time, input), targets (trial, time, output).</remarks>
public sealed record TaskBatch(Tensor Inputs, Tensor Targets)
{
    /// <summary>Number of trials (leading axis).</summary>
    public int Trials => Inputs.Shape.Sizes[0];
}

/// <summary>Options shared by every generated task.</summary>
public sealed record TaskOptions
{
    /// <summary>Seed of the training batches (batch i depends only on (Seed, i)).</summary>
    public int Seed { get; init; }
    /// <summary>
    /// Gaussian input noise on training batches, in units of the task's <see cref="ITask.NoiseScale"/>
    /// (0 = none). The evaluation set is always noise-free.
    /// </summary>
    public double InputNoise { get; init; }
    /// <summary>Trial length in steps; null = the task's default.</summary>
    public int? Steps { get; init; }
    /// <summary>Trials in the evaluation set; null = the task's default.</summary>
    public int? EvaluationTrials { get; init; }
}

/// <summary>
/// A generated, seeded task (docs/math.md#tasks): random training batches, a fixed evaluation set and a
/// task accuracy measure.
/// </summary>
public interface ITask
{
    /// <summary>Registry name, e.g. <c>flip-flop</c>.</summary>
    string Name { get; }
    /// <summary>Input width N_in.</summary>
    int InputSize { get; }
    /// <summary>Output width (readout size).</summary>
    int OutputSize { get; }
    /// <summary>Trial length T in steps.</summary>
    int Steps { get; }
    /// <summary>Natural amplitude of the inputs; input noise std = InputNoise × NoiseScale.</summary>
    double NoiseScale { get; }
    /// <summary>One-line description of the accuracy measure.</summary>
    string AccuracyDefinition { get; }
    /// <summary>Training batch number <paramref name="index"/> of <paramref name="trials"/> trials (deterministic in (seed, index)).</summary>
    TaskBatch TrainBatch(int index, int trials);
    /// <summary>The fixed evaluation set (independent of the training seed, noise-free).</summary>
    TaskBatch EvaluationSet { get; }
    /// <summary>Task accuracy in [0, 1] of <paramref name="outputs"/> (shaped like the targets) on <paramref name="batch"/>.</summary>
    double Accuracy(TaskBatch batch, Tensor outputs);
}

/// <summary>
/// Base of the recurrent (trial, time, channel) tasks: seeding, noise and the batch layout.
/// Subclasses fill one trial at a time.
/// </summary>
public abstract class TrialTask : ITask
{
    /// <summary>Seed mixed into the evaluation set so it is the same for every training seed.</summary>
    protected const int EvaluationSeed = 20_261_128;
    private TaskBatch? _eval;

    /// <summary>Stores the options; validates the trial length.</summary>
    protected TrialTask(TaskOptions options, int defaultSteps, int defaultEvalTrials, int minSteps = 1)
    {
        Options = options;
        Steps = options.Steps ?? defaultSteps;
        if (Steps < minSteps) throw new ArgumentException($"Task '{GetType().Name}': steps must be ≥ {minSteps}, got {Steps}.");
        EvaluationTrials = options.EvaluationTrials ?? defaultEvalTrials;
        if (EvaluationTrials < 1) throw new ArgumentException($"Task: evaluation trials must be ≥ 1, got {EvaluationTrials}.");
        if (!(options.InputNoise >= 0) || double.IsInfinity(options.InputNoise))
            throw new ArgumentException($"Task: input noise must be a finite number ≥ 0, got {options.InputNoise}.");
    }

    /// <summary>The options this task was created with.</summary>
    public TaskOptions Options { get; }
    /// <summary>Trials in the evaluation set.</summary>
    public int EvaluationTrials { get; }
    /// <inheritdoc/>
    public abstract string Name { get; }
    /// <inheritdoc/>
    public abstract int InputSize { get; }
    /// <inheritdoc/>
    public abstract int OutputSize { get; }
    /// <inheritdoc/>
    public int Steps { get; }
    /// <inheritdoc/>
    public virtual double NoiseScale => 1.0;
    /// <inheritdoc/>
    public abstract string AccuracyDefinition { get; }

    /// <inheritdoc/>
    public TaskBatch TrainBatch(int index, int trials)
    {
        if (trials < 1) throw new ArgumentException($"Task '{Name}': batch size must be ≥ 1, got {trials}.");
        if (index < 0) throw new ArgumentException($"Task '{Name}': batch index must be ≥ 0, got {index}.");
        var rng = TrainingBatchRandom(Options.Seed, index);
        var batch = Allocate(trials);
        for (int b = 0; b < trials; b++) FillTrial(rng, b, trials, training: true, batch.Inputs.Slice(b), batch.Targets.Slice(b));
        double std = Options.InputNoise * NoiseScale;
        if (std > 0)
        {
            var x = batch.Inputs.Span;
            for (int i = 0; i < x.Length; i++) x[i] += std * RandomProbes.Gaussian(rng);
        }
        return batch;
    }

    /// <inheritdoc/>
    public TaskBatch EvaluationSet => _eval ??= MakeEvaluationSet();

    /// <inheritdoc/>
    public abstract double Accuracy(TaskBatch batch, Tensor outputs);

    /// <summary>
    /// Fills trial <paramref name="trial"/> of <paramref name="trials"/>: inputs (time, input) and
    /// targets (time, output) arrive zeroed. Evaluation trials may use <paramref name="trial"/>
    /// to cover the task's conditions evenly.
    /// </summary>
    protected abstract void FillTrial(Random rng, int trial, int trials, bool training, Tensor inputs, Tensor targets);

    private TaskBatch MakeEvaluationSet()
    {
        var rng = EvaluationRandom(EvaluationSeed);
        var batch = Allocate(EvaluationTrials);
        for (int b = 0; b < EvaluationTrials; b++) FillTrial(rng, b, EvaluationTrials, training: false, batch.Inputs.Slice(b), batch.Targets.Slice(b));
        return batch;
    }

    private TaskBatch Allocate(int trials) => new(
        new Tensor(new AxisShape(("trial", trials), ("time", Steps), ("input", InputSize))),
        new Tensor(new AxisShape(("trial", trials), ("time", Steps), ("output", OutputSize))));

    /// <summary>Checks that outputs have the targets' shape (names may differ).</summary>
    protected void CheckOutputs(TaskBatch batch, Tensor outputs)
    {
        if (!outputs.Shape.Sizes.SequenceEqual(batch.Targets.Shape.Sizes))
            throw new ArgumentException($"Task '{Name}': outputs {outputs.Shape} do not match targets {batch.Targets.Shape}.");
    }

    /// <summary>Fraction of all target entries matched within ±<paramref name="tolerance"/>.</summary>
    protected double FractionWithin(TaskBatch batch, Tensor outputs, double tolerance)
    {
        CheckOutputs(batch, outputs);
        var y = outputs.Span; var t = batch.Targets.Span;
        int ok = 0;
        for (int i = 0; i < y.Length; i++) if (Math.Abs(y[i] - t[i]) < tolerance) ok++;
        return y.Length == 0 ? 1.0 : (double)ok / y.Length;
    }

    /// <summary>
    /// The generator of training batch <paramref name="index"/> for the user's <paramref name="seed"/>:
    /// the key <c>RngKey.FromSeed(seed).Fold("task batch").Fold(index)</c>, so batch i depends only on (seed, i).
    /// </summary>
    public static Random TrainingBatchRandom(int seed, int index) =>
        RngKey.FromSeed(seed).Fold("task batch").Fold(index).CreateRandom();

    /// <summary>
    /// The generator of a task's fixed evaluation set: a constant key of the task (not the user's
    /// seed), so every training seed is evaluated on the same trials.
    /// </summary>
    public static Random EvaluationRandom(int taskConstant) =>
        RngKey.FromSeed(taskConstant).Fold("evaluation set").CreateRandom();

}
