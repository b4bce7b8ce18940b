using GlobalNtk.Dense;

namespace GlobalNtk.Tasks;

/// <summary>
/// Sine-wave generation from a frequency cue (docs/math.md#tasks). Each trial has a frequency ω in
/// [1, 3] cycles per trial; the input is the constant cue ω/3 (never 0, so the cue always drives
/// the network), and the target is y_t = sin(2π ω (t+1)/T), t = 0..T−1. Default T = 50. Training
/// frequencies are uniform in [1, 3]; evaluation frequencies are evenly spaced over [1, 3].
/// </summary>
/// <remarks>Accuracy: fraction of (trial, step) outputs within 0.1 of the sine.</remarks>
public sealed class SineTask(TaskOptions options) : TrialTask(options, defaultSteps: 50, defaultEvalTrials: 16)
{
    /// <summary>Lowest frequency (cycles per trial).</summary>
    public const double MinFrequency = 1.0;
    /// <summary>Highest frequency (cycles per trial).</summary>
    public const double MaxFrequency = 3.0;

    /// <inheritdoc/>
    public override string Name => "sine";
    /// <inheritdoc/>
    public override int InputSize => 1;
    /// <inheritdoc/>
    public override int OutputSize => 1;
    /// <inheritdoc/>
    public override string AccuracyDefinition => "fraction of (trial, step) outputs within 0.1 of the target sine";

    /// <inheritdoc/>
    protected override void FillTrial(Random rng, int trial, int trials, bool training, Tensor inputs, Tensor targets)
    {
        double w = training
            ? MinFrequency + (MaxFrequency - MinFrequency) * rng.NextDouble()
            : MinFrequency + (MaxFrequency - MinFrequency) * (trials == 1 ? 0.5 : (double)trial / (trials - 1));
        var x = inputs.Span; var y = targets.Span;
        for (int t = 0; t < Steps; t++)
        {
            x[t] = w / MaxFrequency;
            y[t] = Math.Sin(2 * Math.PI * w * (t + 1) / Steps);
        }
    }

    /// <inheritdoc/>
    public override double Accuracy(TaskBatch batch, Tensor outputs) => FractionWithin(batch, outputs, 0.1);
}
