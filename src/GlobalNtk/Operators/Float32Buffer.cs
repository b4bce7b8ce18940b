using System.Runtime.InteropServices;
using GlobalNtk.Dense;

namespace GlobalNtk.Operators;

/// <summary>
/// A pooled float32 scratch block, the float32 sibling of <see cref="BlockBuffer"/>: the float32
/// paths' blocks of rows. Its storage is a float64 array from <see cref="ScratchPool.Float32Shared"/>
/// seen as floats: a bounded pool like float64's (the shared array pool would keep every large
/// float32 block it was ever given), with half its byte cap. Contents start undefined.
/// </summary>
internal sealed class Float32Buffer : IDisposable
{
    private double[]? _array;
    private readonly int _length;

    /// <exception cref="MemoryBudgetException">The block exceeds the largest array .NET can allocate.</exception>
    public Float32Buffer(long length) : this(length, ScratchPool.Float32Shared) { }

    /// <summary>A block of <paramref name="length"/> floats from <paramref name="pool"/>.</summary>
    internal Float32Buffer(long length, ScratchPool pool)
    {
        Pool = pool ?? throw new ArgumentNullException(nameof(pool));
        if (length > Array.MaxLength)
            throw new MemoryBudgetException($"A float32 scratch block of {length} values exceeds the largest array ({Array.MaxLength} elements); use fewer vectors per block.");
        _length = (int)length;
        _array = Pool.Rent(Math.Max(1, (int)((length + 1) / 2)));
    }

    /// <summary>The pool the storage comes from and goes back to.</summary>
    internal ScratchPool Pool { get; }

    /// <summary>The block (its requested length).</summary>
    public Span<float> Span => MemoryMarshal.Cast<double, float>((_array ?? throw new ObjectDisposedException(nameof(Float32Buffer))).AsSpan())[.._length];

    /// <summary>Returns the storage to the pool (once).</summary>
    public void Dispose()
    {
        var a = Interlocked.Exchange(ref _array, null);
        if (a != null) Pool.Return(a);
    }
}
