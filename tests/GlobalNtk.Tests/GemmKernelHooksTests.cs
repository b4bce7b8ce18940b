using System.Numerics;
using System.Runtime.Intrinsics.X86;
using GlobalNtk.Dense;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// The AVX-512 kernel's entry points for the kernel-only benchmark (<c>ComputeAs</c>, <c>StoredAs</c>): the
/// variant a benchmark times must be the tile the driver runs, so each must give
/// <c>Compute</c>'s bits, and those must match a naive
/// float64 product.
/// </summary>
public class GemmKernelHooksTests
{
    public static IEnumerable<object[]> Precisions() => [["f64"], ["f32"]];

    /// <summary>
    /// One full tile (8 rows × NR columns) at depths 1, 7 and KC (a whole slice), α/β both general and
    /// (1, 0): <c>Compute</c> on a packed Ā panel, <c>ComputeAs&lt;Packed3&gt;</c> on the same panel and
    /// <c>StoredAs&lt;DirectA3&gt;</c> on the same values stored as 8 padded rows are bit-identical;
    /// C's row padding is untouched; and the tile matches the naive product within γ_{k+2}·(|α||A||B| + |β||C|).
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void BenchEntryPointsGiveComputesBits(string precision)
    {
        if (!Avx512F.IsSupported)
        {
            Assert.False(Gemm.SelectedKernel == Gemm.KernelKind.Avx512); // the hooks never run here
            return;
        }
        if (precision == "f64") Check<double>(); else Check<float>();
    }

    private static unsafe void Check<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(41);
        int nr = Avx512Kernel<T>.NR;
        foreach (int kc in new[] { 1, 7, Avx512Kernel<T>.KC })
            foreach (var (alpha, beta) in new[] { (0.75, -1.25), (1.0, 0.0) })
            {
                int lda = kc + 5, ldc = nr + 3;
                T[] pa = Random<T>(rng, 8 * kc), pb = Random<T>(rng, kc * nr), a = new T[8 * lda];
                for (int r = 0; r < 8; r++)
                    for (int p = 0; p < kc; p++) a[r * lda + p] = pa[p * 8 + r]; // Ā(r, p) as stored rows
                T[] c0 = Random<T>(rng, 8 * ldc), c1 = (T[])c0.Clone(), c2 = (T[])c0.Clone(), c3 = (T[])c0.Clone();
                T ta = T.CreateTruncating(alpha), tb = T.CreateTruncating(beta);
                fixed (T* ppa = pa, ppb = pb, pas = a, p1 = c1, p2 = c2, p3 = c3)
                {
                    Avx512Kernel<T>.Compute(kc, ppa, ppb, p1, ldc, ta, tb);
                    Avx512Kernel<T>.ComputeAs<Packed3>(kc, ppa, ppb, p2, ldc, ta, tb);
                    Avx512Kernel<T>.StoredAs<DirectA3>(kc, pas, lda, ppb, p3, ldc, ta, tb);
                }
                double u = typeof(T) == typeof(float) ? Math.Pow(2, -24) : Math.Pow(2, -53); // unit roundoff
                double gamma = (kc + 2) * u / (1 - (kc + 2) * u); // kc sums, α·acc, β·C and the fused add
                for (int r = 0; r < 8; r++)
                    for (int j = 0; j < ldc; j++)
                    {
                        int q = r * ldc + j;
                        Assert.True(c2[q] == c1[q], $"{typeof(T).Name} kc={kc} α={alpha} β={beta}: ComputeAs ({r}, {j}) {c2[q]} vs Compute {c1[q]}");
                        Assert.True(c3[q] == c1[q], $"{typeof(T).Name} kc={kc} α={alpha} β={beta}: StoredAs ({r}, {j}) {c3[q]} vs Compute {c1[q]}");
                        if (j >= nr)
                        {
                            Assert.True(c1[q] == c0[q], $"{typeof(T).Name} kc={kc}: padding ({r}, {j}) written");
                            continue;
                        }
                        double exact = 0, mag = 0;
                        for (int p = 0; p < kc; p++)
                        {
                            double x = double.CreateTruncating(pa[p * 8 + r]) * double.CreateTruncating(pb[p * nr + j]);
                            exact += x; mag += Math.Abs(x);
                        }
                        double cOld = double.CreateTruncating(c0[q]);
                        double want = alpha * exact + beta * cOld, bound = gamma * (Math.Abs(alpha) * mag + Math.Abs(beta * cOld));
                        double got = double.CreateTruncating(c1[q]);
                        Assert.True(Math.Abs(got - want) <= bound, $"{typeof(T).Name} kc={kc} α={alpha} β={beta} ({r}, {j}): {got} vs {want} (bound {bound})");
                    }
            }
    }

    private static T[] Random<T>(Random rng, int count) where T : IFloatingPointIeee754<T>
    {
        var x = new T[count];
        for (int i = 0; i < count; i++) x[i] = T.CreateTruncating(rng.NextDouble() * 2 - 1);
        return x;
    }
}
