using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Recurrent;
using GlobalNtk.Ntk;
using GlobalNtk.Operators;
using GlobalNtk.Training;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// The one loss (<see cref="MseLoss"/>): its value, its output gradient and the state error
/// e = ∂L/∂z against central finite differences of the same L, and the same L and e wherever they
/// are used (training gradient, first-order identity).
/// </summary>
public class LossTests
{
    [Fact]
    public void ValueIsTheMeanOverAllEntries()
    {
        double[] y = [1, 2, 3, 4], t = [0, 2, 5, 4];
        // (1 + 0 + 4 + 0) / 4, not ½ Σ and not ½ mean.
        Assert.Equal(1.25, MseLoss.Value(y, t));
        var dy = new double[4];
        Assert.Equal(1.25, MseLoss.Evaluate(y, t, dy));
        Assert.Equal(new[] { 0.5, 0, -1, 0 }, dy);
        Assert.Equal(0.0, MseLoss.Value([], []));
        Assert.Throws<ShapeMismatchException>(() => MseLoss.Value(y, t.AsSpan(0, 3)));
    }

    [Fact]
    public void OutputGradientMatchesCentralDifferences()
    {
        var rng = new Random(4);
        var y = TestMath.Uniform(rng, 12);
        var t = TestMath.Uniform(rng, 12);
        var dy = new double[12];
        MseLoss.Evaluate(y, t, dy);
        const double h = 1e-5;
        for (int i = 0; i < y.Length; i++)
        {
            var yp = (double[])y.Clone(); yp[i] += h;
            var ym = (double[])y.Clone(); ym[i] -= h;
            double fd = (MseLoss.Value(yp, t) - MseLoss.Value(ym, t)) / (2 * h);
            // L is quadratic: the central difference is exact up to rounding (~ε·L/h).
            Assert.Equal(dy[i], fd, 1e-9);
        }
    }

    [Theory]
    [InlineData("gru")]
    [InlineData("lstm")]
    public void StateErrorIsTheGradientOfTheLossOnTheState(string arch)
    {
        var model = RecurrentModel.Create(arch, 2, 3, 2, seed: 5);
        var x = TestMath.Uniform(new Random(6), model.InputShape(2, 4));
        var lin = model.Linearize(x);
        var shape = lin.StateShape;
        var z = lin.States.ToArray();
        var targets = TestMath.Uniform(new Random(7), model.Readout.OutputShape(shape).Size);
        var (loss, e, dy) = MseLoss.StateError(model.Readout, z, shape, targets);
        double L(double[] state) => MseLoss.Value(model.Readout.Forward(state, shape).Span, targets);
        Assert.Equal(L(z), loss);

        // ⟨e, d⟩ = dL/dε L(z + ε d) for random directions d, by central differences (L is quadratic in z).
        var rng = new Random(8);
        const double h = 1e-4;
        for (int trial = 0; trial < 3; trial++)
        {
            var d = TestMath.Uniform(rng, z.Length);
            var zp = (double[])z.Clone(); Numerics.Axpy(h, d, zp);
            var zm = (double[])z.Clone(); Numerics.Axpy(-h, d, zm);
            double fd = (L(zp) - L(zm)) / (2 * h);
            double an = Numerics.Dot(e, d);
            Assert.True(TestMath.RelativeDifference(an, fd) < 1e-8, $"{arch}: ⟨e, d⟩ = {an}, finite difference {fd}");
        }
        // e = Cᵀ ∂L/∂y exactly.
        Assert.Equal(model.Readout.AsOperator(shape).ApplyAdjoint(dy), e);
    }

    [Fact]
    public void TrainingGradientIsTheGradientOfTheSameLoss()
    {
        var (model, x, lin, y) = Setup("gru", steps: 4, seed: 9);
        var grad = new double[model.AllParameters.TotalSize];
        var (loss, _) = ModelGradient.Compute(model, x, y, grad);
        Assert.Equal(MseLoss.StateError(model.Readout, lin.States.Span, lin.StateShape, y.Span).Loss, loss);

        // Directional derivative of the training loss along a random δθ, by central differences.
        var theta = model.AllParameters.Flatten();
        var d = TestMath.Uniform(new Random(12), theta.Length);
        const double h = 1e-5;
        double At(double s)
        {
            var th = (double[])theta.Clone(); Numerics.Axpy(s, d, th);
            return MseLoss.Value(ModelGradient.Predict(model.WithAllValues(th), x).Span, y.Span);
        }
        double fd = (At(h) - At(-h)) / (2 * h);
        Assert.True(TestMath.RelativeDifference(Numerics.Dot(grad, d), fd) < 1e-6, $"∇L·d = {Numerics.Dot(grad, d)}, finite difference {fd}");
    }

    [Fact]
    public void FirstOrderCheckOnTargetsUsesTheLossStateError()
    {
        var (model, x, lin, targets) = Setup("rnn-tanh", steps: 3, seed: 13);
        var e = MseLoss.StateError(model.Readout, lin.States.Span, lin.StateShape, targets.Span).StateError;
        var viaTargets = FirstOrderIdentity.Check(model, x, targets, 1e-3);
        var viaError = FirstOrderIdentity.Check(model, x, e, 1e-3);
        Assert.Equal(viaError.Predicted, viaTargets.Predicted);
        Assert.Equal(viaError.Actual, viaTargets.Actual);
    }

    /// <summary>A small recurrent model (2 trials, 2 inputs, 3 units, 2 outputs), its inputs, linearisation and random targets.</summary>
    private static (RecurrentModel Model, Tensor Inputs, ChainLinearization Lin, Tensor Targets) Setup(string arch, int steps, int seed)
    {
        var model = RecurrentModel.Create(arch, 2, 3, 2, seed: seed);
        var rng = new Random(seed);   // inputs, then targets, from one stream
        var x = TestMath.Uniform(rng, model.InputShape(2, steps));
        var lin = model.Linearize(x);
        return (model, x, lin, TestMath.Uniform(rng, model.Readout.OutputShape(lin.StateShape)));

    }
}
