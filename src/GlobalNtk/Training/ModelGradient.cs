using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Ntk;

namespace GlobalNtk.Training;

/// <summary>
/// The loss (<see cref="MseLoss"/>) of a chain model on a batch and its gradient with respect to
/// every trainable tensor, computed through the NTK operators so that training and the NTK share
/// one code path (docs/math.md#global-ntk): e = ∂L/∂z = Cᵀ ∂L/∂y, g_θ = J_θ* P* e, plus the
/// readout's own gradient.
/// </summary>
public static class ModelGradient
{
    /// <summary>
    /// Runs <paramref name="model"/> on <paramref name="inputs"/>, returns the loss against
    /// <paramref name="targets"/> and the outputs, and writes ∂L/∂θ (flat, in
    /// <see cref="IChainModel.AllParameters"/> order) into <paramref name="gradient"/>.
    /// </summary>
    public static (double Loss, Tensor Outputs) Compute(IChainModel model, Tensor inputs, Tensor targets, Span<double> gradient) =>
        Compute(model, inputs, targets, gradient, Precision.F64);

    /// <summary>
    /// <see cref="Compute(IChainModel, Tensor, Tensor, Span{double})"/> in <paramref name="precision"/>. With
    /// <see cref="Precision.F32"/> the model is linearised in float32 and the outputs, e = Cᵀ ∂L/∂y, P* e and
    /// J_θ* P* e are float32 blocks through the float32 operators; the loss, ∂L/∂y and the readout's own
    /// gradient (a sum over every output row, which cancels) are summed in float64, the last from the
    /// float32 states widened exactly.
    /// </summary>
    public static (double Loss, Tensor Outputs) Compute(IChainModel model, Tensor inputs, Tensor targets, Span<double> gradient, Precision precision)
    {
        var all = model.AllParameters;
        if (gradient.Length != all.TotalSize)
            throw new ArgumentException($"Gradient buffer has length {gradient.Length}, model has {all.TotalSize} parameters.");
        var lin = model.Linearize(inputs, precision);
        var readout = model.Readout;
        var single = lin.StatesSingle;
        var y = single.Length > 0 ? readout.Forward(single.Span, lin.StateShape) : readout.Forward(lin.States.Span, lin.StateShape);
        CheckTargets(y, targets);
        var dy = new double[y.Length];
        double loss = MseLoss.Evaluate(y.Span, targets.Span, dy);
        Numerics.EnsureFinite([loss], $"{model.Arch} training loss (diverged? lower the learning rate)");

        // e = Cᵀ ∂L/∂y (explicit error on the state), then g_θ = J_θ* P* e (docs/math.md#global-ntk).
        var ops = new NtkOperators(lin);
        double[] gTheta;
        if (single.Length > 0)
        {
            int s = lin.StateShape.Size;
            var e = new float[s];
            readout.AsOperator(lin.StateShape, Precision.F32).ApplyAdjointBlock(Float32.ToSingle(dy), e, 1);
            var w = new float[s];
            ops.PAdjoint.ApplyBlock(e, w, 1);
            var g = new float[lin.Parameters.TotalSize];
            ops.Jtheta.ApplyAdjointBlock(w, g, 1);
            gTheta = Float32.ToDouble(g);
        }
        else
        {
            var e = readout.AsOperator(lin.StateShape).ApplyAdjoint(dy);
            var w = ops.PAdjoint.Apply(e);
            gTheta = ops.Jtheta.ApplyAdjoint(w);
        }
        var chain = lin.Parameters;
        for (int i = 0; i < chain.Count; i++)
            gTheta.AsSpan(chain.OffsetOf(i), chain[i].Size).CopyTo(gradient.Slice(all.OffsetOf(chain[i].Name), chain[i].Size));
        readout.ParameterVjp(lin.States.Span, lin.StateShape, dy,
            gradient.Slice(all.OffsetOf(readout.Weight.Name), readout.Weight.Size),
            readout.Bias is { } bias ? gradient.Slice(all.OffsetOf(bias.Name), bias.Size) : []);
        return (loss, y);
    }

    /// <summary>Outputs of <paramref name="model"/> on <paramref name="inputs"/> (forward pass and readout).</summary>
    public static Tensor Predict(IChainModel model, Tensor inputs) => Predict(model, inputs, Precision.F64);

    /// <summary>Outputs of <paramref name="model"/> on <paramref name="inputs"/>, the forward pass and readout in <paramref name="precision"/>.</summary>
    public static Tensor Predict(IChainModel model, Tensor inputs, Precision precision)
    {
        var lin = model.Linearize(inputs, precision);
        var single = lin.StatesSingle;
        return single.Length > 0 ? model.Readout.Forward(single.Span, lin.StateShape) : model.Readout.Forward(lin.States.Span, lin.StateShape);
    }

    /// <summary>Throws unless outputs and targets have the same sizes.</summary>
    internal static void CheckTargets(Tensor outputs, Tensor targets)
    {
        if (!outputs.Shape.Sizes.SequenceEqual(targets.Shape.Sizes))
            throw new ArgumentException($"Model outputs {outputs.Shape} do not match targets {targets.Shape}.");
    }
}
