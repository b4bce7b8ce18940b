using System.Runtime.InteropServices;

namespace GlobalNtk.Operators;

/// <summary>
/// A pooled scratch block of T (double: <see cref="BlockBuffer"/> from <see cref="ScratchPool.Shared"/>, float:
/// <see cref="Float32Buffer"/> from <see cref="ScratchPool.Float32Shared"/>)
/// for block code written once for both element types (the models' block maps, the estimators'
/// probe blocks). Contents start undefined.
/// </summary>
internal readonly struct ScratchBlock<T> : IDisposable where T : unmanaged
{
    private readonly BlockBuffer? _d;
    private readonly Float32Buffer? _f;

    /// <summary>Rents <paramref name="length"/> elements.</summary>
    public ScratchBlock(long length)
    {
        if (typeof(T) == typeof(double)) _d = new BlockBuffer(length);
        else if (typeof(T) == typeof(float)) _f = new Float32Buffer(length);
        else throw new NotSupportedException($"No scratch for {typeof(T).Name}.");
    }

    /// <summary>The block.</summary>
    public Span<T> Span => typeof(T) == typeof(double) ? MemoryMarshal.Cast<double, T>(_d!.Span) : MemoryMarshal.Cast<float, T>(_f!.Span);

    /// <summary>Returns the storage to the pool.</summary>
    public void Dispose() { _d?.Dispose(); _f?.Dispose(); }
}
