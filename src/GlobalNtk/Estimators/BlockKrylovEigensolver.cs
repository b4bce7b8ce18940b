using GlobalNtk.Dense;
using GlobalNtk.Operators;
using MathNet.Numerics.LinearAlgebra;

namespace GlobalNtk.Estimators;

/// <summary>
/// Block Lanczos / block Krylov for the extreme eigenpairs of a self-adjoint operator, with full
/// re-orthogonalisation (every new block is projected twice against the whole basis) and
/// Rayleigh–Ritz on T = QᵀAQ after every block. When the basis is full it restarts from the
/// current best Ritz vectors. Residual estimates ‖(I−QQᵀ)A Q y‖ drive convergence; the returned
/// residuals ‖A v − λ v‖ are recomputed with one final block application.
/// </summary>
internal sealed class BlockKrylovEigensolver
{
    private readonly LinearOperator _op;
    private readonly int _n, _k, _block, _capacity, _maxApplications;
    private readonly double _tolerance;
    private readonly bool _eigenvalueTolerance;
    private readonly EigenOrder _order;
    private readonly Random _rng;
    private readonly bool _strictBudget;

    /// <summary>A solver for the <paramref name="k"/> extreme eigenpairs of the symmetric <paramref name="op"/>.</summary>
    /// <param name="op">The symmetric operator.</param>
    /// <param name="k">Number of eigenpairs wanted.</param>
    /// <param name="seed">Seed of the random starting block.</param>
    /// <param name="tolerance">Relative convergence tolerance (see <paramref name="eigenvalueTolerance"/>).</param>
    /// <param name="blockSize">Vectors per Krylov block (one block application per step).</param>
    /// <param name="maxBasis">Most basis vectors held (then a restart keeps the best Ritz vectors); 0: a default within the memory budget.</param>
    /// <param name="order">Which end of the spectrum to return.</param>
    /// <param name="eigenvalueTolerance">
    /// Converge on the eigenvalue error bound min(r, r²/gap) ≤ tolerance·max|θ| (r the residual
    /// estimate, gap the distance to the nearest other Ritz value) instead of r ≤ tolerance·max|θ|.
    /// </param>
    /// <param name="maxApplications">
    /// Budget of operator applications including the final residual block; never exceeded when
    /// positive (0: a generous default that may be passed by the last block).
    /// </param>
    public BlockKrylovEigensolver(LinearOperator op, int k, int seed, double tolerance, int blockSize, int maxBasis, int maxApplications, EigenOrder order,
        bool eigenvalueTolerance = false)
    {
        _op = op;
        _n = op.Domain.Size;
        if (k < 1 || k > _n) throw new ArgumentOutOfRangeException(nameof(k), $"Eigenpairs: k = {k} must be between 1 and the dimension {_n} of {op.Domain}.");
        if (!(tolerance > 0)) throw new ArgumentOutOfRangeException(nameof(tolerance), $"Eigenpairs: tolerance must be positive, got {tolerance}.");
        _k = k;
        _block = Math.Min(_n, blockSize > 0 ? blockSize : k + Math.Max(3, k / 2));
        if (maxApplications > 0)
        {
            // A strict budget must hold one block and the final residual block of k.
            if (maxApplications < 2 * k) throw new ArgumentOutOfRangeException(nameof(maxApplications), $"Eigenpairs: a budget of {maxApplications} applications cannot hold the first block and the final residuals of k = {k} (needs at least {2 * k}).");
            if (blockSize <= 0) _block = Math.Min(_block, maxApplications - k);
            _strictBudget = true;
        }
        // A block smaller than k is allowed only under a strict budget (more Krylov steps for the
        // same applications); restarts then keep the top k Ritz vectors, not just a block.
        if (_block < k && !_strictBudget) throw new ArgumentOutOfRangeException(nameof(blockSize), $"Eigenpairs: block size {blockSize} is smaller than k = {k}.");
        // Default basis: room for many blocks, but at most ~1 GiB of basis vectors.
        int memoryCap = (int)Math.Clamp((1L << 27) / _n, Math.Min(_n, 2L * _block), int.MaxValue);
        _capacity = Math.Min(_n, maxBasis > 0 ? maxBasis : Math.Min(memoryCap, Math.Max(20 * _block, 4 * k + 100)));
        if (_capacity < Math.Min(_n, 2 * _block)) throw new ArgumentOutOfRangeException(nameof(maxBasis), $"Eigenpairs: basis size {maxBasis} must be at least two blocks ({2 * _block}).");
        _maxApplications = maxApplications > 0 ? maxApplications : Math.Max(50 * _capacity, 2000);
        _tolerance = tolerance;
        _eigenvalueTolerance = eigenvalueTolerance;
        _order = order;
        _rng = RngKey.FromSeed(seed).CreateRandom();
    }

    public EigenResult Solve()
    {
        int n = _n, cap = _capacity;
        var q = new double[(long)cap * n];
        var t = new double[cap * cap]; // t[i, j] for i ≤ j (upper part) = q_iᵀ A q_j
        // The expansion block; room for k vectors too: it takes the Ritz vectors at a restart and at the end.
        var w = new double[(long)Math.Max(_block, _k) * n];
        int applications = 0, restarts = 0;

        RandomProbes.Gaussian(_rng, w.AsSpan(0, _block * n));
        int s = 0, previous = 0; // previous: start of the block before [s, e)
        int e = Orthonormalizer.Orthonormalize(w, _block, n, ReadOnlySpan<double>.Empty, 0, _rng);
        w.AsSpan(0, e * n).CopyTo(q);

        while (true)
        {
            // Expand: W = A Q[s:e], T[0:e, s:e] = Q[0:e]ᵀ W, W ← (I − QQᵀ) W.
            int bs = e - s;
            var wb = w.AsSpan(0, bs * n);
            _op.ApplyBlock(q.AsSpan(s * n, bs * n), wb, bs);
            applications += bs;
            Numerics.EnsureFinite(wb, $"Eigenpairs: {_op.Name} applied to a Krylov block");
            double scale = 0;
            for (int j = 0; j < bs; j++) scale = Math.Max(scale, Numerics.Norm(wb.Slice(j * n, n)));
            var c = new double[e * bs];
            Orthonormalizer.ProjectOut(q.AsSpan(0, e * n), e, n, wb, bs, c);
            for (int i = 0; i < e; i++) for (int j = 0; j < bs; j++) t[i * cap + s + j] = c[i * bs + j];

            // Rayleigh–Ritz on the e-dimensional basis.
            var (theta, y) = RayleighRitz(t, cap, e, s, previous);
            var pick = Select(theta, Math.Min(_k, e));
            var residual = EstimateResiduals(y, e, s, bs, wb, pick);
            double norm = theta.Max(Math.Abs);
            var bound = _eigenvalueTolerance ? ErrorBounds(theta, residual, pick) : residual;
            bool converged = pick.Length == _k && pick.All(i => bound[i] <= _tolerance * Math.Max(norm, double.Epsilon));

            // The whole space spanned: Ritz pairs are exact.
            if (converged || e >= n) return Finish(q, w, y, theta, pick, e, applications, restarts, EigenStatus.Converged, bound);
            // Stop when the next block and the final residual block would not fit the budget.
            // (The next expansion applies at most one block.)
            if (_strictBudget ? applications + _block + _k > _maxApplications : applications >= _maxApplications)
                return Finish(q, w, y, theta, pick, e, applications, restarts, EigenStatus.BudgetExhausted, bound);
            if (e + bs <= cap)
            {
                // Orthonormalise the new block (random directions replace dependent vectors).
                int added = Orthonormalizer.Orthonormalize(wb, bs, n, q.AsSpan(0, e * n), e, _rng, alreadyProjected: true, scale: scale);
                if (added == 0) return Finish(q, w, y, theta, pick, e, applications, restarts, EigenStatus.InvariantSubspace, bound);
                wb.Slice(0, added * n).CopyTo(q.AsSpan(e * n, added * n));
                previous = s; s = e; e += added;
            }
            else
            {
                // Basis full: restart from the best max(block, k) Ritz vectors (leaving room for one block).
                var keep = Select(theta, Math.Min(Math.Min(Math.Max(_block, _k), cap - _block), e));
                var v = RitzVectors(q, y, e, keep, w); // W is spent: reuse it
                int kept = Orthonormalizer.Orthonormalize(v, keep.Length, n, ReadOnlySpan<double>.Empty, 0, _rng);
                Array.Clear(t);
                v.AsSpan(0, kept * n).CopyTo(q);
                previous = s = 0; e = kept; restarts++;
            }
        }
    }

    private static (double[] Theta, double[] Y) RayleighRitz(double[] t, int cap, int e, int s, int previous)
    {
        var m = Matrix<double>.Build.Dense(e, e);
        double asym = 0, total = 0;
        for (int i = 0; i < e; i++)
            for (int j = i; j < e; j++)
            {
                double v = t[i * cap + j];
                m[i, j] = v; m[j, i] = v;
                total += v * v;
            }
        // Self-adjointness check: the newest diagonal block must be symmetric, and blocks more than
        // one apart must vanish (A Q_i ∈ span(Q_0..Q_{i+1}) ⊥ later blocks) when A = A*.
        for (int i = s; i < e; i++)
            for (int j = s; j < i; j++) { double d = t[j * cap + i] - t[i * cap + j]; asym += d * d; }
        for (int i = 0; i < previous; i++)
            for (int j = s; j < e; j++) { double v = t[i * cap + j]; asym += v * v; }
        if (asym > 1e-12 * Math.Max(total, double.Epsilon))
            throw new InvalidOperationException($"Eigenpairs need a self-adjoint operator, but QᵀAQ is not symmetric (relative asymmetry {Math.Sqrt(asym / total):G3}).");
        var evd = m.Evd(MathNet.Numerics.LinearAlgebra.Symmetricity.Symmetric);
        var theta = evd.EigenValues.Select(z => z.Real).ToArray();
        var vecs = evd.EigenVectors;
        var y = new double[e * e]; // y[i, j]: component i of Ritz vector j
        for (int i = 0; i < e; i++) for (int j = 0; j < e; j++) y[i * e + j] = vecs[i, j];
        return (theta, y);
    }

    private int[] Select(double[] theta, int count)
    {
        var idx = Enumerable.Range(0, theta.Length);
        idx = _order == EigenOrder.LargestMagnitude
            ? idx.OrderByDescending(i => Math.Abs(theta[i]))
            : idx.OrderByDescending(i => theta[i]);
        return idx.Take(count).ToArray();
    }

    // ‖A Q y − θ Q y‖ = ‖W_proj · y[s:e]‖: only the newest block's residual leaves span(Q).
    private static double[] EstimateResiduals(double[] y, int e, int s, int bs, ReadOnlySpan<double> wProj, int[] pick)
    {
        int n = wProj.Length / Math.Max(1, bs);
        var coef = new double[pick.Length * bs];
        for (int p = 0; p < pick.Length; p++) for (int j = 0; j < bs; j++) coef[p * bs + j] = y[(s + j) * e + pick[p]];
        var r = new double[pick.Length * n];
        Gemm.Multiply(Trans.No, Trans.No, pick.Length, n, bs, 1.0, coef, bs, wProj, n, 0.0, r, n);
        var res = new double[e];
        for (int p = 0; p < pick.Length; p++) res[pick[p]] = Numerics.Norm(r.AsSpan(p * n, n));
        return res;
    }

    // V[p] = Σ_i y[i, pick[p]] q_i, as one GEMM: V = Yᵀ_pick · Q (into dest when given: it must not overlap Q).
    private double[] RitzVectors(double[] q, double[] y, int e, int[] pick, double[]? dest = null)
    {
        int n = _n;
        var coef = new double[pick.Length * e];
        for (int p = 0; p < pick.Length; p++) for (int i = 0; i < e; i++) coef[p * e + i] = y[i * e + pick[p]];
        var v = dest ?? new double[(long)pick.Length * n];
        Gemm.Multiply(Trans.No, Trans.No, pick.Length, n, e, 1.0, coef, e, q, n, 0.0, v, n);
        return v;
    }

    // Eigenvalue error bounds of the picked Ritz values: |λ − θ| ≤ r always, and ≤ r²/gap when the
    // gap to the rest of the spectrum is approximated by the nearest other Ritz value.
    private static double[] ErrorBounds(double[] theta, double[] residual, int[] pick)
    {
        var bound = new double[theta.Length];
        foreach (int i in pick)
        {
            double gap = double.PositiveInfinity;
            for (int j = 0; j < theta.Length; j++) if (j != i) gap = Math.Min(gap, Math.Abs(theta[i] - theta[j]));
            double r = residual[i];
            bound[i] = gap > 0 && double.IsFinite(gap) ? Math.Min(r, r * r / gap) : r;
        }
        return bound;
    }

    // w: the expansion block (at least k vectors), free by now: it holds the Ritz vectors, so the
    // final residual block costs one state block (the images) instead of two.
    private EigenResult Finish(double[] q, double[] w, double[] y, double[] theta, int[] pick, int e, int applications, int restarts, EigenStatus status, double[] bound)
    {
        int n = _n, k = pick.Length;
        // Report in descending order of value (by magnitude for LargestMagnitude).
        pick = _order == EigenOrder.LargestMagnitude
            ? pick.OrderByDescending(i => Math.Abs(theta[i])).ToArray()
            : pick.OrderByDescending(i => theta[i]).ToArray();
        var v = RitzVectors(q, y, e, pick, w);
        var av = _op.ApplyBlock(v.AsSpan(0, k * n), k);
        applications += k;
        var values = pick.Select(i => theta[i]).ToArray();
        var vectors = new double[k][];
        var residuals = new double[k];
        for (int p = 0; p < k; p++)
        {
            vectors[p] = v.AsSpan(p * n, n).ToArray();
            var r = av.AsSpan(p * n, n).ToArray();
            Numerics.Axpy(-values[p], vectors[p], r);
            residuals[p] = Numerics.Norm(r);
        }
        Numerics.EnsureFinite(values, $"Eigenvalues of {_op.Name}");
        return new EigenResult(values, vectors, residuals, applications, status != EigenStatus.BudgetExhausted, restarts)
        {
            Status = status,
            Budget = _strictBudget ? _maxApplications : 0,
            ErrorBounds = pick.Select(i => bound[i]).ToArray(),
            Images = av,
        };
    }
}
