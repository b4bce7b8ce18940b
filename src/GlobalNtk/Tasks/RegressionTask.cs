using GlobalNtk.Dense;
using GlobalNtk.Operators;

namespace GlobalNtk.Tasks;

/// <summary>
/// A regression task for feed-forward models (MLP): inputs x uniform in [−1, 1]⁴, targets
/// y = sin(A x + c) with a fixed teacher A [2, 4] (Gaussian, scale 1.5) and c [2] (the same for
/// every seed). Layout without a time axis: inputs (sample, input), targets (sample, output).
/// </summary>
/// <remarks>Accuracy: fraction of (sample, output) entries within 0.1 of the target.</remarks>
public sealed class RegressionTask : ITask
{
    private const int TeacherSeed = 4_2026;
    private const int EvaluationSeed = 20_261_129;
    private readonly double[] _a, _c;
    private readonly TaskOptions _options;
    private TaskBatch? _eval;

    /// <summary>Creates the task; <see cref="TaskOptions.Steps"/> must be unset or 1 (no time axis).</summary>
    public RegressionTask(TaskOptions options)
    {
        if (options.Steps is { } s && s != 1) throw new ArgumentException($"Task 'regression' has no time axis: steps must be 1, got {s}.");
        if (!(options.InputNoise >= 0) || double.IsInfinity(options.InputNoise))
            throw new ArgumentException($"Task: input noise must be a finite number ≥ 0, got {options.InputNoise}.");
        EvaluationTrials = options.EvaluationTrials ?? 256;
        if (EvaluationTrials < 1) throw new ArgumentException($"Task: evaluation trials must be ≥ 1, got {EvaluationTrials}.");
        _options = options;
        var rng = RngKey.FromSeed(TeacherSeed).Fold("teacher").CreateRandom();
        _a = Enumerable.Range(0, OutputSize * InputSize).Select(_ => 1.5 * RandomProbes.Gaussian(rng)).ToArray();
        _c = Enumerable.Range(0, OutputSize).Select(_ => RandomProbes.Gaussian(rng)).ToArray();
    }

    /// <summary>Samples in the evaluation set.</summary>
    public int EvaluationTrials { get; }
    /// <inheritdoc/>
    public string Name => "regression";
    /// <inheritdoc/>
    public int InputSize => 4;
    /// <inheritdoc/>
    public int OutputSize => 2;
    /// <inheritdoc/>
    public int Steps => 1;
    /// <inheritdoc/>
    public double NoiseScale => 0.1;
    /// <inheritdoc/>
    public string AccuracyDefinition => "fraction of (sample, output) outputs within 0.1 of the teacher's sin(A x + c)";

    /// <inheritdoc/>
    public TaskBatch TrainBatch(int index, int trials)
    {
        if (trials < 1) throw new ArgumentException($"Task 'regression': batch size must be ≥ 1, got {trials}.");
        if (index < 0) throw new ArgumentException($"Task 'regression': batch index must be ≥ 0, got {index}.");
        var rng = TrialTask.TrainingBatchRandom(_options.Seed, index);
        var batch = Make(rng, trials);
        double std = _options.InputNoise * NoiseScale;
        if (std > 0)
        {
            // Noise on the observed inputs only: the targets stay the teacher's clean answer.
            var x = batch.Inputs.Span;
            for (int i = 0; i < x.Length; i++) x[i] += std * RandomProbes.Gaussian(rng);
        }
        return batch;
    }

    /// <inheritdoc/>
    public TaskBatch EvaluationSet => _eval ??= Make(TrialTask.EvaluationRandom(EvaluationSeed), EvaluationTrials);


    /// <inheritdoc/>
    public double Accuracy(TaskBatch batch, Tensor outputs)
    {
        if (!outputs.Shape.Sizes.SequenceEqual(batch.Targets.Shape.Sizes))
            throw new ArgumentException($"Task 'regression': outputs {outputs.Shape} do not match targets {batch.Targets.Shape}.");
        var y = outputs.Span; var t = batch.Targets.Span;
        int ok = 0;
        for (int i = 0; i < y.Length; i++) if (Math.Abs(y[i] - t[i]) < 0.1) ok++;
        return (double)ok / y.Length;
    }

    /// <summary>The teacher's output sin(A x + c) for one input.</summary>
    public double[] Teacher(ReadOnlySpan<double> x)
    {
        var y = new double[OutputSize];
        for (int o = 0; o < OutputSize; o++)
        {
            double a = _c[o];
            for (int i = 0; i < InputSize; i++) a += _a[o * InputSize + i] * x[i];
            y[o] = Math.Sin(a);
        }
        return y;
    }

    private TaskBatch Make(Random rng, int n)
    {
        var x = new Tensor(new AxisShape(("sample", n), ("input", InputSize)));
        var y = new Tensor(new AxisShape(("sample", n), ("output", OutputSize)));
        for (int b = 0; b < n; b++)
        {
            var xs = x.Span.Slice(b * InputSize, InputSize);
            for (int i = 0; i < InputSize; i++) xs[i] = 2 * rng.NextDouble() - 1;
            Teacher(xs).CopyTo(y.Span.Slice(b * OutputSize, OutputSize));
        }
        return new TaskBatch(x, y);
    }
}
