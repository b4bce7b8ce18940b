using GlobalNtk.Dense;
using GlobalNtk.Models;

namespace GlobalNtk.Ntk;

/// <summary>The outcome of one gradient step compared with its first-order prediction.</summary>
/// <param name="Eta">Step size η.</param>
/// <param name="Actual">Δz = z(θ − η∇_θL) − z(θ), actual change of the state.</param>
/// <param name="Predicted">−η NTK_S e, the first-order prediction (docs/math.md#first-order-check).</param>
/// <param name="RelativeError">‖Δz − pred‖ / ‖pred‖: O(η) when the identity holds.</param>
public sealed record FirstOrderResult(double Eta, double[] Actual, double[] Predicted, double RelativeError);

/// <summary>
/// The first-order identity (docs/math.md#first-order-check): after one gradient-descent step
/// θ ← θ − η ∇_θL, the state moves by Δz = −η NTK_S e + O(η²), with e = ∂L/∂z the explicit error
/// on the state.
/// </summary>
/// <remarks>
/// ∇_θL = (dz/dθ)* e holds for any loss whose gradient on the state is e; the targets overload
/// uses the one loss of the library, <see cref="MseLoss"/> (the mean over all output entries), so
/// its e is the same vector training back-propagates. Only the chain's θ moves; the readout is
/// held fixed (it does not change z).
/// </remarks>
public static class FirstOrderIdentity
{
    /// <summary>
    /// Takes one step of size <paramref name="eta"/> on the chain parameters of
    /// <paramref name="model"/> along −(dz/dθ)* e, runs the forward pass of the stepped model (a new model: <paramref name="model"/> is unchanged) and
    /// returns actual vs predicted state change.
    /// </summary>
    public static FirstOrderResult Check(IChainModel model, Tensor inputs, ReadOnlySpan<double> stateError, double eta) =>
        Check(model, inputs, model.Linearize(inputs), stateError, eta);

    /// <summary>
    /// The same on the loss (<see cref="MseLoss"/>) of the model's own readout against
    /// <paramref name="targets"/> (shape <c>Readout.OutputShape(state shape)</c>): e = Cᵀ ∂L/∂y.
    /// </summary>
    public static FirstOrderResult Check(IChainModel model, Tensor inputs, Tensor targets, double eta)
    {
        var lin0 = model.Linearize(inputs);
        var e = MseLoss.StateError(model.Readout, lin0.States.Span, lin0.StateShape, targets.Span).StateError;
        return Check(model, inputs, lin0, e, eta);
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
        var z1 = model.WithChainValues(theta1).Linearize(inputs).States.ToArray();
        var actual = new double[z0.Length];
        for (int i = 0; i < z0.Length; i++) actual[i] = z1[i] - z0[i];
        var diff = (double[])actual.Clone();
        Numerics.Axpy(-1.0, predicted, diff);
        double pn = Numerics.Norm(predicted);
        double rel = pn > 0 ? Numerics.Norm(diff) / pn : double.PositiveInfinity;
        return new FirstOrderResult(eta, actual, predicted, rel);
    }
}
