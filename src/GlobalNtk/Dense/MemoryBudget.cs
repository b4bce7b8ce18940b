using System.Globalization;

namespace GlobalNtk.Dense;

/// <summary>
/// What a piece of work will allocate, by part (e.g. "parameters", "optimizer state"), in bytes.
/// Doubles, so that absurd sizes (a width of 10⁶) are estimated without overflow.
/// </summary>
public sealed class MemoryEstimate
{
    private readonly List<(string Part, double Bytes)> _parts = [];

    /// <summary>The parts added so far.</summary>
    public IReadOnlyList<(string Part, double Bytes)> Parts => _parts;

    /// <summary>Sum of the parts, in bytes.</summary>
    public double TotalBytes => _parts.Sum(p => p.Bytes);

    /// <summary>Adds <paramref name="doubles"/> float64 values (8 bytes each) under <paramref name="part"/>; returns this.</summary>
    public MemoryEstimate AddDoubles(string part, double doubles) => AddBytes(part, 8 * doubles);

    /// <summary>Adds <paramref name="bytes"/> under <paramref name="part"/>; returns this.</summary>
    public MemoryEstimate AddBytes(string part, double bytes)
    {
        if (!(bytes >= 0)) throw new ArgumentOutOfRangeException(nameof(bytes), $"memory estimate part '{part}' is {bytes} bytes.");
        _parts.Add((part, bytes));
        return this;
    }

    /// <summary>"2.4 GB (parameters 1.2 GB, gradient 1.2 GB)".</summary>
    public override string ToString() =>
        $"{MemoryBudget.Format(TotalBytes)} ({string.Join(", ", _parts.Where(p => p.Bytes > 0).Select(p => $"{p.Part} {MemoryBudget.Format(p.Bytes)}"))})";
}

/// <summary>
/// The one place that decides whether large state fits in memory: commands estimate what they
/// will allocate (<see cref="MemoryEstimate"/>) and call <see cref="Require"/> before allocating,
/// so an impossible request is refused up front with the estimate instead of running out of
/// memory midway.
/// </summary>
public static class MemoryBudget
{
    /// <summary>
    /// Memory this process may use, in bytes: the machine's physical memory or the container's
    /// or GC's limit, whichever is smaller (<see cref="GC.GetGCMemoryInfo()"/>).
    /// </summary>
    public static long AvailableBytes => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    /// <summary>
    /// Throws <see cref="MemoryBudgetException"/> when <paramref name="estimate"/> exceeds
    /// <paramref name="availableBytes"/> (default: <see cref="AvailableBytes"/>). The one-line
    /// message starts with <paramref name="what"/> (e.g. the option at fault) and gives the
    /// estimate by part and the memory available.
    /// </summary>
    public static void Require(MemoryEstimate estimate, string what, long? availableBytes = null)
    {
        long available = availableBytes ?? AvailableBytes;
        if (estimate.TotalBytes > available)
            throw new MemoryBudgetException($"{what} needs at least {estimate} but {Format(available)} of memory is available.");
    }

    // ---- Working-memory budgets of the matrix-free code (the one place they are set) ----

    /// <summary>
    /// Values in one block of probe vectors and their images (128 MiB of doubles; a float32 block of
    /// the same vectors takes half): estimators apply operators to as many probes at once as fit
    /// (matrix-matrix work) and loop over such blocks, so their memory does not grow with the number
    /// of probes.
    /// </summary>
    public const long ProbeBlockElements = 1L << 24;

    /// <summary>Doubles in one generic scratch block (32 MiB), e.g. materialising a dense operator column block.</summary>
    public const long ScratchBlockElements = 1L << 22;

    /// <summary>
    /// Doubles per site-sized temporary block of the Kronecker core (64 MiB): K's site terms and the
    /// core's traces run over vectors in chunks that fit.
    /// </summary>
    public const long SiteBlockElements = 1L << 23;

    /// <summary>
    /// Bytes of released scratch blocks kept for reuse (256 MiB). Large scratch blocks are reused
    /// by exact length, the least recently returned dropped first beyond this cap, so the memory
    /// held between operator applications stays bounded whatever sizes the operators ask for.
    /// </summary>
    public const long ScratchPoolBytes = 256L << 20;

    /// <summary>
    /// Bytes a top-k spectrum may hold by default (1 GiB): its Krylov basis, expansion block, and
    /// the eigenvectors with their images that it returns. A full basis is thick-restarted, and
    /// top-k is lowered on states too large for 4k vectors.
    /// </summary>
    public const long KrylovSpectrumBytes = 1L << 30;

    /// <summary>
    /// Bytes of one state vector from which an analysis collects garbage between its estimators
    /// (1 MiB: a 131 072-value state). Each estimator allocates a few blocks of state vectors
    /// (probes, images, a Krylov basis) that are garbage when it returns, and the GC lets the
    /// large-object heap grow by about its live size before it collects on its own: a GRU with
    /// B=64, T=200, H=512 (52 MB per vector, 1.8 GB live) reached 3.9 GB during the effective rank.
    /// It was 8 MiB; at 1 MiB the transformer of the benchmarks (614 400 values, 4.9 MB per float64
    /// vector) collects too, and its analysis peaked at 0.65 GB instead of 0.75 GB in float32 and
    /// 1.07 instead of 1.40 GB in float64, at the same CPU time (one or two runs each, shared machine).
    /// </summary>
    public const long CollectBetweenEstimatorsBytes = 1L << 20;

    /// <summary>
    /// Collects garbage now (full, blocking) when one state vector of <paramref name="stateLength"/>
    /// doubles is at least <see cref="CollectBetweenEstimatorsBytes"/>: called between estimators,
    /// when their state-sized blocks have just become garbage, so the next estimator reuses that
    /// memory instead of growing the heap. A collection costs milliseconds: the heap then holds
    /// few, large arrays. Small states skip it. It does not compact the large-object heap: that
    /// lowered the float32 transformer analysis' peak by 0.03 GB (0.62 against 0.65 GB) but raised
    /// the float64 GRU's (B=32, T=200, H=512) by about 0.1 GB (2.28–2.31 against 2.19–2.20 GB).
    /// </summary>
    public static void CollectBetweenEstimators(long stateLength)
    {
        if (8 * stateLength >= CollectBetweenEstimatorsBytes) GC.Collect(2, GCCollectionMode.Forced, blocking: true);
    }

    /// <summary>Bytes in decimal units: "512 B", "3.2 MB", "38.4 GB".</summary>
    public static string Format(double bytes)
    {
        string[] units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
        int u = 0;
        while (bytes >= 1000 && u < units.Length - 1) { bytes /= 1000; u++; }
        return (u == 0 ? bytes.ToString("F0", CultureInfo.InvariantCulture) : bytes.ToString("0.0", CultureInfo.InvariantCulture)) + " " + units[u];
    }
}

/// <summary>A request that cannot fit in memory (bad input: the message names what to make smaller).</summary>
public sealed class MemoryBudgetException(string message) : Exception(message);
