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

    // Float32 blocks stay float32 (a mask around a float32 NTK_S keeps the whole sandwich float32):
    // each product x·d is formed in float64 and rounded once, so the float64 diagonal is not rounded first.
    internal override bool AppliesFloat32Natively => true;

    /// <inheritdoc/>
    protected override void ApplyBlockCore(ReadOnlySpan<float> x, Span<float> y, int count)
    {
        int n = _diagonal.Length;
        for (int c = 0; c < count; c++)
        {
            var xc = x.Slice(c * n, n);
            var yc = y.Slice(c * n, n);
            for (int i = 0; i < n; i++) yc[i] = (float)(xc[i] * _diagonal[i]);
        }
    }

    /// <inheritdoc/>
    protected override void ApplyAdjointBlockCore(ReadOnlySpan<float> x, Span<float> y, int count) => ApplyBlockCore(x, y, count);
}
