using GlobalNtk.Dense;
using GlobalNtk.Ntk;
using Xunit;

namespace GlobalNtk.Tests;

public class NtkFirstOrderTests
{
    [Fact]
    public void GradientStepMovesTheStateByMinusEtaNtkTimesErrorToFirstOrder()
    {
        var model = new NtkTinyRnn(5, 2, 0.5, 31, jointSite: false);
        var x = NtkTinyRnn.RandomInputs(3, 6, 2, 32);
        var theta = model.Parameters.Flatten();
        // MSE on the state itself (C = I): L = ½ Σ ‖z − z*‖², e = z − z*.
        var z = model.Linearize(x).States.ToArray();
        var target = NtkChecks.Random(z.Length, 33);
        var e = z.Select((v, i) => v - target[i]).ToArray();
        // η in units of 1/‖NTK_S‖ (roughly): both steps are small.
        var ntkE = new NtkOperators(model.Linearize(x)).NtkS.Apply(e);
        double scale = Numerics.Norm(e) / Numerics.Norm(ntkE);
        var big = FirstOrderIdentity.Check(model, x, e, 1e-2 * scale);
        var small = FirstOrderIdentity.Check(model, x, e, 1e-3 * scale);
        Assert.Equal(theta, model.Parameters.Flatten());   // θ restored
        Assert.True(big.RelativeError < 0.05, $"relative error {big.RelativeError:E2} at η = {big.Eta:E2}");
        double ratio = small.RelativeError / big.RelativeError;
        Assert.InRange(ratio, 0.07, 0.13);   // O(η): ten times smaller step, ten times smaller error
    }
}
