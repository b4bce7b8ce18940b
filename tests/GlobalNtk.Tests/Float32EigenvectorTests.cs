using GlobalNtk.Analysis;
using GlobalNtk.Dense;
using GlobalNtk.Estimators;
using GlobalNtk.Operators;
using MathNet.Numerics.LinearAlgebra;
using Xunit;
using static GlobalNtk.Tests.OperatorTestUtil;
using Counting = GlobalNtk.Tests.EstimatorFloat32Tests.CountingFloat32Operator;

namespace GlobalNtk.Tests;

/// <summary>
/// The float32 vectors a float32 solve returns and what reuses them (docs/math.md#numerics): the
/// Krylov eigenvectors and images in <see cref="EigenResult"/> and <see cref="Deflation"/>,
/// Hutch++'s sketch, and SRB's NTK_S image.
/// </summary>
/// <remarks>
/// Tolerances. A stored float32 entry is a float64 value rounded once (relative 6e-8), and the
/// test operator (<see cref="EstimatorFloat32Tests.CountingFloat32Operator"/>) rounds its matrix
/// and each image entry once, so an image A·v agrees with the float64 product to about √n·6e-8 ≈ 1e-6
/// of ‖A v‖ for n = 288: 1e-5. Widening is exact, so widened vectors equal the float32 ones bit
/// for bit. A float32 deflation used by a float64 operator differs from the same vectors widened
/// beforehand only in the order of float64 sums: 1e-10. Exact answers (a rank-5 trace by Hutch++,
/// SRB against a dense float64 computation) carry the float32 operator's 1e-6 and are checked at 1e-5.
/// </remarks>
public class Float32EigenvectorTests
{
    private const double RoundingTolerance = 1e-5;

    private static SpectrumBudget Budget => new(60, 1e-7);

    [Fact]
    public void AFloat32SolveReturnsFloat32EigenvectorsAndImages()
    {
        var dense = EstimatorFloat32Tests.Psd(7);
        var op = new Counting(dense);
        var eig = Spectral.TopEigenpairs(op, 4, 2, Budget);
        Assert.Equal(0, op.Float64Vectors);
        Assert.True(eig.IsSingle);
        Assert.NotNull(eig.SingleVectors);
        Assert.NotNull(eig.SingleImages);
        Assert.Null(eig.Images);
        int n = dense.Rows;
        Assert.Equal(4, eig.SingleVectors!.Length);
        Assert.Equal(4L * n, eig.SingleImages!.Length);
        // Vectors widens the float32 vectors exactly, once (the same arrays on the next access).
        var wide = eig.Vectors;
        Assert.Same(wide, eig.Vectors);
        for (int i = 0; i < 4; i++) Assert.Equal(Float32.ToDouble(eig.SingleVectors[i]), wide[i]);
        // Unit, orthogonal, and images A v of the float64 matrix, to float32 rounding.
        for (int i = 0; i < 4; i++)
        {
            Assert.True(Math.Abs(Numerics.Norm(wide[i]) - 1) < RoundingTolerance);
            for (int j = 0; j < i; j++) Assert.True(Math.Abs(Numerics.Dot(wide[i], wide[j])) < RoundingTolerance);
            var av = dense.Apply(wide[i]);
            var image = Float32.ToDouble(eig.SingleImages.AsSpan(i * n, n));
            Numerics.Axpy(-1.0, av, image);
            Assert.True(Numerics.Norm(image) <= RoundingTolerance * Numerics.Norm(av), $"image {i}: ‖Δ‖ = {Numerics.Norm(image)}");
            Assert.True(Math.Abs(Numerics.Dot(wide[i], av) - eig.Values[i]) <= RoundingTolerance * eig.Values[0]);
        }
        Assert.True(Deflation.FromEigenpairs(eig).IsSingle);
    }

    [Fact]
    public void AFloat64SolveKeepsFloat64VectorsOnly()
    {
        var eig = Spectral.TopEigenpairs(new MeteredOperator(EstimatorFloat32Tests.Psd(7), null), 4, 2, Budget);
        Assert.False(eig.IsSingle);
        Assert.Null(eig.SingleVectors);
        Assert.Null(eig.SingleImages);
        Assert.NotNull(eig.Images);
        Assert.False(Deflation.FromEigenpairs(eig).IsSingle);
    }

    [Fact]
    public void Float32AndFloat64SolvesFindTheSameTopEigenpairs()
    {
        var dense = EstimatorFloat32Tests.Psd(7);
        var e32 = Spectral.TopEigenpairs(new Counting(dense), 4, 2, Budget);
        var e64 = Spectral.TopEigenpairs(new MeteredOperator(dense, null), 4, 2, Budget);
        var exact = Matrix<double>.Build.Dense(dense.Rows, dense.Rows, (i, j) => dense[i, j]).Evd(Symmetricity.Symmetric)
            .EigenValues.Select(z => z.Real).OrderByDescending(z => z).ToArray();
        for (int i = 0; i < 4; i++)
        {
            Assert.True(Math.Abs(e32.Values[i] - exact[i]) < RoundingTolerance * exact[0], $"λ{i + 1}: {e32.Values[i]} vs {exact[i]}");
            // The same eigenvectors up to sign (the top of a power law is well separated).
            double overlap = Math.Abs(Numerics.Dot(e32.Vectors[i], e64.Vectors[i]));
            Assert.True(1 - overlap < RoundingTolerance, $"v{i + 1}: |⟨v32, v64⟩| = {overlap}");
        }
    }

    /// <summary>A copy made before the first widening shares it: the same arrays, and still Equal.</summary>
    [Fact]
    public void CopiesShareTheWidenedVectors()
    {
        var eig = Spectral.TopEigenpairs(new Counting(EstimatorFloat32Tests.Psd(7)), 3, 2, Budget);
        var copy = eig with { };
        var wide = copy.Vectors;
        Assert.Same(wide, eig.Vectors);
        Assert.Equal(eig, copy);
        // Setting float32 vectors replaces float64 ones given before; float64 ones replace the widening.
        var other = eig with { SingleVectors = [.. eig.SingleVectors!.Select(v => v.Select(x => -x).ToArray())] };
        Assert.Equal(-wide[0][0], other.Vectors[0][0]);
        var given = eig with { Vectors = [[1.0, 2.0]] };
        Assert.Equal([1.0, 2.0], given.Vectors[0]);
        Assert.Same(wide, eig.Vectors);
    }

    [Fact]
    public void AFloat32DeflationOnFloat64ProbesEqualsTheWidenedDeflation()
    {
        // A float32 solve's deflation reused by a float64 operator: the mixed projection (float32 V,
        // float64 x) against the same vectors widened beforehand.
        var dense = EstimatorFloat32Tests.Psd(7);
        var eig = Spectral.TopEigenpairs(new Counting(dense), 4, 2, Budget);
        var widened = eig with { SingleVectors = null, SingleImages = null, Vectors = eig.Vectors, Images = Float32.ToDouble(eig.SingleImages) };
        var f64 = new MeteredOperator(dense, null);
        var single = EffectiveRank.Moments(f64, 40, 3, Deflation.FromEigenpairs(eig));
        var wide = EffectiveRank.Moments(f64, 40, 3, Deflation.FromEigenpairs(widened));
        Assert.Equal(4, single.Deflated);
        foreach (var (a, b) in new[] { (single.Trace.Value, wide.Trace.Value), (single.TraceOfSquare.Value, wide.TraceOfSquare.Value), (single.ParticipationRatio.Value, wide.ParticipationRatio.Value) })
            Assert.True(TestMath.RelativeDifference(a, b) < 1e-10, $"{a:R} vs {b:R}");
        var ps = EffectiveRank.PartialWithin(f64, ["time"], 120, 3, Deflation.FromEigenpairs(eig));
        var pw = EffectiveRank.PartialWithin(f64, ["time"], 120, 3, Deflation.FromEigenpairs(widened));
        Assert.True(TestMath.RelativeDifference(ps.ParticipationRatio.Value, pw.ParticipationRatio.Value) < 1e-10);
        // And against the float64 solve's deflation: the deflated estimator is unbiased for any V, and
        // V moves by float32 rounding only, so the same probes give the same estimate to that rounding.
        var own = EffectiveRank.Moments(f64, 40, 3, Deflation.FromEigenpairs(Spectral.TopEigenpairs(f64, 4, 2, Budget)));
        Assert.True(TestMath.RelativeDifference(single.ParticipationRatio.Value, own.ParticipationRatio.Value) < RoundingTolerance);
    }

    [Fact]
    public void Float32HutchPlusPlusIsExactOnALowRankOperator()
    {
        // Rank 5 ≤ m/3 = 10: the sketch spans the range, so the trace is exact up to float32 rounding.
        var lambda = KnownSpectra.LowRank(EstimatorFloat32Tests.Shape.Size, 5);
        var dense = KnownSpectra.Dense(lambda, 3).View(EstimatorFloat32Tests.Shape, EstimatorFloat32Tests.Shape).Materialize();
        var op = new Counting(dense);
        var h = TraceEstimators.HutchPlusPlus(op, 30, 4);
        Assert.Equal(0, op.Float64Vectors);
        Assert.Equal(30, op.Float32Vectors);
        Assert.True(TestMath.RelativeDifference(h.Value, lambda.Sum()) < RoundingTolerance, $"Hutch++ {h.Value} vs {lambda.Sum()}");
    }

    [Fact]
    public void Float32SrbAppliesTheFloat32OverloadAndMatchesADenseFloat64Answer()
    {
        var shape = EstimatorFloat32Tests.Shape;
        var dense = EstimatorFloat32Tests.Psd(7);
        var op = new Counting(dense);
        var rng = new Random(5);
        var states = TestMath.Gaussian(rng, shape.Size);
        var error = TestMath.Gaussian(rng, shape.Size);
        int[] ranks = [1, 2, 4, 8];
        var srb = SelfReferentialBias.Compute(op, states, error, ranks, "test");
        Assert.Equal(0, op.Float64Vectors);
        Assert.Equal(1, op.Float32Vectors);

        // Dense float64 reference: Δz = −A e, rows projected onto the top-r eigenvectors of the
        // centred scatter of the state rows (last axis, width 12).
        int dim = shape.Sizes[^1], rows = shape.Size / dim;
        var dz = dense.Apply(error);
        var z = Matrix<double>.Build.Dense(rows, dim, (i, j) => states[i * dim + j]);
        var mean = z.ColumnSums() / rows;
        var c = Matrix<double>.Build.Dense(rows, dim, (i, j) => z[i, j] - mean[j]);
        var evd = (c.TransposeThisAndMultiply(c)).Evd(Symmetricity.Symmetric);
        var order = Enumerable.Range(0, dim).OrderByDescending(i => evd.EigenValues[i].Real).ToArray();
        double Fraction(double[] x, int r)
        {
            double inside = 0;
            for (int i = 0; i < rows; i++)
                for (int k = 0; k < r; k++)
                {
                    double p = 0;
                    for (int j = 0; j < dim; j++) p += x[i * dim + j] * evd.EigenVectors[j, order[k]];
                    inside += p * p;
                }
            return inside / Numerics.Dot(x, x);
        }
        for (int q = 0; q < ranks.Length; q++)
        {
            double fz = Fraction(dz, ranks[q]), fe = Fraction(error, ranks[q]);
            Assert.True(TestMath.RelativeDifference(srb.UpdateFraction[q], fz) < RoundingTolerance, $"r = {ranks[q]}: {srb.UpdateFraction[q]} vs {fz}");
            Assert.True(TestMath.RelativeDifference(srb.Index[q], fz / fe) < RoundingTolerance, $"r = {ranks[q]}: SRB {srb.Index[q]} vs {fz / fe}");
        }
    }

    [Theory]
    [MemberData(nameof(EstimatorFloat32Tests.Models), MemberType = typeof(EstimatorFloat32Tests))]
    public void Float32SrbOfNtkAgreesWithFloat64(string which)
    {
        var (ops, dense) = EstimatorFloat32Tests.Model(which);
        Assert.True(ops.NtkS.AppliesFloat32Natively);
        var shape = ops.NtkS.Domain;
        var states = ops.Linearization.States.Span;
        var error = TestMath.Gaussian(new Random(8), shape.Size);
        var ranks = SelfReferentialBias.DefaultRanks(shape.Sizes[^1]);
        var s32 = SelfReferentialBias.Compute(ops.NtkS, states, error, ranks, "test");
        var s64 = SelfReferentialBias.Compute(dense, states, error, ranks, "test");
        // One float32 application of NTK_S (1e-6 relative, Float32VectorTests) inside ratios of squares.
        for (int q = 0; q < ranks.Length; q++)
            Assert.True(Math.Abs(s32.UpdateFraction[q] - s64.UpdateFraction[q]) < RoundingTolerance * s64.UpdateFraction[^1],
                $"{which} r = {ranks[q]}: {s32.UpdateFraction[q]} vs {s64.UpdateFraction[q]}");
    }

    [Fact]
    public void CapturedFractionsOfFloat32RowsEqualThoseOfTheWidenedRows()
    {
        // 20 000 rows of 4: the float32 rows are widened in several chunks (32 768 values at a time).
        const int dim = 4, rows = 20_000;
        var rng = new Random(3);
        var pcs = PrincipalDirections.Of(TestMath.Gaussian(rng, 400 * dim), dim);
        var x = Float32.ToSingle(TestMath.Gaussian(rng, rows * dim));
        // A distinct last chunk: rows far from the others' directions catch a misplaced chunk.
        for (int i = rows - 10; i < rows; i++) x[i * dim] = 1000f;
        int[] ranks = [0, 1, 2, 3, 4];
        var single = pcs.CapturedFractions(x, ranks);
        var wide = pcs.CapturedFractions(Float32.ToDouble(x), ranks);
        for (int q = 0; q < ranks.Length; q++)
            Assert.True(Math.Abs(single[q] - wide[q]) < 1e-12, $"r = {ranks[q]}: {single[q]:R} vs {wide[q]:R}");
        Assert.Equal(1.0, single[^1], 12);
    }
}
