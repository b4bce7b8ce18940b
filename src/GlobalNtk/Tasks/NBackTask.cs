using GlobalNtk.Dense;

namespace GlobalNtk.Tasks;

/// <summary>
/// n-back recall, a sequence task for causal transformers (and recurrent nets): each of 3 input
/// channels carries a random ±1 at every token; the target at token t is the input n = 2 tokens
/// earlier, y_t = x_{t−2} (0 for t &lt; 2). Solving it needs attention to a fixed relative
/// position (or a 2-step memory). Default T = 16 tokens.
/// </summary>
/// <remarks>Accuracy: fraction of (trial, token, channel) outputs within 0.5 of the target.</remarks>
public sealed class NBackTask(TaskOptions options) : TrialTask(options, defaultSteps: 16, defaultEvalTrials: 32, minSteps: Lag + 1)
{
    /// <summary>Channels.</summary>
    public const int Channels = 3;
    /// <summary>How many tokens back the target reaches.</summary>
    public const int Lag = 2;

    /// <inheritdoc/>
    public override string Name => "n-back";
    /// <inheritdoc/>
    public override int InputSize => Channels;
    /// <inheritdoc/>
    public override int OutputSize => Channels;
    /// <inheritdoc/>
    public override string AccuracyDefinition => "fraction of (trial, token, channel) outputs within 0.5 of the input 2 tokens earlier";

    /// <inheritdoc/>
    protected override void FillTrial(Random rng, int trial, int trials, bool training, Tensor inputs, Tensor targets)
    {
        var x = inputs.Span; var y = targets.Span;
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextDouble() < 0.5 ? -1.0 : 1.0;
        for (int t = Lag; t < Steps; t++) x.Slice((t - Lag) * Channels, Channels).CopyTo(y.Slice(t * Channels, Channels));
    }

    /// <inheritdoc/>
    public override double Accuracy(TaskBatch batch, Tensor outputs) => FractionWithin(batch, outputs, 0.5);
}
