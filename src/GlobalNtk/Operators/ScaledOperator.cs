using GlobalNtk.Dense;

namespace GlobalNtk.Operators;

/// <summary>alpha·A.</summary>
public sealed class ScaledOperator : LinearOperator
{
    private ScaledOperator(LinearOperator inner, double alpha) : base(inner.Domain, inner.Range)
    {
        if (!double.IsFinite(alpha)) throw new NonFiniteException($"Scaling {inner.Name} by {alpha}.");
        Inner = inner; Alpha = alpha;
    }

    /// <summary>The scaled operator.</summary>
    public LinearOperator Inner { get; }
    /// <summary>The scale factor.</summary>
    public double Alpha { get; }

    /// <summary>alpha·A, folding nested scalings.</summary>
    public static LinearOperator Of(LinearOperator a, double alpha) =>
        a is ScaledOperator s ? new ScaledOperator(s.Inner, s.Alpha * alpha) : new ScaledOperator(a, alpha);

    /// <inheritdoc/>
    public override string Name => $"{Alpha}·{Inner.Name}";
    /// <inheritdoc/>
    public override bool IsSelfAdjoint => Inner.IsSelfAdjoint;
    /// <inheritdoc/>
    public override LinearOperator Adjoint => IsSelfAdjoint ? this : Of(Inner.Adjoint, Alpha);

    /// <inheritdoc/>
    protected override void ApplyBlockCore(ReadOnlySpan<double> x, Span<double> y, int count)
    {
        Inner.ApplyBlock(x, y, count);
        Numerics.Scale(y, Alpha);
    }

    /// <inheritdoc/>
    protected override void ApplyAdjointBlockCore(ReadOnlySpan<double> x, Span<double> y, int count)
    {
        Inner.ApplyAdjointBlock(x, y, count);
        Numerics.Scale(y, Alpha);
    }
}
