using GlobalNtk.Dense;

namespace GlobalNtk.Operators;

/// <summary>
/// An operator seen between other shapes of the same sizes (a reshape/relabel of its axes; the
/// data layout is unchanged, no copy). With an identity inside it is a pure reshape.
/// </summary>
public sealed class ViewOperator : LinearOperator
{
    /// <summary>Views <paramref name="inner"/> as a map <paramref name="domain"/> → <paramref name="range"/>.</summary>
    public ViewOperator(LinearOperator inner, AxisShape domain, AxisShape range) : base(domain, range)
    {
        if (domain.Size != inner.Domain.Size)
            throw new ShapeMismatchException($"View of {inner.Name}: domain {domain} has size {domain.Size} but {inner.Domain} has {inner.Domain.Size}.");
        if (range.Size != inner.Range.Size)
            throw new ShapeMismatchException($"View of {inner.Name}: range {range} has size {range.Size} but {inner.Range} has {inner.Range.Size}.");
        Inner = inner;
    }

    /// <summary>The viewed operator.</summary>
    public LinearOperator Inner { get; }
    /// <inheritdoc/>
    public override string Name => $"View({Inner.Name})";
    /// <inheritdoc/>
    public override bool IsSelfAdjoint => Inner.IsSelfAdjoint && Domain.Equals(Range);
    /// <inheritdoc/>
    public override LinearOperator Adjoint => IsSelfAdjoint ? this : new ViewOperator(Inner.Adjoint, Range, Domain);
    /// <inheritdoc/>
    protected override void ApplyBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) => Inner.ApplyBlock(x, y, count);
    /// <inheritdoc/>
    protected override void ApplyAdjointBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) => Inner.ApplyAdjointBlock(x, y, count);
}
