namespace GlobalNtk.Operators;

/// <summary>The adjoint A* of an operator, as a view: apply and adjoint-apply swap roles.</summary>
public sealed class AdjointOperator : LinearOperator
{
    /// <summary>Wraps <paramref name="inner"/>; prefer <see cref="LinearOperator.Adjoint"/>.</summary>
    public AdjointOperator(LinearOperator inner) : base(inner.Range, inner.Domain) => Inner = inner;

    /// <summary>The operator whose adjoint this is.</summary>
    public LinearOperator Inner { get; }
    /// <inheritdoc/>
    public override string Name => $"({Inner.Name})*";
    /// <inheritdoc/>
    public override LinearOperator Adjoint => Inner;
    /// <inheritdoc/>
    protected override void ApplyBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) => Inner.ApplyAdjointBlock(x, y, count);
    /// <inheritdoc/>
    protected override void ApplyAdjointBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) => Inner.ApplyBlock(x, y, count);
}
