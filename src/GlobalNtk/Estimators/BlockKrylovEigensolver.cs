using System.Runtime.InteropServices;
using GlobalNtk.Dense;
using GlobalNtk.Operators;
using MathNet.Numerics.LinearAlgebra;

namespace GlobalNtk.Estimators;

/// <summary>
/// Block Lanczos / block Krylov for the extreme eigenpairs of a self-adjoint operator, with full
/// re-orthogonalisation (every new block is projected twice against the whole basis) and
/// Rayleigh–Ritz on T = QᵀAQ after every block. The basis is capped (the memory bound): when it is
/// full, a thick restart keeps the best Ritz vectors, computed in place, and continues from the
/// newest block's residual directions, so no application is repeated. Residual estimates
/// ‖(I−QQᵀ)A Q y‖ drive convergence; the returned residuals and images A v come from the
/// recurrence A Q = Q T + W E_sᵀ, without another application.
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
    /// <param name="maxBasis">Most basis vectors held (then a thick restart keeps the best Ritz vectors); 0: a default within the memory budget.</param>
    /// <param name="order">Which end of the spectrum to return.</param>
    /// <param name="eigenvalueTolerance">
    /// Converge on the eigenvalue error bound min(r, r²/gap) ≤ tolerance·max|θ| (r the residual
    /// estimate, gap the distance to the nearest other Ritz value) instead of r ≤ tolerance·max|θ|.
    /// </param>
    /// <param name="maxApplications">
    /// Budget of operator applications; never exceeded when positive (0: a generous default that may
    /// be passed by the last block).
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
            // A strict budget must hold a basis of k vectors and at least one more block.
            if (maxApplications < 2 * k) throw new ArgumentOutOfRangeException(nameof(maxApplications), $"Eigenpairs: a budget of {maxApplications} applications cannot hold a Krylov basis of twice k = {k} (needs at least {2 * k}).");
            if (blockSize <= 0) _block = Math.Min(_block, maxApplications - k);
            _strictBudget = true;
        }
        // A block smaller than k is allowed only under a strict budget (more Krylov steps for the
        // same applications); restarts then keep the top k Ritz vectors, not just a block.
        if (_block < k && !_strictBudget) throw new ArgumentOutOfRangeException(nameof(blockSize), $"Eigenpairs: block size {blockSize} is smaller than k = {k}.");
        // Default basis: room for many blocks, but at most ~1 GiB of basis vectors.
        int memoryCap = (int)Math.Clamp((1L << 27) / _n, Math.Min(_n, 2L * _block), int.MaxValue);
        _capacity = Math.Min(_n, maxBasis > 0 ? maxBasis : Math.Min(memoryCap, Math.Max(20 * _block, 4 * k + 100)));
        if (_capacity < Math.Min(_n, Math.Max(2 * _block, _k + _block))) throw new ArgumentOutOfRangeException(nameof(maxBasis), $"Eigenpairs: basis size {maxBasis} must hold two blocks and k plus a block ({Math.Max(2 * _block, _k + _block)}).");
        _maxApplications = maxApplications > 0 ? maxApplications : Math.Max(50 * _capacity, 2000);
        _tolerance = tolerance;
        _eigenvalueTolerance = eigenvalueTolerance;
        _order = order;
        _rng = RngKey.FromSeed(seed).CreateRandom();
    }

    /// <summary>Basis vectors the solver holds at most (the memory cap of <see cref="Solve"/>'s basis).</summary>
    internal int Capacity => _capacity;
    /// <summary>Eigenpairs wanted.</summary>
    internal int K => _k;
    /// <summary>Vectors per Krylov block.</summary>
    internal int BlockSize => _block;

    /// <summary>
    /// State vectors a solve holds at most: the basis, the expansion block (at least k: it takes
    /// the images at the end) and the k returned eigenvectors.
    /// </summary>
    internal long HeldVectors => (long)_capacity + Math.Max(_block, _k) + _k;

    /// <summary>
    /// Ritz vectors a thick restart keeps from a full basis of <paramref name="e"/> vectors: at
    /// least k (the wanted pairs), about half the basis (the next-best Ritz vectors speed up the
    /// wanted ones' convergence), and room for at least one new block before the next restart.
    /// </summary>
    internal static int RestartKeep(int capacity, int block, int k, int e) =>
        Math.Min(e, Math.Max(Math.Min(k, capacity - block), Math.Min(capacity - block, Math.Max(k + block, capacity / 2))));

    /// <summary>
    /// Solves. The basis and the expansion block are float32 for an operator that applies float32
    /// natively (<see cref="ProbeBlock.UsesFloat32"/>), at half the memory: the operator then sees
    /// float32 blocks, and every reduction of the basis (the coefficients QᵀW of the full
    /// re-orthogonalisation, T = QᵀAQ, norms, the Ritz combinations QY) is a float64 sum over float32
    /// entries widened a column chunk at a time (docs/math.md#numerics). Each stored basis vector is
    /// rounded once to float32 (relative 6e-8, below the float32 operator's own error), so the
    /// Ritz values carry that rounding, not a float32 accumulation. The returned eigenvectors and
    /// their images stay in the solve's precision (<see cref="EigenResult.SingleVectors"/> for
    /// float32), so the deflation that reuses them holds no float64 state vector either.
    /// </summary>
    public EigenResult Solve() => ProbeBlock.UsesFloat32(_op) ? Solve<float>() : Solve<double>();

    private EigenResult Solve<TV>() where TV : unmanaged
    {
        int n = _n, cap = _capacity;
        var q = new TV[(long)cap * n];
        var t = new double[cap * cap]; // t[i, j] for i ≤ j (upper part) = q_iᵀ A q_j
        // The expansion block; room for k vectors too: it takes the images A·v at the end.
        var w = new TV[(long)Math.Max(_block, _k) * n];
        int applications = 0, restarts = 0;

        Orthonormalizer.Gaussian(_rng, w.AsSpan(0, _block * n));
        int s = 0, previous = 0; // previous: start of the block before [s, e)
        int e = Orthonormalizer.Orthonormalize<TV>(w, _block, n, ReadOnlySpan<TV>.Empty, 0, _rng);
        w.AsSpan(0, e * n).CopyTo(q);

        while (true)
        {
            // Expand: W = A Q[s:e], T[0:e, s:e] = Q[0:e]ᵀ W, W ← (I − QQᵀ) W. Then A Q = Q T + W E_sᵀ
            // (the newest block's projected image W is the only part of A Q outside span Q).
            int bs = e - s;
            var wb = w.AsSpan(0, bs * n);
            ProbeBlock.Apply<TV>(_op, q.AsSpan(s * n, bs * n), wb, bs);
            applications += bs;
            ProbeBlock.EnsureFinite<TV>(wb, $"Eigenpairs: {_op.Name} applied to a Krylov block");
            double scale = 0;
            for (int j = 0; j < bs; j++) scale = Math.Max(scale, Orthonormalizer.Norm<TV>(wb.Slice(j * n, n)));
            var c = new double[e * bs];
            Orthonormalizer.ProjectOut<TV>(q.AsSpan(0, e * n), e, n, wb, bs, c);
            for (int i = 0; i < e; i++) for (int j = 0; j < bs; j++) t[i * cap + s + j] = c[i * bs + j];

            // Rayleigh–Ritz on the e-dimensional basis.
            var (theta, y) = RayleighRitz(t, cap, e, s, previous);
            var pick = Select(theta, Math.Min(_k, e));
            var residual = EstimateResiduals(y, e, s, bs, wb, pick);
            double norm = theta.Max(Math.Abs);
            var bound = _eigenvalueTolerance ? ErrorBounds(theta, residual, pick) : residual;
            bool converged = pick.Length == _k && pick.All(i => bound[i] <= _tolerance * Math.Max(norm, double.Epsilon));

            // The whole space spanned: Ritz pairs are exact.
            if (converged || e >= n) return Finish(q, w, y, theta, pick, e, s, bs, applications, restarts, EigenStatus.Converged, bound);
            // Stop when the next block would not fit the budget (it applies at most one block).
            if (_strictBudget ? applications + _block > _maxApplications : applications >= _maxApplications)
                return Finish(q, w, y, theta, pick, e, s, bs, applications, restarts, EigenStatus.BudgetExhausted, bound);
            // Orthonormalise the new block (random directions replace dependent vectors).
            int added = Orthonormalizer.Orthonormalize<TV>(wb, bs, n, q.AsSpan(0, e * n), e, _rng, alreadyProjected: true, scale: scale);
            if (added == 0) return Finish(q, w, y, theta, pick, e, s, bs, applications, restarts, EigenStatus.InvariantSubspace, bound);
            previous = s;
            if (e + added > cap)
            {
                // Thick restart: Q ← the best Ritz vectors V (in place). A V = V Θ + W Y_s with W ⊥ V,
                // so T restarts as diag(Θ) and W is the next block: no application is repeated.
                var keep = Select(theta, RestartKeep(cap, added, _k, e));
                CombineRows(q, e, n, y, e, keep, q);
                Array.Clear(t);
                for (int i = 0; i < keep.Length; i++) t[i * cap + i] = theta[keep[i]];
                previous = 0; e = keep.Length; restarts++;
            }
            wb.Slice(0, added * n).CopyTo(q.AsSpan(e * n, added * n));
            s = e; e += added;
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
    private static double[] EstimateResiduals<TV>(double[] y, int e, int s, int bs, ReadOnlySpan<TV> wProj, int[] pick) where TV : unmanaged
    {
        int n = wProj.Length / Math.Max(1, bs);
        var sq = new double[pick.Length];
        CombineColumns(wProj, bs, n, BlockCoefficients(y, e, s, bs, pick), pick.Length, (col, cols, block) =>
        {
            for (int p = 0; p < pick.Length; p++) { var r = block.Slice(p * cols, cols); sq[p] += Numerics.Dot(r, r); }
        });
        var res = new double[e];
        for (int p = 0; p < pick.Length; p++) res[pick[p]] = Math.Sqrt(sq[p]);
        return res;
    }

    // coef[p, j] = y[s + j, pick[p]]: the newest block's share of each picked Ritz vector.
    private static double[] BlockCoefficients(double[] y, int e, int s, int bs, int[] pick)
    {
        var coef = new double[pick.Length * bs];
        for (int p = 0; p < pick.Length; p++) for (int j = 0; j < bs; j++) coef[p * bs + j] = y[(s + j) * e + pick[p]];
        return coef;
    }

    /// <summary>Receives columns [col, col + cols) of a row-combination (rows × cols, row-major).</summary>
    internal delegate void ColumnSink(int col, int cols, ReadOnlySpan<double> block);

    /// <summary>Columns of the combination coef·src, a few at a time.</summary>
    internal const int CombineColumnChunk = 2048;

    /// <summary>
    /// Hands <paramref name="sink"/> the product coef·src ([rows, srcRows] times [srcRows, n], both
    /// row-major) in chunks of columns through a small scratch: every source column chunk is read
    /// before the sink sees it, so the sink may overwrite those columns of src (in-place updates
    /// without a second state-sized block).
    /// </summary>
    internal static void CombineColumns(ReadOnlySpan<double> src, int srcRows, int n, ReadOnlySpan<double> coef, int rows, ColumnSink sink) =>
        CombineColumns<double>(src, srcRows, n, coef, rows, sink);

    /// <summary>
    /// <see cref="CombineColumns(ReadOnlySpan{double}, int, int, ReadOnlySpan{double}, int, ColumnSink)"/>
    /// for a source stored in T: a float32 source's column chunk is widened first, so the
    /// combination is a float64 GEMM (the sink sees float64 columns either way).
    /// </summary>
    internal static void CombineColumns<TV>(ReadOnlySpan<TV> src, int srcRows, int n, ReadOnlySpan<double> coef, int rows, ColumnSink sink)
        where TV : unmanaged
    {
        if (rows == 0 || n == 0) return;
        int chunk = Math.Min(n, CombineColumnChunk);
        var scratch = new double[rows * chunk];
        var wide = typeof(TV) == typeof(double) ? [] : new double[(long)srcRows * chunk];
        for (int col = 0; col < n; col += chunk)
        {
            int cols = Math.Min(chunk, n - col);
            var block = scratch.AsSpan(0, rows * cols);
            if (typeof(TV) == typeof(double))
                Gemm.Multiply(Trans.No, Trans.No, rows, cols, srcRows, 1.0, coef, srcRows,
                    MemoryMarshal.Cast<TV, double>(src).Slice(col, (srcRows - 1) * n + cols), n, 0.0, block, cols);
            else
            {
                Orthonormalizer.Widen(MemoryMarshal.Cast<TV, float>(src), srcRows, n, col, cols, wide);
                Gemm.Multiply(Trans.No, Trans.No, rows, cols, srcRows, 1.0, coef, srcRows, wide, cols, 0.0, block, cols);
            }
            sink(col, cols, block);
        }
    }

    // dst[p] = Σ_i y[i, pick[p]] src_i for the first pick.Length rows of dst (dst may be src: in place).
    private static void CombineRows<TV>(TV[] src, int e, int n, double[] y, int yCols, int[] pick, TV[] dst) where TV : unmanaged
    {
        var coef = new double[pick.Length * e];
        for (int p = 0; p < pick.Length; p++) for (int i = 0; i < e; i++) coef[p * e + i] = y[i * yCols + pick[p]];
        CombineColumns<TV>(src, e, n, coef, pick.Length, (col, cols, block) =>
        {
            for (int p = 0; p < pick.Length; p++) Store(block.Slice(p * cols, cols), dst.AsSpan(p * n + col, cols));
        });
    }

    // dst = src, rounded once for float32.
    private static void Store<TV>(ReadOnlySpan<double> src, Span<TV> dst) where TV : unmanaged
    {
        if (typeof(TV) == typeof(double)) src.CopyTo(MemoryMarshal.Cast<TV, double>(dst));
        else Float32.Narrow(src, MemoryMarshal.Cast<TV, float>(dst));
    }

    // Eigenvalue error bounds of the picked Ritz values: |λ − θ| ≤ r always, and ≤ r²/gap when the
    // gap to the rest of the spectrum is approximated by the nearest other Ritz value. Never below
    // rounding: T's entries are length-n dot products (relative error ~ε), so the eigenvalues of
    // the e×e T carry about e·ε·max|θ| (r²/gap alone fell to 1e-16 of λ₁, and a converged λ₁ of the
    // transformer's NTK_S then differed from the thorough run's by 7 such "bounds", at 1e-15).
    // float64 machine epsilon (double.Epsilon is the smallest subnormal, not this).
    // The floor stays float64's with a float32 basis: these bounds do not model float32 rounding
    // (the basis's, 6e-8 per entry, nor a float32 operator's own, about 1e-6 relative; see
    // docs/math.md#numerics), which limits an f32 eigenvalue's accuracy to about that, whatever its bound.
    private const double MachineEpsilon = 2.220446049250313e-16;

    private static double[] ErrorBounds(double[] theta, double[] residual, int[] pick)
    {
        var bound = new double[theta.Length];
        double floor = theta.Length * MachineEpsilon * theta.Max(Math.Abs);
        foreach (int i in pick)
        {
            double gap = double.PositiveInfinity;
            for (int j = 0; j < theta.Length; j++) if (j != i) gap = Math.Min(gap, Math.Abs(theta[i] - theta[j]));
            double r = residual[i];
            bound[i] = Math.Max(floor, gap > 0 && double.IsFinite(gap) ? Math.Min(r, r * r / gap) : r);
        }
        return bound;
    }

    // The picked Ritz pairs without another application: V = Q Y_pick (in place in Q) and
    // A V = V Θ + W Y_s,pick (in place in W, which has room for k vectors), so the images for a
    // deflation and the residuals ‖A v − θ v‖ = ‖W y_s‖ come from the recurrence A Q = Q T + W E_sᵀ.
    private EigenResult Finish<TV>(TV[] q, TV[] w, double[] y, double[] theta, int[] pick, int e, int s, int bs, int applications, int restarts,
        EigenStatus status, double[] bound) where TV : unmanaged
    {
        int n = _n, k = pick.Length;
        // Report in descending order of value (by magnitude for LargestMagnitude).
        pick = _order == EigenOrder.LargestMagnitude
            ? pick.OrderByDescending(i => Math.Abs(theta[i])).ToArray()
            : pick.OrderByDescending(i => theta[i]).ToArray();
        var values = pick.Select(i => theta[i]).ToArray();
        Numerics.EnsureFinite(values, $"Eigenvalues of {_op.Name}");
        CombineRows(q, e, n, y, e, pick, q);
        var sq = new double[k];
        // A v = θ v + W y_s, in place in W (each column chunk of W is read before its images are
        // written); formed in float64 and, for a float32 solve, rounded once into float32.
        CombineColumns<TV>(w.AsSpan(0, bs * n), bs, n, BlockCoefficients(y, e, s, bs, pick), k, (col, cols, block) =>
        {
            for (int p = 0; p < k; p++)
            {
                var r = block.Slice(p * cols, cols);
                sq[p] += Numerics.Dot(r, r);
                StoreImage(values[p], q.AsSpan(p * n + col, cols), r, w.AsSpan(p * n + col, cols));
            }
        });
        var images = w.Length == (long)k * n ? w : w.AsSpan(0, k * n).ToArray();
        var result = new EigenResult(values, null!, sq.Select(Math.Sqrt).ToArray(), applications, status != EigenStatus.BudgetExhausted, restarts)
        {
            Status = status,
            Budget = _strictBudget ? _maxApplications : 0,
            ErrorBounds = pick.Select(i => bound[i]).ToArray(),
        };
        // The vectors stay in the solve's precision: an f32 analysis holds no float64 state vector.
        var vectors = new TV[k][];
        for (int p = 0; p < k; p++) vectors[p] = q.AsSpan(p * n, n).ToArray();
        return typeof(TV) == typeof(double)
            ? result with { Vectors = (double[][])(object)vectors, Images = (double[])(object)images }
            : result with { SingleVectors = (float[][])(object)vectors, SingleImages = (float[])(object)images };
    }

    // image = θ v + r (v the Ritz vector, r = W y_s): float64 as before; float32 v widened, the sum rounded once.
    private static void StoreImage<TV>(double theta, ReadOnlySpan<TV> v, ReadOnlySpan<double> r, Span<TV> image) where TV : unmanaged
    {
        if (typeof(TV) == typeof(double))
        {
            var im = MemoryMarshal.Cast<TV, double>(image);
            r.CopyTo(im);
            Numerics.Axpy(theta, MemoryMarshal.Cast<TV, double>(v), im);
            return;
        }
        var vf = MemoryMarshal.Cast<TV, float>(v);
        var imf = MemoryMarshal.Cast<TV, float>(image);
        int i = 0, wf = System.Numerics.Vector<float>.Count, h = System.Numerics.Vector<double>.Count;
        var t = new System.Numerics.Vector<double>(theta);
        for (; i <= vf.Length - wf; i += wf)
        {
            System.Numerics.Vector.Widen(new System.Numerics.Vector<float>(vf[i..]), out var v0, out var v1);
            System.Numerics.Vector.Narrow(new System.Numerics.Vector<double>(r[i..]) + t * v0, new System.Numerics.Vector<double>(r[(i + h)..]) + t * v1).CopyTo(imf[i..]);
        }
        for (; i < vf.Length; i++) imf[i] = (float)(r[i] + theta * vf[i]);
    }
}
