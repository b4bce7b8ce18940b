using System.Numerics;
using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Blocks;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// Causal attention's products on the unmasked half (<see cref="CausalProducts"/>) against the
/// dense products of the masked matrices, and the attention core that runs on them against a
/// dense reference written out loop by loop.
/// </summary>
/// <remarks>
/// Tolerances. Products: each entry against the dense GEMM of the masked operands within
/// 2(k + 2)·u·(|A||B|) entrywise (the standard bound for two length-k sums of the same terms, u the
/// unit roundoff of the precision); a missing or extra term is O(1) of that sum, far above it.
/// Entries of the inputs outside the causal region are NaN, and entries of C outside it hold a
/// sentinel, so any read or write outside the region fails too. The core: float64 against the
/// float64 loops within 1e-12 normwise (sums of ≤ 50 terms of O(1)), float32 within 1e-5
/// (u₃₂ = 6e-8 on inputs rounded to float32, the probability and product roundings, depth ≤ 50);
/// adjoint identity in float64 to 1e-12 of the norm products.
/// </remarks>
public class CausalProductsTests
{
    public static TheoryData<int, int> Shapes()
    {
        var data = new TheoryData<int, int>();
        foreach (int n in new[] { 1, 2, 5, 8, 16, 17, 37, 100 })
            foreach (int tile in new[] { 1, 3, 8, 16, CausalProducts.TileFor(n) }.Distinct())
                data.Add(n, tile);
        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void ProductsOnTheCausalRegionEqualTheDenseMaskedProducts(int n, int tile)
    {
        Check<double>(n, tile, 1.1e-16);
        Check<float>(n, tile, 6e-8);
    }

    [Fact]
    public void TileFallsBackToTheWholeMatrixForFewTokens()
    {
        for (int n = 1; n < 24; n++) Assert.Equal(n, CausalProducts.TileFor(n));
        Assert.Equal(16, CausalProducts.TileFor(100));
        Assert.Equal(10, CausalProducts.RowEnd(9, 10, 4));    // the last, partial block
        Assert.Equal(8, CausalProducts.RowEnd(4, 10, 4));
        Assert.Equal(4, CausalProducts.RowEnd(0, 10, 4));
    }

    private static void Check<T>(int n, int tile, double u) where T : unmanaged, IFloatingPointIeee754<T>
    {
        const int k = 5, m = 3, lda = 7, ldb = 6, ldl = 3;   // row strides above the widths
        int ldL = n + ldl;
        var rng = new Random(1000 * n + tile);
        T[] Rand(int len) => TestMath.Gaussian(rng, len).Select(T.CreateTruncating).ToArray();
        var a = Rand(n * lda); var b = Rand(n * ldb);
        double alpha = 0.75;
        bool InRegion(int t, int c) => c < CausalProducts.RowEnd(t, n, tile);

        // L: random for u ≤ t, 0 above the diagonal inside the region (the contract), NaN outside.
        var l = Rand(n * ldL); var dense = new T[n * n];
        for (int t = 0; t < n; t++)
            for (int c = 0; c < ldL; c++)
            {
                if (c > t) l[t * ldL + c] = c < n && InRegion(t, c) ? T.Zero : T.NaN;
                if (c < n) dense[t * n + c] = c <= t ? l[t * ldL + c] : T.Zero;
            }

        // Bᵀ stored k × n with row stride n + 2, written here element by element; and the helper's transpose.
        var bt = new T[k * (n + 2)];
        for (int p = 0; p < k; p++) for (int c = 0; c < n; c++) bt[p * (n + 2) + c] = b[c * ldb + p];
        var tr = new T[k * n];
        CausalProducts.Transpose(n, k, b, ldb, tr);
        for (int p = 0; p < k; p++) for (int c = 0; c < n; c++) Assert.Equal(bt[p * (n + 2) + c], tr[p * n + c]);

        foreach (double beta in new[] { 0.0, 1.0 })
        {
            // C = α A Bᵀ + β C on the region; sentinel outside it must survive.
            var c0 = Rand(n * n);
            var sentinel = T.CreateTruncating(12345.0);
            for (int t = 0; t < n; t++) for (int c = 0; c < n; c++) if (!InRegion(t, c)) c0[t * n + c] = sentinel;
            var got = (T[])c0.Clone();
            CausalProducts.ABt(n, k, tile, T.CreateTruncating(alpha), a, lda, bt, n + 2, T.CreateTruncating(beta), got, n);
            for (int t = 0; t < n; t++)
                for (int c = 0; c < n; c++)
                {
                    if (!InRegion(t, c)) { Assert.Equal(sentinel, got[t * n + c]); continue; }
                    if (c > t) continue;   // the caller's: masked
                    double want = beta * double.CreateTruncating(c0[t * n + c]), bound = Math.Abs(want);
                    for (int p = 0; p < k; p++)
                    {
                        double term = alpha * double.CreateTruncating(a[t * lda + p]) * double.CreateTruncating(b[c * ldb + p]);
                        want += term; bound += Math.Abs(term);
                    }
                    AssertWithin(got[t * n + c], want, 2 * (k + 2) * u * bound, $"A·Bᵀ n={n} tile={tile} β={beta} ({t},{c})");
                }

            // C = α L B + β C and C = α Lᵀ B + β C, each against the dense masked L.
            foreach (bool transpose in new[] { false, true })
            {
                var cm = Rand(n * m);
                var gotM = (T[])cm.Clone();
                if (transpose) CausalProducts.LtB(n, m, tile, T.CreateTruncating(alpha), l, ldL, b, ldb, T.CreateTruncating(beta), gotM, m);
                else CausalProducts.LB(n, m, tile, T.CreateTruncating(alpha), l, ldL, b, ldb, T.CreateTruncating(beta), gotM, m);
                for (int t = 0; t < n; t++)
                    for (int j = 0; j < m; j++)
                    {
                        double want = beta * double.CreateTruncating(cm[t * m + j]), bound = Math.Abs(want);
                        for (int p = 0; p < n; p++)
                        {
                            var lv = transpose ? dense[p * n + t] : dense[t * n + p];
                            double term = alpha * double.CreateTruncating(lv) * double.CreateTruncating(b[p * ldb + j]);
                            want += term; bound += Math.Abs(term);
                        }
                        AssertWithin(gotM[t * m + j], want, 2 * (n + 2) * u * bound, $"{(transpose ? "Lᵀ" : "L")}·B n={n} tile={tile} β={beta} ({t},{j})");
                    }
            }
        }
    }

    private static void AssertWithin<T>(T got, double want, double tol, string what) where T : IFloatingPointIeee754<T>
    {
        double g = double.CreateTruncating(got);
        Assert.True(Math.Abs(g - want) <= tol, $"{what}: {g} vs {want} (tolerance {tol:g3})");
    }

    /// <summary>(tokens, causal, tile; 0 = the default <see cref="CausalProducts.TileFor"/>).</summary>
    public static TheoryData<int, bool, int> CoreShapes() => new()
    {
        { 1, true, 0 }, { 2, true, 0 }, { 17, true, 0 }, { 37, true, 0 }, { 50, true, 0 }, { 37, false, 0 },
        { 5, true, 2 }, { 9, true, 4 }, { 24, true, 8 },
    };

    /// <summary>
    /// The attention core on tokens spanning several row blocks (T = 37, 50 → blocks of 16, the
    /// last partial; small T with small tiles) and on a single block: forward, J_u and J_uᵀ in both
    /// precisions against the loops below, J_u against central differences, and the adjoint identity.
    /// </summary>
    [Theory]
    [MemberData(nameof(CoreShapes))]
    public void AttentionCoreMatchesTheDenseMaskedFormulas(int n, bool causal, int tile)
    {
        const int width = 6, heads = 2, groups = 2, count = 2;
        int rows = groups * n, nIn = rows * 3 * width, nOut = rows * width;
        var core = new AttentionCoreBlock(width, heads, n, causal, tile);
        var rng = new Random(n + (causal ? 0 : 100));
        // Inputs representable in float32, so that both precisions see the same values.
        double[] Rand(int len) => Float32.ToDouble(Float32.ToSingle(TestMath.Gaussian(rng, len)));
        var x = Rand(nIn); var v = Rand(count * nIn); var w = Rand(count * nOut);
        var reference = new Reference(x, n, width, heads, groups, causal);

        var ps = new ParameterSet([]);
        var y64 = new double[nOut];
        var t64 = core.Forward(ps, x, rows, y64);
        var y32 = new double[nOut];
        var t32 = core.Forward(ps, x, rows, y32, Precision.F32);
        Assert.True(TestMath.RelativeError(y64, reference.Output) < 1e-12, $"T={n}: forward");
        Assert.True(TestMath.RelativeError(y32, reference.Output) < 1e-5, $"T={n}: forward, float32");

        var jv = new double[count * nOut]; t64.Jvp(v, jv, count);
        var jtw = new double[count * nIn]; t64.Vjp(w, jtw, count);
        var jv32 = new float[count * nOut]; t32.Jvp32(Float32.ToSingle(v), jv32, count);
        var jtw32 = new float[count * nIn]; t32.Vjp32(Float32.ToSingle(w), jtw32, count);
        for (int j = 0; j < count; j++)
        {
            var wantJv = reference.Jvp(v.AsSpan(j * nIn, nIn));
            var wantJtw = reference.Vjp(w.AsSpan(j * nOut, nOut));
            Assert.True(TestMath.RelativeError(jv.AsSpan(j * nOut, nOut), wantJv) < 1e-12, $"T={n}: J_u, vector {j}");
            Assert.True(TestMath.RelativeError(jtw.AsSpan(j * nIn, nIn), wantJtw) < 1e-12, $"T={n}: J_uᵀ, vector {j}");
            Assert.True(TestMath.RelativeError(Float32.ToDouble(jv32).AsSpan(j * nOut, nOut), wantJv) < 1e-5, $"T={n}: J_u float32, vector {j}");
            Assert.True(TestMath.RelativeError(Float32.ToDouble(jtw32).AsSpan(j * nIn, nIn), wantJtw) < 1e-5, $"T={n}: J_uᵀ float32, vector {j}");
        }

        // The reference's tangent against central differences of the forward pass (h = 1e-5: error ~h² + ε/h).
        const double h = 1e-5;
        var dir = v.AsSpan(0, nIn).ToArray();
        var yp = new double[nOut]; var ym = new double[nOut];
        core.Forward(ps, x.Zip(dir, (a, d) => a + h * d).ToArray(), rows, yp);
        core.Forward(ps, x.Zip(dir, (a, d) => a - h * d).ToArray(), rows, ym);
        var fd = yp.Zip(ym, (a, b) => (a - b) / (2 * h)).ToArray();
        Assert.True(TestMath.RelativeError(jv.AsSpan(0, nOut), fd) < 1e-7, $"T={n}: J_u vs central differences");

        double lhs = Numerics.Dot(jv, w), rhs = Numerics.Dot(v, jtw);
        Assert.True(Math.Abs(lhs - rhs) <= 1e-12 * Numerics.Norm(jv) * Numerics.Norm(w), $"T={n}: ⟨J v, w⟩ vs ⟨v, Jᵀ w⟩");
    }

    /// <summary>
    /// Attention on rows [q, k, v] written out with dense loops and explicit masks (docs/math.md#transformers):
    /// S = c Q Kᵀ, P = softmax over u ≤ t, O = P V; δS = c(δQ Kᵀ + Q δKᵀ), δP = P ⊙ (δS − rowsum(P ⊙ δS)),
    /// δO = δP V + P δV; ḡV = Pᵀ ḡO, ḡS = P ⊙ (ḡO Vᵀ − rowsum(P ⊙ ḡO Vᵀ)), ḡQ = c ḡS K, ḡK = c ḡSᵀ Q.
    /// </summary>
    private sealed class Reference
    {
        private readonly double[] _x, _p;
        private readonly int _n, _d, _heads, _groups, _dh;
        private readonly bool _causal;
        private readonly double _c;

        public Reference(double[] x, int n, int d, int heads, int groups, bool causal)
        {
            (_x, _n, _d, _heads, _groups, _dh, _causal, _c) = (x, n, d, heads, groups, d / heads, causal, 1 / Math.Sqrt(d / heads));
            _p = new double[groups * heads * n * n];
            Output = new double[groups * n * d];
            for (int g = 0; g < groups; g++)
                for (int h = 0; h < heads; h++)
                    for (int t = 0; t < n; t++)
                    {
                        double max = double.NegativeInfinity;
                        var s = new double[n];
                        for (int u = 0; u < Allowed(t); u++) { for (int i = 0; i < _dh; i++) s[u] += _c * X(x, g, t, 0, h, i) * X(x, g, u, 1, h, i); max = Math.Max(max, s[u]); }
                        double sum = 0;
                        for (int u = 0; u < Allowed(t); u++) sum += Math.Exp(s[u] - max);
                        for (int u = 0; u < Allowed(t); u++) P(g, h)[t * n + u] = Math.Exp(s[u] - max) / sum;
                        for (int i = 0; i < _dh; i++)
                            for (int u = 0; u < Allowed(t); u++) Output[(g * n + t) * d + h * _dh + i] += P(g, h)[t * n + u] * X(x, g, u, 2, h, i);
                    }
        }

        public double[] Output { get; }

        private int Allowed(int t) => _causal ? t + 1 : _n;
        private Span<double> P(int g, int h) => _p.AsSpan((g * _heads + h) * _n * _n, _n * _n);
        /// <summary>Feature i of head h in part (0 = q, 1 = k, 2 = v) of token t of sequence g.</summary>
        private double X(ReadOnlySpan<double> a, int g, int t, int part, int h, int i) => a[(g * _n + t) * 3 * _d + part * _d + h * _dh + i];
        private int Xi(int g, int t, int part, int h, int i) => (g * _n + t) * 3 * _d + part * _d + h * _dh + i;

        public double[] Jvp(ReadOnlySpan<double> dx)
        {
            var dy = new double[_groups * _n * _d];
            for (int g = 0; g < _groups; g++)
                for (int h = 0; h < _heads; h++)
                {
                    var p = P(g, h).ToArray();
                    for (int t = 0; t < _n; t++)
                    {
                        var dp = new double[_n];
                        double dot = 0;
                        for (int u = 0; u < Allowed(t); u++)
                        {
                            double ds = 0;
                            for (int i = 0; i < _dh; i++) ds += _c * (X(dx, g, t, 0, h, i) * X(_x, g, u, 1, h, i) + X(_x, g, t, 0, h, i) * X(dx, g, u, 1, h, i));
                            dp[u] = ds; dot += p[t * _n + u] * ds;
                        }
                        for (int u = 0; u < Allowed(t); u++) dp[u] = p[t * _n + u] * (dp[u] - dot);
                        for (int i = 0; i < _dh; i++)
                            for (int u = 0; u < Allowed(t); u++)
                                dy[(g * _n + t) * _d + h * _dh + i] += dp[u] * X(_x, g, u, 2, h, i) + p[t * _n + u] * X(dx, g, u, 2, h, i);
                    }
                }
            return dy;
        }

        public double[] Vjp(ReadOnlySpan<double> gy)
        {
            var gx = new double[_groups * _n * 3 * _d];
            for (int g = 0; g < _groups; g++)
                for (int h = 0; h < _heads; h++)
                {
                    var p = P(g, h).ToArray();
                    for (int t = 0; t < _n; t++)
                    {
                        var gs = new double[_n];
                        double dot = 0;
                        for (int u = 0; u < Allowed(t); u++)
                        {
                            for (int i = 0; i < _dh; i++)
                            {
                                double go = gy[(g * _n + t) * _d + h * _dh + i];
                                gx[Xi(g, u, 2, h, i)] += p[t * _n + u] * go;
                                gs[u] += go * X(_x, g, u, 2, h, i);
                            }
                            dot += p[t * _n + u] * gs[u];
                        }
                        for (int u = 0; u < Allowed(t); u++)
                        {
                            double s = p[t * _n + u] * (gs[u] - dot);
                            for (int i = 0; i < _dh; i++)
                            {
                                gx[Xi(g, t, 0, h, i)] += _c * s * X(_x, g, u, 1, h, i);
                                gx[Xi(g, u, 1, h, i)] += _c * s * X(_x, g, t, 0, h, i);
                            }
                        }
                    }
                }
            return gx;
        }
    }
}
