using GlobalNtk.Dense;

namespace GlobalNtk.Operators;

/// <summary>
/// A pooled scratch block (vector-major) for operators that need intermediates, e.g. the middle
/// of a composition. Dispose returns it to <see cref="ScratchPool.Shared"/> (bounded retention);
/// the span is exactly the requested length and its contents are undefined.
/// </summary>
/// <remarks>
/// A class, not a struct: a copied struct could return the same array to the pool twice, and two
/// later renters would then share it. Dispose is idempotent.
/// </remarks>
internal sealed class BlockBuffer : IDisposable
{
    private double[]? _array;
    private readonly int _length;

    /// <exception cref="MemoryBudgetException">The block exceeds the largest array .NET can allocate.</exception>
    public BlockBuffer(long length)
    {
        if (length > Array.MaxLength)
            throw new MemoryBudgetException($"A scratch block of {length} doubles exceeds the largest array ({Array.MaxLength} elements); use fewer vectors per block.");
        _length = (int)length;
        _array = ScratchPool.Shared.Rent(Math.Max(1, _length));
    }

    public Span<double> Span => (_array ?? throw new ObjectDisposedException(nameof(BlockBuffer))).AsSpan(0, _length);

    public void Dispose()
    {
        var array = Interlocked.Exchange(ref _array, null);
        if (array is not null) ScratchPool.Shared.Return(array);
    }

    /// <summary>
    /// How many vectors of <paramref name="vectorSize"/> fit in one scratch block of about
    /// <paramref name="maxElements"/> doubles (at least 1, at most <paramref name="wanted"/>):
    /// estimators chunk their probe blocks with it so memory stays bounded on big states.
    /// </summary>
    public static int VectorsPerBlock(int vectorSize, int wanted, long maxElements = MemoryBudget.ScratchBlockElements) =>
        (int)Math.Clamp(maxElements / Math.Max(1, vectorSize), 1, Math.Max(1, wanted));

    /// <summary>dst[c, j, i] = src[c, i, j] for each of <paramref name="count"/> rows×cols matrices.</summary>
    public static void Transpose(ReadOnlySpan<double> src, Span<double> dst, int count, int rows, int cols)
    {
        int size = rows * cols;
        for (int c = 0; c < count; c++)
        {
            var s = src.Slice(c * size, size);
            var d = dst.Slice(c * size, size);
            for (int i = 0; i < rows; i++)
            {
                var row = s.Slice(i * cols, cols);
                for (int j = 0; j < cols; j++) d[j * rows + i] = row[j];
            }
        }
    }
}
