using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using GlobalNtk.Dense;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// Pins the bits of the two dot forms built on <c>DotTile</c> (<c>GemmDot</c> and <c>Avx512NarrowDot</c>, each with
/// its own summation order, not the packed path's): one hash of C over some 2000–5700 products per form and precision
/// (m up to 10 or 20, n across the tile widths, k across every tail, three α/β, padded strides), recorded from the code
/// before their two tiles were merged into one. A change of summation order, lane sum or epilogue changes it. The
/// narrow form is pinned in its lane-sum form (its tree form came later; GemmNarrowTests checks that one against its
/// documented order).
/// </summary>
public class GemmDotBitsTests
{
    [Theory]
    [InlineData("dot", "f64", "2a78fca41692df0f")]
    [InlineData("dot", "f32", "6b36c591e7dff25b")]
    [InlineData("narrow", "f64", "8fb67b796b41327e")]
    [InlineData("narrow", "f32", "0ec320dae3f03b03")]
    public void DotFormsKeepTheirBits(string form, string precision, string expected)
    {
        if (!Avx512F.IsSupported) return; // AVX-512 kernels only
        string hash = precision == "f64" ? Hash<double>(form == "narrow") : Hash<float>(form == "narrow");
        Assert.Equal(expected, hash);
    }

    private static unsafe string Hash<T>(bool narrow) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(7);
        int w = Vector512<T>.Count, caseIndex = 0;
        int[] ks = [1, 2, 3, 4, 5, 7, w - 1, w, w + 1, 2 * w - 1, 2 * w, 2 * w + 1, 3 * w, 3 * w + 5, 4 * w + 1, 5 * w + 3, 12 * w + 7, 300];
        (double, double)[] scalars = [(1, 0), (-0.7, 1.3), (2, 1)];
        ulong h = 1469598103934665603UL;
        void Add(Trans ta, Trans tb, int m, int n, int k)
        {
            var (alpha, beta) = scalars[caseIndex++ % 3];
            var g = new GemmCase<T>(rng, ta, tb, m, n, k, alpha, beta, caseIndex % 3, 0);
            if (narrow) g.Run((a, b, c) => Avx512NarrowDot<T>.Run(false, tb, m, n, k, g.Al, a, g.Lda, b, g.Ldb, g.Be, c, g.Ldc));
            else g.Run((a, b, c) => GemmDot.Run(ta, tb, m, n, k, g.Al, a, g.Lda, b, g.Ldb, g.Be, c, g.Ldc));
            for (int q = 0; q < g.CEnd; q++) { h ^= (ulong)BitConverter.DoubleToInt64Bits(double.CreateTruncating(g.C[q])); h *= 1099511628211UL; }
        }
        if (narrow)
            foreach (Trans tb in new[] { Trans.No, Trans.Yes })
                for (int m = 1; m <= 20; m++)
                    for (int n = 2; n <= 8; n++)
                        foreach (int k in ks) Add(Trans.No, tb, m, n, k);
        else
            foreach (var (ta, tb) in new[] { (Trans.No, Trans.Yes), (Trans.Yes, Trans.Yes), (Trans.No, Trans.No), (Trans.Yes, Trans.No) })
                for (int m = 1; m <= 10; m++)
                    foreach (int n in new[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 13 })
                        foreach (int k in ks)
                            if (n == 1 || tb == Trans.Yes && (ta == Trans.No || m == 1)) Add(ta, tb, m, n, k); // what GemmDot takes
        return h.ToString("x16");
    }
}
