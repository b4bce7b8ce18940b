using GlobalNtk.Analysis;
using GlobalNtk.Dense;
using GlobalNtk.Estimators;
using GlobalNtk.Operators;
using MathNet.Numerics.LinearAlgebra;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// The block Krylov eigensolver's thick restarts, its applications and its memory plan, checked
/// against exact dense eigenvalues (MathNet) on small matrices.
/// </summary>
public class EstimatorKrylovTests
{
    // A dense symmetric matrix with a slowly decaying, clustered top (like NTK_S's), and its exact
    // eigenvalues from MathNet's dense EVD, descending.
    private static (DenseOperator A, double[] Lambda) Dense(int n, int seed)
    {
        var rng = new Random(seed);
        var spectrum = Enumerable.Range(1, n).Select(i => Math.Pow(i, -0.6) * (1 + 0.05 * rng.NextDouble())).ToArray();
        var a = KnownSpectra.Dense(spectrum, seed);
        var m = Matrix<double>.Build.Dense(n, n, (i, j) => a[i, j]);
        var lambda = m.Evd(Symmetricity.Symmetric).EigenValues.Select(z => z.Real).OrderDescending().ToArray();
        return (a, lambda);
    }

    // Records every vector an operator is applied to.
    private sealed class Recording(LinearOperator inner) : LinearOperator(inner.Domain, inner.Range)
    {
        public List<double[]> Applied { get; } = [];
        public override string Name => inner.Name;
        public override bool IsSelfAdjoint => inner.IsSelfAdjoint;
        protected override void ApplyBlockCore(ReadOnlySpan<double> x, Span<double> y, int count)
        {
            int n = Domain.Size;
            for (int j = 0; j < count; j++) Applied.Add(x.Slice(j * n, n).ToArray());
            inner.ApplyBlock(x, y, count);
        }
        protected override void ApplyAdjointBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) => ApplyBlockCore(x, y, count);
    }

    [Theory]
    [InlineData(12, 1e-3)]   // restarts every few blocks
    [InlineData(24, 1e-3)]
    [InlineData(24, 1e-6)]
    [InlineData(0, 1e-6)]    // no cap: the basis holds the whole budget, no restart
    public void ThickRestartsConvergeToTheDenseEigenvalues(int maxVectors, double tol)
    {
        var (a, lambda) = Dense(300, 3);
        var metered = new MeteredOperator(a, null);
        const int k = 3;
        var r = Spectral.TopEigenpairs(metered, k, seed: 5, new SpectrumBudget(280, tol), maxVectors);
        Assert.Equal(EigenStatus.Converged, r.Status);
        Assert.Equal(metered.Applications, r.Applications);
        Assert.True(r.Applications <= 280);
        if (maxVectors > 0) Assert.True(r.Restarts > 0, "the cap should force restarts");
        else Assert.Equal(0, r.Restarts);
        for (int i = 0; i < k; i++)
        {
            // Cauchy interlacing: a Ritz value never exceeds the eigenvalue of the same rank.
            Assert.True(r.Values[i] <= lambda[i] + 1e-12 * lambda[0], $"λ{i + 1}: Ritz {r.Values[i]} above {lambda[i]}");
            // The stop rule: every error bound below tol·λ₁, and the true error with it.
            Assert.True(r.ErrorBounds[i] <= tol * r.Values[0], $"bound {r.ErrorBounds[i]}");
            Assert.True(r.ErrorBounds[i] >= 2.2e-16 * r.Values[0], $"bound {r.ErrorBounds[i]} below rounding");
            Assert.True(lambda[i] - r.Values[i] <= tol * lambda[0], $"λ{i + 1} = {lambda[i]}, Ritz {r.Values[i]} (tol {tol})");
            // Rigorous for a symmetric A: some eigenvalue lies within the residual of each Ritz value.
            double nearest = lambda.Min(l => Math.Abs(l - r.Values[i]));
            Assert.True(nearest <= r.Residuals[i] * (1 + 1e-9) + 1e-13, $"λ{i + 1}: {nearest} > residual {r.Residuals[i]}");
        }
    }

    [Theory]
    [InlineData(12)]
    [InlineData(0)]
    public void ResidualsAndImagesFromTheRecurrenceEqualARecomputation(int maxVectors)
    {
        // The solver returns A v = θ v + W y_s and ‖W y_s‖ without applying A again; they must equal
        // A v and ‖A v − θ v‖ computed directly, to rounding (full re-orthogonalisation keeps
        // A Q = Q T + W E_sᵀ to about ε‖A‖ per step).
        var (a, lambda) = Dense(200, 7);
        var r = Spectral.TopEigenpairs(a, 4, seed: 2, new SpectrumBudget(60, 1e-6), maxVectors);
        if (maxVectors > 0) Assert.True(r.Restarts > 0);
        int n = 200;
        var images = r.Images!;
        for (int p = 0; p < r.Values.Length; p++)
        {
            var av = a.Apply(r.Vectors[p]);
            double diff = 0;
            for (int i = 0; i < n; i++) diff = Math.Max(diff, Math.Abs(av[i] - images[p * n + i]));
            Assert.True(diff <= 1e-12 * lambda[0], $"image {p}: max difference {diff}");
            Numerics.Axpy(-r.Values[p], r.Vectors[p], av);
            Assert.Equal(Numerics.Norm(av), r.Residuals[p], 1e-12 * lambda[0]);
            Assert.Equal(1.0, Numerics.Norm(r.Vectors[p]), 1e-12);
            for (int q = 0; q < p; q++) Assert.True(Math.Abs(Numerics.Dot(r.Vectors[p], r.Vectors[q])) < 1e-12);
        }
    }

    [Fact]
    public void ThickRestartsApplyTheOperatorOnlyToNewDirections()
    {
        // Every applied vector has a part outside the span of all vectors applied before it: a
        // restart continues from the residual directions instead of re-applying its Ritz vectors
        // (which lie in that span). A 16-vector cap restarts about every other block.
        var (a, _) = Dense(300, 11);
        var rec = new Recording(a);
        var r = Spectral.TopEigenpairs(rec, 3, seed: 1, new SpectrumBudget(150, 1e-12), maxVectors: 16);
        Assert.True(r.Restarts >= 3, $"{r.Restarts} restarts");
        Assert.Equal(rec.Applied.Count, r.Applications);
        var basis = new List<double[]>();
        foreach (var x in rec.Applied)
        {
            var v = (double[])x.Clone();
            for (int pass = 0; pass < 2; pass++) foreach (var b in basis) Numerics.Axpy(-Numerics.Dot(b, v), b, v);
            double outside = Numerics.Norm(v) / Numerics.Norm(x);
            Assert.True(outside > 1e-6, $"application {basis.Count + 1} repeats earlier directions (part outside their span {outside:G3})");
            Numerics.Scale(v, 1 / Numerics.Norm(v));
            basis.Add(v);
        }
    }

    [Fact]
    public void BudgetedSolveNeverExceedsItsBudgetWithRestarts()
    {
        var a = KnownSpectra.Rotated(AxisShape.Vector(300), KnownSpectra.Flat(300), 7); // flat: slow convergence
        foreach (int budget in new[] { 8, 13, 40, 97 })
        {
            var metered = new MeteredOperator(a, null);
            var r = Spectral.TopEigenpairs(metered, 4, seed: 3, new SpectrumBudget(budget, 1e-12), maxVectors: 12);
            Assert.True(metered.Applications <= budget, $"{metered.Applications} > {budget}");
            Assert.Equal(EigenStatus.BudgetExhausted, r.Status);
            Assert.Equal(budget, r.Budget);
        }
    }

    [Theory]
    [InlineData(614_400L, 20, 600, 1L << 30)]     // the flip-flop transformer, thorough
    [InlineData(614_400L, 10, 60, 1L << 30)]      // default
    [InlineData(6_553_600L, 10, 60, 1L << 30)]    // GRU B=64 T=200 H=512
    [InlineData(6_553_600L, 20, 600, 1L << 30)]
    [InlineData(153_600L, 8, 32, 1L << 24)]       // a tight cap: 13 vectors
    [InlineData(50_000_000L, 10, 60, 1L << 30)]   // 2 vectors fit: the plan holds the minimum, 4
    public void SpectrumMemoryPlanHoldsAtMostItsCap(long n, int topK, int budget, long bytes)
    {
        // The plan alone (no solve): basis + block + eigenvectors within the cap the analysis derives
        // from KrylovMemoryBytes, a basis that holds k plus a block, and k lowered only as needed.
        var options = new AnalysisOptions { TopK = topK, SpectrumBudget = budget, KrylovMemoryBytes = bytes };
        int cap = NtkAnalyzer.SpectrumVectors(n, options);
        var op = LinearOperator.Identity(AxisShape.Vector((int)n));
        var solver = Spectral.Budgeted(op, topK, 1, new SpectrumBudget(budget, 1e-3), cap, EigenOrder.LargestAlgebraic);
        Assert.True(solver.HeldVectors <= cap, $"holds {solver.HeldVectors} > cap {cap}");
        if (8L * Spectral.MinVectors * n <= bytes) Assert.True(8 * solver.HeldVectors * n <= bytes);
        Assert.True(solver.Capacity >= solver.K + solver.BlockSize);
        Assert.True(solver.Capacity <= budget);
        Assert.Equal(Math.Min(topK, Math.Max(1, cap / 4)), solver.K);
    }

    [Fact]
    public void RestartKeepsTheWantedPairsAndRoomForABlock()
    {
        for (int cap = 4; cap <= 200; cap += 7)
            for (int block = 1; 2 * block <= cap; block += 3)
                for (int k = 1; k + block <= cap; k += 2)
                {
                    int keep = BlockKrylovEigensolver.RestartKeep(cap, block, k, cap);
                    Assert.InRange(keep, k, cap - block);
                }
    }

    [Theory]
    [InlineData(5, 7, 3)]
    [InlineData(9, 5000, 4)]
    public void ColumnChunkedCombinationMayWriteIntoItsSource(int rows, int n, int outRows)
    {
        var rng = new Random(rows);
        var src = OperatorTestUtil.RandomArray(rng, rows * n);
        var coef = OperatorTestUtil.RandomArray(rng, outRows * rows);
        var expected = new double[outRows * n];
        Gemm.Multiply(Trans.No, Trans.No, outRows, n, rows, 1.0, coef, rows, src, n, 0.0, expected, n);
        BlockKrylovEigensolver.CombineColumns(src, rows, n, coef, outRows, (col, cols, block) =>
        {
            for (int p = 0; p < outRows; p++) block.Slice(p * cols, cols).CopyTo(src.AsSpan(p * n + col, cols));
        });
        for (int i = 0; i < outRows * n; i++) Assert.Equal(expected[i], src[i], 1e-12);
    }
}
