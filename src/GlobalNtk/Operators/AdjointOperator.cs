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
    /// <inheritdoc/>
    internal override bool AppliesFloat32Natively => Inner.AppliesFloat32Natively;
    /// <summary>Float32 blocks go to the inner operator's float32 adjoint (native, or its own widening: the same values).</summary>
    protected override void ApplyBlockCore(ReadOnlySpan<float> x, Span<float> y, int count) => Inner.ApplyAdjointBlock(x, y, count);
    /// <summary>Float32 blocks go to the inner operator's float32 map.</summary>
    protected override void ApplyAdjointBlockCore(ReadOnlySpan<float> x, Span<float> y, int count) => Inner.ApplyBlock(x, y, count);
}
