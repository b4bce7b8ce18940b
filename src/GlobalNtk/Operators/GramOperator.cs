namespace GlobalNtk.Operators;

/// <summary>The Gram operator A A* on A's Range: self-adjoint and positive semi-definite.</summary>
public sealed class GramOperator : LinearOperator
{
    /// <summary>Creates A A*; prefer <see cref="LinearOperator.Gram"/>.</summary>
    public GramOperator(LinearOperator factor) : base(factor.Range, factor.Range) => Factor = factor;

    /// <summary>The factor A.</summary>
    public LinearOperator Factor { get; }
    /// <inheritdoc/>
    public override string Name => $"Gram({Factor.Name})";
    /// <inheritdoc/>
    public override bool IsSelfAdjoint => true;

    /// <inheritdoc/>
    protected override void ApplyBlockCore(ReadOnlySpan<double> x, Span<double> y, int count)
    {
        using var mid = new BlockBuffer((long)Factor.Domain.Size * count);
        Factor.ApplyAdjointBlock(x, mid.Span, count);
        Factor.ApplyBlock(mid.Span, y, count);
    }

    /// <inheritdoc/>
    protected override void ApplyAdjointBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) => ApplyBlockCore(x, y, count);

    /// <inheritdoc/>
    internal override bool AppliesFloat32Natively => Factor.AppliesFloat32Natively;

    /// <summary>
    /// A A* on float32 vectors: with a factor that applies float32 blocks natively, A* X into a float32
    /// block and A of it (no float64 block); otherwise X widened, A A* in float64, Y rounded once.
    /// </summary>
    protected override void ApplyBlockCore(ReadOnlySpan<float> x, Span<float> y, int count)
    {
        if (!Factor.AppliesFloat32Natively) { base.ApplyBlockCore(x, y, count); return; }
        using var mid = new Float32Buffer((long)Factor.Domain.Size * count);
        Factor.ApplyAdjointBlock(x, mid.Span, count);
        Factor.ApplyBlock(mid.Span, y, count);
    }

    /// <inheritdoc/>
    protected override void ApplyAdjointBlockCore(ReadOnlySpan<float> x, Span<float> y, int count) => ApplyBlockCore(x, y, count);
}
