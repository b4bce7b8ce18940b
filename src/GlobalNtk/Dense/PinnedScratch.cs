namespace GlobalNtk.Dense;

/// <summary>
/// Pinned arrays kept per thread (e.g. the storage of a <see cref="PackedOperand{T}"/> that is packed
/// anew on every call), so repeated calls allocate nothing once their thread has warmed up. Rent/Return
/// hands a set out exclusively, so a re-entrant call on the same thread gets a fresh set instead of
/// clobbering one in use.
/// </summary>
internal sealed class PinnedScratch<T> where T : unmanaged
{
    [ThreadStatic] private static PinnedScratch<T>? t_cached;

    private readonly List<T[]> _slots = [];
    private bool _inUse;

    public static PinnedScratch<T> Rent()
    {
        var set = t_cached ??= new PinnedScratch<T>();
        if (set._inUse) return new PinnedScratch<T> { _inUse = true };
        set._inUse = true;
        return set;
    }

    public static void Return(PinnedScratch<T> set) => set._inUse = false;

    /// <summary>Slot <paramref name="index"/>: a pinned array of at least <paramref name="length"/> elements (contents undefined).</summary>
    public T[] Get(int index, long length)
    {
        while (_slots.Count <= index) _slots.Add([]);
        if (_slots[index].Length < length)
            _slots[index] = GC.AllocateUninitializedArray<T>(checked((int)length), pinned: true);
        return _slots[index];
    }
}
