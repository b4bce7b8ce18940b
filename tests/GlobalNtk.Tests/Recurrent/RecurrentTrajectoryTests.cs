using System.Runtime.InteropServices;
using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Recurrent;
using GlobalNtk.Ntk;
using Xunit;
using Tensor = GlobalNtk.Dense.Tensor;

namespace GlobalNtk.Tests.Recurrent;

/// <summary>
/// The forward trajectory of the recurrent linearisations, stored once in the compute precision
/// (<see cref="Trajectory"/>): float32 linearisations expose it as <see cref="ChainLinearization.StatesSingle"/>
/// and widen it for <see cref="ChainLinearization.States"/> only when asked, so the NTK operators on
/// float32 blocks hold no float64 trajectory; float64 ones expose their own array and no float32 view.
/// </summary>
public class RecurrentTrajectoryTests
{
    public static TheoryData<string, int> Nets => new() { { "gru", 1 }, { "lstm", 1 }, { "rnn-tanh", 1 }, { "gru", 2 }, { "lstm", 2 } };

    private static (ChainLinearization Lin64, ChainLinearization Lin32) Linearize(string arch, int layers)
    {
        var model = RecurrentModel.Create(new RecurrentConfig(arch, 3, 12, 2) { Seed = 7, Layers = layers });
        var x = new Tensor(TestMath.Uniform(3 * 10 * 3, 8), model.InputShape(3, 10));
        var (lin64, lin32) = (model.Linearize(x, Precision.F64), model.Linearize(x, Precision.F32));
        var type = layers == 1 ? typeof(RecurrentLinearization) : typeof(StackedRecurrentLinearization);
        Assert.IsType(type, lin64);
        Assert.IsType(type, lin32);
        Assert.Equal(Precision.F32, lin32.Precision);
        return (lin64, lin32);
    }

    /// <summary>Both recurrent linearisations keep their trajectory through the shared <see cref="RecurrentChainLinearization"/>.</summary>
    private static Trajectory TrajectoryOf(ChainLinearization lin)
        => Assert.IsAssignableFrom<RecurrentChainLinearization>(lin).Trajectory;

    private static double[] ArrayOf(ReadOnlyMemory<double> m) => TrajectoryAssertions.ArrayOf(m);

    [Theory]
    [MemberData(nameof(Nets))]
    public void Float32StatesAreStoredOnceAndWidenedExactlyOnRequest(string arch, int layers)
    {
        var (lin64, lin32) = Linearize(arch, layers);
        // The float32 forward pass tracks the float64 one to 1e-5 (docs/math.md#numerics; see RecurrentFloat32Tests).
        TrajectoryAssertions.StoredOnceAndWidenedOnRequest(lin64, lin32, TrajectoryOf(lin32), 1e-5);
    }

    [Theory]
    [MemberData(nameof(Nets))]
    public void Float64StatesHaveNoFloat32View(string arch, int layers)
    {
        var (lin64, _) = Linearize(arch, layers);
        Assert.Equal(0, lin64.StatesSingle.Length);
        Assert.True(TrajectoryOf(lin64).IsWidened);
        Assert.Equal(lin64.StateShape.Size, lin64.States.Length);
        Assert.Same(ArrayOf(lin64.States), ArrayOf(lin64.States));
    }

    [Fact]
    public void ATrajectoryWidensFloat32ValuesOnceAndSharesFloat64Ones()
    {
        var t32 = new Trajectory<float>(4);
        t32.Values[0] = 0.1f; t32.Values[3] = -2.5e-30f;
        Assert.Same(t32.Values, t32.Single);
        Assert.False(t32.IsWidened);
        Assert.Equal(new double[] { 0.1f, 0, 0, -2.5e-30f }, t32.Wide);
        Assert.Same(t32.Wide, t32.Wide);
        Assert.True(t32.IsWidened);

        var t64 = new Trajectory<double>(3);
        Assert.Null(t64.Single);
        Assert.Same(t64.Values, t64.Wide);
    }

    [Fact]
    public void ATrajectoryNamesItsFirstNonFiniteState()
    {
        var t32 = new Trajectory<float>(5);
        t32.EnsureFinite("z");
        t32.Values[2] = float.PositiveInfinity;
        var e = Assert.Throws<NonFiniteException>(() => t32.EnsureFinite("gru states"));
        Assert.Contains("gru states: element 2 of 5", e.Message);
        Assert.False(t32.IsWidened);   // checked in float32, not through a widened copy

        var t64 = new Trajectory<double>(3);
        t64.Values[1] = double.NaN;
        Assert.Contains("element 1 of 3", Assert.Throws<NonFiniteException>(() => t64.EnsureFinite("z")).Message);
    }

    [Fact]
    public void TheLinearisationSharesTheModelsImmutableParameters()
    {
        var model = RecurrentModel.Create(new RecurrentConfig("gru", 3, 12, 2) { Seed = 7 });
        var x = new Tensor(TestMath.Uniform(3 * 10 * 3, 8), model.InputShape(3, 10));
        foreach (var precision in new[] { Precision.F64, Precision.F32 })
        {
            var lin = model.Linearize(x, precision);
            // No float64 copy of θ: the same (immutable) values as the model's.
            Assert.Equal(model.Parameters.Count, lin.Parameters.Count);
            for (int i = 0; i < lin.Parameters.Count; i++) Assert.Same(model.Parameters[i].Data, lin.Parameters[i].Data);
        }
    }
}
