using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using GlobalNtk.Dense;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// <c>GemmTransposedCopy</c>: the AVX-512 transposed copy (<c>NarrowTranspose.Copy</c>) element for element, which route
/// <c>Choose</c> gives representative shapes and those just past each threshold, and each route through
/// <see cref="Gemm"/> and forced on shapes the routing would send elsewhere: against the naive product (the dot-form
/// routes within the bound of their summation order), the shallow route also bit for bit against the packed path;
/// both precisions, Aᵀ·Bᵀ and A·Bᵀ (and A·B for the narrow one), padded strides, unaligned starts, α/β with β = 0 on
/// a C full of NaN, guard elements around C.
/// </summary>
public class GemmTransposedCopyTests
{
    public static IEnumerable<object[]> Precisions() => [["f64"], ["f32"]];

    private static readonly (double Alpha, double Beta)[] Scalars = [(1, 0), (-0.7, 1.3), (2, 1), (1.5, 0), (1, -1)];

    /// <summary>
    /// dst[c·ldd + r] = src[r·lds + c] exactly, for rows 1..2L+1 and more (every count of the last block of L rows),
    /// columns 1..2L+1 (every width of the last group of L/2), padded strides on both sides; nothing else of dst changes.
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void NarrowTransposeCopiesEveryElement(string precision)
    {
        if (precision == "f64") Transpose<double>(); else Transpose<float>();
    }

    private static unsafe void Transpose<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(140);
        int l = Vector512<T>.Count, caseIndex = 0;
        int[] rowCounts = [.. Enumerable.Range(1, 2 * l + 1), 5 * l + 3, 100];
        for (int cols = 1; cols <= 2 * l + 1; cols++)
            foreach (int rows in rowCounts)
            {
                int lds = cols + caseIndex % 3, ldd = rows + (caseIndex / 3) % 4, offset = caseIndex % 2;
                T[] src = Random<T>(rng, offset + (rows - 1) * lds + cols);
                T[] dst = Random<T>(rng, offset + cols * ldd + 8);
                T[] before = (T[])dst.Clone();
                fixed (T* ps = src, pd = dst)
                    NarrowTranspose.Copy(ps + offset, lds, rows, cols, pd + offset, ldd);
                for (int q = 0; q < dst.Length; q++)
                {
                    int rel = q - offset, c = rel >= 0 ? rel / ldd : -1, r = rel >= 0 ? rel % ldd : -1;
                    bool inside = rel >= 0 && c < cols && r < rows;
                    T expected = inside ? src[offset + r * lds + c] : before[q];
                    Assert.True(expected.Equals(dst[q]), $"{typeof(T).Name} {rows}×{cols} lds={lds} ldd={ldd}: dst[{q}] = {dst[q]}, expected {expected}{(inside ? "" : " (untouched)")}");
                }
                caseIndex++;
            }
    }

    /// <summary>The routes the shapes measured in <c>GemmTransposedCopy</c> take, and None just past each threshold.</summary>
    [Fact]
    public void ChooseGivesTheIntendedRoutes()
    {
        const TransposedCopyRoute none = TransposedCopyRoute.None, dot = TransposedCopyRoute.TransposedADot,
            shallow = TransposedCopyRoute.TransposedBShallow, direct = TransposedCopyRoute.TransposedBDirect,
            narrow = TransposedCopyRoute.NarrowBNarrowDot;
        (Trans Ta, Trans Tb, int M, int N, int K, TransposedCopyRoute F64, TransposedCopyRoute F32)[] cases =
        [
            // Aᵀ·Bᵀ with few rows: the dot form.
            (Trans.Yes, Trans.Yes, 3, 2787, 47, dot, dot),
            (Trans.Yes, Trans.Yes, 2, 88, 44, dot, dot),
            (Trans.Yes, Trans.Yes, 10, 138, 281, dot, dot),
            (Trans.Yes, Trans.Yes, 15, 138, 281, dot, dot),
            (Trans.Yes, Trans.Yes, 16, 138, 281, direct, direct), // past GemmDot.MaxDotRows: the direct path on a copy
            (Trans.Yes, Trans.Yes, 2, 832, 9, dot, none), // float32 from k = 12 on 2–3 rows
            (Trans.Yes, Trans.Yes, 2, 832, 12, dot, dot),
            (Trans.Yes, Trans.Yes, 2, 832, 7, none, none), // below the dot form's depth; 2 rows over many strips are not shallow
            (Trans.Yes, Trans.Yes, 4, 48, 34, dot, none), // float32 on 4+ rows only from k = 64
            (Trans.Yes, Trans.Yes, 4, 48, 64, dot, dot),
            (Trans.Yes, Trans.Yes, 3, 15, 100, none, none), // n < DotMinColumns
            (Trans.Yes, Trans.Yes, 3, 16, 100, dot, dot),
            (Trans.No, Trans.Yes, 3, 2787, 47, none, none), // A·Bᵀ runs on GemmDot itself
            // Shallow k with B transposed: Shallow on a copy of op(B).
            (Trans.Yes, Trans.Yes, 6, 92, 6, shallow, shallow),
            (Trans.Yes, Trans.Yes, 7, 60, 5, shallow, shallow),
            (Trans.Yes, Trans.Yes, 12, 100, 8, shallow, shallow),
            (Trans.No, Trans.Yes, 34, 555, 4, shallow, shallow),
            (Trans.No, Trans.Yes, 30, 200, 2, shallow, shallow),
            (Trans.No, Trans.Yes, 10, 40, 5, shallow, shallow), // one strip (f32), few rows
            (Trans.No, Trans.Yes, 30, 200, 1, shallow, shallow), // an outer product
            (Trans.Yes, Trans.Yes, 7, 368, 1, shallow, shallow),
            (Trans.Yes, Trans.Yes, 7, 67, 17, none, none), // 7 rows below k = 32: neither
            (Trans.No, Trans.Yes, 30, 200, 9, direct, direct), // past ShallowDepth: the direct path on a copy
            (Trans.No, Trans.Yes, 100, 500, 4, none, none), // Shallow takes it with B transposed, over 64 rows
            (Trans.No, Trans.Yes, 8, 8, 8, none, none), // one strip at k = 8: Shallow's own transpose is vectorised
            (Trans.No, Trans.Yes, 30, 7, 5, none, none), // n < 8, one strip
            (Trans.No, Trans.Yes, 400, 200, 4, none, none), // C over 2¹⁶ elements: not shallow either way
            // Past ShallowDepth on enough rows: the direct path on a copy of op(B).
            (Trans.Yes, Trans.Yes, 44, 14, 1319, direct, direct),
            (Trans.No, Trans.Yes, 44, 14, 1319, direct, direct),
            (Trans.Yes, Trans.Yes, 8, 2540, 13, none, direct), // float64 from 16 rows
            (Trans.Yes, Trans.Yes, 16, 2540, 13, direct, direct),
            (Trans.Yes, Trans.Yes, 7, 67, 17, none, none), // float32 Aᵀ·Bᵀ from 8 rows
            (Trans.No, Trans.Yes, 8, 106, 50, none, none), // A·Bᵀ from 16 rows
            (Trans.No, Trans.Yes, 17, 7, 10, direct, direct), // a narrow C with A as stored
            (Trans.Yes, Trans.Yes, 114, 3, 1222, none, none), // a narrow C with A transposed: the direct path's own route
            (Trans.Yes, Trans.Yes, 94, 2, 31, none, none),
            (Trans.No, Trans.Yes, 15, 22, 1280, none, none), // A·Bᵀ with few rows: GemmDot
            (Trans.No, Trans.Yes, 72, 4, 2856, none, none), // narrow A·Bᵀ: Avx512NarrowDot in place
            (Trans.Yes, Trans.Yes, 100, 100, 200, none, none), // over the direct limit
            // Narrow float32 A·B from the tree form's depths: the dot form on a copy of Bᵀ.
            (Trans.No, Trans.No, 126, 7, 911, none, narrow),
            (Trans.No, Trans.No, 38, 7, 660, none, narrow),
            (Trans.No, Trans.No, 16, 7, 384, none, narrow),
            (Trans.No, Trans.No, 15, 7, 384, none, none), // m < 16
            (Trans.No, Trans.No, 16, 7, 24, none, narrow),
            (Trans.No, Trans.No, 16, 7, 23, none, none), // 6–7 columns from k = 24
            (Trans.No, Trans.No, 2880, 4, 80, none, narrow),
            (Trans.No, Trans.No, 16, 4, 16, none, narrow),
            (Trans.No, Trans.No, 16, 4, 15, none, none), // 2–5 columns from k = 16
            (Trans.No, Trans.No, 16, 8, 32, none, narrow),
            (Trans.No, Trans.No, 16, 8, 31, none, none), // 8 columns from k = 32
            (Trans.No, Trans.No, 16, 9, 2000, none, none), // not narrow
            (Trans.Yes, Trans.No, 126, 7, 911, none, none), // Aᵀ·B: the transposed narrow route
            (Trans.No, Trans.No, 2000, 7, 2000, none, none), // over the direct limit
        ];
        foreach (var (ta, tb, m, n, k, f64, f32) in cases)
        {
            Assert.True(f64 == GemmTransposedCopy.Choose<double>(ta, tb, m, n, k), $"f64 {ta}/{tb} {m}×{n}×{k}: {GemmTransposedCopy.Choose<double>(ta, tb, m, n, k)}, expected {f64}");
            Assert.True(f32 == GemmTransposedCopy.Choose<float>(ta, tb, m, n, k), $"f32 {ta}/{tb} {m}×{n}×{k}: {GemmTransposedCopy.Choose<float>(ta, tb, m, n, k)}, expected {f32}");
        }
    }

    /// <summary>
    /// Through <see cref="Gemm"/>: Aᵀ·Bᵀ with 2..15 rows over n ≥ 16 and k across the vector tails (the dot form, or
    /// None where Choose says so), shallow A·Bᵀ and Aᵀ·Bᵀ for k = 1..8 over several strips and few rows, deeper ones on
    /// the direct path (every width of its last tile's vectors; a narrow C), narrow float32
    /// A·B around m = 16 and the least k; each case asserts the route it takes.
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void RoutedProductsMatchNaive(string precision)
    {
        if (precision == "f64") Routed<double>(); else Routed<float>();
    }

    private static void Routed<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(141);
        int l = Vector512<T>.Count, caseIndex = 0;
        var seen = new HashSet<TransposedCopyRoute>();
        void Run(Trans ta, Trans tb, int m, int n, int k)
        {
            var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
            seen.Add(GemmTransposedCopy.Choose<T>(ta, tb, m, n, k));
            Check<T>(rng, ta, tb, m, n, k, alpha, beta, pad: caseIndex % 3, offset: caseIndex % 2, forced: null);
            caseIndex++;
        }
        int[] dotDepths = [12, l + 1, 4 * l - 1, 4 * l, 4 * l + 5, 13 * l + 3, 200, 300];
        foreach (int m in new[] { 2, 3, 4, 5, 8, 9, 15 })
            foreach (int n in new[] { 16, 17, 45 })
                Run(Trans.Yes, Trans.Yes, m, n, dotDepths[caseIndex % dotDepths.Length]);
        for (int k = 1; k <= 8; k++)
            foreach (var (m, n) in new[] { (5, 3 * l + 1), (7, 7 * l + 3), (30, 100), (63, 9), (2, 10 * l) })
            {
                Run(Trans.Yes, Trans.Yes, m, n, k);
                Run(Trans.No, Trans.Yes, m, n, k);
            }
        foreach (var (m, n, k) in new[] { (16, 20, 9), (17, 3 * l + 5, 40), (40, 9, 300), (8, 70, 13), (44, 14, 1319), (17, 7, 10), (70, 3, 20) })
        {
            Run(Trans.Yes, Trans.Yes, m, n, k);
            Run(Trans.No, Trans.Yes, m, n, k);
        }
        foreach (var (m, n, k) in new[] { (16, 7, 24 * 16), (17, 2, 12 * 16 + 5), (126, 7, 911), (38, 5, 660), (15, 3, 300), (40, 8, 24 * 16 - 1) })
            Run(Trans.No, Trans.No, m, n, k);
        if (typeof(T) == typeof(float))
            Assert.Equal(5, seen.Count); // all four routes and None
        else
            Assert.Equal(new[] { TransposedCopyRoute.None, TransposedCopyRoute.TransposedADot, TransposedCopyRoute.TransposedBShallow,
                TransposedCopyRoute.TransposedBDirect }, seen.Order());
    }

    /// <summary>
    /// Each route run directly (AVX-512 only) on shapes the routing leaves to others: the dot form of Aᵀ·Bᵀ for 1..9
    /// rows (every height of GemmDot's last tile) and small n, the shallow one for every k ≤ 8 on one strip and on
    /// many rows, the direct one on one row, few rows and a narrow C, the narrow dot form for every m of its last row tile and every n in 2..8 in both precisions.
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void ForcedRoutesMatchNaive(string precision)
    {
        if (!Avx512F.IsSupported) return; // AVX-512 instructions; Gemm takes these routes only on that kernel
        if (precision == "f64") Forced<double>(); else Forced<float>();
    }

    private static void Forced<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(142);
        int l = Vector512<T>.Count, caseIndex = 0;
        void Run(TransposedCopyRoute route, Trans ta, Trans tb, int m, int n, int k)
        {
            var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
            Check<T>(rng, ta, tb, m, n, k, alpha, beta, pad: caseIndex % 3, offset: 1 + caseIndex % 2, forced: route);
            caseIndex++;
        }
        for (int m = 1; m <= 9; m++)
            foreach (int n in new[] { 1, 2, 5, 9 })
                Run(TransposedCopyRoute.TransposedADot, Trans.Yes, Trans.Yes, m, n, 1 + (caseIndex * 7) % (3 * l));
        for (int k = 1; k <= 8; k++)
            foreach (var (m, n) in new[] { (1, 2), (3, l), (70, 2 * l + 1), (200, 5 * l) })
            {
                Run(TransposedCopyRoute.TransposedBShallow, Trans.Yes, Trans.Yes, m, n, k);
                Run(TransposedCopyRoute.TransposedBShallow, Trans.No, Trans.Yes, m, n, k);
            }
        foreach (var (m, n, k) in new[] { (1, 5, 9), (3, 50, 20), (9, 3, 40), (20, 2 * l + 1, 300) })
        {
            Run(TransposedCopyRoute.TransposedBDirect, Trans.Yes, Trans.Yes, m, n, k);
            Run(TransposedCopyRoute.TransposedBDirect, Trans.No, Trans.Yes, m, n, k);
        }
        for (int n = 2; n <= 8; n++)
            foreach (int m in new[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 17, 50 })
                Run(TransposedCopyRoute.NarrowBNarrowDot, Trans.No, Trans.No, m, n, 1 + (caseIndex * 13) % (5 * l));
    }

    /// <summary>
    /// Runs the product (through <see cref="Gemm"/>, or on <paramref name="forced"/>) and checks it against
    /// <see cref="GemmReference.AssertNaive"/> (its guards around C included). On the dot-form routes also within their
    /// own bound: each term passes through at most ⌈k/L⌉ fused multiply-adds of its lane's chain, the L − 1 additions of the
    /// lane sum and one more where GemmDot's one-row tile adds two sets of accumulators, then α and β, so depth =
    /// min(k, ⌈k/L⌉ + L + 1) and GemmReference.AssertNaive's 4·(depth + 2)·ε covers it and the float64 reference (as in GemmNarrowTests). On the shallow
    /// route and the direct one bit for bit against the packed path. With AVX-512 a routed product runs on that kernel, checked to be the route Choose gives.
    /// </summary>
    private static void Check<T>(Random rng, Trans ta, Trans tb, int m, int n, int k, double alpha, double beta,
        int pad, int offset, TransposedCopyRoute? forced)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = new GemmCase<T>(rng, ta, tb, m, n, k, alpha, beta, pad, offset);
        TransposedCopyRoute route = forced ?? (Avx512F.IsSupported ? GemmTransposedCopy.Choose<T>(ta, tb, m, n, k) : TransposedCopyRoute.None);
        if (forced is TransposedCopyRoute f)
        {
            unsafe { g.Run((a, b, c) => GemmTransposedCopy.Run(f, ta, m, n, k, g.Al, a, g.Lda, b, g.Ldb, g.Be, c, g.Ldc)); }
        }
        else
        {
            var saved = Gemm.ForcedKernel;
            try
            {
                if (Avx512F.IsSupported) Gemm.ForcedKernel = Gemm.KernelKind.Avx512;
                g.Multiply();
            }
            finally { Gemm.ForcedKernel = saved; }
        }
        string what = $"{typeof(T).Name} {ta}/{tb} {m}×{n}×{k} α={alpha} β={beta} pad={pad} offset={offset} {route}";
        // The dot forms' chains are short (⌈k/L⌉ fused multiply-adds per lane, then the lane sum): the naive bound at
        // that depth; the other routes at depth k, and bit for bit against the packed path below.
        int l = Vector512<T>.Count;
        bool dotForm = route is TransposedCopyRoute.TransposedADot or TransposedCopyRoute.NarrowBNarrowDot;
        g.AssertNaive(what, depth: dotForm ? Math.Min(k, (k + l - 1) / l + l + 1) : -1);
        if (route is TransposedCopyRoute.TransposedBShallow or TransposedCopyRoute.TransposedBDirect)
        {
            T[] packed = g.Packed();
            for (int q = 0; q < g.C.Length; q++)
                Assert.True(g.C[q].Equals(packed[q]), $"{what}: element {q} = {g.C[q]}, packed path {packed[q]}");
        }
    }

    private static T[] Random<T>(Random rng, int count) where T : IFloatingPointIeee754<T>
        => Array.ConvertAll(TestMath.Uniform(rng, count), v => T.CreateTruncating(v));
}
