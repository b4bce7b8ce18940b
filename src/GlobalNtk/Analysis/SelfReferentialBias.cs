using GlobalNtk.Dense;
using GlobalNtk.Operators;

namespace GlobalNtk.Analysis;

/// <summary>
/// The self-referential bias index (docs/math.md#self-referential-bias):
/// <c>SRB(r) = (‖Π_r Δz‖² / ‖Δz‖²) / (‖Π_r e‖² / ‖e‖²)</c> with <c>Δz = −NTK_S e</c> and Π_r the
/// projection of every state vector (last state axis) onto the top-r principal directions of the
/// model's own activity. SRB &gt; 1: gradient descent moves the state preferentially inside the
/// modes the model already uses. For an NTK_S that applies float32 natively (<c>--precision f32</c>)
/// Δz is computed and held in float32, its projections summed in float64.
/// </summary>
public static class SelfReferentialBias
{
    /// <summary>
    /// Computes SRB(r) for each r in <paramref name="ranks"/>. <paramref name="states"/> and
    /// <paramref name="error"/> are laid out as <paramref name="ntk"/>'s domain, whose last axis is
    /// the per-vector (unit/feature) axis.
    /// </summary>
    public static SrbResult Compute(LinearOperator ntk, ReadOnlySpan<double> states, ReadOnlySpan<double> error,
        IReadOnlyList<int> ranks, string errorSource)
    {
        var shape = StateSpace(ntk, states.Length, error.Length);
        Numerics.EnsureFinite(error, "SRB error vector e");
        int dim = shape.Sizes[^1];
        var pcs = PrincipalDirections.Of(states, dim);
        var fz = ProbeBlock.UsesFloat32(ntk) ? UpdateFractionsSingle(ntk, error, pcs, ranks) : UpdateFractions(ntk, error, pcs, ranks);
        var fe = pcs.CapturedFractions(error, ranks);
        return Result(shape, pcs, ranks, fz, fe, errorSource);
    }

    /// <summary>
    /// SRB(r) on a float32 trajectory with a float32 error (<c>--precision f32</c>): the principal
    /// directions are summed in float64 from the float32 states, Δz = −NTK_S e is applied to the
    /// float32 e and held in float32, and every projection is summed in float64; no state-sized
    /// float64 vector is made.
    /// </summary>
    public static SrbResult Compute(LinearOperator ntk, ReadOnlySpan<float> states, ReadOnlySpan<float> error,
        IReadOnlyList<int> ranks, string errorSource)
    {
        var shape = StateSpace(ntk, states.Length, error.Length);
        Float32.EnsureFinite(error, "SRB error vector e");
        int dim = shape.Sizes[^1];
        var pcs = PrincipalDirections.Of(states, dim);
        var dz = new float[error.Length];
        ntk.ApplyBlock(error, dz, 1);
        Float32.EnsureFinite(dz, "SRB update Δz = −NTK_S e");
        var fz = pcs.CapturedFractions(dz, ranks);
        var fe = pcs.CapturedFractions(error, ranks);
        return Result(shape, pcs, ranks, fz, fe, errorSource);
    }

    // NTK_S's state space, after checking that the states and the error lie in it.
    private static AxisShape StateSpace(LinearOperator ntk, int states, int error)
    {
        var shape = ntk.Domain;
        if (!ntk.IsSquare)
            throw new ShapeMismatchException($"SRB: NTK_S must map a state space to itself, got {ntk.Domain} -> {ntk.Range}.");
        if (states != shape.Size)
            throw new ShapeMismatchException($"SRB: states have {states} values, NTK_S's state space is {shape}.");
        if (error != shape.Size)
            throw new ShapeMismatchException($"SRB: error has {error} values, NTK_S's state space is {shape}.");
        return shape;
    }

    private static SrbResult Result(AxisShape shape, PrincipalDirections pcs, IReadOnlyList<int> ranks, double[] fz, double[] fe, string errorSource)
    {
        var index = fz.Zip(fe, (a, b) => b > 0 ? a / b : double.NaN).ToArray();
        var explained = Cumulative(pcs.Variances);
        return new SrbResult(shape.Names[^1], ranks.ToArray(), index, fz, fe,
            ranks.Select(r => r == 0 ? 0.0 : explained[r - 1]).ToArray(), errorSource);
    }

    // ‖Π_r Δz‖² / ‖Δz‖² with Δz = −NTK_S e in float64.
    private static double[] UpdateFractions(LinearOperator ntk, ReadOnlySpan<double> error, PrincipalDirections pcs, IReadOnlyList<int> ranks)
    {
        var dz = ntk.Apply(error);
        Numerics.Scale(dz, -1.0);
        Numerics.EnsureFinite(dz, "SRB update Δz = −NTK_S e");
        return pcs.CapturedFractions(dz, ranks);
    }

    // The same for an NTK_S that applies float32 natively: e rounded once to float32 (relative 6e-8,
    // below the float32 operator's own error), Δz kept in float32, and its projections summed in
    // float64 (PrincipalDirections.CapturedFractions). The fractions are squares, so Δz's sign is not applied.
    private static double[] UpdateFractionsSingle(LinearOperator ntk, ReadOnlySpan<double> error, PrincipalDirections pcs, IReadOnlyList<int> ranks)
    {
        var e = Float32.ToSingle(error);
        var dz = new float[e.Length];
        ntk.ApplyBlock(e, dz, 1);
        Float32.EnsureFinite(dz, "SRB update Δz = −NTK_S e");
        return pcs.CapturedFractions(dz, ranks);
    }

    /// <summary>Default rank grid: 1..min(dim, maxRank).</summary>
    public static int[] DefaultRanks(int dim, int maxRank = 64) => Enumerable.Range(1, Math.Min(dim, maxRank)).ToArray();

    private static double[] Cumulative(double[] v)
    {
        double total = v.Sum();
        var c = new double[v.Length];
        double acc = 0;
        for (int i = 0; i < v.Length; i++) { acc += v[i]; c[i] = total > 0 ? acc / total : double.NaN; }
        return c;
    }
}

/// <summary>SRB(r) and its two ingredients at each rank r (docs/math.md#self-referential-bias).</summary>
/// <param name="VectorAxis">State axis whose vectors are projected (e.g. <c>unit</c>, <c>feature</c>).</param>
/// <param name="Ranks">The ranks r.</param>
/// <param name="Index">SRB(r).</param>
/// <param name="UpdateFraction">‖Π_r Δz‖² / ‖Δz‖².</param>
/// <param name="ErrorFraction">‖Π_r e‖² / ‖e‖².</param>
/// <param name="ActivityVarianceFraction">Fraction of the activity's variance in the top-r directions.</param>
/// <param name="ErrorSource">How e was obtained (MSE gradient on targets, or the documented default).</param>
public sealed record SrbResult(string VectorAxis, int[] Ranks, double[] Index, double[] UpdateFraction,
    double[] ErrorFraction, double[] ActivityVarianceFraction, string ErrorSource);
