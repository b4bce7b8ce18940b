using GlobalNtk.Dense;

namespace GlobalNtk.Operators;

/// <summary>
/// A linear map from <see cref="Domain"/> to <see cref="Range"/> (named-axis shapes), applied
/// matrix-free. Blocks of vectors are stored vector-major: a block of <c>k</c> domain vectors is
/// a span of length <c>k·Domain.Size</c> whose vector <c>j</c> is the contiguous slice
/// <c>[j·Domain.Size, (j+1)·Domain.Size)</c>. Implementations override the block methods, which
/// are what estimators call (matrix-matrix, not matrix-vector).
/// </summary>
public abstract class LinearOperator
{
    /// <summary>Creates an operator between two shapes.</summary>
    protected LinearOperator(AxisShape domain, AxisShape range)
    {
        Domain = domain ?? throw new ArgumentNullException(nameof(domain));
        Range = range ?? throw new ArgumentNullException(nameof(range));
    }

    /// <summary>Input shape.</summary>
    public AxisShape Domain { get; }
    /// <summary>Output shape.</summary>
    public AxisShape Range { get; }

    /// <summary>Short description used in error messages.</summary>
    public virtual string Name => GetType().Name;

    /// <summary>Y = A·X for a block of <paramref name="count"/> vectors (Y is overwritten).</summary>
    protected abstract void ApplyBlockCore(ReadOnlySpan<double> x, Span<double> y, int count);

    /// <summary>Y = A*·X for a block of <paramref name="count"/> vectors (Y is overwritten).</summary>
    protected abstract void ApplyAdjointBlockCore(ReadOnlySpan<double> x, Span<double> y, int count);

    /// <summary>Y = A·X for a block of <paramref name="count"/> vector-major vectors; checks lengths.</summary>
    public void ApplyBlock(ReadOnlySpan<double> x, Span<double> y, int count)
    {
        CheckBlock(x.Length, Domain, count, "input");
        CheckBlock(y.Length, Range, count, "output");
        ApplyBlockCore(x, y, count);
    }

    /// <summary>Y = A*·X for a block of <paramref name="count"/> vector-major vectors; checks lengths.</summary>
    public void ApplyAdjointBlock(ReadOnlySpan<double> x, Span<double> y, int count)
    {
        CheckBlock(x.Length, Range, count, "adjoint input");
        CheckBlock(y.Length, Domain, count, "adjoint output");
        ApplyAdjointBlockCore(x, y, count);
    }

    /// <summary>A·x as a new array.</summary>
    public double[] Apply(ReadOnlySpan<double> x)
    {
        var y = new double[Range.Size];
        ApplyBlock(x, y, 1);
        return y;
    }

    /// <summary>A*·x as a new array.</summary>
    public double[] ApplyAdjoint(ReadOnlySpan<double> x)
    {
        var y = new double[Domain.Size];
        ApplyAdjointBlock(x, y, 1);
        return y;
    }

    /// <summary>A·X for a block, as a new array.</summary>
    public double[] ApplyBlock(ReadOnlySpan<double> x, int count)
    {
        var y = new double[checked(Range.Size * count)];
        ApplyBlock(x, y, count);
        return y;
    }

    /// <summary>A*·X for a block, as a new array.</summary>
    public double[] ApplyAdjointBlock(ReadOnlySpan<double> x, int count)
    {
        var y = new double[checked(Domain.Size * count)];
        ApplyAdjointBlock(x, y, count);
        return y;
    }

    private void CheckBlock(int length, AxisShape shape, int count, string what)
    {
        if (count < 0 || (long)shape.Size * count != length)
            throw new ShapeMismatchException(
                $"{Name}: {what} block has length {length}, expected {count} × {shape} = {(long)shape.Size * count}.");
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Name}: {Domain} -> {Range}";
}

/// <summary>Operands whose shapes do not fit together; the message names both shapes.</summary>
public sealed class ShapeMismatchException(string message) : ArgumentException(message);
