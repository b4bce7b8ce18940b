using GlobalNtk.Dense;
using GlobalNtk.Models;

using GlobalNtk.Operators;

namespace GlobalNtk.Ntk;

/// <summary>
/// The immediate parameter Jacobian J_θ (docs/math.md#global-ntk): θ-space (axis <c>parameter</c>, size m) →
/// state, with z_{k−1} held fixed; its adjoint J_θ* is the weight gradient of a per-step error.
/// </summary>
public sealed class ParameterJacobianOperator : CheckedOperator
{
    private readonly ChainLinearization _lin;

    /// <summary>J_θ of a linearised chain.</summary>
    public ParameterJacobianOperator(ChainLinearization lin) : base(NtkOperators.ParameterShape(lin), lin.StateShape) => _lin = lin;

    /// <inheritdoc/>
    public override string Name => "J_θ";
    /// <inheritdoc/>
    protected override void ForwardBlock(ReadOnlySpan<double> x, Span<double> y, int count) => _lin.ParamJvp(x, y, count);
    /// <inheritdoc/>
    protected override void AdjointBlock(ReadOnlySpan<double> x, Span<double> y, int count) => _lin.ParamVjp(x, y, count);

    /// <inheritdoc/>
    internal override bool AppliesFloat32Natively => _lin.HasSingleParamMaps;

    /// <summary>J_θ on float32 blocks: natively when the linearisation has a float32 J_θ, else through the float64 map.</summary>
    protected override void ForwardBlock(ReadOnlySpan<float> x, Span<float> y, int count)
    {
        if (!_lin.TryParamJvp(x, y, count)) base.ForwardBlock(x, y, count);
    }

    /// <summary>J_θ* on float32 blocks: natively when the linearisation has a float32 J_θ*, else through the float64 map.</summary>
    protected override void AdjointBlock(ReadOnlySpan<float> x, Span<float> y, int count)
    {
        if (!_lin.TryParamVjp(x, y, count)) base.AdjointBlock(x, y, count);
    }
}

/// <summary>
/// The whole-model Jacobian dz/dθ = P J_θ (docs/math.md#global-ntk) as one fused tangent sweep,
/// δz_k = A_k δz_{k−1} + (J_θ δθ)_k, and its adjoint J_θ* P* (one BPTT sweep then the weight
/// gradient): what differentiating the unrolled model end to end gives.
/// </summary>
public sealed class WholeModelJacobianOperator : CheckedOperator
{
    private readonly ChainLinearization _lin;

    /// <summary>dz/dθ of a linearised chain.</summary>
    public WholeModelJacobianOperator(ChainLinearization lin) : base(NtkOperators.ParameterShape(lin), lin.StateShape) => _lin = lin;

    /// <inheritdoc/>
    public override string Name => "dz/dθ";

    /// <inheritdoc/>
    protected override void ForwardBlock(ReadOnlySpan<double> x, Span<double> y, int count)
    {
        _lin.ParamJvp(x, y, count);
        Sweeps.Propagate(_lin, y, count);
    }

    /// <inheritdoc/>
    protected override void AdjointBlock(ReadOnlySpan<double> x, Span<double> y, int count)
    {
        using var w = new BlockBuffer((long)count * Range.Size);
        x.CopyTo(w.Span);
        Sweeps.PropagateAdjoint(_lin, w.Span, count);
        _lin.ParamVjp(w.Span, y, count);
    }
}

/// <summary>
/// NTK_S = P K P* (docs/math.md#global-ntk) for any kernel K on the state space: one BPTT sweep, K, one
/// forward sweep, in place on one scratch block. Self-adjoint.
/// </summary>
public sealed class StateNtkOperator : CheckedOperator
{
    private readonly ChainLinearization _lin;
    private readonly Operators.LinearOperator _k;

    /// <summary>P K P* for the given K.</summary>
    public StateNtkOperator(ChainLinearization lin, Operators.LinearOperator k) : base(lin.StateShape, lin.StateShape)
    {
        if (!k.Domain.Equals(lin.StateShape) || !k.Range.Equals(lin.StateShape))
            throw new Operators.ShapeMismatchException($"NTK_S: K maps {k.Domain} -> {k.Range}, expected the state shape {lin.StateShape}.");
        _lin = lin;
        _k = k;
        _fused = k is KroneckerKernelOperator { ByStep: true };
    }

    /// <summary>
    /// Whether K is the step-by-step Kronecker K of a block chain: then P K P* runs as one fused
    /// cotangent and one tangent sweep (<see cref="ChainLinearization.TryApplyStateNtk(ReadOnlySpan{double}, Span{double}, int)"/>).
    /// </summary>
    private readonly bool _fused;

    /// <inheritdoc/>
    public override string Name => "NTK_S";
    /// <inheritdoc/>
    public override bool IsSelfAdjoint => true;

    /// <inheritdoc/>
    protected override void ForwardBlock(ReadOnlySpan<double> x, Span<double> y, int count)
    {
        if (_fused && _lin.TryApplyStateNtk(x, y, count)) return;
        using var w = new BlockBuffer((long)count * Domain.Size);
        x.CopyTo(w.Span);
        Sweeps.PropagateAdjoint(_lin, w.Span, count);
        _k.ApplyBlock(w.Span, y, count);
        Sweeps.Propagate(_lin, y, count);
    }

    /// <inheritdoc/>
    protected override void AdjointBlock(ReadOnlySpan<double> x, Span<double> y, int count) => ForwardBlock(x, y, count);

    /// <summary>Float32 blocks stay float32 on a linearisation with float32 state maps (K inside may widen its own part).</summary>
    internal override bool AppliesFloat32Natively => _lin.HasSingleStateMaps;

    /// <summary>
    /// On a float32 linearisation with float32 state maps: the scratch block and both sweeps in
    /// float32, and K applied to the float32 block (natively, or through its float64 map).
    /// </summary>
    protected override void ForwardBlock(ReadOnlySpan<float> x, Span<float> y, int count)
    {
        if (!_lin.HasSingleStateMaps) { base.ForwardBlock(x, y, count); return; }
        if (_fused && _lin.TryApplyStateNtk(x, y, count)) return;
        using var w = new Float32Buffer((long)count * Domain.Size);
        x.CopyTo(w.Span);
        Sweeps.PropagateAdjoint(_lin, w.Span, count);
        _k.ApplyBlock(w.Span, y, count);
        Sweeps.Propagate(_lin, y, count);
    }

    /// <inheritdoc/>
    protected override void AdjointBlock(ReadOnlySpan<float> x, Span<float> y, int count) => ForwardBlock(x, y, count);
}
