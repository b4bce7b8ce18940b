using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using GlobalNtk.Dense;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// The AVX-512 kernel's paths in both precisions: small products multiplied on the stored operands
/// (<c>Avx512Kernel.Direct</c>, no packing) and packed tiles cut by the right edge of C (1, 2 or 3
/// vectors, the last under a lane mask). Every size from 1 up past a tile in each direction, both
/// transposes of A, B stored or transposed, unaligned starts and strides, against a naive product
/// and, for the direct path, bit for bit against the packed path.
/// </summary>
public class GemmDirectTests
{
    public static IEnumerable<object[]> Precisions() => [["f64"], ["f32"]];

    /// <summary>
    /// Every m in 2..17 and n in 2..(3L + 1) (L lanes per vector: every cut of a tile's last vector
    /// and every row count of the last 8-row block), small depths, both transposes of A and of B,
    /// padded strides and starts one or two elements into their arrays. With AVX-512 these run
    /// <c>Direct</c> (B read in place when stored, packed first when transposed).
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void SmallProductsMatchNaiveForEveryEdgeSize(string precision)
    {
        if (precision == "f64") EverySize<double>(); else EverySize<float>();
    }

    private static void EverySize<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(31);
        int lanes = Vector512<T>.Count, caseIndex = 0;
        int[] depths = [1, 2, 3, 5, 8, 17];
        for (int m = 2; m <= 17; m++)
            for (int n = 2; n <= 3 * lanes + 1; n++)
            {
                int k = depths[caseIndex % depths.Length];
                Trans ta = (caseIndex & 1) == 0 ? Trans.No : Trans.Yes;
                Trans tb = (caseIndex & 2) == 0 ? Trans.No : Trans.Yes;
                var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                Check<T>(rng, ta, tb, m, n, k, alpha, beta, pad: caseIndex % 3, offset: 1 + caseIndex % 2);
                caseIndex++;
            }
    }

    /// <summary>Depths up to one k-slice (KC), the largest products below the direct limit, all transposes.</summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void DirectDepthsUpToOneSliceMatchNaive(string precision)
    {
        if (precision == "f64") Depths<double>(); else Depths<float>();
    }

    private static void Depths<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(32);
        int kc = Avx512Kernel<T>.KC, caseIndex = 0;
        foreach (var (m, n, k) in new[] { (64, 64, 64), (8, 8, 8), (17, 49, kc), (9, 3 * Vector512<T>.Count, kc - 1), (80, 80, 80), (3, 100, 200) })
            foreach (Trans ta in new[] { Trans.No, Trans.Yes })
                foreach (Trans tb in new[] { Trans.No, Trans.Yes })
                {
                    var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                    Check<T>(rng, ta, tb, m, n, k, alpha, beta, pad: 1 + caseIndex % 2, offset: caseIndex % 3);
                    caseIndex++;
                }
    }

    /// <summary>
    /// The direct path gives the packed path's bits: each element is the same chain of fused
    /// multiply-adds over p = 0..k−1 (one k-slice) and the same α/β epilogue. So a product's result
    /// does not depend on its size class, and a caller that splits rows gets the same bits.
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void DirectIsBitIdenticalToThePackedPath(string precision)
    {
        if (!Avx512Runs()) return;
        if (precision == "f64") BitIdentical<double>(); else BitIdentical<float>();
    }

    private static void BitIdentical<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        int kc = Avx512Kernel<T>.KC, l = Vector512<T>.Count;
        // (13, 10L, 40): 4 vectors of strips and 6 of 8 × 3 tiles; (5, 4L − 3, 9): one masked strip group;
        // 100³ and 8 × 4096 × 30 lie between 2¹⁹ and 2²⁰ multiply-adds, which Gemm sends to Direct.
        SameBitsAsPacked<T>(new Random(33), sliced: false, [(2, 2, 1), (7, 9, 13), (8, 48, 16), (17, 50, 33), (64, 64, 64), (33, 97, kc),
            (13, 10 * l, 40), (5, 4 * l - 3, 9), (100, 100, 100), (8, 4096, 30)]);
    }

    /// <summary>
    /// Direct (or, <paramref name="sliced"/>, DirectSliced) against the packed path, bit for bit, on
    /// every transpose pair and (α, β) of <see cref="Scalars"/>, with padded strides.
    /// </summary>
    private static unsafe void SameBitsAsPacked<T>(Random rng, bool sliced, (int M, int N, int K)[] shapes) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int caseIndex = 0;
        foreach (var (m, n, k) in shapes)
            foreach (Trans ta in new[] { Trans.No, Trans.Yes })
                foreach (Trans tb in new[] { Trans.No, Trans.Yes })
                    foreach (var (alpha, beta) in Scalars)
                    {
                        int pad = caseIndex++ % 3;
                        int lda = (ta == Trans.No ? k : m) + pad, ldb = (tb == Trans.No ? n : k) + pad, ldc = n + pad;
                        T[] a = Random<T>(rng, (ta == Trans.No ? m : k) * lda), b = Random<T>(rng, (tb == Trans.No ? k : n) * ldb);
                        T[] c1 = Random<T>(rng, m * ldc), c2 = (T[])c1.Clone();
                        T al = T.CreateTruncating(alpha), be = T.CreateTruncating(beta);
                        fixed (T* pa = a, pb = b, p1 = c1, p2 = c2)
                        {
                            if (sliced) Avx512Kernel<T>.DirectSliced(ta, tb, m, n, k, al, pa, lda, pb, ldb, be, p1, ldc);
                            else Avx512Kernel<T>.Direct(ta, tb, m, n, k, al, pa, lda, pb, ldb, be, p1, ldc);
                            GemmDriver<T, Avx512Kernel<T>>.Serial(ta, tb, m, n, k, al, pa, lda, pb, ldb, be, p2, ldc);
                        }
                        for (int q = 0; q < c1.Length; q++)
                            Assert.True(c1[q] == c2[q], $"{typeof(T).Name} {ta}/{tb} m={m} n={n} k={k} α={alpha} β={beta}: element {q} direct {c1[q]}, packed {c2[q]}");
                    }
    }

    /// <summary>
    /// A deep product (k over KC) run k-slice by k-slice through Direct gives the packed path's bits:
    /// the same slices, the later ones accumulating with beta = 1.
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void DeepSlicedDirectIsBitIdenticalToThePackedPath(string precision)
    {
        if (!Avx512Runs()) return;
        if (precision == "f64") DeepBitIdentical<double>(); else DeepBitIdentical<float>();
    }

    private static void DeepBitIdentical<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        int kc = Avx512Kernel<T>.KC;
        // Two, three and eight slices (2880 = the Kronecker core's rows), even and uneven splits.
        SameBitsAsPacked<T>(new Random(34), sliced: true, [(4, 4, 2880), (3, 5, 2 * kc + 7), (9, 17, 3 * kc), (2, 40, kc + 1)]);
    }

    /// <summary>
    /// Direct takes every product that runs on one thread anyway (under 2²⁰ multiply-adds, the
    /// default parallel threshold), deep ones slice by slice, and none that the driver could split
    /// over threads.
    /// </summary>
    [Fact]
    public void DirectTakesProductsBelowTheParallelThreshold()
    {
        Assert.True(Gemm.UseDirect<float>(100, 100, 100));
        Assert.True(Gemm.UseDirect<double>(8, 4096, 30));
        Assert.True(Gemm.UseDirect<double>(64, 128, 128 - 1));
        Assert.False(Gemm.UseDirect<double>(64, 128, 128));       // 2²⁰: split over threads
        Assert.True(Gemm.UseDirect<float>(4, 4, 2880));                          // deep: k-slice by k-slice
        Assert.False(Gemm.UseDirect<double>(64, 128, 300));
        Assert.True(Gemm.DirectProduct < Gemm.ParallelThreshold);
    }

    /// <summary>
    /// β = 0 overwrites NaN in C; nothing outside C is written (row padding, the elements after the
    /// last row), with B's last row ending at the end of its array (the masked loads of its last
    /// vector reach past it).
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void DirectWritesOnlyInsideCAndReadsOnlyInsideB(string precision)
    {
        if (precision == "f64") Bounds<double>(); else Bounds<float>();
    }

    private static void Bounds<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(34);
        int lanes = Vector512<T>.Count;
        foreach (var (m, n, k) in new[] { (9, lanes + 3, 7), (3, 2, 5), (16, 3 * lanes - 1, 12), (5, 3 * lanes + 5, 4) })
            foreach (Trans ta in new[] { Trans.No, Trans.Yes })
            {
                int ldc = n + 3;
                T[] a = Random<T>(rng, m * k), b = Random<T>(rng, k * n);
                T[] c = new T[m * ldc + 5];
                Array.Fill(c, T.NaN);
                GemmGeneric.Multiply(ta, Trans.No, m, n, k, T.CreateTruncating(1.5), a, ta == Trans.No ? k : m, b, n, T.Zero, c.AsSpan(), ldc);
                for (int i = 0; i < m; i++)
                {
                    for (int j = 0; j < n; j++)
                    {
                        double s = 0, scale = 0;
                        for (int p = 0; p < k; p++)
                        {
                            double term = double.CreateTruncating(ta == Trans.No ? a[i * k + p] : a[p * m + i]) * double.CreateTruncating(b[p * n + j]);
                            s += term; scale += Math.Abs(term);
                        }
                        double got = double.CreateTruncating(c[i * ldc + j]);
                        Assert.True(Math.Abs(got - 1.5 * s) <= 4.0 * (k + 2) * GemmReference.Eps<T>() * 1.5 * scale,
                            $"{typeof(T).Name} {ta} m={m} n={n} k={k}: C[{i},{j}] = {got}, expected {1.5 * s}");
                    }
                    for (int j = n; j < ldc; j++) Assert.True(T.IsNaN(c[i * ldc + j]), $"padding C[{i},{j}] was written");
                }
                for (int q = m * ldc; q < c.Length; q++) Assert.True(T.IsNaN(c[q]), $"element {q} past C was written");
            }
    }

    /// <summary>
    /// Packed tiles cut by the right edge of C, for every cut width 1..NR−1 (and NR, NR + 1) at a
    /// depth of two k-slices (the second reads C back under the mask), both β paths.
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void PackedColumnEdgesOfEveryWidthMatchNaive(string precision)
    {
        if (precision == "f64") Edges<double>(); else Edges<float>();
    }

    private static void Edges<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(35);
        int nr = 3 * Vector512<T>.Count, k = Avx512Kernel<T>.KC + 17;
        for (int n = 2; n <= nr + 1; n++)
        {
            var (alpha, beta) = n % 2 == 0 ? (1.0, 0.0) : (-0.5, 1.25);
            Check<T>(rng, n % 3 == 0 ? Trans.Yes : Trans.No, Trans.No, 16, n, k, alpha, beta, pad: n % 4, offset: 1);
        }
    }

    /// <summary>
    /// The blocked driver on one thread across each of its block boundaries: two MC-row blocks of A
    /// (the second ragged, ending in a partial 8-row panel), three B̄ blocks of the full block width
    /// (the last ragged, ending in a masked tile), three k-slices, every transpose pair. An untransposed A is
    /// read where it is stored, at the offsets of its row block and k-slice; a transposed one is packed.
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void BlockBoundariesMatchNaive(string precision)
    {
        if (!Avx512Runs()) return;
        if (precision == "f64") Blocks<double>(); else Blocks<float>();
    }

    private static void Blocks<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(36);
        int mc = Avx512Kernel<T>.MC, kc = Avx512Kernel<T>.KC, caseIndex = 0;
        foreach (int shape in new[] { 0, 1 })
            foreach (Trans ta in new[] { Trans.No, Trans.Yes })
                foreach (Trans tb in new[] { Trans.No, Trans.Yes })
                {
                    // n = 3·NC − 5 splits into three blocks of exactly NC columns (the last 5 short, so
                    // masked); NC is wider for an untransposed B (NCStoredB).
                    int nc = GemmDriver<T, Avx512Kernel<T>>.BlockColumns(tb);
                    var (m, n, k) = shape == 0 ? (mc + 13, 2 * Vector512<T>.Count + 5, kc + 3) : (21, 3 * nc - 5, 2 * kc + 5);
                    var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                    Check<T>(rng, ta, tb, m, n, k, alpha, beta, pad: 1 + caseIndex % 2, offset: caseIndex % 3, serial: true);
                    caseIndex++;
                }
    }

    /// <summary>
    /// The blocked driver's tiles cut by the bottom edge of C, for every height of the last row panel
    /// (1–8 rows: the 4-row body for ≤ 4, the 8-row body under a row limit for 5–7) and both a full and a
    /// masked last column tile, over two k-slices (the second of odd depth), with A packed (transposed)
    /// or read as stored.
    /// </summary>
    [Theory]
    [InlineData("f64")]
    [InlineData("f32")]
    public void EdgeTilesOfEveryHeightMatchNaive(string precision)
    {
        if (!Avx512Runs()) return;
        if (precision == "f64") EveryHeight<double>(); else EveryHeight<float>();
    }

    private static void EveryHeight<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(37);
        int l = Vector512<T>.Count, kc = Avx512Kernel<T>.KC, caseIndex = 0;
        // 149 rows of a transposed A: more than one 128-row group of the pair-of-rows packing, then 5 rows.
        foreach (int m in new[] { 9, 10, 11, 12, 13, 14, 15, 16, 149 })
            foreach (int n in new[] { 6 * l, 3 * l + 5 })
                foreach (Trans ta in new[] { Trans.No, Trans.Yes })
                {
                    var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                    Check<T>(rng, ta, caseIndex % 3 == 0 ? Trans.Yes : Trans.No, m, n, kc + 3, alpha, beta,
                        pad: 1 + caseIndex % 2, offset: caseIndex % 3, serial: true);
                    caseIndex++;
                }
    }

    /// <summary>
    /// The 6 × 4-vector strips of small products with B as stored (<c>StoredBProduct</c>), called directly
    /// so that every strip height meets every kind of column group: m = 1..14 (one to three strips, the
    /// last of 1–6 rows, so the 4-row body for ≤ 4 rows and the 6-row body under a row limit for 5), one or
    /// two whole groups of 4 vectors, a single partial group (its last vector cut to 1 or L − 1 columns)
    /// and a whole group followed by a partial one; depths 1 to KC, both transposes of A, padded strides,
    /// unaligned starts. Checked against the naive product, bit for bit against the packed path (same
    /// FMA chain, same epilogue), and with β = 0 on a C full of NaN (which must not leak in).
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void StripsMatchNaiveAndThePackedPathBits(string precision)
    {
        if (!Avx512Runs()) return;
        if (precision == "f64") Strips<double>(); else Strips<float>();
    }

    private static void Strips<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(38);
        int l = Vector512<T>.Count, kc = Avx512Kernel<T>.KC, caseIndex = 0;
        int[] widths = [4 * l, 8 * l, 3 * l + 1, 4 * l - 1, 7 * l + 5];
        int[] depths = [1, 5, 64, kc, 17];
        for (int m = 1; m <= 14; m++)
            foreach (int n in widths)
            {
                var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                Check<T>(rng, caseIndex % 3 == 0 ? Trans.Yes : Trans.No, Trans.No, m, n, depths[caseIndex % depths.Length], alpha, beta,
                    pad: caseIndex % 3, offset: 1 + caseIndex % 2, strips: true);
                caseIndex++;
            }
    }

    /// <summary>
    /// A narrow C (n ≤ L/2 columns, m ≥ 2L rows) that Direct runs transposed (Cᵀ = op(B)ᵀ·op(A)ᵀ block by
    /// block of 12L rows, then the α/β epilogue per element): every n that takes that path, m from the
    /// smallest such up past two blocks (a partial last block, one of under 9 rows), depths around the least
    /// one it takes (and 1, which it leaves to the other tiles) up to two k-slices,
    /// all transposes, padded strides, unaligned starts, β = 0 on a C full of NaN, the rows after C untouched.
    /// Checked against the naive product and bit for bit against the packed path.
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void NarrowCMatchesNaiveAndThePackedPathBits(string precision)
    {
        if (!Avx512Runs()) return;
        if (precision == "f64") Narrow<double>(); else Narrow<float>();
    }

    private static void Narrow<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(39);
        int l = Vector512<T>.Count, kc = Avx512Kernel<T>.KC, caseIndex = 0, transposed = 0;
        int[] heights = [2 * l, 2 * l + 1, 12 * l - 1, 12 * l, 24 * l + 5, 24 * l + 9];
        int d = Avx512Kernel<T>.NarrowDepth;
        int[] depths = [d, d + 1, 40, kc, 2 * kc + 3, 1, d - 1];
        foreach (Trans ta in new[] { Trans.No, Trans.Yes })
            foreach (Trans tb in new[] { Trans.No, Trans.Yes })
                for (int n = 1; n <= l / 2; n++)
                    foreach (int m in heights)
                    {
                        var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                        int k = depths[caseIndex % depths.Length];
                        if (Avx512Kernel<T>.NarrowC(ta, m, n, k)) transposed++;
                        Check<T>(rng, ta, tb, m, n, k, alpha, beta,
                            pad: caseIndex % 3, offset: 1 + caseIndex % 2, direct: true);
                        caseIndex++;
                    }
        Assert.True(transposed >= heights.Length * (l / 2), $"only {transposed} of the cases run transposed"); // over half of the Aᵀ cases
    }

    /// <summary>
    /// A small C (at most 8 rows, 5 vectors of columns) with a transposed B, which Direct transposes whole
    /// and runs as stored: every row count 1..8, widths from one column to 5 vectors (and one past, which
    /// packs B instead), depths 1 to two k-slices, both transposes of A, padded strides, unaligned starts,
    /// β = 0 on a C full of NaN; against the naive product and bit for bit against the packed path.
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void FewRowsWithTransposedBMatchNaiveAndThePackedPathBits(string precision)
    {
        if (!Avx512Runs()) return;
        if (precision == "f64") FewRows<double>(); else FewRows<float>();
    }

    private static void FewRows<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(40);
        int l = Vector512<T>.Count, kc = Avx512Kernel<T>.KC, caseIndex = 0;
        int[] widths = [1, l - 1, 2 * l + 3, 5 * l, 5 * l + 1];
        int[] depths = [1, 9, 34, kc, 2 * kc + 5];
        for (int m = 1; m <= 8; m++)
            foreach (int n in widths)
                foreach (Trans ta in new[] { Trans.No, Trans.Yes })
                {
                    var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                    Check<T>(rng, ta, Trans.Yes, m, n, depths[caseIndex % depths.Length], alpha, beta,
                        pad: caseIndex % 3, offset: 1 + caseIndex % 2, direct: true);
                    caseIndex++;
                }
    }

    /// <summary>
    /// One row of C over a B as stored (Gemm sends those over 128 and at most 2¹⁵ elements of B to the direct
    /// path, the rest to its plain loops or axpys): sizes around both limits, both
    /// transposes of A (and a transposed B, which stays with the axpys), through Gemm.Multiply against the
    /// naive product, β = 0 on NaN, and bit for bit against the packed path where Gemm takes the direct path.
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void OneRowProductsMatchNaiveAndTheDirectOnesThePackedPathBits(string precision)
    {
        if (precision == "f64") OneRow<double>(); else OneRow<float>();
    }

    private static void OneRow<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(41);
        int l = Vector512<T>.Count, caseIndex = 0, routed = 0;
        foreach (var (n, k) in new[] { (3, 6), (3, 60), (l - 1, 9), (l, 9), (3 * l + 5, 40), (43, 501), (1 << 10, 32), (1 << 10, 33), (463, 9) })
            foreach (Trans ta in new[] { Trans.No, Trans.Yes })
                foreach (Trans tb in new[] { Trans.No, Trans.Yes })
                {
                    var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                    Check<T>(rng, ta, tb, 1, n, k, alpha, beta, pad: caseIndex % 3, offset: 1 + caseIndex % 2);
                    if (Avx512Runs() && Gemm.DirectTakesVector(tb, 1, n, k))
                    {
                        RoutedBitsArePacked<T>(rng, ta, n, k, alpha, beta);
                        routed++;
                    }
                    caseIndex++;
                }
        Assert.True(routed >= 8 || !Avx512F.IsSupported, $"only {routed} one-row cases take the direct path");
    }

    /// <summary>A 1 × n product through Gemm.Multiply gives the packed path's bits (so it ran the direct path, not the axpys).</summary>
    private static unsafe void RoutedBitsArePacked<T>(Random rng, Trans ta, int n, int k, double alpha, double beta) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int lda = ta == Trans.No ? k : 1;
        T[] a = Random<T>(rng, k), b = Random<T>(rng, k * n), c1 = Random<T>(rng, n), c2 = (T[])c1.Clone();
        T al = T.CreateTruncating(alpha), be = T.CreateTruncating(beta);
        GemmGeneric.Multiply(ta, Trans.No, 1, n, k, al, a, lda, b, n, be, c1.AsSpan(), n);
        fixed (T* pa = a, pb = b, p2 = c2)
            GemmDriver<T, Avx512Kernel<T>>.Serial(ta, Trans.No, 1, n, k, al, pa, lda, pb, n, be, p2, n);
        for (int j = 0; j < n; j++)
            Assert.True(c1[j] == c2[j], $"{typeof(T).Name} {ta} 1×{n}×{k} α={alpha} β={beta}: C[{j}] = {c1[j]}, packed {c2[j]}");
    }

    /// <summary>
    /// <c>Deep</c> on 2..L columns (rows held as independent FMA chains, B's k ≤ 24 rows in registers), through Gemm:
    /// every n of one vector, depths around both of its limits (8 goes to Shallow, 25 to the tiles), row counts
    /// from 2 up past 2L and to the 2¹⁶-element limit of C, all transposes, padded strides, unaligned starts,
    /// β = 0 on a C full of NaN. Against the naive product and bit for bit against the packed path; the route must
    /// be taken where C is not narrow-transposed and the narrow dot form does not run first, and over it for 5..L columns in float64 and in float32 up to k = 16.
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void DeepOnNarrowColumnsMatchesNaiveAndThePackedPathBits(string precision)
    {
        if (precision == "f64") DeepNarrow<double>(); else DeepNarrow<float>();
    }

    private static void DeepNarrow<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(42);
        int l = Vector512<T>.Count, caseIndex = 0, deep = 0;
        int[] depths = [9, 24, 13, 8, 25, 17];
        int[] heights = [2, 3, 9, 2 * l - 1, 2 * l, 169];
        for (int n = 2; n <= l; n++)
            foreach (int m in heights)
            {
                int k = depths[caseIndex % depths.Length];
                Trans ta = (caseIndex & 1) == 0 ? Trans.Yes : Trans.No, tb = (caseIndex & 2) == 0 ? Trans.No : Trans.Yes;
                var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                var route = Routed<T>(rng, ta, tb, m, n, k, alpha, beta, pad: caseIndex % 3, offset: 1 + caseIndex % 2);
                bool expected = k is > 8 and <= 24 && !Gemm.UseDot<T>(ta, tb, m, n, k)
                                && !Avx512NarrowDot<T>.TakesProduct(ta, tb, m, n, k) // the narrow dot form runs first
                                && (!Avx512Kernel<T>.NarrowC(ta, m, n, k) || (n > 4 && (typeof(T) == typeof(double) || k <= 16)));
                if (Avx512Runs()) Assert.True(expected == route.HasFlag(DirectNarrowRoutes.Route.Deep), $"{typeof(T).Name} {m}×{n}×{k} {ta}/{tb}: {route}, expected Deep {expected}");
                if (expected) deep++;
                caseIndex++;
            }
        // The shapes the route was made for (% of OpenBLAS in its remarks) take it.
        foreach (var (ta, tb, m, n, k) in new[] { (Trans.Yes, Trans.No, 169, 5, 9), (Trans.No, Trans.No, 16, 3, 13), (Trans.No, Trans.No, 1978, 6, 17), (Trans.Yes, Trans.No, 1000, 5, 10) })
        {
            var route = Routed<T>(rng, ta, tb, m, n, k, 2, 1, pad: 1, offset: 1);
            if (Avx512Runs()) Assert.True(route.HasFlag(DirectNarrowRoutes.Route.Deep), $"{typeof(T).Name} {m}×{n}×{k} {ta}/{tb}: {route}");
        }
        Assert.True(deep >= (l - 1) * 2, $"only {deep} cases take Deep");
    }

    /// <summary>
    /// A narrow C of 8 &lt; m &lt; 2L rows with A transposed and k &gt; 24, computed as Cᵀ: every such m and one on each
    /// side (8, 2L), every n it takes, depths 24 (left to Deep or the tiles) and 25 up to two k-slices, both B
    /// transposes, padded strides, unaligned starts, β = 0 on NaN; naive and packed bits, and the route taken.
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void NarrowCOnFewRowsMatchesNaiveAndThePackedPathBits(string precision)
    {
        if (precision == "f64") NarrowFewRows<double>(); else NarrowFewRows<float>();
    }

    private static void NarrowFewRows<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(43);
        int l = Vector512<T>.Count, kc = Avx512Kernel<T>.KC, caseIndex = 0, taken = 0;
        int[] depths = [25, 43, 24, kc, 2 * kc + 3, 100];
        int widest = typeof(T) == typeof(double) ? 8 : l / 2;
        for (int m = 8; m <= 2 * l; m++)
            for (int n = 1; n <= widest + 1; n++)
            {
                int k = depths[caseIndex % depths.Length];
                Trans tb = (caseIndex & 1) == 0 ? Trans.No : Trans.Yes;
                var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                var route = Routed<T>(rng, Trans.Yes, tb, m, n, k, alpha, beta, pad: caseIndex % 3, offset: 1 + caseIndex % 2);
                bool expected = m > 8 && m < 2 * l && k > 24 && n >= 2 && Avx512Kernel<T>.NarrowC(Trans.Yes, m, n, Math.Min(k, GemmDriver<T, Avx512Kernel<T>>.SliceDepth(k)))
                                && Gemm.UseDirect<T>(m, n, k) && !Gemm.UseDot<T>(Trans.Yes, tb, m, n, k);
                if (Avx512Runs()) Assert.True(expected == route.HasFlag(DirectNarrowRoutes.Route.NarrowFewRows), $"{typeof(T).Name} {m}×{n}×{k} Yes/{tb}: {route}, expected Cᵀ {expected}");
                if (expected) taken++;
                caseIndex++;
            }
        Assert.True(taken >= (2 * l - 9) * (widest - 1) / 2, $"only {taken} cases take the route");
        var named = Routed<T>(rng, Trans.Yes, Trans.No, 13, 2, 43, 1, 0, pad: 0, offset: 0);
        if (Avx512Runs()) Assert.True(named.HasFlag(DirectNarrowRoutes.Route.NarrowFewRows), $"13×2×43: {named}");
    }

    /// <summary>
    /// The last n mod L ≤ L/4 columns of Aᵀ·op(B) computed as Cᵀ: every remainder 0..5 past one to three whole vectors,
    /// m around 2L and larger, depths around the least one (EdgeDepth − 1, EdgeDepth), 8, up past a k-slice, both B
    /// transposes, padded strides, unaligned starts, β = 0 on NaN; naive and packed bits, and the route taken
    /// exactly where <c>EdgeColumns</c> says (so a product with A as stored never takes it).
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void EdgeColumnsMatchNaiveAndThePackedPathBits(string precision)
    {
        if (precision == "f64") EdgeColumnsCases<double>(); else EdgeColumnsCases<float>();
    }

    private static void EdgeColumnsCases<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(44);
        int l = Vector512<T>.Count, kc = Avx512Kernel<T>.KC, e = Avx512Kernel<T>.EdgeDepth, caseIndex = 0, taken = 0;
        int[] depths = [e, 40, e - 1, kc + 5, 64, 8];
        foreach (int m in new[] { 2 * l - 1, 2 * l, 100 })
            foreach (int vectors in new[] { 1, 2, 3 })
                for (int r = 0; r <= 5; r++)
                {
                    int n = vectors * l + r, k = depths[caseIndex % depths.Length];
                    Trans ta = caseIndex % 5 == 4 ? Trans.No : Trans.Yes, tb = (caseIndex & 1) == 0 ? Trans.No : Trans.Yes;
                    var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                    var route = Routed<T>(rng, ta, tb, m, n, k, alpha, beta, pad: caseIndex % 3, offset: 1 + caseIndex % 2);
                    var copy = GemmTransposedCopy.Choose<T>(ta, tb, m, n, k); // the direct path on a stored copy of op(B) is still the direct path
                    Trans tbRun = copy == TransposedCopyRoute.TransposedBDirect ? Trans.No : tb;
                    bool expected = ta == Trans.Yes && r >= 1 && r <= l / 4 && m >= 2 * l && k >= e && Gemm.UseDirect<T>(m, n, k)
                                    && copy is TransposedCopyRoute.None or TransposedCopyRoute.TransposedBDirect
                                    && !Avx512Kernel<T>.TakesShallow(ta, tbRun, m, n, k); // k ≤ 8 over few strips: Shallow
                    if (Avx512Runs()) Assert.True(expected == route.HasFlag(DirectNarrowRoutes.Route.EdgeColumns), $"{typeof(T).Name} {m}×{n}×{k} {ta}/{tb}: {route}, expected edge columns {expected}");
                    if (expected) taken++;
                    caseIndex++;
                }
        Assert.True(taken >= 4, $"only {taken} cases take the route");
        foreach (var (tb, m, n, k) in new[] { (Trans.No, 300, l + 2, 40), (Trans.Yes, 2 * l, 2 * l + l / 4, 64), (Trans.No, 40, 3 * l + 1, kc + 5) })
        {
            var route = Routed<T>(rng, Trans.Yes, tb, m, n, k, -0.7, 1.3, pad: 2, offset: 1);
            if (Avx512Runs()) Assert.True(route.HasFlag(DirectNarrowRoutes.Route.EdgeColumns), $"{typeof(T).Name} {m}×{n}×{k} Yes/{tb}: {route}");
        }
    }

    /// <summary>
    /// The 2-row strip body for the last 1–2 rows of a product with B as stored, and the 8-vector one-row body for a C
    /// of one row (pairs of 4-vector groups), through Gemm: one row (1×463×9, one pair and a group left over, widths
    /// around 4 vectors), two rows, and 6-row strips followed by 1 or 2 rows; both transposes of A, β = 0 on
    /// NaN; naive and packed bits, and the body taken (the strip test above runs it on every strip shape directly).
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void TwoRowStripsMatchNaiveAndThePackedPathBits(string precision)
    {
        if (precision == "f64") TwoRows<double>(); else TwoRows<float>();
    }

    private static void TwoRows<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(45);
        int l = Vector512<T>.Count, caseIndex = 0;
        foreach (var (m, n, k) in new[] { (1, 463, 9), (1, 12 * l + 5, 17), (1, 4 * l, 40), (1, 8 * l - 3, 33), (2, 4 * l - 1, 30), (2, 8 * l, 64), (13, 4 * l, 30), (14, 4 * l - 1, 20) })
            foreach (Trans ta in new[] { Trans.No, Trans.Yes })
            {
                var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                var route = Routed<T>(rng, ta, Trans.No, m, n, k, alpha, beta, pad: caseIndex % 3, offset: 1 + caseIndex % 2);
                if (Avx512Runs() && !Gemm.UseDot<T>(ta, Trans.No, m, n, k))
                    Assert.True(route.HasFlag(DirectNarrowRoutes.Route.TwoRowStrip), $"{typeof(T).Name} {m}×{n}×{k} {ta}: {route}");
                caseIndex++;
            }
    }

    /// <summary>
    /// One product through Gemm (the selected kernel), recording which of <see cref="DirectNarrowRoutes"/>' routes it
    /// took: against the naive product, and where AVX-512 runs (and Gemm does not choose a dot form, which sums in
    /// another order) bit for bit against the packed path over the whole array (C, its padding and guard rows).
    /// </summary>
    private static DirectNarrowRoutes.Route Routed<T>(Random rng, Trans ta, Trans tb, int m, int n, int k, double alpha, double beta, int pad, int offset)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = new GemmCase<T>(rng, ta, tb, m, n, k, alpha, beta, pad, offset);
        DirectNarrowRoutes.Trace();
        GemmGeneric.Multiply(ta, tb, m, n, k, g.Al, g.A.AsSpan(offset), g.Lda, g.B.AsSpan(offset), g.Ldb, g.Be, g.C.AsSpan(offset), g.Ldc);
        var route = DirectNarrowRoutes.Trace();
        if (Avx512F.IsSupported && Gemm.SelectedKernel == Gemm.KernelKind.Avx512
            && !Gemm.UseDot<T>(ta, tb, m, n, k) && !(m > 8 && k >= 8 && Avx512NarrowDot<T>.Takes(ta, tb, n, k))
            && !GemmTransposedCopy.ChangesBits<T>(ta, tb, m, n, k))
        {
            T[] packed = g.Packed();
            for (int q = 0; q < g.C.Length; q++)
                Assert.True(g.C[q].Equals(packed[q]), $"{typeof(T).Name} {ta}/{tb} {m}×{n}×{k} α={alpha} β={beta} ({route}): element {q} Gemm {g.C[q]}, packed {packed[q]}");
        }
        g.AssertNaive($"pad={pad} {route}");
        return route;
    }

    /// <summary>
    /// Whether the AVX-512 kernel runs on this machine; where it cannot, checks that the driver never
    /// selects it (so the AVX-512-only cases have nothing to compare, and say so).
    /// </summary>
    private static bool Avx512Runs()
    {
        if (Avx512F.IsSupported) return true;
        Assert.False(Gemm.SelectedKernel == Gemm.KernelKind.Avx512);
        return false;
    }

    private static readonly (double Alpha, double Beta)[] Scalars = [(1, 0), (-0.7, 1.3), (2, 1), (1, -1)];


    /// <summary>
    /// Tolerance: the result's rounding error is ≤ γ_{k+2}·(|α|·|A||B| + |β|·|C|) with
    /// γ_j ≈ j·u (k products and sums, then α and β), while the float64 reference of the same inputs
    /// carries at most k·u₆₄ relative to the same scale; 4·(k+2)·ε (ε = 2u of T) covers both with
    /// margin. Operands start <paramref name="offset"/> elements into their arrays and have row
    /// strides <paramref name="pad"/> past their widths, so nothing is 64-byte aligned. With
    /// <paramref name="serial"/>, the product runs on the AVX-512 blocked driver on one thread (no
    /// direct path, no thread split); otherwise on <see cref="GemmGeneric.Multiply"/>.
    /// </summary>
    private static unsafe void Check<T>(Random rng, Trans ta, Trans tb, int m, int n, int k, double alpha, double beta, int pad, int offset,
        bool serial = false, bool strips = false, bool direct = false)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int aRows = ta == Trans.No ? m : k, aCols = ta == Trans.No ? k : m;
        int bRows = tb == Trans.No ? k : n, bCols = tb == Trans.No ? n : k;
        int lda = aCols + pad, ldb = bCols + pad, ldc = n + pad;
        T[] a = Random<T>(rng, offset + (aRows - 1) * lda + aCols), b = Random<T>(rng, offset + (bRows - 1) * ldb + bCols);
        int cEnd = offset + (m - 1) * ldc + n; // 8 guard rows follow C: a tile that stores rows past m shows there
        T[] c = Random<T>(rng, cEnd + 8 * ldc);
        if ((strips || direct) && beta == 0) // β = 0 must overwrite C without reading it
            for (int i = 0; i < m; i++) c.AsSpan(offset + i * ldc, n).Fill(T.NaN);
        T[] c0 = (T[])c.Clone();
        if (strips || direct)
        {
            T[] packed = (T[])c.Clone();
            fixed (T* pa = a, pb = b, pc = c, pp = packed)
            {
                if (strips)
                    Avx512Kernel<T>.StoredBProduct(ta, m, n, k, T.CreateTruncating(alpha), pa + offset, lda, pb + offset, ldb,
                        T.CreateTruncating(beta), pc + offset, ldc);
                else
                    Avx512Kernel<T>.DirectSliced(ta, tb, m, n, k, T.CreateTruncating(alpha), pa + offset, lda, pb + offset, ldb,
                        T.CreateTruncating(beta), pc + offset, ldc);
                GemmDriver<T, Avx512Kernel<T>>.Serial(ta, tb, m, n, k, T.CreateTruncating(alpha), pa + offset, lda, pb + offset, ldb,
                    T.CreateTruncating(beta), pp + offset, ldc);
            }
            for (int q = 0; q < c.Length; q++)
                Assert.True(c[q].Equals(packed[q]), $"{typeof(T).Name} {ta}/{tb} m={m} n={n} k={k} α={alpha} β={beta}: element {q} {(strips ? "strips" : "direct")} {c[q]}, packed {packed[q]}");
        }
        else if (serial)
            fixed (T* pa = a, pb = b, pc = c)
                GemmDriver<T, Avx512Kernel<T>>.Serial(ta, tb, m, n, k, T.CreateTruncating(alpha), pa + offset, lda, pb + offset, ldb,
                    T.CreateTruncating(beta), pc + offset, ldc);
        else
            GemmGeneric.Multiply(ta, tb, m, n, k, T.CreateTruncating(alpha), a.AsSpan(offset), lda, b.AsSpan(offset), ldb,
                T.CreateTruncating(beta), c.AsSpan(offset), ldc);
        GemmReference.AssertNaive(ta, tb, m, n, k, alpha, beta, a, lda, b, ldb, c0, c, ldc, offset, cEnd, $"pad={pad}");
    }

    private static T[] Random<T>(Random rng, int count) where T : IFloatingPointIeee754<T>
        => Array.ConvertAll(TestMath.Uniform(rng, count), v => T.CreateTruncating(v));
}
