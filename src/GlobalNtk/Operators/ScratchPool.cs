using System.Buffers;
using GlobalNtk.Dense;

namespace GlobalNtk.Operators;

/// <summary>
/// Reusable scratch arrays with a bounded footprint. Small arrays come from
/// <see cref="ArrayPool{T}.Shared"/>; large ones (more than <see cref="SmallLength"/> doubles) are
/// reused (best fit, within a factor of two of the request), and at most <see cref="CapacityBytes"/>
/// of them are retained (least recently returned dropped first, for the GC to reclaim).
/// </summary>
/// <remarks>
/// Why not the shared pool for everything: it rounds a request up to a power of two (a 52 MB state
/// block takes a 64 MB array) and keeps what it is given per core and per size class, so on a
/// multi-million state the many block sizes an analysis uses stay alive for the whole run
/// (gigabytes). Operators ask for the same few lengths over and over, so best-fit reuse keeps
/// almost all of the benefit.
/// </remarks>
internal sealed class ScratchPool(long capacityBytes)
{
    /// <summary>Arrays up to this many doubles (512 KiB) go through the shared array pool.</summary>
    public const int SmallLength = 1 << 16;

    /// <summary>The process-wide pool that <see cref="BlockBuffer"/> uses, capped at <see cref="MemoryBudget.ScratchPoolBytes"/>.</summary>
    public static ScratchPool Shared { get; } = new(MemoryBudget.ScratchPoolBytes);

    /// <summary>
    /// The process-wide pool of <see cref="Float32Buffer"/>, capped at half of
    /// <see cref="MemoryBudget.ScratchPoolBytes"/>: it retains as many values as <see cref="Shared"/>,
    /// in half the bytes, so a float32 analysis keeps half the float64 one's scratch (one shared
    /// byte cap let float32 retain twice the blocks, and the cap was most of its peak).
    /// </summary>
    public static ScratchPool Float32Shared { get; } = new(MemoryBudget.ScratchPoolBytes / 2);

    private readonly object _gate = new();
    private readonly LinkedList<double[]> _free = []; // most recently returned first
    private long _retainedBytes;

    /// <summary>Most bytes of large arrays retained for reuse.</summary>
    public long CapacityBytes { get; } = capacityBytes >= 0 ? capacityBytes : throw new ArgumentOutOfRangeException(nameof(capacityBytes));

    /// <summary>Bytes of large arrays retained now (always at most <see cref="CapacityBytes"/>).</summary>
    public long RetainedBytes { get { lock (_gate) return _retainedBytes; } }

    /// <summary>The most bytes retained at any time so far (its high-water mark, for benchmarks).</summary>
    public long PeakRetainedBytes { get { lock (_gate) return _peakRetainedBytes; } }
    private long _peakRetainedBytes;

    /// <summary>
    /// An array of at least <paramref name="length"/> doubles; above <see cref="SmallLength"/> the
    /// smallest retained one of at most twice that length (block sizes vary a little from call to
    /// call), else a new one. Contents undefined.
    /// </summary>
    public double[] Rent(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (length <= SmallLength) return ArrayPool<double>.Shared.Rent(length);
        lock (_gate)
        {
            LinkedListNode<double[]>? best = null;
            for (var node = _free.First; node is not null; node = node.Next)
                if (node.Value.Length >= length && node.Value.Length / 2 <= length && (best is null || node.Value.Length < best.Value.Length))
                    best = node;
            if (best is not null)
            {
                _free.Remove(best);
                _retainedBytes -= 8L * best.Value.Length;
                return best.Value;
            }
        }
        return GC.AllocateUninitializedArray<double>(length);
    }

    /// <summary>
    /// Gives back an array from <see cref="Rent"/> (never use it afterwards). Arrays that do not fit
    /// the cap are dropped; once more than <see cref="CollectAfterBytes"/> have been dropped, a
    /// background collection is requested, so that dropped blocks do not pile up as garbage (the
    /// GC's own trigger lets a large-object heap grow by gigabytes on a big machine first).
    /// </summary>
    public void Return(double[] array)
    {
        ArgumentNullException.ThrowIfNull(array);
        if (array.Length <= SmallLength) { ArrayPool<double>.Shared.Return(array); return; }
        long bytes = 8L * array.Length;
        long dropped = 0;
        lock (_gate)
        {
            if (bytes > CapacityBytes) dropped = bytes;
            else
            {
                while (_retainedBytes + bytes > CapacityBytes)
                {
                    var oldest = _free.Last!;
                    _free.RemoveLast();
                    _retainedBytes -= 8L * oldest.Value.Length;
                    dropped += 8L * oldest.Value.Length;
                }
                _free.AddFirst(array);
                _retainedBytes += bytes;
                _peakRetainedBytes = Math.Max(_peakRetainedBytes, _retainedBytes);
            }
            _droppedBytes += dropped;
            if (_droppedBytes < CollectAfterBytes) return;
            _droppedBytes = 0;
        }
        GC.Collect(2, GCCollectionMode.Forced, blocking: false);
    }

    /// <summary>Drops every retained array (for the GC to reclaim), e.g. between unrelated phases of a benchmark.</summary>
    public void Trim()
    {
        lock (_gate)
        {
            _free.Clear();
            _retainedBytes = 0;
        }
    }

    /// <summary>Bytes of dropped arrays after which a collection is requested (the cap, at least 256 MiB).</summary>
    public long CollectAfterBytes => Math.Max(CapacityBytes, 256L << 20);
    private long _droppedBytes;
}
