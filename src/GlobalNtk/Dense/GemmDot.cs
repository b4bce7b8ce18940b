using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

using static GlobalNtk.Dense.Avx512Lanes;

namespace GlobalNtk.Dense;

/// <summary>
/// AVX-512 products whose operands both run contiguously along k, or a single column of C:
/// <list type="bullet">
/// <item>dot form, out(r, s) = Σ_p u[r·ldu + p]·v[s·ldv + p]: a <see cref="DotTile{T}"/> of up to 4 rows of u against 4 rows
/// of v keeps 4–16 vector accumulators along k (masked tail, nothing read past the rows) and sums each
/// horizontally once at the end. A·Bᵀ with few rows (u = A, v = B), one row of A against a transposed B,
/// and one column A·x (u = x, v = A);</item>
/// <item>axpy form for one column of Aᵀ·x: 4 vectors of C held in registers while p runs over the rows of
/// the stored A.</item>
/// </list>
/// No packing, no buffer unless a strided vector must be gathered. The sums run in another order than
/// the packed path's, so these products do not have its bits.
/// </summary>
internal static unsafe class GemmDot
{
    /// <summary>Below this many elements a strided vector is gathered on the stack, not into a rented buffer.</summary>
    private const int StackGather = 2048;

    /// <summary>
    /// Whether <see cref="Run{T}"/> takes the product (the AVX-512 kernel only): every n = 1 product, m = 1 with
    /// B transposed, and A·Bᵀ with at most <see cref="MaxDotRows"/> rows and k at least <see cref="MinDotDepth64"/>
    /// (float64) or <see cref="MinDotDepth32"/> (float32) for up to 4, 8 and 15 rows.
    /// </summary>
    public static bool Takes<T>(Trans ta, Trans tb, int m, int n, int k) where T : unmanaged
    {
        if (n == 1) return true;
        if (tb != Trans.Yes) return false;
        if (m == 1) return true;
        if (ta != Trans.No || m > MaxDotRows) return false;
        int[] depth = typeof(T) == typeof(float) ? MinDotDepth32 : MinDotDepth64;
        return k >= depth[m <= 4 ? 0 : m <= 8 ? 1 : 2];
    }

    /// <summary>
    /// Most rows of A for which A·Bᵀ runs in dot form (mutable for the benchmark's tuning only). A tile's horizontal
    /// sums cost about as much as a few vector steps along k, so the dot form needs more steps the more rows the
    /// direct path could fill its tiles with. Measured (% of OpenBLAS, bench gemm --cpu-time, two rounds, f64 / f32,
    /// direct → dot): 5×40×100 60 / 70 → 102–107 / 96–106, 6×50×200 51 / 40 → 78 / 95–98, 12×100×200 57–61 / 65–72 →
    /// 92 / 81–82, 12×30×600 48–72 / 43–48 → 87 / 80, 7×90×33 f64 83–85 → 100–112, 4×500×12 f64 81–85 → 97–98,
    /// 4×100×24 121–126 / 120–139 → 188 / 144; the direct path kept 7×90×33 f32 (113–115 → 87–93), 8×40×64 f32,
    /// 6×80×40 f32 (125 → 85–94), 4×500×12 f32 (102–124 → 97), 3×300×16 f32, 10×200×64 (136 / 171–189 → 126 / 159)
    /// and 16×64×256 f64 (93–98 → 81).
    /// </summary>
    internal static int MaxDotRows = 15;

    /// <summary>Least float64 k for A·Bᵀ in dot form with up to 4, 8 and 15 rows (mutable for the benchmark's tuning only).</summary>
    internal static readonly int[] MinDotDepth64 = [12, 32, 192];

    /// <summary>Least float32 k for A·Bᵀ in dot form with up to 4, 8 and 15 rows (one 16-lane step is too few; mutable for tuning).</summary>
    internal static readonly int[] MinDotDepth32 = [17, 96, 192];

    /// <summary>C = alpha·op(A)·op(B) + beta·C for a product that <see cref="Takes"/> accepts (m, n, k ≥ 1, alpha ≠ 0).</summary>
    public static void Run<T>(Trans ta, Trans tb, int m, int n, int k, T alpha,
        T* a, nint lda, T* b, nint ldb, T beta, T* c, nint ldc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (n == 1)
        {
            // op(B)(p, 0) = b[p·ldb] (No) or b[p] (Yes).
            nint sx = tb == Trans.No && k > 1 ? ldb : 1;
            if (ta == Trans.Yes && (long)k * Math.Max(lda, m) * sizeof(T) > StreamingColumnBytes && m * sizeof(T) <= StreamingRowBytes)
            {
                GemmVector.ColumnResult(ta, tb, m, k, alpha, a, lda, b, ldb, beta, c, ldc);
                return;
            }
            if (ta == Trans.Yes)
            {
                // op(A)(i, p) = a[p·lda + i]. A stored A larger than L2 runs in slabs of rows that stay there
                // across the passes of the row blocks; later slabs add to C (beta = 1).
                int slab = Math.Max(1, (int)Math.Min(k, AxpySlabBytes / sizeof(T) / Math.Max(lda, m)));
                for (int p = 0; p < k; p += slab)
                    Axpy(m, Math.Min(slab, k - p), alpha, a + p * lda, lda, b + p * sx, sx, p == 0 ? beta : T.One, c, ldc);
                return;
            }
            if (k < ScalarDepth)
            {
                ShallowColumn(m, k, alpha, a, lda, b, sx, beta, c, ldc);
                return;
            }
            VectorDots(b, sx, k, m, alpha, a, lda, beta, c, ldc);
            return;
        }
        // tb == Yes: op(B)(p, j) = b[j·ldb + p], rows of the stored B.
        if (m == 1 && ta == Trans.Yes && k > 1)
        {
            VectorDots(a, lda, k, n, alpha, b, ldb, beta, c, 1);
            return;
        }
        Dots(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 1);
    }

    /// <summary>
    /// One column of Aᵀ·x over a stored A beyond L2 (more bytes than this) with short rows (at most
    /// <see cref="StreamingRowBytes"/>) streams A row by row through <see cref="GemmVector.ColumnResult"/>: the
    /// slabs' strided passes prefetch badly there. Measured (% of OpenBLAS, f64 / f32, slabs → stream):
    /// 300×1×3000 Aᵀ·x 127 / 121 → 131 / 139, 100×1×10000 161 / 145 → 176 / 168; the slabs kept the wide rows
    /// (3000×1×300 105 / 104 → 95 / 100, 2000×1×500 Aᵀ·Bᵀ 102 → 94 / 99, 700×1×1400 f64 108 → 101). Tuning knobs.
    /// </summary>
    internal static long StreamingColumnBytes = 2 << 20;

    /// <inheritdoc cref="StreamingColumnBytes"/>
    internal static int StreamingRowBytes = 3 << 10;

    /// <summary>Bytes of the stored A per slab of <see cref="Axpy"/> (well inside L2).</summary>
    private const int AxpySlabBytes = 512 << 10;

    /// <summary>Below this k one column A·x runs as scalar FMA chains, one row per chain (a horizontal sum per row costs more).</summary>
    internal static int ScalarDepth = 5;

    /// <summary>c[i·ldc] = alpha·Σ_p a[i·lda + p]·x[p·sx] + beta·c[i·ldc] for a short k, one scalar chain per row.</summary>
    private static void ShallowColumn<T>(int m, int k, T alpha, T* a, nint lda, T* x, nint sx, T beta, T* c, nint ldc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (k == 1)
        {
            T ax = alpha * x[0];
            int i = 0;
            if (lda == 1 && ldc == 1) // a scaled vector
            {
                int w = Vector512<T>.Count;
                var vax = Vector512.Create(ax);
                for (; i + w <= m; i += w)
                    Put(Vector512.Load(a + i) * vax, w, T.One, beta, c + i, 1);
            }
            for (; i < m; i++) Store(c + i * ldc, ax * a[i * lda], beta);
            return;
        }
        T x0 = x[0], x1 = x[sx];
        if (k == 2)
        {
            for (int i = 0; i < m; i++)
            {
                T* ai = a + i * lda;
                Store(c + i * ldc, alpha * T.FusedMultiplyAdd(ai[1], x1, ai[0] * x0), beta);
            }
            return;
        }
        T x2 = x[2 * sx];
        for (int i = 0; i < m; i++)
        {
            T* ai = a + i * lda;
            T sum = T.FusedMultiplyAdd(ai[2], x2, T.FusedMultiplyAdd(ai[1], x1, ai[0] * x0));
            for (int p = 3; p < k; p++) sum = T.FusedMultiplyAdd(ai[p], x[p * sx], sum);
            Store(c + i * ldc, alpha * sum, beta);
        }
    }

    /// <summary>out[s·cs] = alpha·Σ_p x[p·sx]·v[s·ldv + p] + beta·out[s·cs], s &lt; rv; x is gathered first unless sx is 1.</summary>
    private static void VectorDots<T>(T* x, nint sx, int k, int rv, T alpha, T* v, nint ldv, T beta, T* c, nint cs)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (sx == 1)
        {
            Dots(1, rv, k, alpha, x, 0, v, ldv, beta, c, 0, cs);
            return;
        }
        if (k <= StackGather)
        {
            T* g = stackalloc T[k];
            for (int p = 0; p < k; p++) g[p] = x[p * sx];
            Dots(1, rv, k, alpha, g, 0, v, ldv, beta, c, 0, cs);
            return;
        }
        var buffers = GemmBuffers<T>.Rent();
        try
        {
            T* g = buffers.PackB(k);
            for (int p = 0; p < k; p++) g[p] = x[p * sx];
            Dots(1, rv, k, alpha, g, 0, v, ldv, beta, c, 0, cs);
        }
        finally
        {
            GemmBuffers<T>.Return(buffers);
        }
    }

    /// <summary>
    /// out(r, s) = alpha·Σ_p u[r·ldu + p]·v[s·ldv + p] + beta·out(r, s), out(r, s) = c[r·cr + s·cs]: <see cref="DotTile{T}"/>
    /// tiles of 4 rows of u (fewer at the end; one row in two chains per sum) by 4 rows of v (fewer at the end); each
    /// tile sweeps all of v while its rows of u stay in L1.
    /// </summary>
    private static void Dots<T>(int ru, int rv, int k, T alpha, T* u, nint ldu, T* v, nint ldv,
        T beta, T* c, nint cr, nint cs)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int r = 0;
        for (; r + 4 <= ru; r += 4) Rows<T, C4>(rv, k, alpha, u + r * ldu, ldu, v, ldv, beta, c + r * cr, cr, cs);
        switch (ru - r)
        {
            case 3: Rows<T, C3>(rv, k, alpha, u + r * ldu, ldu, v, ldv, beta, c + r * cr, cr, cs); break;
            case 2: Rows<T, C2>(rv, k, alpha, u + r * ldu, ldu, v, ldv, beta, c + r * cr, cr, cs); break;
            case 1: Rows<T, C1>(rv, k, alpha, u + r * ldu, ldu, v, ldv, beta, c + r * cr, cr, cs); break;
        }
    }

    /// <summary>R rows of u against all rows of v: groups of 4, then the last 1–3 rows.</summary>
    private static void Rows<T, R>(int rv, int k, T alpha, T* u, nint ldu, T* v, nint ldv, T beta, T* c, nint cr, nint cs)
        where T : unmanaged, IFloatingPointIeee754<T> where R : struct, ICount
    {
        int whole = rv & ~3;
        DotTile<T>.Tiles<R, C4, Sums<T>>(whole, k, alpha, u, ldu, v, ldv, beta, c, cr, cs, pairs: true);
        T* vr = v + whole * ldv, cw = c + whole * cs;
        switch (rv - whole)
        {
            case 3: DotTile<T>.Tiles<R, C3, Sums<T>>(3, k, alpha, u, ldu, vr, ldv, beta, cw, cr, cs, pairs: true); break;
            case 2: DotTile<T>.Tiles<R, C2, Sums<T>>(2, k, alpha, u, ldu, vr, ldv, beta, cw, cr, cs, pairs: true); break;
            case 1: DotTile<T>.Tiles<R, C1, Sums<T>>(1, k, alpha, u, ldu, vr, ldv, beta, cw, cr, cs, pairs: true); break;
        }
    }

    /// <summary>GemmDot's lane sums and epilogue for <see cref="DotTile{T}"/>: <see cref="Finish"/> on each row of (up to) 4 sums, in registers.</summary>
    private struct Sums<T> : IDotFinish<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Row(int cols, Vector512<T> s0, Vector512<T> s1, Vector512<T> s2, Vector512<T> s3, Vector512<T> s4, Vector512<T> s5,
            Vector512<T> s6, Vector512<T> s7, int r, int rows, T* sums, T alpha, T beta, T* c, nint cr, nint cs)
            => Finish(s0, s1, s2, s3, alpha, beta, c + r * cr, cs, cols);
    }

    /// <summary>Sums each accumulator's lanes and stores out[s·cs] = alpha·sum_s + beta·out[s·cs] for s &lt; count.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish<T>(Vector512<T> s0, Vector512<T> s1, Vector512<T> s2, Vector512<T> s3,
        T alpha, T beta, T* c, nint cs, int count)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(double))
        {
            Vector256<double> h0 = Half(s0.AsDouble()), h1 = Half(s1.AsDouble()), h2 = Half(s2.AsDouble()), h3 = Half(s3.AsDouble());
            Vector256<double> t0 = Avx.HorizontalAdd(h0, h1), t1 = Avx.HorizontalAdd(h2, h3); // pairs, per 128-bit lane
            Vector256<double> sum = Avx.Permute2x128(t0, t1, 0x20) + Avx.Permute2x128(t0, t1, 0x31);
            Vector256<double> va = Vector256.Create(double.CreateTruncating(alpha));
            if (cs == 1 && count == 4) // 4 neighbours in C: one vector epilogue
            {
                double* cd = (double*)c;
                sum *= va;
                if (beta != T.Zero) sum = System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(Vector256.Create(double.CreateTruncating(beta)), Vector256.Load(cd), sum);
                Vector256.Store(sum, cd);
                return;
            }
            Put4(sum.As<double, T>().GetLower(), sum.As<double, T>().GetUpper(), alpha, beta, c, cs, count);
        }
        else
        {
            Vector128<float> q0 = Quarter(s0.AsSingle()), q1 = Quarter(s1.AsSingle()), q2 = Quarter(s2.AsSingle()), q3 = Quarter(s3.AsSingle());
            Vector128<float> sum = Sse3.HorizontalAdd(Sse3.HorizontalAdd(q0, q1), Sse3.HorizontalAdd(q2, q3));
            if (cs == 1 && count == 4)
            {
                float* cf = (float*)c;
                sum *= Vector128.Create(float.CreateTruncating(alpha));
                if (beta != T.Zero) sum = System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(Vector128.Create(float.CreateTruncating(beta)), Vector128.Load(cf), sum);
                Vector128.Store(sum, cf);
                return;
            }
            Vector128<T> r = sum.As<float, T>();
            Store(c, alpha * r.GetElement(0), beta);
            if (count > 1) Store(c + cs, alpha * r.GetElement(1), beta);
            if (count > 2) Store(c + 2 * cs, alpha * r.GetElement(2), beta);
            if (count > 3) Store(c + 3 * cs, alpha * r.GetElement(3), beta);
        }
    }

    /// <summary>The scalar epilogue of <see cref="Finish"/> for float64 sums (two per half).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put4<T>(Vector128<T> lo, Vector128<T> hi, T alpha, T beta, T* c, nint cs, int count)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Store(c, alpha * lo.GetElement(0), beta);
        if (count > 1) Store(c + cs, alpha * lo.GetElement(1), beta);
        if (count > 2) Store(c + 2 * cs, alpha * hi.GetElement(0), beta);
        if (count > 3) Store(c + 3 * cs, alpha * hi.GetElement(1), beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<double> Half(Vector512<double> x) => x.GetLower() + x.GetUpper();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Quarter(Vector512<float> x)
    {
        Vector256<float> h = x.GetLower() + x.GetUpper();
        return h.GetLower() + h.GetUpper();
    }

    /// <summary>
    /// One column of Aᵀ·x: c[i·ldc] = alpha·Σ_p a[p·lda + i]·x[p·sx] + beta·c[i·ldc], 4 vectors of rows at a time
    /// (then 1, then a masked one) held in registers over all of p.
    /// </summary>
    private static void Axpy<T>(int m, int k, T alpha, T* a, nint lda, T* x, nint sx, T beta, T* c, nint ldc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int W = Vector512<T>.Count, i = 0;
        for (; i + 4 * W <= m; i += 4 * W)
        {
            Vector512<T> y0 = default, y1 = default, y2 = default, y3 = default;
            T* ap = a + i;
            for (int p = 0; p < k; p++, ap += lda)
            {
                var xp = Vector512.Create(x[p * sx]);
                y0 = Fma(Vector512.Load(ap), xp, y0);
                y1 = Fma(Vector512.Load(ap + W), xp, y1);
                y2 = Fma(Vector512.Load(ap + 2 * W), xp, y2);
                y3 = Fma(Vector512.Load(ap + 3 * W), xp, y3);
            }
            Put(y0, W, alpha, beta, c + i * ldc, ldc);
            Put(y1, W, alpha, beta, c + (i + W) * ldc, ldc);
            Put(y2, W, alpha, beta, c + (i + 2 * W) * ldc, ldc);
            Put(y3, W, alpha, beta, c + (i + 3 * W) * ldc, ldc);
        }
        for (; i < m; i += W)
        {
            int count = Math.Min(W, m - i);
            Vector512<T> mask = LaneMask<T>(count == W ? 0 : count);
            // Two chains over p (even, odd) against the FMA latency.
            Vector512<T> y0 = default, y1 = default;
            T* ap = a + i;
            int p = 0;
            for (; p + 2 <= k; p += 2, ap += 2 * lda)
            {
                y0 = Fma(Load(ap, mask, count == W), Vector512.Create(x[p * sx]), y0);
                y1 = Fma(Load(ap + lda, mask, count == W), Vector512.Create(x[(p + 1) * sx]), y1);
            }
            if (p < k) y0 = Fma(Load(ap, mask, count == W), Vector512.Create(x[p * sx]), y0);
            Put(y0 + y1, count, alpha, beta, c + i * ldc, ldc);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Load<T>(T* p, Vector512<T> mask, bool whole) where T : unmanaged
        => whole ? Vector512.Load(p) : MaskLoad(p, mask);

    /// <summary>c[l·ldc] = alpha·y[l] + beta·c[l·ldc] for the first <paramref name="count"/> lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put<T>(Vector512<T> y, int count, T alpha, T beta, T* c, nint ldc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        y *= Vector512.Create(alpha);
        if (ldc == 1 && count == Vector512<T>.Count)
        {
            if (beta != T.Zero) y = Fma(Vector512.Create(beta), Vector512.Load(c), y);
            Vector512.Store(y, c);
            return;
        }
        for (int l = 0; l < count; l++)
        {
            T* cl = c + l * ldc;
            *cl = beta == T.Zero ? y.GetElement(l) : T.FusedMultiplyAdd(beta, *cl, y.GetElement(l));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store<T>(T* c, T value, T beta) where T : unmanaged, IFloatingPointIeee754<T>
        => *c = beta == T.Zero ? value : T.FusedMultiplyAdd(beta, *c, value);



}
