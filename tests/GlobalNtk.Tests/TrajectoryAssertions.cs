using System.Runtime.InteropServices;
using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Ntk;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>The trajectory contract every float32 linearisation keeps (<see cref="Trajectory"/>), checked the same way for each family.</summary>
internal static class TrajectoryAssertions
{
    /// <summary>The array a float64 view is over.</summary>
    public static double[] ArrayOf(ReadOnlyMemory<double> m)
    {
        Assert.True(MemoryMarshal.TryGetArray(m, out var segment));
        return segment.Array!;
    }

    /// <summary>
    /// lin32 stores its trajectory once in float32; the NTK operators on float32 blocks (K = J_θJ_θ*
    /// among them) never widen it; <see cref="ChainLinearization.States"/> is its exact widening, made
    /// once and kept, within <paramref name="tolerance"/> of the float64 linearisation's states.
    /// </summary>
    public static void StoredOnceAndWidenedOnRequest(ChainLinearization lin64, ChainLinearization lin32, Trajectory trajectory, double tolerance)
    {
        var single = lin32.StatesSingle;
        Assert.Equal(lin32.StateShape.Size, single.Length);
        Assert.False(trajectory.IsWidened);

        var ops = new NtkOperators(lin32);
        int n = lin32.StateShape.Size;
        var v = Float32.ToSingle(TestMath.Gaussian(new Random(3), 2 * n));
        foreach (var op in new[] { ops.NtkS, ops.K, ops.P, ops.PAdjoint, ops.KKronecker }) op.ApplyBlock(v, new float[2 * n], 2);
        Assert.False(trajectory.IsWidened);

        var wide = lin32.States;
        Assert.True(trajectory.IsWidened);
        Assert.Equal(Float32.ToDouble(single.ToArray()), wide.ToArray());
        Assert.Same(ArrayOf(wide), ArrayOf(lin32.States));
        Assert.True(TestMath.RelativeError(wide.ToArray(), lin64.States.ToArray()) <= tolerance);
    }
}
