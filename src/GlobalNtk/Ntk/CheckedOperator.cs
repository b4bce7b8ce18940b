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

    /// <summary>Y = A·X (Y overwritten), input already checked.</summary>
    protected abstract void ForwardBlock(ReadOnlySpan<double> x, Span<double> y, int count);
    /// <summary>Y = A*·X (Y overwritten), input already checked.</summary>
    protected abstract void AdjointBlock(ReadOnlySpan<double> x, Span<double> y, int count);
}
