using System.Numerics;
using System.Runtime.Intrinsics.X86;
using GlobalNtk.Dense;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// The outer-product route (<c>GemmOuter</c>: k ≤ 2, B transposed, few rows) through <see cref="Gemm"/>: against the
/// naive product, and with AVX-512 bit for bit against the packed path (whose bits it keeps), both precisions, both
/// layouts of A, padded strides (B's columns copied, or read in place for k = 1 with ldb = 1), α/β (β = 0 on a C full
/// of NaN), guards around C; on both sides of every threshold (k = 2 | 3, m = 1 | 2 and 32 | 33, n = 7 | 8) and past
/// the stack copy of B's columns; and that the route takes exactly those shapes.
/// </summary>
public class GemmOuterTests
{
    public static IEnumerable<object[]> Precisions() => [["f64"], ["f32"]];

    private static readonly (double Alpha, double Beta)[] Scalars = [(1, 0), (-0.7, 1.3), (2, 1), (1.5, 0), (1, -1)];

    [Theory]
    [MemberData(nameof(Precisions))]
    public void OuterProductsMatchNaiveAndPackedBits(string precision)
    {
        if (precision == "f64") Outer<double>(); else Outer<float>();
    }

    private static void Outer<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(31);
        int caseIndex = 0;
        int[] ms = [1, 2, 3, 5, 17, 32, 33];
        int[] ns = [7, 8, 9, 16, 17, 31, 100, 2100];
        foreach (int k in new[] { 1, 2, 3 })
            foreach (int m in ms)
                foreach (int n in ns)
                {
                    Trans ta = (caseIndex & 1) == 0 ? Trans.No : Trans.Yes;
                    var (alpha, beta) = Scalars[caseIndex % Scalars.Length];
                    int pad = caseIndex % 3; // pad 0 with k = 1: B read in place (ldb = 1)
                    Check<T>(rng, ta, m, n, k, alpha, beta, pad, offset: caseIndex % 2);
                    caseIndex++;
                }
    }

    /// <summary>Runs the case through <see cref="Gemm.Multiply{T}"/> under the kernel this CPU picks (and AVX2 where it has one).</summary>
    private static unsafe void Check<T>(Random rng, Trans ta, int m, int n, int k, double alpha, double beta, int pad, int offset)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = new GemmCase<T>(rng, ta, Trans.Yes, m, n, k, alpha, beta, pad, offset);
        g.Multiply();
        bool outer = Avx512F.IsSupported && GemmOuter.Takes(Trans.Yes, m, n, k);
        string what = $"pad={pad} offset={offset} route={(outer ? "outer" : "other")}";
        g.AssertNaive(what);
        if (outer)
        {
            // The packed path's bits, and the route's own (run directly on C₀): what Gemm ran.
            T[] packed = g.Packed(), direct = (T[])g.C0.Clone();
            fixed (T* pa = g.A, pb = g.B, pc = direct)
                GemmOuter.Run(ta, m, n, k, g.Al, pa + offset, g.Lda, pb + offset, g.Ldb, g.Be, pc + offset, g.Ldc);
            for (int q = 0; q < g.C.Length; q++)
            {
                Assert.True(g.C[q].Equals(packed[q]), $"{typeof(T).Name} {ta}/Yes {m}×{n}×{k} {what}: element {q} = {g.C[q]}, packed path {packed[q]}");
                Assert.True(g.C[q].Equals(direct[q]), $"{typeof(T).Name} {ta}/Yes {m}×{n}×{k} {what}: element {q} = {g.C[q]}, GemmOuter {direct[q]}");
            }
        }
        if (!(Fma.IsSupported && Avx2.IsSupported)) return;
        var saved = Gemm.ForcedKernel;
        try
        {
            Gemm.ForcedKernel = Gemm.KernelKind.Avx2;
            var h = new GemmCase<T>(rng, ta, Trans.Yes, m, n, k, alpha, beta, pad, offset);
            h.Multiply();
            h.AssertNaive(what + " Avx2");
        }
        finally { Gemm.ForcedKernel = saved; }
    }

    /// <summary>The route takes k ≤ 2 with B transposed for 2 ≤ m ≤ 32 and n ≥ 8, and nothing next to those bounds.</summary>
    [Fact]
    public void RouteTakesShallowTransposedFewRowShapes()
    {
        Assert.True(GemmOuter.Takes(Trans.Yes, 6, 695, 1));
        Assert.True(GemmOuter.Takes(Trans.Yes, 4, 325, 2));
        Assert.True(GemmOuter.Takes(Trans.Yes, 2, 8, 2));
        Assert.True(GemmOuter.Takes(Trans.Yes, 32, 100, 1));
        Assert.False(GemmOuter.Takes(Trans.Yes, 4, 325, 3)); // k = 3: the other routes
        Assert.False(GemmOuter.Takes(Trans.Yes, 33, 100, 2)); // m = 33
        Assert.False(GemmOuter.Takes(Trans.Yes, 1, 100, 2)); // one row: GemmDot
        Assert.False(GemmOuter.Takes(Trans.Yes, 4, 7, 2)); // n = 7
        Assert.False(GemmOuter.Takes(Trans.No, 4, 325, 2)); // B as stored
    }
}
