using GlobalNtk.Dense;

namespace GlobalNtk.Operators;

/// <summary>
/// The Kronecker (tensor) product A ⊗ B on concatenated axes: Domain = (A.Domain axes, B.Domain
/// axes), Range likewise, A's axes outermost (row-major). For one vector X viewed as a
/// [A.Domain, B.Domain] matrix, (A ⊗ B)X = A X Bᵀ. Applied as B on every row block, a transpose,
/// then A on every column block, so each factor sees one big block (matrix-matrix). An identity
/// factor is skipped (e.g. Ĝ ⊗ I_H of docs/math.md#kronecker-core).
/// </summary>
public sealed class KroneckerOperator : LinearOperator
{
    /// <summary>Creates <paramref name="left"/> ⊗ <paramref name="right"/>; axis names must not repeat.</summary>
    public KroneckerOperator(LinearOperator left, LinearOperator right)
        : base(Concat(left.Domain, right.Domain, "domain"), Concat(left.Range, right.Range, "range"))
    {
        Left = left; Right = right;
    }

    /// <summary>The outer factor A.</summary>
    public LinearOperator Left { get; }
    /// <summary>The inner factor B.</summary>
    public LinearOperator Right { get; }
    /// <inheritdoc/>
    public override string Name => $"({Left.Name} ⊗ {Right.Name})";
    /// <inheritdoc/>
    public override bool IsSelfAdjoint => Left.IsSelfAdjoint && Right.IsSelfAdjoint;
    /// <inheritdoc/>
    public override LinearOperator Adjoint => IsSelfAdjoint ? this : new KroneckerOperator(Left.Adjoint, Right.Adjoint);

    private static AxisShape Concat(AxisShape a, AxisShape b, string what)
    {
        var clash = a.Names.Intersect(b.Names).ToArray();
        if (clash.Length > 0)
            throw new ShapeMismatchException($"Kronecker product: {what} shapes {a} and {b} share axis name(s) {string.Join(", ", clash)}.");
        return new AxisShape(a.Names.Concat(b.Names).ToArray(), a.Sizes.Concat(b.Sizes).ToArray());
    }

    /// <inheritdoc/>
    protected override void ApplyBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) => Run(Left, Right, x, y, count);
    /// <inheritdoc/>
    protected override void ApplyAdjointBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) => Run(Left.Adjoint, Right.Adjoint, x, y, count);

    private static void Run(LinearOperator a, LinearOperator b, ReadOnlySpan<double> x, Span<double> y, int count)
    {
        int ad = a.Domain.Size, ar = a.Range.Size, bd = b.Domain.Size, br = b.Range.Size;
        bool skipA = a is IdentityOperator, skipB = b is IdentityOperator;
        if (skipA) { b.ApplyBlock(x, y, count * ad); return; }

        // t1 = X with B applied to every row: [count, ad, br].
        using var t1Buf = new BlockBuffer(skipB ? 0 : (long)count * ad * br);
        ReadOnlySpan<double> t1 = x;
        if (!skipB) { b.ApplyBlock(x, t1Buf.Span, count * ad); t1 = t1Buf.Span; }

        // Transpose to [count, br, ad], apply A to every row, transpose back to [count, ar, br].
        using var t2 = new BlockBuffer((long)count * ad * br);
        using var t3 = new BlockBuffer((long)count * ar * br);
        BlockBuffer.Transpose(t1, t2.Span, count, ad, br);
        a.ApplyBlock(t2.Span, t3.Span, count * br);
        BlockBuffer.Transpose(t3.Span, y, count, br, ar);
    }
}
