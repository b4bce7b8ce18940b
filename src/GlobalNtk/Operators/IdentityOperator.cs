using GlobalNtk.Dense;

namespace GlobalNtk.Operators;

/// <summary>The identity I on one shape.</summary>
public sealed class IdentityOperator(AxisShape shape) : LinearOperator(shape, shape)
{
    /// <inheritdoc/>
    public override string Name => "Identity";
    /// <inheritdoc/>
    public override bool IsSelfAdjoint => true;
    /// <inheritdoc/>
    protected override void ApplyBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) => x.CopyTo(y);
    /// <inheritdoc/>
    protected override void ApplyAdjointBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) => x.CopyTo(y);
}
