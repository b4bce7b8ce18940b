using GlobalNtk.Dense;

namespace GlobalNtk.Models.Recurrent;

/// <summary>Runs an independent per-row body sequentially or with Parallel.For when the work is big.</summary>
internal static class RowLoop
{
    /// <summary>Per-row work; <paramref name="work"/> is a scratch buffer owned by the calling thread.</summary>
    public delegate void Body(int row, Span<double> work);

    /// <summary>
    /// Below this many scalar operations the loop stays on one thread (thread start-up dominates).
    /// Tests lower it for their own call only, through <see cref="ScopedSetting{T}.Override"/>.
    /// </summary>
    internal static readonly ScopedSetting<long> ParallelThreshold = new(1 << 20);

    /// <summary>Calls <paramref name="body"/> for rows 0..rows−1; <paramref name="costPerRow"/> ≈ scalar operations per row.</summary>
    public static void For(int rows, long costPerRow, int workSize, Body body) =>
        For<double>(rows, costPerRow, workSize, (r, w) => body(r, w));

    /// <summary>Per-row work with scratch of element type T.</summary>
    public delegate void Body<T>(int row, Span<T> work);

    /// <summary>As <see cref="For(int, long, int, Body)"/> with scratch of element type T.</summary>
    public static void For<T>(int rows, long costPerRow, int workSize, Body<T> body)
    {
        if (rows <= 0) return;
        int chunks = Math.Min(rows, 4 * Environment.ProcessorCount);
        if (chunks < 2 || rows * costPerRow < ParallelThreshold.Value)
        {
            var work = new T[Math.Max(1, workSize)];
            for (int r = 0; r < rows; r++) body(r, work);
            return;
        }
        Parallel.For(0, chunks, c =>
        {
            var work = new T[Math.Max(1, workSize)];
            int start = (int)((long)rows * c / chunks), end = (int)((long)rows * (c + 1) / chunks);
            for (int r = start; r < end; r++) body(r, work);
        });
    }
}
