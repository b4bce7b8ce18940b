using GlobalNtk.Models;

namespace GlobalNtk.Ntk;

/// <summary>
/// The propagation operator P = (∂F/∂z)⁻¹ (docs/math.md#global-ntk): v = P q solves v_k = q_k + A_k v_{k−1},
/// v_{−1} = 0. Its adjoint is back-propagation through time. With <c>adjoint: true</c> the
/// operator is P* itself (its adjoint is then P).
/// </summary>
public sealed class PropagationOperator : CheckedOperator
{
    private readonly ChainLinearization _lin;
    private readonly bool _adjoint;

    /// <summary>P (or P* when <paramref name="adjoint"/>) of a linearised chain.</summary>
    public PropagationOperator(ChainLinearization lin, bool adjoint = false) : base(lin.StateShape, lin.StateShape)
    {
        _lin = lin;
        _adjoint = adjoint;
    }

    /// <inheritdoc/>
    public override string Name => _adjoint ? "P*" : "P";
    /// <inheritdoc/>
    internal override bool AppliesFloat32Natively => _lin.HasSingleStateMaps;

    /// <inheritdoc/>
    protected override void ForwardBlock(ReadOnlySpan<double> x, Span<double> y, int count) => Sweep(x, y, count, _adjoint);
    /// <inheritdoc/>
    protected override void AdjointBlock(ReadOnlySpan<double> x, Span<double> y, int count) => Sweep(x, y, count, !_adjoint);

    /// <inheritdoc/>
    protected override void ForwardBlock(ReadOnlySpan<float> x, Span<float> y, int count)
    {
        if (_lin.HasSingleStateMaps) Sweep(x, y, count, _adjoint); else base.ForwardBlock(x, y, count);
    }

    /// <inheritdoc/>
    protected override void AdjointBlock(ReadOnlySpan<float> x, Span<float> y, int count)
    {
        if (_lin.HasSingleStateMaps) Sweep(x, y, count, !_adjoint); else base.AdjointBlock(x, y, count);
    }

    private void Sweep(ReadOnlySpan<float> x, Span<float> y, int count, bool backward)
    {
        x.CopyTo(y);
        if (backward) Sweeps.PropagateAdjoint(_lin, y, count);
        else Sweeps.Propagate(_lin, y, count);
    }

    private void Sweep(ReadOnlySpan<double> x, Span<double> y, int count, bool backward)
    {
        x.CopyTo(y);
        if (backward) Sweeps.PropagateAdjoint(_lin, y, count);
        else Sweeps.Propagate(_lin, y, count);
    }
}

/// <summary>P⁻¹ = ∂F/∂z (docs/math.md#global-ntk): (P⁻¹ q)_k = q_k − A_k q_{k−1}; adjoint (P⁻*q)_{k−1} = q_{k−1} − A_kᵀ q_k.</summary>
public sealed class PropagationInverseOperator : CheckedOperator
{
    private readonly ChainLinearization _lin;

    /// <summary>P⁻¹ of a linearised chain.</summary>
    public PropagationInverseOperator(ChainLinearization lin) : base(lin.StateShape, lin.StateShape) => _lin = lin;

    /// <inheritdoc/>
    public override string Name => "P⁻¹";
    /// <inheritdoc/>
    internal override bool AppliesFloat32Natively => _lin.HasSingleStateMaps;
    /// <inheritdoc/>
    protected override void ForwardBlock(ReadOnlySpan<double> x, Span<double> y, int count) => Sweeps.Inverse(_lin, x, y, count);
    /// <inheritdoc/>
    protected override void AdjointBlock(ReadOnlySpan<double> x, Span<double> y, int count) => Sweeps.InverseAdjoint(_lin, x, y, count);

    /// <inheritdoc/>
    protected override void ForwardBlock(ReadOnlySpan<float> x, Span<float> y, int count)
    {
        if (_lin.HasSingleStateMaps) Sweeps.Inverse(_lin, x, y, count); else base.ForwardBlock(x, y, count);
    }

    /// <inheritdoc/>
    protected override void AdjointBlock(ReadOnlySpan<float> x, Span<float> y, int count)
    {
        if (_lin.HasSingleStateMaps) Sweeps.InverseAdjoint(_lin, x, y, count); else base.AdjointBlock(x, y, count);
    }
}
