using System.Numerics;
using GlobalNtk.Dense;

namespace GlobalNtk.Models;

/// <summary>
/// A linearisation's forward trajectory z (recurrent nets and block chains: transformers, MLPs),
/// stored once in the compute type, with
/// the views <see cref="ChainLinearization.States"/> and <see cref="ChainLinearization.StatesSingle"/>
/// read: float64 shares the array; float32 keeps only float32 values and widens them (exactly) on
/// the first request for float64 states, so a float32 NTK computation holds no float64 trajectory.
/// </summary>
internal abstract class Trajectory
{
    /// <summary>The states in float64: the stored array (float64), or its widened copy, made on first use (float32).</summary>
    public abstract double[] Wide { get; }
    /// <summary>The stored float32 array; null when the states are float64.</summary>
    public abstract float[]? Single { get; }
    /// <summary>Whether float32 states have been widened (<see cref="Wide"/> was asked for); always true for float64.</summary>
    public abstract bool IsWidened { get; }
    /// <summary>Throws <see cref="NonFiniteException"/> naming <paramref name="what"/> at the first NaN/Inf state (in the stored precision).</summary>
    public abstract void EnsureFinite(string what);
}

/// <summary>The trajectory in T (double or float); see <see cref="Trajectory"/>.</summary>
internal sealed class Trajectory<T> : Trajectory where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Lazy<double[]> _wide;

    /// <summary>A zeroed trajectory of <paramref name="length"/> values (the forward pass fills <see cref="Values"/>).</summary>
    public Trajectory(int length)
    {
        Values = new T[length];
        _wide = new Lazy<double[]>(() =>
        {
            if (typeof(T) == typeof(double)) return (double[])(object)Values;
            var d = new double[Values.Length];
            Widening.Widen<T>(Values, d);
            return d;
        });
    }

    /// <summary>The stored values, written by the forward pass only.</summary>
    public T[] Values { get; }

    /// <inheritdoc/>
    public override double[] Wide => _wide.Value;

    /// <inheritdoc/>
    public override bool IsWidened => typeof(T) == typeof(double) || _wide.IsValueCreated;

    /// <inheritdoc/>
    public override float[]? Single => typeof(T) == typeof(float) ? (float[])(object)Values : null;

    /// <inheritdoc/>
    public override void EnsureFinite(string what)
    {
        if (typeof(T) == typeof(double)) Numerics.EnsureFinite((double[])(object)Values, what);
        else Float32.EnsureFinite((float[])(object)Values, what);
    }
}
