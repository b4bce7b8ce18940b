using System.Numerics;
using GlobalNtk.Models.Recurrent;
using Xunit;

namespace GlobalNtk.Tests.Recurrent;

/// <summary>
/// The single-pass SIMD loops (<see cref="Lanes"/>) against the per-operation formulas they replace,
/// written here as plain scalar loops in the same order of operations. IEEE arithmetic is exact per
/// element whatever the vector width, so the loops must give the same bits, at every width the
/// driver uses: H (or w) covers whole Vector512 runs, a Vector256 remainder and scalar tails.
/// </summary>
public class LaneKernelTests
{
    public static TheoryData<int> Widths() => [1, 3, 4, 8, 13, 16, 20, 24, 37];

    private static T[] Random<T>(Random rng, int n, double lo = -1, double hi = 1) where T : IFloatingPointIeee754<T> =>
        Enumerable.Range(0, n).Select(_ => T.CreateTruncating(lo + (hi - lo) * rng.NextDouble())).ToArray();

    private static (RecurrentCell Cell, T[] Cache, T[] ZPrev, T[] Z) GruRow<T>(int h, int seed) where T : unmanaged, IFloatingPointIeee754<T> =>
        CellRow<T>("gru", h, seed);

    private static (RecurrentCell Cell, T[] Cache, T[] ZPrev, T[] Z) CellRow<T>(string arch, int h, int seed) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var config = new RecurrentConfig(arch, 2, h, 1) { Seed = seed };
        var cell = RecurrentCell.Create(config, RecurrentCell.Initialize(config, new Random(seed)));
        var rng = new Random(seed + 1);
        var pre = Random<T>(rng, cell.PreWidth, -2, 2);
        var zPrev = Random<T>(rng, cell.StateSize);
        var z = new T[cell.StateSize];
        var cache = new T[cell.CacheWidth];
        cell.ForwardRow<T>(pre, zPrev, z, cache);
        return (cell, cache, zPrev, z);
    }

    /// <summary>dz = D da and g = Dᵀ q on the cell's row, da (pre-activation width) then q (state width) drawn from <paramref name="rng"/>.</summary>
    private static (T[] Da, T[] Dz, T[] Q, T[] G) DAndDTranspose<T>(RecurrentCell cell, T[] cache, T[] zPrev, T[] z, Random rng)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var da = Random<T>(rng, cell.PreWidth);
        var q = Random<T>(rng, cell.StateSize);
        var dz = new T[cell.StateSize];
        var g = new T[cell.PreWidth];
        var work = new T[cell.WorkWidth];
        cell.ApplyD(new StepRow<T>(cache, zPrev, z), da, dz, work);
        cell.ApplyDTranspose(new StepRow<T>(cache, zPrev, z), q, g, work);
        return (da, dz, q, g);
    }

    [Theory, MemberData(nameof(Widths))]
    public void GruDMatchesTheStepByStepFormulaBitForBit(int h)
    {
        Check<double>(h);
        Check<float>(h);

        static void Check<T>(int h) where T : unmanaged, IFloatingPointIeee754<T>
        {
            var (cell, cache, zPrev, z) = GruRow<T>(h, 3 + h);
            var (da, dz, q, g) = DAndDTranspose(cell, cache, zPrev, z, new Random(h));
            T one = T.One;
            for (int i = 0; i < h; i++)
            {
                T r = cache[i], u = cache[h + i], n = cache[2 * h + i], hn = cache[3 * h + i];
                // D, as the former TensorPrimitives sequence: each line one rounded operation
                T t1 = da[i] + da[3 * h + i];
                T sr = r * (one - r);
                t1 = t1 * sr;
                t1 = t1 * hn;
                t1 = r * da[5 * h + i] + t1;
                t1 = t1 + da[2 * h + i];
                t1 = t1 * (one - n * n);
                T dzi = t1 * (one - u);
                T du = (da[h + i] + da[4 * h + i]) * (u * (one - u));
                dzi = du * (zPrev[i] - n) + dzi;
                Assert.Equal(dzi, dz[i]);
                // Dᵀ
                T gz = (zPrev[i] - n) * q[i] * (u * (one - u));
                T gin = (one - u) * q[i] * (one - n * n);
                T gr = gin * hn * sr;
                Assert.Equal(gr, g[i]); Assert.Equal(gr, g[3 * h + i]);
                Assert.Equal(gz, g[h + i]); Assert.Equal(gz, g[4 * h + i]);
                Assert.Equal(gin, g[2 * h + i]);
                Assert.Equal(gin * r, g[5 * h + i]);
            }
            AssertAdjoint(da, dz, q, g, $"gru H={h}");
        }
    }

    [Theory, MemberData(nameof(Widths))]
    public void LstmDMatchesTheStepByStepFormulaBitForBit(int h)
    {
        Check<double>(h);
        Check<float>(h);

        static void Check<T>(int h) where T : unmanaged, IFloatingPointIeee754<T>
        {
            var (cell, cache, zPrev, z) = CellRow<T>("lstm", h, 5 + h);
            var (da, dz, q, g) = DAndDTranspose(cell, cache, zPrev, z, new Random(h + 1));
            T one = T.One;
            for (int j = 0; j < h; j++)
            {
                T i = cache[j], f = cache[h + j], gg = cache[2 * h + j], o = cache[3 * h + j], tc = cache[4 * h + j], c = zPrev[h + j];
                // D, as the former TensorPrimitives sequence: each line one rounded operation
                T t1 = f * (one - f);
                t1 = t1 * da[h + j];
                T dc = t1 * c;
                t1 = i * (one - i);
                t1 = t1 * da[j];
                dc = t1 * gg + dc;
                t1 = one - gg * gg;
                t1 = t1 * da[2 * h + j];
                dc = t1 * i + dc;
                t1 = one - tc * tc;
                t1 = t1 * o;
                T dh = t1 * dc;
                T t2 = o * (one - o);
                t2 = t2 * da[3 * h + j];
                dh = t2 * tc + dh;
                Assert.Equal(dh, dz[j]);
                Assert.Equal(dc, dz[h + j]);
                // Dᵀ
                T gc = (one - tc * tc) * o * q[j] + q[h + j];
                Assert.Equal(i * (one - i) * gg * gc, g[j]);
                Assert.Equal(f * (one - f) * c * gc, g[h + j]);
                Assert.Equal((one - gg * gg) * i * gc, g[2 * h + j]);
                Assert.Equal(o * (one - o) * tc * q[j], g[3 * h + j]);
            }
            AssertAdjoint(da, dz, q, g, $"lstm H={h}");
        }
    }

    public static TheoryData<string, int> CellsAndWidths()
    {
        var data = new TheoryData<string, int>();
        foreach (var arch in RecurrentConfig.Architectures)
            foreach (int h in new[] { 1, 13, 24 })
                data.Add(arch, h);
        return data;
    }

    /// <summary>
    /// The state maps' hh-only forms: D on a row whose ih block is zero, given its hh block, and the hh
    /// block of Dᵀq, equal the whole-row maps bit for bit (including a −0 entry, whose sign the
    /// whole-row form turns into +0 through the zero ih entry).
    /// </summary>
    [Theory, MemberData(nameof(CellsAndWidths))]
    public void HhOnlyFormsEqualTheWholeRowMaps(string arch, int h)
    {
        Check<double>(arch, h);
        Check<float>(arch, h);

        static void Check<T>(string arch, int h) where T : unmanaged, IFloatingPointIeee754<T>
        {
            var (cell, cache, zPrev, z) = CellRow<T>(arch, h, 11 + h);
            var row = new StepRow<T>(cache, zPrev, z);
            var rng = new Random(h + 2);
            int gh = cell.GateWidth, off = cell.HhOffset;
            var hh = Random<T>(rng, gh);
            hh[0] = -T.Zero;
            var whole = new T[cell.PreWidth];
            hh.CopyTo(whole, off);
            var work = new T[cell.WorkWidth];
            var expected = new T[cell.StateSize];
            var actual = new T[cell.StateSize];
            cell.ApplyD(row, whole, expected, work);
            cell.ApplyDHh(row, hh, actual, work);
            Assert.Equal(expected.Select(v => double.CreateTruncating(v)).Select(BitConverter.DoubleToInt64Bits),
                         actual.Select(v => double.CreateTruncating(v)).Select(BitConverter.DoubleToInt64Bits));

            var q = Random<T>(rng, cell.StateSize);
            var g = new T[cell.PreWidth];
            var gHh = new T[gh];
            cell.ApplyDTranspose(row, q, g, work);
            cell.ApplyDTransposeHh(row, q, gHh, work);
            Assert.Equal(g.Skip(off).Take(gh).ToArray(), gHh);
        }
    }

    /// <summary>⟨D da, q⟩ = ⟨da, Dᵀ q⟩ in float64 sums; both sides round the same products differently: a few ulps of T per term.</summary>
    private static void AssertAdjoint<T>(T[] da, T[] dz, T[] q, T[] g, string what) where T : unmanaged, IFloatingPointIeee754<T>
    {
        double lhs = 0, rhs = 0, scale = 0;
        for (int i = 0; i < dz.Length; i++) { double t = double.CreateTruncating(dz[i]) * double.CreateTruncating(q[i]); lhs += t; scale += Math.Abs(t); }
        for (int j = 0; j < g.Length; j++) { double t = double.CreateTruncating(da[j]) * double.CreateTruncating(g[j]); rhs += t; scale += Math.Abs(t); }
        double eps = typeof(T) == typeof(float) ? 1e-6 : 1e-14;
        Assert.True(Math.Abs(lhs - rhs) <= eps * scale, $"{what} {typeof(T).Name}: ⟨D da, q⟩ = {lhs}, ⟨da, Dᵀq⟩ = {rhs}");
    }

    [Theory, MemberData(nameof(Widths))]
    public void NarrowSiteLoopsMatchTheAxpysBitForBit(int w)
    {
        Check<double>(w);
        Check<float>(w);

        static void Check<T>(int w) where T : unmanaged, IFloatingPointIeee754<T>
        {
            var rng = new Random(w);
            const int rows = 11, offset = 3, lo = 2;
            int ldg = offset + lo + w + 5, ldc = lo + w + 1;
            for (int d = 1; d <= 8; d++)
            {
                var g = Random<T>(rng, rows * ldg);
                var u = Random<T>(rng, rows * d);
                var c = Random<T>(rng, d * ldc);
                var expected = (T[])c.Clone();
                for (int r = 0; r < rows; r++)
                    for (int i = 0; i < d; i++)
                        for (int j = 0; j < w; j++)
                            expected[i * ldc + lo + j] = g[r * ldg + offset + lo + j] * u[r * d + i] + expected[i * ldc + lo + j];
                NarrowSite.Accumulate<T>(g, ldg, offset, rows, u, d, c, ldc, lo, w);
                Assert.Equal(expected, c);

                var a = new T[w];
                NarrowSite.Combine<T>(c, ldc, u.AsSpan(0, d), d, a, w);
                for (int j = 0; j < w; j++)
                {
                    T s = c[j] * u[0];
                    for (int i = 1; i < d; i++) s = c[i * ldc + j] * u[i] + s;
                    Assert.Equal(s, a[j]);
                }
            }
        }
    }
}
