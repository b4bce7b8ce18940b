using GlobalNtk.Dense;
using GlobalNtk.Operators;

namespace GlobalNtk.Models;

/// <summary>
/// The loss, defined once for training, the first-order identity, the analysis error vector e and
/// the reports (docs/math.md#loss): the mean squared error over all N output entries (trials ×
/// steps × outputs), as PyTorch's <c>nn.MSELoss()</c> computes it,
/// <c>L = (1/N) Σᵢ (yᵢ − y*ᵢ)²</c>, so <c>∂L/∂y = 2 (y − y*) / N</c> and, with the readout
/// <c>y = C z + c</c>, the error on the state is <c>e = ∂L/∂z = Cᵀ ∂L/∂y</c>.
/// </summary>
/// <remarks>
/// The other common scale, ½ Σ ‖y − y*‖², is N/2 times this L: it multiplies every gradient, e
/// and learning rate by the same constant and changes nothing else. Learning rates are therefore
/// those of PyTorch with its default reduction.
/// </remarks>
public static class MseLoss
{
    /// <summary>One-line statement of the definition, for reports.</summary>
    public const string Definition = "L = (1/N) Σ (ŷ − y*)², the mean over all N output entries (PyTorch nn.MSELoss)";

    /// <summary>L = mean((y − y*)²) (0 for no entries).</summary>
    public static double Value(ReadOnlySpan<double> outputs, ReadOnlySpan<double> targets) => Evaluate(outputs, targets, default);

    /// <summary>L = mean((y − y*)²); writes ∂L/∂y = 2 (y − y*) / N into <paramref name="dOutputs"/> when it is non-empty.</summary>
    public static double Evaluate(ReadOnlySpan<double> outputs, ReadOnlySpan<double> targets, Span<double> dOutputs)
    {
        if (outputs.Length != targets.Length)
            throw new ShapeMismatchException($"MSE loss: outputs have {outputs.Length} entries, targets {targets.Length}.");
        if (!dOutputs.IsEmpty && dOutputs.Length != outputs.Length)
            throw new ShapeMismatchException($"MSE loss: gradient buffer has {dOutputs.Length} entries, outputs {outputs.Length}.");
        int n = outputs.Length;
        double sum = 0;
        for (int i = 0; i < n; i++)
        {
            double r = outputs[i] - targets[i];
            sum += r * r;
            if (!dOutputs.IsEmpty) dOutputs[i] = 2 * r / n;
        }
        return n == 0 ? 0 : sum / n;
    }

    // The loss of outputs y against targets and ∂L/∂y, after checking the targets' length and values.
    private static (double Loss, double[] OutputError) OutputLoss(Tensor y, ReadOnlySpan<double> targets)
    {
        if (targets.Length != y.Length)
            throw new ShapeMismatchException($"MSE loss: targets have length {targets.Length}, expected the readout's output shape {y.Shape}.");
        Numerics.EnsureFinite(targets, "MSE targets");
        var dy = new double[y.Length];
        return (Evaluate(y.Span, targets, dy), dy);
    }

    /// <summary>
    /// The loss of <paramref name="readout"/>'s outputs on <paramref name="states"/> against
    /// <paramref name="targets"/> (the readout's output shape) and the error on the state
    /// e = ∂L/∂z = Cᵀ ∂L/∂y, with ∂L/∂y also returned.
    /// </summary>
    public static (double Loss, double[] StateError, double[] OutputError) StateError(
        Readout readout, ReadOnlySpan<double> states, AxisShape stateShape, ReadOnlySpan<double> targets)
    {
        ArgumentNullException.ThrowIfNull(readout);
        var (loss, dy) = OutputLoss(readout.Forward(states, stateShape), targets);
        return (loss, readout.AsOperator(stateShape).ApplyAdjoint(dy), dy);
    }

    /// <summary>
    /// <see cref="StateError(Readout, ReadOnlySpan{double}, AxisShape, ReadOnlySpan{double})"/> on a float32
    /// trajectory: the outputs from the float32 readout product, the loss and ∂L/∂y in float64, and
    /// e = Cᵀ ∂L/∂y applied in float32 (∂L/∂y rounded once), so no float64 state-sized vector is made.
    /// </summary>
    public static (double Loss, float[] StateError, double[] OutputError) StateError(
        Readout readout, ReadOnlySpan<float> states, AxisShape stateShape, ReadOnlySpan<double> targets)
    {
        ArgumentNullException.ThrowIfNull(readout);
        var (loss, dy) = OutputLoss(readout.Forward(states, stateShape), targets);
        var e = new float[stateShape.Size];
        readout.AsOperator(stateShape, Precision.F32).ApplyAdjointBlock(Float32.ToSingle(dy), e, 1);
        return (loss, e, dy);
    }
}
