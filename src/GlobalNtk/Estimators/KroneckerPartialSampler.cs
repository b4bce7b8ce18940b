using GlobalNtk.Dense;
using GlobalNtk.Operators;

namespace GlobalNtk.Estimators;

/// <summary>
/// Distribution of the kept-axis factor ψ of a Kronecker probe ψ⊗ω. Both have E[ψψᵀ] = I, so
/// both give unbiased tr M and ‖M‖_F²; they differ in variance (docs/math.md#partial-effective-rank).
/// </summary>
public enum KeptProbe
{
    /// <summary>Rademacher ψ: no kept-axis noise when M is diagonal; variance 2(‖M‖_F² − Σ M_kk²) per probe of tr M, about 2(tr M)² when M is close to rank one.</summary>
    Rademacher,
    /// <summary>ψ = √n·e_k for a uniform index k: variance n·Σ M_kk² − (tr M)², zero when the kept indices are exchangeable (equal diagonal), whatever the off-diagonal coupling.</summary>
    Index,
}

/// <summary>
/// Kronecker probes for a partial trace M = tr_other(A): per probe, two applications give
/// t = (ψ⊗ω)ᵀA(ψ⊗ω) (unbiased for tr M) and s = ψᵀM_ω′M_ωψ (unbiased for tr M² = ‖M‖_F², ω and
/// ω′ independent Rademacher on the traced axes). One seeded stream, so more probes can be drawn
/// later (adaptive budgets) and a rerun is identical.
/// </summary>
/// <remarks>
/// With a low-rank rest (M_L, tr M_L, ‖M_L‖²), the operator is the deflated A_D and t += tr M_L,
/// s += ‖M_L‖² + 2ψᵀM_L M_D,ω ψ (unbiased for 2 tr(M_L M_D)), so that the probes only carry the
/// deflated part's variance.
/// </remarks>
internal sealed class KroneckerPartialSampler
{
    private readonly LinearOperator _op;
    private readonly int _nk, _nt, _n;
    private readonly int[] _full;
    private readonly Random _rng;
    private readonly (double[] Matrix, double Trace, double Frobenius2)? _lowRank;
    private readonly int[] _tracedSizes;
    private readonly int[][] _tracedCoordinate;
    private double[]? _x, _y;
    private float[]? _x32, _y32;
    private int[]? _permutation;
    private int _permutationUsed;

    public KroneckerPartialSampler(LinearOperator op, AxisSplit split, int seed, (double[] Matrix, double Trace, double Frobenius2)? lowRank)
    {
        _op = op; _nk = split.Kept; _nt = split.Reduced; _n = op.Domain.Size; _full = split.Full;
        _rng = RngKey.FromSeed(seed).CreateRandom();
        _lowRank = lowRank;
        // Row-major coordinates of every traced position along each traced axis (for index factors).
        _tracedSizes = split.ReducedShape.Sizes.ToArray();
        _tracedCoordinate = new int[_tracedSizes.Length][];
        int stride = _nt;
        for (int a = 0; a < _tracedSizes.Length; a++)
        {
            stride /= _tracedSizes[a];
            var c = _tracedCoordinate[a] = new int[_nt];
            for (int r = 0; r < _nt; r++) c[r] = r / stride % _tracedSizes[a];
        }
    }

    /// <summary>Number of traced axes (the length of a traced-factor mask).</summary>
    public int TracedAxes => _tracedSizes.Length;

    /// <summary>
    /// Traced axes (bit a = a-th traced axis in shape order) whose factor of ω is an index factor
    /// √n_a·e_k (uniform k) instead of Rademacher; the other traced axes share one i.i.d. Rademacher
    /// vector. E[ωωᵀ] = I either way, so every probe stays unbiased; index factors remove the noise
    /// of a coherent, exchangeable traced axis (A ≈ J⊗C: a Rademacher quadratic form has relative
    /// variance up to 2 there, an index one none).
    /// </summary>
    public int TracedIndexMask { get; set; }

    /// <summary>Operator applications so far (two per probe).</summary>
    public long Applications { get; private set; }

    /// <summary>Draws <paramref name="count"/> probes with kept factor <paramref name="kind"/>; returns one row [t, t², s] per probe.</summary>
    public List<double[]> Sample(int count, KeptProbe kind) => Sample(count, kind, null);

    /// <summary>
    /// <see cref="Sample(int, KeptProbe)"/>, also returning per probe ψ∘(M_D,ω ψ) (expectation
    /// diag M_D) and s's deflated part ψᵀM_D,ω′M_D,ωψ, from which <see cref="RademacherKeptFloor"/> bounds
    /// Rademacher's kept-axis variance.
    /// </summary>
    public List<double[]> Sample(int count, KeptProbe kind, List<(double[] Diagonal, double Square)>? diagnostics)
    {
        int nk = _nk, nt = _nt, n = _n;
        var psi = new double[(long)count * nk];
        var omega1 = new double[(long)count * nt];
        var omega2 = new double[(long)count * nt];
        if (kind == KeptProbe.Rademacher) RandomProbes.Rademacher(_rng, psi);
        else
        {
            double scale = Math.Sqrt(nk);
            for (int i = 0; i < count; i++) psi[(long)i * nk + NextKeptIndex()] = scale;
        }
        RandomProbes.Rademacher(_rng, omega1);
        RandomProbes.Rademacher(_rng, omega2);
        if (TracedIndexMask != 0)
            for (int i = 0; i < count; i++)
            {
                IndexFactors(omega1.AsSpan((int)((long)i * nt), nt));
                IndexFactors(omega2.AsSpan((int)((long)i * nt), nt));
            }
        var rows = new List<double[]>(count);
        // Probe and image blocks in float32 when the operator applies float32 natively (ProbeBlock):
        // ψ⊗ω and its images are formed and contracted in float64, each element rounded once into the block.
        if (ProbeBlock.UsesFloat32(_op)) SampleBlocks(count, psi, omega1, omega2, diagnostics, rows, ref _x32, ref _y32);
        else SampleBlocks(count, psi, omega1, omega2, diagnostics, rows, ref _x, ref _y);
        return rows;
    }

    private void SampleBlocks<T>(int count, double[] psi, double[] omega1, double[] omega2, List<(double[] Diagonal, double Square)>? diagnostics,
        List<double[]> rows, ref T[]? xBuffer, ref T[]? yBuffer) where T : unmanaged
    {
        int nk = _nk, nt = _nt, n = _n;
        var full = _full;

        // x = u ⊗ w on the (kept, traced) split; contract(y, w)[k] = Σ_t w_t y[(k,t)].
        void Embed(ReadOnlySpan<double> u, ReadOnlySpan<double> w, Span<T> x)
        {
            for (int k = 0; k < nk; k++)
            {
                double uk = u[k];
                var row = full.AsSpan(k * nt, nt);
                for (int t = 0; t < nt; t++) ProbeBlock.Set(x, row[t], uk * w[t]);
            }
        }
        void Contract(ReadOnlySpan<T> y, ReadOnlySpan<double> w, Span<double> z)
        {
            for (int k = 0; k < nk; k++)
            {
                double acc = 0;
                var row = full.AsSpan(k * nt, nt);
                for (int t = 0; t < nt; t++) acc += w[t] * ProbeBlock.Get(y, row[t]);
                z[k] = acc;
            }
        }

        int chunk = ProbeBlock.VectorsPerBlock<T>(n, Math.Max(1, count));
        var x = ProbeRunner.Reuse(ref xBuffer, (long)Math.Min(chunk, count) * n);
        var yAll = ProbeRunner.Reuse(ref yBuffer, (long)Math.Min(chunk, count) * n);
        var z = new double[nk];
        var w = new double[nk];
        for (int first = 0; first < count; first += chunk)
        {
            int c = Math.Min(chunk, count - first);
            var xs = x[..(c * n)];
            var y = yAll[..(c * n)];
            for (int j = 0; j < c; j++)
                Embed(psi.AsSpan((first + j) * nk, nk), omega1.AsSpan((first + j) * nt, nt), xs.Slice(j * n, n));
            ProbeBlock.Apply<T>(_op, xs, y, c);
            var t = new double[c];
            var cross = new double[c];
            for (int j = 0; j < c; j++)
            {
                t[j] = ProbeBlock.Dot<T>(xs.Slice(j * n, n), y.Slice(j * n, n));
                Contract(y.Slice(j * n, n), omega1.AsSpan((first + j) * nt, nt), z);       // M_ω ψ
                if (_lowRank is { } lr) cross[j] = QuadraticForm(psi.AsSpan((first + j) * nk, nk), lr.Matrix, z, nk);
                if (diagnostics is not null)
                {
                    var d = new double[nk];
                    for (int k = 0; k < nk; k++) d[k] = psi[(long)(first + j) * nk + k] * z[k];
                    diagnostics.Add((d, 0));
                }
                Embed(z, omega2.AsSpan((first + j) * nt, nt), xs.Slice(j * n, n));
            }
            ProbeBlock.Apply<T>(_op, xs, y, c);
            for (int j = 0; j < c; j++)
            {
                Contract(y.Slice(j * n, n), omega2.AsSpan((first + j) * nt, nt), w);       // M_ω′ M_ω ψ
                double s2 = Numerics.Dot(psi.AsSpan((first + j) * nk, nk), w);
                if (diagnostics is not null) diagnostics[diagnostics.Count - c + j] = (diagnostics[diagnostics.Count - c + j].Diagonal, s2);
                double tj = t[j];
                if (_lowRank is { } lr)
                {
                    tj += lr.Trace;
                    s2 += lr.Frobenius2 + 2 * cross[j];
                }
                rows.Add([tj, tj * tj, s2]);
            }
            Applications += 2L * c;
        }
    }

    // Index ψ's kept indices run through random permutations of 0..n−1, a fresh one every n draws
    // (sampling without replacement). Each draw is still uniform, so every row stays unbiased for tr M
    // and ‖M‖_F²; but m ≤ n rows now see m distinct indices, which removes the kept-axis variance of
    // their mean by the finite-population factor (n − m)/(n − 1). With replacement, a few rows could
    // miss the few indices that carry most of ‖M‖_F² (demo GRU at checkpoint 120: PR 2.8 of 12 trials,
    // diag M² from 0.19 to 3.9 of its mean), and the ratio's jackknife SE was then small exactly when
    // the estimate was off (11 of 210 seeds beyond 3 SE against the exact partial trace).
    private int NextKeptIndex()
    {
        if (_permutation is null || _permutationUsed == _nk)
        {
            _permutation ??= new int[_nk];
            for (int k = 0; k < _nk; k++) _permutation[k] = k;
            for (int k = _nk - 1; k > 0; k--)
            {
                int j = _rng.Next(k + 1);
                (_permutation[k], _permutation[j]) = (_permutation[j], _permutation[k]);
            }
            _permutationUsed = 0;
        }
        return _permutation[_permutationUsed++];
    }

    // ω ← ω ∘ Π_{a in mask} √n_a·[coordinate_a = k_a] with a uniform k_a per index axis.
    private void IndexFactors(Span<double> omega)
    {
        double scale = 1;
        Span<int> pick = stackalloc int[_tracedSizes.Length];
        for (int a = 0; a < _tracedSizes.Length; a++)
            if ((TracedIndexMask >> a & 1) != 0) { pick[a] = _rng.Next(_tracedSizes[a]); scale *= _tracedSizes[a]; }
        scale = Math.Sqrt(scale);
        for (int r = 0; r < omega.Length; r++)
        {
            bool on = true;
            for (int a = 0; a < _tracedSizes.Length && on; a++)
                if ((TracedIndexMask >> a & 1) != 0 && _tracedCoordinate[a][r] != pick[a]) on = false;
            omega[r] = on ? omega[r] * scale : 0;
        }
    }

    /// <summary>
    /// Relative variance per probe of a set of rows, var(t)/mean(t)² + var(s)/mean(s)²: the
    /// quantity that decides which kept factor to keep drawing (PR's relative variance is a
    /// combination of both).
    /// </summary>
    public static double RelativeVariance(IReadOnlyList<double[]> rows) => RelativeVarianceOf(rows, 0) + RelativeVarianceOf(rows, 2);

    /// <summary>The relative variance per probe of s alone (the second term of <see cref="RelativeVariance"/>).</summary>
    public static double RelativeVarianceOfS(IReadOnlyList<double[]> rows) => RelativeVarianceOf(rows, 2);

    private static double RelativeVarianceOf(IReadOnlyList<double[]> rows, int col)
    {
        int m = rows.Count;
        if (m < 2) return double.PositiveInfinity;
        double mean = 0;
        foreach (var r in rows) mean += r[col] / m;
        double v = 0;
        foreach (var r in rows) v += (r[col] - mean) * (r[col] - mean);
        v /= m - 1;
        return mean > 0 ? v / (mean * mean) : double.PositiveInfinity;
    }

    /// <summary>tr M_L of the low-rank rest (0 without one): t's part that the probes do not carry.</summary>
    public double LowRankTrace => _lowRank?.Trace ?? 0;

    /// <summary>
    /// The kept-axis part of Rademacher ψ's relative variance of t, predicted from both pilots:
    /// Var_ψ(ψᵀM_Dψ) = 2(‖M_D‖_F² − Σ_k (M_D)_kk²) over (tr M)², with ‖M_D‖_F² the mean deflated s of all
    /// pilot rows and Σ_k (M_D)_kk² at most the index rows' mean (t − tr M_L)²/n (E = Σ_k (M_D)_kk² plus the
    /// traced-axes noise), so the prediction errs low. Unlike a few rows' sample variance it cannot
    /// vanish by chance when M is near rank one.
    /// </summary>
    public static double RademacherKeptFloor(IReadOnlyList<double[]> rad, IReadOnlyList<(double[] Diagonal, double Square)> radDiagnostics,
        IReadOnlyList<double[]> idx, IReadOnlyList<(double[] Diagonal, double Square)> idxDiagnostics, double lowRankTrace, int nk)
    {
        int m = rad.Count + idx.Count;
        if (m < 2 || radDiagnostics.Count != rad.Count || idxDiagnostics.Count != idx.Count) return 0;
        double meanT = 0, frob = 0, diag = 0;
        foreach (var r in rad) meanT += r[0] / m;
        foreach (var r in idx) { meanT += r[0] / m; double d = r[0] - lowRankTrace; diag += d * d / (nk * (double)idx.Count); }
        foreach (var d in radDiagnostics) frob += d.Square / m;
        foreach (var d in idxDiagnostics) frob += d.Square / m;
        if (!(meanT > 0)) return 0;
        return Math.Max(0, 2 * (frob - diag)) / (meanT * meanT);
    }

    // uᵀ M v for a row-major n×n M.
    private static double QuadraticForm(ReadOnlySpan<double> u, double[] m, ReadOnlySpan<double> v, int n)
    {
        double s = 0;
        for (int i = 0; i < n; i++)
            if (u[i] != 0) s += u[i] * Numerics.Dot(m.AsSpan(i * n, n), v);
        return s;
    }
}
