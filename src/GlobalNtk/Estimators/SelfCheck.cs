using GlobalNtk.Dense;
using GlobalNtk.Operators;

namespace GlobalNtk.Estimators;

/// <summary>One self-check line: an estimate next to the exact value.</summary>
/// <param name="Name">What was estimated, and how.</param>
/// <param name="Estimate">The estimator's answer.</param>
/// <param name="Exact">The exact value (from the known spectrum or a dense computation).</param>
/// <param name="StandardError">The estimator's standard error; for spectral rows the residual ‖A v − λ v‖.</param>
public sealed record SelfCheckRow(string Name, double Estimate, double Exact, double StandardError)
{
    /// <summary>
    /// The rounding allowed on top of the statistical error: the row passes when
    /// |Estimate − Exact| ≤ 4·StandardError + Tolerance. Each producer states why its value fits its precision.
    /// </summary>
    public double Tolerance { get; init; }

    /// <summary>Whether |Estimate − Exact| ≤ 4·StandardError + <see cref="Tolerance"/>.</summary>
    public bool Passed => Math.Abs(Estimate - Exact) <= 4 * StandardError + Tolerance;
}

/// <summary>
/// Builds random operators with known spectra (matrix-free: Householder rotations of a diagonal)
/// and runs every estimator against the exact answers; the CLI's <c>selfcheck</c> prints it.
/// </summary>
public static class SelfCheck
{
    /// <summary>
    /// Relative rounding allowance of a float64 row: the operators are exact up to float64 rounding,
    /// so only the estimator's statistical error is allowed, plus 1e-8 relative.
    /// </summary>
    public const double Float64Tolerance = 1e-8;

    /// <summary>
    /// Relative rounding allowance of a float32 row (issue 12's bound for operator applications): the
    /// float32 operator is the matrix rounded once to float32 (u₃₂ = 6e-8 per entry) and each image
    /// entry sums n = 400 float32 products in float32 (√n·u₃₂ ≈ 1.2e-6 relative, with cancellation
    /// a few times that), while every estimator reduction is float64.
    /// </summary>
    public const double Float32Tolerance = 1e-5;

    /// <summary>Runs the self-check with the given seed (same seed → same rows), on float64 operators.</summary>
    public static IReadOnlyList<SelfCheckRow> Run(int seed = 0) => Run(seed, Precision.F64);

    /// <summary>
    /// Runs the self-check in <paramref name="precision"/>. With <see cref="Precision.F32"/> each random
    /// operator is rounded to a float32 matrix that applies float32 blocks natively, so every estimator
    /// runs its float32 path (float32 probe and image blocks, float64 reductions) against the same exact
    /// float64 answers, with <see cref="Float32Tolerance"/>.
    /// </summary>
    public static IReadOnlyList<SelfCheckRow> Run(int seed, Precision precision)
    {
        bool single = precision == Precision.F32;
        double relTol = single ? Float32Tolerance : Float64Tolerance;
        LinearOperator On(LinearOperator op) => single ? new Float32Matrix(op.Materialize()) : op;
        // The operators and every estimator draw from their own keys, so no estimator's probes
        // replay the draws that built the operator it is checked on.
        var key = RngKey.FromSeed(seed);
        var rng = key.Fold("operators").CreateRandom();
        int Seed(string estimator) => key.Fold(estimator).Seed;
        var shape = new AxisShape(("trial", 4), ("time", 10), ("unit", 10)); // n = 400
        int n = shape.Size;
        var rows = new List<SelfCheckRow>();

        // Power-law PSD spectrum λ_i = 1/i, hidden by two Householder reflections.
        var powerLaw = Enumerable.Range(1, n).Select(i => 1.0 / i).ToArray();
        var a = WithSpectrum(shape, powerLaw, rng);
        var aOp = On(a);
        double tr = powerLaw.Sum(), tr2 = powerLaw.Sum(l => l * l);
        var h = TraceEstimators.Hutchinson(aOp, 100, Seed("Hutchinson"));
        rows.Add(new("trace, Hutchinson (100 probes), power law", h.Value, tr, h.StandardError));
        var hpp = TraceEstimators.HutchPlusPlus(aOp, 99, Seed("Hutch++"));
        rows.Add(new("trace, Hutch++ (99 probes), power law", hpp.Value, tr, hpp.StandardError));

        // Rank-10 PSD: Hutch++ with 30 probes is exact up to rounding.
        var lowRank = WithSpectrum(shape, Enumerable.Range(0, n).Select(i => i < 10 ? 1.0 + i : 0.0).ToArray(), rng);
        var hlr = TraceEstimators.HutchPlusPlus(On(lowRank), 30, Seed("Hutch++ low rank"));
        rows.Add(new("trace, Hutch++ (30 probes), rank 10", hlr.Value, 55, hlr.StandardError));

        var fro = TraceEstimators.FrobeniusNormSquared(aOp, 100, Seed("Frobenius"));
        rows.Add(new("‖A‖_F², 100 probes", fro.Value, tr2, fro.StandardError));
        var sq = TraceEstimators.TraceOfSquare(aOp, 100, Seed("tr(A²)"));
        rows.Add(new("tr(A²), 100 probes", sq.Value, tr2, sq.StandardError));
        var pr = EffectiveRank.ParticipationRatio(aOp, 100, Seed("PR"));
        rows.Add(new("effective rank PR, 100 probes", pr.Value, tr * tr / tr2, pr.StandardError));

        // Partial effective rank along time (traced size 40 > 20 probes: probe-estimated).
        var dense = a.Materialize();
        var prTime = EffectiveRank.Partial(aOp, ["time"], 20, Seed("PR_time"));
        rows.Add(new("PR_time = PR(tr_{trial,unit} A), 20 probes", prTime.Value,
            EffectiveRank.OfMatrix(Reductions.PartialTrace(dense, ["trial", "unit"])), prTime.StandardError));

        // Alignment and relative difference against a perturbed copy (exact from dense matrices).
        var noise = new DenseOperator(RandomSymmetric(rng, n, 0.002), shape, shape);
        var b = a + noise;
        var bd = b.Materialize();
        double ab = Numerics.Dot(dense.Matrix, bd.Matrix), aa = Numerics.Dot(dense.Matrix, dense.Matrix), bb = Numerics.Dot(bd.Matrix, bd.Matrix);
        var al = OperatorComparison.Alignment(aOp, On(b), 100, Seed("alignment"));
        rows.Add(new("alignment(A, A + N), 100 probes", al.Value, ab / Math.Sqrt(aa * bb), al.StandardError));
        var rd = OperatorComparison.RelativeDifference(On(b), aOp, 100, Seed("relative difference"));
        rows.Add(new("‖(A + N) − A‖_F/‖A‖_F, 100 probes", rd.Value, Math.Sqrt(Numerics.Dot(noise.Matrix, noise.Matrix) / aa), rd.StandardError));

        // Top eigenvalues and the operator norm.
        var eig = Spectral.TopEigenpairs(aOp, 5, Seed("eigenpairs"));
        for (int i = 0; i < 3; i++) rows.Add(new($"λ_{i + 1} (block Krylov, k = 5)", eig.Values[i], powerLaw[i], eig.Residuals[i]));
        var rect = a.Then(new DenseOperator(RandomArray(rng, 50 * n), shape, AxisShape.Vector(50, "out")));
        var norm = Spectral.OperatorNorm(On(rect), Seed("operator norm"));
        var svdExact = MathNet.Numerics.LinearAlgebra.Matrix<double>.Build.DenseOfRowMajor(50, n, rect.Materialize().Matrix).Svd(false);
        rows.Add(new("‖B A‖₂ (50 × 400)", norm.Value, svdExact.S[0], norm.Residual));
        return rows.Select(r => r with { Tolerance = relTol * Math.Abs(r.Exact) }).ToList();
    }

    /// <summary>
    /// A dense matrix rounded once to float32 that applies float32 blocks natively (float32 GEMM), so
    /// the estimators take their float32 path on it; float64 blocks use the same float32 values, widened.
    /// </summary>
    private sealed class Float32Matrix : LinearOperator
    {
        private readonly float[] _a;
        private readonly double[] _wide;
        private readonly bool _selfAdjoint;

        public Float32Matrix(DenseOperator dense) : base(dense.Domain, dense.Range)
        {
            _a = Float32.ToSingle(dense.Matrix);
            _wide = Float32.ToDouble(_a);
            _selfAdjoint = dense.IsSelfAdjoint;
        }

        public override string Name => "float32 matrix";
        public override bool IsSelfAdjoint => _selfAdjoint;
        internal override bool AppliesFloat32Natively => true;

        // Y [count, rows] = X [count, cols] Aᵀ; the adjoint Y [count, cols] = X [count, rows] A.
        protected override void ApplyBlockCore(ReadOnlySpan<float> x, Span<float> y, int count) =>
            Gemm.Multiply(Trans.No, Trans.Yes, count, Range.Size, Domain.Size, 1f, x, Domain.Size, _a, Domain.Size, 0f, y, Range.Size);
        protected override void ApplyAdjointBlockCore(ReadOnlySpan<float> x, Span<float> y, int count) =>
            Gemm.Multiply(Trans.No, Trans.No, count, Domain.Size, Range.Size, 1f, x, Range.Size, _a, Domain.Size, 0f, y, Domain.Size);
        protected override void ApplyBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) =>
            Gemm.Multiply(Trans.No, Trans.Yes, count, Range.Size, Domain.Size, 1.0, x, Domain.Size, _wide, Domain.Size, 0.0, y, Range.Size);
        protected override void ApplyAdjointBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) =>
            Gemm.Multiply(Trans.No, Trans.No, count, Domain.Size, Range.Size, 1.0, x, Range.Size, _wide, Domain.Size, 0.0, y, Domain.Size);
    }

    /// <summary>H₂ H₁ diag(λ) H₁ H₂ with random Householder reflections H = I − 2uuᵀ/‖u‖².</summary>
    private static LinearOperator WithSpectrum(AxisShape shape, double[] lambda, Random rng)
    {
        var id = LinearOperator.Identity(shape);
        var h1 = id - 2.0 * RankOneOperator.Projector(RandomArray(rng, shape.Size), shape);
        var h2 = id - 2.0 * RankOneOperator.Projector(RandomArray(rng, shape.Size), shape);
        return h2 * h1 * new DiagonalOperator(shape, lambda) * h1 * h2;
    }

    private static double[] RandomArray(Random rng, int n)
    {
        var x = new double[n];
        RandomProbes.Gaussian(rng, x);
        return x;
    }

    private static double[] RandomSymmetric(Random rng, int n, double scale)
    {
        var m = RandomArray(rng, n * n);
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++) m[i * n + j] = m[j * n + i] = scale * m[i * n + j];
        return m;
    }
}
