using System.Runtime.InteropServices;

namespace GlobalNtk.Dense;

/// <summary>
/// Native memory in whole 2 MiB pages, 2 MiB aligned, that the kernel is asked to back with
/// transparent huge pages (Linux <c>madvise(MADV_HUGEPAGE)</c>). Packing buffers that a GEMM sweeps
/// many times (the B̄ block, the Ā block) then cost one TLB entry per 2 MiB instead of one per 4 KiB:
/// the B̄ block alone spans about 200 small pages, more than the L1 data TLB holds. Where
/// transparent huge pages are enabled only on request (<c>enabled=madvise</c>), ordinary managed
/// arrays never get them.
/// </summary>
/// <remarks>
/// Optional: <c>madvise</c> is looked up in the C library at run time, and on other systems, or when
/// the lookup, the allocation or the advice fails, <see cref="TryAllocate"/> returns null and callers
/// keep pinned managed arrays. The memory is freed by <see cref="SafeHandle.Dispose()"/>, or by the
/// finalizer when its owner (e.g. the buffers of a thread that has ended) is collected.
/// </remarks>
internal sealed unsafe class HugePageBlock : SafeHandle
{
    /// <summary>Size and alignment of a huge page (x86-64).</summary>
    public const nuint PageBytes = 2u << 20;

    private const int MadvHugePage = 14;

    private static readonly delegate* unmanaged<nint, nuint, int, int> s_madvise = FindMadvise();

    private HugePageBlock(void* start, nuint bytes) : base(IntPtr.Zero, ownsHandle: true)
    {
        SetHandle((nint)start);
        Bytes = bytes;
    }

    /// <summary>Whether huge-page memory can be requested on this system (Linux with <c>madvise</c>).</summary>
    public static bool Available => s_madvise != null;

    /// <summary>First byte (2 MiB aligned).</summary>
    public void* Pointer => (void*)handle;

    /// <summary>Length in bytes: the request rounded up to whole huge pages.</summary>
    public nuint Bytes { get; }

    /// <summary>At least <paramref name="bytes"/> bytes advised for huge pages, or null where that is not possible.</summary>
    public static HugePageBlock? TryAllocate(nuint bytes)
    {
        if (s_madvise == null || bytes == 0) return null;
        nuint size = (bytes + PageBytes - 1) & ~(PageBytes - 1);
        void* p;
        try
        {
            p = NativeMemory.AlignedAlloc(size, PageBytes);
        }
        catch (OutOfMemoryException)
        {
            return null;
        }
        if (s_madvise((nint)p, size, MadvHugePage) != 0)
        {
            NativeMemory.AlignedFree(p);
            return null;
        }
        return new HugePageBlock(p, size);
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        NativeMemory.AlignedFree((void*)handle);
        return true;
    }

    private static delegate* unmanaged<nint, nuint, int, int> FindMadvise()
    {
        // 2 MiB is the huge page of x86-64 Linux; other architectures may use other sizes.
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return null;
        foreach (string name in (string[])["libc.so.6", "libc"])
            if (NativeLibrary.TryLoad(name, out nint lib) && NativeLibrary.TryGetExport(lib, "madvise", out nint f))
                return (delegate* unmanaged<nint, nuint, int, int>)f;
        return null;
    }
}
