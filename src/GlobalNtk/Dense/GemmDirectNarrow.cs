using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GlobalNtk.Dense;

/// <summary>
/// The AVX-512 direct path's routes for a narrow C or few rows, switched together: <see cref="Avx512Kernel{T}.Deep"/> on
/// 2..L columns in both precisions, <see cref="Avx512Kernel{T}.NarrowC"/> (Cᵀ) for 8 &lt; m &lt; 2L with A transposed and
/// k &gt; 24, 2-row strips for the last 1–2 rows of a stored-B product (8 vectors per pass for a C of one row), and
/// <see cref="Avx512Kernel{T}.EdgeColumns"/> (the last n mod L ≤ L/4 columns of Aᵀ·op(B) as Cᵀ). Every one keeps the packed
/// path's bits (each element of C is the same FMA chain from zero over p = 0, 1, …, k−1 and the same epilogue).
/// </summary>
/// <remarks>
/// Measured on the sweep (<c>gemm --cpu-time --threads 1 --sweep --precision both</c>, 160 shapes, % of OpenBLAS, three
/// alternating rounds, off → on): geometric mean float32 135.7–136.8 → 140.5–143.6 (shapes below 100 %: 50–51 → 43–47),
/// float64 124.9–126.8 → 128.8–131.3 (58–62 → 50–56). Float32 products of k = 1 read up to 40 % slower or faster inside one
/// sweep process or the other (the routes do not touch them; alone they are at parity): a process-state effect.
/// </remarks>
internal static class DirectNarrowRoutes
{
    /// <summary>Whether the routes run (mutable for the benchmark's A/B only: <c>gemm --direct-narrow on|off</c>).</summary>
    internal static bool On = true;

    /// <summary>A route of this switch, as recorded by <see cref="Note"/>.</summary>
    [Flags]
    internal enum Route
    {
        /// <summary>None taken.</summary>
        None = 0,
        /// <summary><see cref="Avx512Kernel{T}.Deep"/>.</summary>
        Deep = 1,
        /// <summary>A narrow C of fewer than 2L rows computed as Cᵀ.</summary>
        NarrowFewRows = 2,
        /// <summary>A 2-row strip body.</summary>
        TwoRowStrip = 4,
        /// <summary>The edge columns computed as Cᵀ.</summary>
        EdgeColumns = 8,
    }

    [ThreadStatic] private static Route t_taken;
    private static volatile bool s_tracing; // false in production: Note is one read of it

    /// <summary>
    /// For tests: starts recording, on the calling thread, which routes run (the products that take them run on the
    /// calling thread); returns what was recorded before and clears it.
    /// </summary>
    internal static Route Trace()
    {
        s_tracing = true;
        Route before = t_taken;
        t_taken = Route.None;
        return before;
    }

    /// <summary>Records that <paramref name="route"/> ran (only once a test has called <see cref="Trace"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Note(Route route)
    {
        if (s_tracing) t_taken |= route;
    }
}

internal unsafe partial struct Avx512Kernel<T>
{
    /// <summary>Least depth for <see cref="EdgeColumns"/> (at k = 9–10 it lost: 40×17×10 Aᵀ·B f32 60 → 47 %, 16×12×9 f64 90 → 59 %).</summary>
    internal const int EdgeDepth = 16;

    /// <summary>
    /// How many of the last columns of an Aᵀ·op(B) product <see cref="DirectSliced"/> computes as Cᵀ (by
    /// <see cref="Transposed"/>), 0 for none: the n mod L ≤ L/4 columns past the last whole vector, when C has at least 2L
    /// rows and k ≥ <see cref="EdgeDepth"/>. As a masked vector they would spend a whole FMA per row and step of k on
    /// at most L/4 columns; as rows of Cᵀ, A's stored rows are loaded as full vectors. Measured (% of OpenBLAS, three
    /// alternating rounds, off → on): 300×18×40 Aᵀ·B f64 73–83 → 87–88, f32 78 → 82; 500×33×30 Aᵀ·B f64 84–87 → 95–96,
    /// f32 75–76 → 86–87; 200×20×64 Aᵀ·B f32 80–84 → 90–91; 200×36×24 Aᵀ·Bᵀ f32 82–84 → 94–95; 100×68×20 Aᵀ·B f32
    /// 87–91 → 103–104. It lost with 3–4 float64 columns (2000×12×20 Aᵀ·B 85 → 71–81) and at k ≤ 10 (see <see cref="EdgeDepth"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int EdgeColumns(Trans ta, int m, int n, int k)
    {
        int l = Vector512<T>.Count, r = n % l;
        return DirectNarrowRoutes.On && ta == Trans.Yes && n > l && r > 0 && r <= l / 4 && m >= 2 * l && k >= EdgeDepth ? r : 0;
    }
}
