using GlobalNtk.Dense;

namespace GlobalNtk.Ntk;

/// <summary>
/// Base of the NTK operators: rejects non-finite input blocks with a message that names the
/// operator (NaN/Inf must never be propagated silently), then runs the implementation.
/// </summary>
public abstract class CheckedOperator : Operators.LinearOperator
{
    /// <summary>Creates an operator between two shapes.</summary>
    protected CheckedOperator(AxisShape domain, AxisShape range) : base(domain, range) { }

    /// <inheritdoc/>
    protected sealed override void ApplyBlockCore(ReadOnlySpan<double> x, Span<double> y, int count)
    {
        Numerics.EnsureFinite(x, $"{Name}: input block");
        ForwardBlock(x, y, count);
    }

    /// <inheritdoc/>
    protected sealed override void ApplyAdjointBlockCore(ReadOnlySpan<double> x, Span<double> y, int count)
    {
        Numerics.EnsureFinite(x, $"{Name}: adjoint input block");
        AdjointBlock(x, y, count);
    }

    /// <inheritdoc/>
    protected sealed override void ApplyBlockCore(ReadOnlySpan<float> x, Span<float> y, int count)
    {
        Float32.EnsureFinite(x, $"{Name}: input block");
        ForwardBlock(x, y, count);
    }

    /// <inheritdoc/>
    protected sealed override void ApplyAdjointBlockCore(ReadOnlySpan<float> x, Span<float> y, int count)
    {
        Float32.EnsureFinite(x, $"{Name}: adjoint input block");
        AdjointBlock(x, y, count);
    }

    /// <summary>Y = A·X on float32 vectors, input already checked. Default: through the float64 map; float32 operators override it.</summary>
    protected virtual void ForwardBlock(ReadOnlySpan<float> x, Span<float> y, int count) =>
        Widened(x, Domain.Size, y, Range.Size, count, ForwardBlock);

    /// <summary>Y = A*·X on float32 vectors, input already checked (default: through the float64 map).</summary>
    protected virtual void AdjointBlock(ReadOnlySpan<float> x, Span<float> y, int count) =>
        Widened(x, Range.Size, y, Domain.Size, count, AdjointBlock);

    /// <summary>Y = A·X (Y overwritten), input already checked.</summary>
    protected abstract void ForwardBlock(ReadOnlySpan<double> x, Span<double> y, int count);
    /// <summary>Y = A*·X (Y overwritten), input already checked.</summary>
    protected abstract void AdjointBlock(ReadOnlySpan<double> x, Span<double> y, int count);
}
