using System.Buffers;
using GlobalNtk.Dense;

namespace GlobalNtk.Ntk;

/// <summary>
/// A temporary float64 buffer rented from the shared pool (operators apply many times; renting
/// avoids a fresh large-object allocation, and the GC work that follows, on every application).
/// </summary>
internal readonly struct Scratch : IDisposable
{
    private readonly double[] _array;
    private readonly int _length;

    private Scratch(int length, bool clear)
    {
        _length = length;
        _array = ArrayPool<double>.Shared.Rent(Math.Max(1, length));
        if (clear) Array.Clear(_array, 0, length);
    }

    /// <summary>Rents a buffer of exactly <paramref name="length"/> elements (zeroed if asked).</summary>
    public static Scratch Rent(long length, bool clear = false)
    {
        if (length > Array.MaxLength)
            throw new OutOfMemoryException($"Scratch buffer of {length} doubles exceeds the maximum array length.");
        return new Scratch((int)length, clear);
    }

    public Span<double> Span => _array.AsSpan(0, _length);
    /// <summary>The rented array (may be longer than the buffer): for lambdas, which cannot capture spans.</summary>
    public double[] Buffer => _array;

    public void Dispose() => ArrayPool<double>.Shared.Return(_array);
}

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
        Forward(x, y, count);
    }

    /// <inheritdoc/>
    protected sealed override void ApplyAdjointBlockCore(ReadOnlySpan<double> x, Span<double> y, int count)
    {
        Numerics.EnsureFinite(x, $"{Name}: adjoint input block");
        Adjoint(x, y, count);
    }

    /// <summary>Y = A·X (Y overwritten), input already checked.</summary>
    protected abstract void Forward(ReadOnlySpan<double> x, Span<double> y, int count);
    /// <summary>Y = A*·X (Y overwritten), input already checked.</summary>
    protected abstract void Adjoint(ReadOnlySpan<double> x, Span<double> y, int count);
}
