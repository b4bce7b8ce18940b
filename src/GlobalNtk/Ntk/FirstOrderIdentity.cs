using GlobalNtk.Dense;
using GlobalNtk.Models;

namespace GlobalNtk.Ntk;

/// <summary>The outcome of one gradient step compared with its first-order prediction.</summary>
/// <param name="Eta">Step size η.</param>
/// <param name="Actual">Δz = z(θ − η∇_θL) − z(θ), actual change of the state.</param>
/// <param name="Predicted">−η NTK_S e, the first-order prediction (MATH.md §2, §6).</param>
/// <param name="RelativeError">‖Δz − pred‖ / ‖pred‖: O(η) when the identity holds.</param>
public sealed record FirstOrderResult(double Eta, double[] Actual, double[] Predicted, double RelativeError);

/// <summary>
/// The first-order identity (MATH.md §6): after one gradient-descent step θ ← θ − η ∇_θL, the
/// state moves by Δz = −η NTK_S e + O(η²), with e = ∂L/∂z the explicit error on the state.
/// </summary>
/// <remarks>
/// Scale convention: L is the MSE summed over every trial, step and output, L = ½ Σ ‖y − y*‖²
/// (no mean), so with a readout y = C z + c the error is e = Cᵀ(y − y*) and ∇_θL = (dz/dθ)* e
/// exactly (no 1/N factor anywhere). Any other loss works too: pass its ∂L/∂z as e. Only the
/// chain's θ moves; the readout is held fixed (it does not change z).
/// </remarks>
public static class FirstOrderIdentity
{
    /// <summary>
    /// Takes one step of size <paramref name="eta"/> on the chain parameters of
    /// <paramref name="model"/> along −(dz/dθ)* e, re-runs the forward pass, restores θ, and
    /// returns actual vs predicted state change.
    /// </summary>
    public static FirstOrderResult Check(IChainModel model, Tensor inputs, ReadOnlySpan<double> stateError, double eta) =>
        Check(model, inputs, model.Linearize(inputs), stateError, eta);

    /// <summary>
    /// The same on the MSE of the model's own readout against <paramref name="targets"/> (shape
    /// <c>Readout.OutputShape(state shape)</c>): e = Cᵀ(y − y*) for L = ½ Σ ‖y − y*‖².
    /// </summary>
    public static FirstOrderResult Check(IChainModel model, Tensor inputs, Tensor targets, double eta)
    {
        var lin0 = model.Linearize(inputs);
        var e = MseStateError(model.Readout, lin0.States.Span, lin0.StateShape, targets.Span);
        return Check(model, inputs, lin0, e, eta);
    }

    /// <summary>
    /// ∂L/∂z = Cᵀ(y − y*) for L = ½ Σ ‖y − y*‖² (summed, no mean) with y = C z + b the readout.
    /// </summary>
    public static double[] MseStateError(Readout readout, ReadOnlySpan<double> states, AxisShape stateShape, ReadOnlySpan<double> targets)
    {
        var y = readout.Forward(states, stateShape);
        if (targets.Length != y.Length)
            throw new Operators.ShapeMismatchException($"MSE error: targets have length {targets.Length}, expected the readout's output shape {y.Shape}.");
        Numerics.EnsureFinite(targets, "MSE targets");
        var r = y.Span;
        for (int i = 0; i < r.Length; i++) r[i] -= targets[i];
        return readout.AsOperator(stateShape).ApplyAdjoint(r);
    }

    private static FirstOrderResult Check(IChainModel model, Tensor inputs, ChainLinearization lin0, ReadOnlySpan<double> stateError, double eta)
    {
        if (!(eta > 0) || !double.IsFinite(eta)) throw new ArgumentOutOfRangeException(nameof(eta), $"First-order check: η = {eta} must be positive and finite.");
        if (stateError.Length != lin0.StateShape.Size)
            throw new Operators.ShapeMismatchException($"First-order check: error e has length {stateError.Length}, expected the state shape {lin0.StateShape}.");
        var ops = new NtkOperators(lin0);
        var z0 = lin0.States.ToArray();
        var grad = ops.WholeModelJacobian.ApplyAdjoint(stateError);           // ∇_θL = (dz/dθ)* e
        var predicted = ops.NtkS.Apply(stateError);                            // NTK_S e
        Numerics.Scale(predicted, -eta);

        var theta0 = model.Parameters.Flatten();
        var theta1 = (double[])theta0.Clone();
        Numerics.Axpy(-eta, grad, theta1);
        double[] z1;
        try
        {
            model.Parameters.Assign(theta1);
            z1 = model.Linearize(inputs).States.ToArray();
        }
        finally
        {
            model.Parameters.Assign(theta0);
        }
        var actual = new double[z0.Length];
        for (int i = 0; i < z0.Length; i++) actual[i] = z1[i] - z0[i];
        var diff = (double[])actual.Clone();
        Numerics.Axpy(-1.0, predicted, diff);
        double pn = Numerics.Norm(predicted);
        double rel = pn > 0 ? Numerics.Norm(diff) / pn : double.PositiveInfinity;
        return new FirstOrderResult(eta, actual, predicted, rel);
    }
}
