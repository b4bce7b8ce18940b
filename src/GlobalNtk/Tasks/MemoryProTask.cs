using GlobalNtk.Dense;

namespace GlobalNtk.Tasks;

/// <summary>
/// Memory-guided response (docs/math.md#tasks). Inputs [fixation, cos θ, sin θ]: fixation is 1 during the
/// stimulus and delay periods and 0 in the response period; (cos θ, sin θ) is shown during the
/// stimulus period only. Targets [fixation, cos θ, sin θ]: the fixation output copies the fixation
/// input; the direction outputs are 0 until the response period, then (cos θ, sin θ).
/// Periods default to 30/30/30 steps (stimulus/delay/response); with <c>Steps</c> = T they are
/// ⌊T/3⌋, ⌊T/3⌋ and the rest. Training angles are uniform in [0, 2π); evaluation angles are
/// evenly spaced, θ_b = 2π b / B.
/// </summary>
/// <remarks>
/// Accuracy: fraction of trials whose response-period mean of (y_cos, y_sin) points within π/10
/// of θ.
/// </remarks>
public sealed class MemoryProTask(TaskOptions options) : TrialTask(options, defaultSteps: 90, defaultEvalTrials: 32, minSteps: 3)
{
    /// <summary>Stimulus period length.</summary>
    public int StimulusSteps => Steps / 3;
    /// <summary>Delay period length.</summary>
    public int DelaySteps => Steps / 3;
    /// <summary>First step of the response period.</summary>
    public int ResponseStart => StimulusSteps + DelaySteps;

    /// <inheritdoc/>
    public override string Name => "memory-pro";
    /// <inheritdoc/>
    public override int InputSize => 3;
    /// <inheritdoc/>
    public override int OutputSize => 3;
    /// <inheritdoc/>
    public override string AccuracyDefinition => "fraction of trials whose mean response direction is within π/10 of the stimulus angle";

    /// <inheritdoc/>
    protected override void FillTrial(Random rng, int trial, int trials, bool training, Tensor inputs, Tensor targets)
    {
        double theta = training ? 2 * Math.PI * rng.NextDouble() : 2 * Math.PI * trial / trials;
        double c = Math.Cos(theta), s = Math.Sin(theta);
        var x = inputs.Span; var y = targets.Span;
        for (int t = 0; t < Steps; t++)
        {
            bool fixate = t < ResponseStart;
            x[3 * t] = y[3 * t] = fixate ? 1.0 : 0.0;
            if (t < StimulusSteps) { x[3 * t + 1] = c; x[3 * t + 2] = s; }
            if (!fixate) { y[3 * t + 1] = c; y[3 * t + 2] = s; }
        }
    }

    /// <inheritdoc/>
    public override double Accuracy(TaskBatch batch, Tensor outputs)
    {
        CheckOutputs(batch, outputs);
        int correct = 0;
        for (int b = 0; b < batch.Trials; b++)
        {
            var y = outputs.Slice(b).Span; var t = batch.Targets.Slice(b).Span;
            double mc = 0, ms = 0;
            for (int k = ResponseStart; k < Steps; k++) { mc += y[3 * k + 1]; ms += y[3 * k + 2]; }
            double want = Math.Atan2(t[3 * (Steps - 1) + 2], t[3 * (Steps - 1) + 1]);
            double err = Math.Abs(Math.IEEERemainder(Math.Atan2(ms, mc) - want, 2 * Math.PI));
            if (mc * mc + ms * ms > 0 && err < Math.PI / 10) correct++;
        }
        return (double)correct / batch.Trials;
    }
}
