using GlobalNtk.Dense;

namespace GlobalNtk.Tasks;

/// <summary>
/// 3-bit flip-flop (docs/math.md#tasks). Each of 3 input channels receives ±1 pulses at Poisson times
/// (probability 1/20 per step, so about T/20 pulses per channel); target channel c holds the sign
/// of the last pulse on input c, and is 0 before its first pulse. Default T = 100.
/// </summary>
/// <remarks>Accuracy: fraction of (trial, step, channel) entries with |y − y*| &lt; 0.5.</remarks>
public sealed class FlipFlopTask(TaskOptions options) : TrialTask(options, defaultSteps: 100, defaultEvalTrials: 32)
{
    /// <summary>Number of bits (channels).</summary>
    public const int Bits = 3;
    /// <summary>Pulse probability per step and channel.</summary>
    public const double PulseRate = 1.0 / 20;

    /// <inheritdoc/>
    public override string Name => "flip-flop";
    /// <inheritdoc/>
    public override int InputSize => Bits;
    /// <inheritdoc/>
    public override int OutputSize => Bits;
    /// <inheritdoc/>
    public override string AccuracyDefinition => "fraction of (trial, step, channel) outputs within 0.5 of the held bit (−1, 0 or +1)";

    /// <inheritdoc/>
    protected override void FillTrial(Random rng, int trial, int trials, bool training, Tensor inputs, Tensor targets)
    {
        var x = inputs.Span; var y = targets.Span;
        for (int c = 0; c < Bits; c++)
        {
            double held = 0;
            for (int t = 0; t < Steps; t++)
            {
                if (rng.NextDouble() < PulseRate)
                {
                    held = rng.NextDouble() < 0.5 ? -1.0 : 1.0;
                    x[t * Bits + c] = held;
                }
                y[t * Bits + c] = held;
            }
        }
    }

    /// <inheritdoc/>
    public override double Accuracy(TaskBatch batch, Tensor outputs) => FractionWithin(batch, outputs, 0.5);
}
