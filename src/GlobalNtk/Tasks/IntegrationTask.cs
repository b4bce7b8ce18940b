using GlobalNtk.Operators;
using GlobalNtk.Dense;

namespace GlobalNtk.Tasks;

/// <summary>
/// Integration of a noisy scalar (line attractor, docs/math.md#tasks). Each trial draws a drift
/// μ ~ U(−1, 1); the input is x_t = (μ + ε_t)/T with ε_t ~ N(0, 1), and the target is the running
/// sum y_t = Σ_{s ≤ t} x_s (so y_T ≈ μ, of order 1). Default T = 50. The signal noise ε is part
/// of the task (the target integrates it); optional input noise is added on top, in units of 1/T.
/// </summary>
/// <remarks>Accuracy: fraction of (trial, step) outputs within 0.1 of the running sum.</remarks>
public sealed class IntegrationTask(TaskOptions options) : TrialTask(options, defaultSteps: 50, defaultEvalTrials: 32)
{
    /// <inheritdoc/>
    public override string Name => "integration";
    /// <inheritdoc/>
    public override int InputSize => 1;
    /// <inheritdoc/>
    public override int OutputSize => 1;
    /// <inheritdoc/>
    public override double NoiseScale => 1.0 / Steps;
    /// <inheritdoc/>
    public override string AccuracyDefinition => "fraction of (trial, step) outputs within 0.1 of the running sum";

    /// <inheritdoc/>
    protected override void FillTrial(Random rng, int trial, int trials, bool training, Tensor inputs, Tensor targets)
    {
        double mu = 2 * rng.NextDouble() - 1;
        var x = inputs.Span; var y = targets.Span;
        double sum = 0;
        for (int t = 0; t < Steps; t++)
        {
            x[t] = (mu + RandomProbes.Gaussian(rng)) / Steps;
            sum += x[t];
            y[t] = sum;
        }
    }

    /// <inheritdoc/>
    public override double Accuracy(TaskBatch batch, Tensor outputs) => FractionWithin(batch, outputs, 0.1);
}
