using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using GlobalNtk.Dense;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// Products with a narrow C (2 ≤ n ≤ 8 columns): the AVX-512 dot form (<c>Avx512NarrowDot</c>, A as stored,
/// vectors along k; its own summation order, so checked against a naive float64 product within a bound for
/// that order) and the transposed narrow route that <c>Gemm</c> now also takes past the direct path (A
/// transposed; the packed path's bits, checked bit for bit). Every n, every last row block of the dot form's
/// tiles, k around whole vectors, all transposes, α/β with β = 0 on a C full of NaN, padded strides,
/// unaligned starts and guard elements around C.
/// </summary>
public class GemmNarrowTests
{
    public static IEnumerable<object[]> Precisions() => [["f64"], ["f32"]];

    private static readonly (double Alpha, double Beta)[] Scalars = [(1, 0), (-0.7, 1.3), (2, 1), (1.5, 0), (1, -1)];

    /// <summary>
    /// The dot form on its own, both its forms (tree and lane sums) and both layouts of B: m = 1..17 (every last row
    /// block of every tile height, 2 to 8 rows) and 50, n = 2..8, k from 1 to 13 vectors and 7, each cut of the last vector.
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void DotFormMatchesNaive(string precision)
    {
        if (!Avx512F.IsSupported) return; // AVX-512 instructions; the routed tests below cover the other kernels
        if (precision == "f64") Dot<double>(); else Dot<float>();
    }

    private static void Dot<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(12);
        int l = Vector512<T>.Count, caseIndex = 0;
        int[] depths = [1, l - 1, l, l + 1, 2 * l + 3, 3 * l, 13 * l + 7];
        int[] heights = [.. Enumerable.Range(1, 17), 50];
        foreach (Route form in new[] { Route.Dot, Route.DotTree })
            foreach (Trans tb in new[] { Trans.No, Trans.Yes })
                for (int n = 2; n <= 8; n++)
                    foreach (int m in heights)
                    {
                        var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                        int k = depths[caseIndex % depths.Length];
                        Check<T>(rng, Trans.No, tb, m, n, k, alpha, beta, pad: caseIndex % 3, offset: 1 + caseIndex % 2, form);
                        caseIndex++;
                    }
    }

    /// <summary>
    /// The tree form's bits are its documented summation order (<c>Avx512Lanes.SumLanes16</c>), emulated here in scalars:
    /// each lane a chain of fused multiply-adds along k (the lanes past k adding 0·0), the lanes added pairwise in the
    /// tree's order, then alpha·sum and beta·C fused. Bit for bit, over every tile height's last row block, n = 2..8,
    /// k across the vector tails, both layouts of B, padded strides (C's rows not contiguous) and unpadded ones.
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void TreeFormSumsInItsDocumentedOrder(string precision)
    {
        if (!Avx512F.IsSupported) return; // AVX-512 instructions only
        if (precision == "f64") Tree<double>(); else Tree<float>();
    }

    private static unsafe void Tree<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(14);
        int l = Vector512<T>.Count, caseIndex = 0, checkedElements = 0;
        int[] depths = [1, 3, l - 1, l, l + 5, 2 * l, 3 * l + 1, 7 * l - 2];
        foreach (Trans tb in new[] { Trans.No, Trans.Yes })
            for (int n = 2; n <= 8; n++)
                foreach (int m in new[] { 1, 2, 3, 5, 7, 8, 9, 11, 16, 17 })
                {
                    var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                    int k = depths[caseIndex % depths.Length];
                    var g = new GemmCase<T>(rng, Trans.No, tb, m, n, k, alpha, beta, pad: caseIndex % 2 * 3, offset: caseIndex % 3);
                    g.Run((a, b, c) => Avx512NarrowDot<T>.Run(true, tb, m, n, k, g.Al, a, g.Lda, b, g.Ldb, g.Be, c, g.Ldc));
                    var lanes = new T[l];
                    for (int i = 0; i < m; i++)
                        for (int j = 0; j < n; j++)
                        {
                            for (int lane = 0; lane < l; lane++)
                            {
                                T acc = T.Zero;
                                for (int p = lane; p - lane < k; p += l) // the masked lanes past k add 0·0, as the vector code does
                                    acc = p < k
                                        ? T.FusedMultiplyAdd(g.A[g.Offset + i * g.Lda + p], g.B[g.Offset + (tb == Trans.No ? p * g.Ldb + j : j * g.Ldb + p)], acc)
                                        : T.FusedMultiplyAdd(T.Zero, T.Zero, acc);
                                lanes[lane] = acc;
                            }
                            T sum = TreeSum(lanes);
                            int q = g.Offset + i * g.Ldc + j;
                            T expected = g.Be == T.Zero ? g.Al * sum : T.FusedMultiplyAdd(g.Be, g.C0[q], g.Al * sum);
                            Assert.True(expected.Equals(g.C[q]), $"{typeof(T).Name} {tb} {m}×{n}×{k}: C({i}, {j}) = {g.C[q]}, the documented order gives {expected}");
                            checkedElements++;
                        }
                    for (int q = g.CEnd; q < g.C.Length; q++) Assert.True(g.C[q].Equals(g.C0[q]), $"{m}×{n}×{k}: guard element {q} changed");
                    caseIndex++;
                }
        Assert.True(checkedElements > 1000, $"only {checkedElements} elements checked");
    }

    /// <summary>
    /// The tree's order for one vector of lanes: float32 adds lanes ℓ and ℓ + 2 of each 128-bit quarter, then those two
    /// sums; float64 adds the quarter's two lanes; then quarters 0 + 1 and 2 + 3, then those two.
    /// </summary>
    private static T TreeSum<T>(T[] x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var quarter = new T[4];
        for (int q = 0; q < 4; q++)
            quarter[q] = x.Length == 16 ? (x[4 * q] + x[4 * q + 2]) + (x[4 * q + 1] + x[4 * q + 3]) : x[2 * q] + x[2 * q + 1];
        return (quarter[0] + quarter[1]) + (quarter[2] + quarter[3]);
    }

    /// <summary>
    /// Through <c>Gemm.Multiply</c>, shapes the narrow routes take (and neighbours they leave; among them the tree form's
    /// few-row A·Bᵀ shapes), all four transposes, against the naive product; with AVX-512 also that each shape a dot form
    /// takes really ran it (its bits differ from the packed path's only there) and that every other one has the packed
    /// path's bits. Some are over the parallel threshold, so on a machine with several cores they run split along m.
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void RoutedNarrowProductsMatchNaive(string precision)
    {
        if (precision == "f64") Routed<double>(); else Routed<float>();
    }

    private static void Routed<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(13);
        int l = Vector512<T>.Count, caseIndex = 0;
        (int M, int N, int K)[] shapes =
        [
            (72, 4, 2856), (184, 2, 475), (67, 3, 225), (107, 5, 234), (41, 8, 24 * l + 3), (37, 6, 12 * l - 1),
            (300, 3, 6 * 8 + 1), (2880, 2, 80), (30, 7, 40),
            (2052, 3, 171), (1347, 8, 101), (590, 8, 230), (267, 2, 19), (1102, 2, 17), (646, 7, 19), (100, 5, 16), (37, 6, 15),
            (2880, 4, 80), (1973, 3, 51), (700, 8, 80), (6, 4, 64), (7, 2, 42), (5, 3, 40), (8, 7, 64), (4, 4, 64),
        ];
        int dot = 0;
        foreach (var (m, n, k) in shapes)
            foreach (Trans ta in new[] { Trans.No, Trans.Yes })
                foreach (Trans tb in new[] { Trans.No, Trans.Yes })
                {
                    var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                    bool takes = Avx512F.IsSupported && (Avx512NarrowDot<T>.TakesProduct(ta, tb, m, n, k)
                        || GemmTransposedCopy.ChangesBits<T>(ta, tb, m, n, k) // Bᵀ copied, then the dot form
                        || Gemm.UseDot<T>(ta, tb, m, n, k)); // few rows: GemmDot's dot form, first
                    if (takes) dot++;
                    Check<T>(rng, ta, tb, m, n, k, alpha, beta, pad: caseIndex % 2, offset: caseIndex % 3, takes ? Route.GemmDot : Route.GemmPackedBits);
                    caseIndex++;
                }
        if (Avx512F.IsSupported) Assert.True(dot >= 5, $"only {dot} shapes take the dot form");
    }

    private enum Route { Dot, DotTree, GemmDot, GemmPackedBits }


    /// <summary>
    /// Runs the product by <paramref name="route"/> and checks it against <see cref="GemmReference.AssertNaive"/>, with
    /// the dot form's depth: each term of C(i, j) passes through at most ⌈k/L⌉ fused multiply-adds (its lane's chain)
    /// and L − 1 additions (the lane sum), so depth = ⌈k/L⌉ + L there and k otherwise. With
    /// <see cref="Route.GemmPackedBits"/> and AVX-512, also bit for bit against the packed path on the same inputs,
    /// guards included (<see cref="GemmCase{T}"/>: padded, offset operands, guard rows after C).
    /// </summary>
    private static unsafe void Check<T>(Random rng, Trans ta, Trans tb, int m, int n, int k, double alpha, double beta, int pad, int offset, Route route)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = new GemmCase<T>(rng, ta, tb, m, n, k, alpha, beta, pad, offset);
        if (route is Route.Dot or Route.DotTree)
            g.Run((a, b, c) => Avx512NarrowDot<T>.Run(route == Route.DotTree, tb, m, n, k, g.Al, a, g.Lda, b, g.Ldb, g.Be, c, g.Ldc));
        else
            g.Multiply();
        string what = $"pad={pad} offset={offset} {route}";
        if (route == Route.GemmPackedBits && Avx512F.IsSupported)
        {
            T[] packed = g.Packed();
            for (int q = 0; q < g.C.Length; q++)
                Assert.True(g.C[q].Equals(packed[q]), $"{typeof(T).Name} {ta}/{tb} {m}×{n}×{k} {what}: element {q} = {g.C[q]}, packed path {packed[q]}");
        }
        int l = Vector512<T>.Count;
        g.AssertNaive(what, route == Route.GemmPackedBits ? k : (k + l - 1) / l + l);
    }
}
