using System.Numerics.Tensors;
using GlobalNtk.Dense;

namespace GlobalNtk.Operators;

/// <summary>Elementwise multiplication by a fixed array d on one shape (self-adjoint).</summary>
public sealed class DiagonalOperator : LinearOperator
{
    private readonly double[] _diagonal;

    /// <summary>diag(<paramref name="diagonal"/>) on <paramref name="shape"/> (no copy); rejects NaN/Inf.</summary>
    public DiagonalOperator(AxisShape shape, double[] diagonal) : base(shape, shape)
    {
        if (diagonal.Length != shape.Size)
            throw new ShapeMismatchException($"Diagonal operator: diagonal has length {diagonal.Length}, shape {shape} has size {shape.Size}.");
        Numerics.EnsureFinite(diagonal, "Diagonal operator entries");
        _diagonal = diagonal;
    }

    /// <summary>The diagonal entries.</summary>
    public ReadOnlySpan<double> Diagonal => _diagonal;
    /// <inheritdoc/>
    public override string Name => $"Diag[{Domain.Size}]";
    /// <inheritdoc/>
    public override bool IsSelfAdjoint => true;

    /// <inheritdoc/>
    protected override void ApplyBlockCore(ReadOnlySpan<double> x, Span<double> y, int count)
    {
        int n = _diagonal.Length;
        for (int c = 0; c < count; c++)
            TensorPrimitives.Multiply(x.Slice(c * n, n), _diagonal, y.Slice(c * n, n));
    }

    /// <inheritdoc/>
    protected override void ApplyAdjointBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) => ApplyBlockCore(x, y, count);
}
