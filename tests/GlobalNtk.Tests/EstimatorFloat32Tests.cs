using GlobalNtk.Dense;
using GlobalNtk.Estimators;
using GlobalNtk.Models;
using GlobalNtk.Models.Recurrent;
using GlobalNtk.Models.Transformer;
using GlobalNtk.Ntk;
using GlobalNtk.Operators;
using MathNet.Numerics.LinearAlgebra;
using Xunit;
using static GlobalNtk.Tests.OperatorTestUtil;

namespace GlobalNtk.Tests;

/// <summary>
/// The estimators' float32 path (docs/math.md#numerics): for an operator that applies float32 natively
/// they keep probe and image blocks in float32 and call its float32 overloads, reducing in float64.
/// </summary>
/// <remarks>
/// Tolerances. Against the float64 estimate from the same probes (the probes are the same ±1 values
/// from the same stream, exact in float32): 1e-5 relative. The float32 operator below rounds its
/// matrix and every image entry once (u₃₂ = 6e-8); an image entry of a PSD matrix on a Rademacher
/// probe cancels by about √n (17 for n = 288), so each quadratic form and square norm moves by ~1e-6
/// relative, and the ratios built from them (PR, alignment) by a few times that. Against exact dense
/// answers on float32 linearisations of small models: 1e-4 relative (issue 12's bound for effective
/// ranks and top eigenvalues); the float32 operators themselves agree with float64 to 1e-6
/// (<see cref="Float32VectorTests"/>), and exact budgets (unit vectors) add only float64 sums.
/// </remarks>
public class EstimatorFloat32Tests
{
    private const double SameProbeTolerance = 1e-5;
    private const double ExactTolerance = 1e-4;

    /// <summary>
    /// A dense operator with a native float32 path (its matrix rounded to float32; float32 products
    /// summed in float64, each result rounded once) that counts the vectors each overload received.
    /// </summary>
    internal sealed class CountingFloat32Operator(DenseOperator dense) : LinearOperator(dense.Domain, dense.Range)
    {
        private readonly float[] _a = Float32.ToSingle(dense.Matrix);
        public long Float64Vectors, Float32Vectors;
        public override bool IsSelfAdjoint => dense.IsSelfAdjoint;
        internal override bool AppliesFloat32Natively => true;

        protected override void ApplyBlockCore(ReadOnlySpan<double> x, Span<double> y, int count)
        {
            Interlocked.Add(ref Float64Vectors, count);
            dense.ApplyBlock(x, y, count);
        }

        protected override void ApplyAdjointBlockCore(ReadOnlySpan<double> x, Span<double> y, int count)
        {
            Interlocked.Add(ref Float64Vectors, count);
            dense.ApplyAdjointBlock(x, y, count);
        }

        protected override void ApplyBlockCore(ReadOnlySpan<float> x, Span<float> y, int count) => Multiply(x, y, count, false);
        protected override void ApplyAdjointBlockCore(ReadOnlySpan<float> x, Span<float> y, int count) => Multiply(x, y, count, true);

        private void Multiply(ReadOnlySpan<float> x, Span<float> y, int count, bool transpose)
        {
            Interlocked.Add(ref Float32Vectors, count);
            int rows = dense.Rows, cols = dense.Columns, nIn = transpose ? rows : cols, nOut = transpose ? cols : rows;
            for (int j = 0; j < count; j++)
                for (int i = 0; i < nOut; i++)
                {
                    double s = 0;
                    for (int k = 0; k < nIn; k++) s += (double)(transpose ? _a[k * cols + i] : _a[i * cols + k]) * x[j * nIn + k];
                    y[j * nOut + i] = (float)s;
                }
        }
    }

    internal static readonly AxisShape Shape = new(("trial", 4), ("time", 6), ("unit", 12));

    internal static DenseOperator Psd(int seed) => KnownSpectra.Dense(KnownSpectra.PowerLaw(Shape.Size, 0.8), seed).View(Shape, Shape).Materialize();

    /// <summary>Every estimator with a float32 path, as (name, run): each returns the numbers it estimated.</summary>
    public static TheoryData<string> Estimators => new()
    {
        "hutchinson", "frobenius", "participation ratio", "moments", "moments deflated", "partial per-index", "partial kronecker",
        "partial trace", "axis average", "alignment", "relative difference", "spectrum", "metered moments",
        "hutch++", "partial deflated",
    };

    private static double[] Run(string name, LinearOperator a, LinearOperator b)
    {
        switch (name)
        {
            case "hutchinson": return [TraceEstimators.Hutchinson(a, 20, 3).Value];
            case "frobenius": return [TraceEstimators.FrobeniusNormSquared(a, 20, 3).Value];
            case "participation ratio": { var e = EffectiveRank.ParticipationRatio(a, 20, 3); return [e.Value, e.StandardError]; }
            case "moments":
            {
                var m = EffectiveRank.Moments(a, 40, 3, null, relativeTarget: 0);
                return [m.Trace.Value, m.TraceOfSquare.Value, m.ParticipationRatio.Value, m.ParticipationRatio.StandardError];
            }
            case "moments deflated":
            {
                var eig = Spectral.TopEigenpairs(a, 4, 2, new SpectrumBudget(40, 1e-6));
                var m = EffectiveRank.Moments(a, 40, 3, Deflation.FromEigenpairs(eig), relativeTarget: 0);
                return [m.Trace.Value, m.TraceOfSquare.Value, m.ParticipationRatio.Value];
            }
            case "partial per-index":
            {
                var p = EffectiveRank.PartialWithin(a, ["time"], 120, 3);
                Assert.Equal(PartialRankMethod.PerIndex, p.Plan.Method);
                return [p.ParticipationRatio.Value, p.Trace.Value, p.FrobeniusSquared.Value];
            }
            case "partial kronecker":
            {
                var p = EffectiveRank.PartialWithin(a, ["unit"], 48, 3); // 4 probes per kept index: below the per-index minimum
                Assert.Equal(PartialRankMethod.Kronecker, p.Plan.Method);
                return [p.ParticipationRatio.Value, p.Trace.Value, p.FrobeniusSquared.Value];
            }
            case "partial trace": return Reductions.PartialTrace(a, ["trial", "unit"], 10, 3).Matrix;
            case "axis average": return Reductions.AxisAverage(a, ["trial", "unit"]).Matrix;
            case "alignment": return [OperatorComparison.Alignment(a, b, 20, 3).Value];
            case "relative difference": return [OperatorComparison.RelativeDifference(a, b, 20, 3).Value];
            case "spectrum": return Spectral.TopEigenpairs(a, 3, 2, new SpectrumBudget(40, 1e-6)).Values;
            case "metered moments":
            {
                var m = EffectiveRank.Moments(new MeteredOperator(a, null), 20, 3);
                return [m.Trace.Value, m.ParticipationRatio.Value];
            }
            case "hutch++":
            {
                var h = TraceEstimators.HutchPlusPlus(a, 60, 3); // 60 < n = 288: sketch, projections and probes
                return [h.Value, h.StandardError];
            }
            case "partial deflated":
            {
                // Deflated by the spectrum's eigenvectors (float32 ones for a float32 operator): the
                // low-rank partial trace and the projected probes both use them.
                var eig = Spectral.TopEigenpairs(a, 4, 2, new SpectrumBudget(40, 1e-6));
                var p = EffectiveRank.PartialWithin(a, ["time"], 120, 3, Deflation.FromEigenpairs(eig));
                return [p.ParticipationRatio.Value, p.Trace.Value, p.FrobeniusSquared.Value];
            }
            default: throw new ArgumentException(name);
        }
    }

    [Theory]
    [MemberData(nameof(Estimators))]
    public void EstimatorsCallTheFloat32OverloadOfANativeFloat32Operator(string name)
    {
        var a = new CountingFloat32Operator(Psd(7));
        var b = new CountingFloat32Operator(Psd(8));
        Run(name, a, b);
        Assert.True(a.Float32Vectors > 0, $"{name}: the float32 overload was not called");
        Assert.Equal(0, a.Float64Vectors);
        Assert.Equal(0, b.Float64Vectors);
    }

    [Theory]
    [MemberData(nameof(Estimators))]
    public void Float32EstimatesAgreeWithFloat64OnesFromTheSameProbes(string name)
    {
        var (d7, d8) = (Psd(7), Psd(8));
        // The float64 reference through a non-dense view (dense operators take exact shortcuts).
        var f64 = Run(name, new MeteredOperator(d7, null), new MeteredOperator(d8, null));
        var f32 = Run(name, new CountingFloat32Operator(d7), new CountingFloat32Operator(d8));
        Assert.Equal(f64.Length, f32.Length);
        double scale = f64.Max(Math.Abs);
        for (int i = 0; i < f64.Length; i++)
            Assert.True(Math.Abs(f32[i] - f64[i]) <= SameProbeTolerance * Math.Max(Math.Abs(f64[i]), name.Contains("partial trace") || name.Contains("average") ? scale : 0),
                $"{name}[{i}]: float32 {f32[i]:R} vs float64 {f64[i]:R}");
    }

    [Fact]
    public void AFloat32ProbeBlockHoldsTheSameVectorsAsAFloat64OneInHalfTheBytes()
    {
        // The budget counts values: the same split into blocks (so the same probes) in either precision.
        int n = 1 << 20;
        int vectors = ProbeBlock.VectorsPerBlock<float>(n, 1000);
        Assert.Equal(ProbeBlock.VectorsPerBlock<double>(n, 1000), vectors);
        Assert.Equal(MemoryBudget.ProbeBlockElements, (long)vectors * n);
        Assert.Equal(7, ProbeBlock.VectorsPerBlock<float>(n, 7));
    }

    [Fact]
    public void Float32ProbesSplitIntoSeveralBlocksGiveTheFloat64Estimate()
    {
        // 30 probes of 2²¹ + 1 values: 7 per block (ProbeBlockElements = 2²⁴ values), 5 blocks in either
        // precision, each ending inside a chunk of the Rademacher stream (so another split would draw
        // other probes). y_i = 2x_i + x_(i+1): exact in float32 and float64, ωᵀAω depends on the probe.
        var shape = AxisShape.Vector((1 << 21) + 1);
        var a64 = new ShiftOperator(shape, native: false);
        var a32 = new ShiftOperator(shape, native: true);
        var e64 = TraceEstimators.Hutchinson(a64, 30, 9);
        var e32 = TraceEstimators.Hutchinson(a32, 30, 9);
        Assert.Equal(5, a32.Float32Calls);
        Assert.Equal(5, a64.Float64Calls);
        Assert.Equal(0, a32.Float64Calls);
        Assert.NotEqual(0, e64.StandardError);
        Assert.Equal(e64.Value, e32.Value);
        Assert.Equal(e64.StandardError, e32.StandardError);
    }

    // y_i = 2x_i + x_(i+1 mod n) in either precision (exact: small integers).
    private sealed class ShiftOperator(AxisShape shape, bool native) : LinearOperator(shape, shape)
    {
        public int Float32Calls, Float64Calls;
        internal override bool AppliesFloat32Natively => native;
        protected override void ApplyBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) { Float64Calls++; Shift(x, y, count); }
        protected override void ApplyAdjointBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) => throw new NotSupportedException();
        protected override void ApplyBlockCore(ReadOnlySpan<float> x, Span<float> y, int count) { Float32Calls++; Shift(x, y, count); }
        protected override void ApplyAdjointBlockCore(ReadOnlySpan<float> x, Span<float> y, int count) => throw new NotSupportedException();

        private void Shift<T>(ReadOnlySpan<T> x, Span<T> y, int count) where T : System.Numerics.INumber<T>
        {
            int n = Domain.Size;
            for (int j = 0; j < count; j++)
                for (int i = 0; i < n; i++) y[j * n + i] = x[j * n + i] + x[j * n + i] + x[j * n + (i + 1) % n];
        }
    }

    [Fact]
    public void Float32RademacherProbesAreTheFloat64OnesFromTheSameStream()
    {
        var d = new double[5000];
        var f = new float[5000];
        RandomProbes.Rademacher(RngKey.FromSeed(4).CreateRandom(), d);
        ProbeBlock.Rademacher<float>(RngKey.FromSeed(4).CreateRandom(), f);
        Assert.Equal(d, Float32.ToDouble(f));
        Assert.Contains(-1.0, d);
    }

    [Fact]
    public void ReductionsOfFloat32BlocksAccumulateInFloat64()
    {
        // 1e8 + 1 − 1e8 in one SIMD lane (indices 0, 16, 32): 0 when summed in float32, 1 in float64.
        var a = new float[48];
        var ones = Enumerable.Repeat(1f, 48).ToArray();
        a[0] = 1e8f; a[16] = 1f; a[32] = -1e8f;
        Assert.Equal(1.0, ProbeBlock.Dot<float>(a, ones));
        Assert.Equal(1.0, ProbeBlock.Dot<float>(Float32.ToDouble(ones), a));
        // x + alpha·v formed in float64 and rounded once: 1 + 2⁻²⁴·(1 + 2⁻²⁰) rounds up to 1 + 2⁻²³.
        var x = new float[] { 1f };
        ProbeBlock.Axpy<float>(Math.Pow(2, -24) * (1 + Math.Pow(2, -20)), [1.0], x);
        Assert.Equal(1f + MathF.Pow(2, -23), x[0]);
    }

    // ---- Float32 linearisations of small models against exact dense answers ----

    public static TheoryData<string> Models => new() { "transformer", "gru" };

    internal static (NtkOperators Ops32, DenseOperator Dense64) Model(string which)
    {
        IChainModel model;
        Tensor x;
        if (which == "transformer")
        {
            var config = new TransformerConfig(TransformerInput.Linear, 3, 8, 2, 2, 12, GlobalNtk.Models.Mlp.Activation.Gelu, Causal: true);
            model = TransformerModel.Create(config, 3, seed: 4);
            x = new Tensor(TestMath.Gaussian(new Random(2), 3 * 4 * 3), new AxisShape(("sequence", 3), ("token", 4), ("input", 3)));
        }
        else
        {
            var rm = RecurrentModel.Create(new RecurrentConfig("gru", 3, 16, 2) { Seed = 5, Alpha = 0.3 });
            model = rm;
            x = new Tensor(TestMath.Uniform(3 * 6 * rm.InputSize, 21), rm.InputShape(3, 6));
        }
        var dense = new NtkOperators(model.Linearize(x, Precision.F64)).NtkS.Materialize();
        return (new NtkOperators(model.Linearize(x, Precision.F32)), dense);
    }

    private static double[] Eigenvalues(DenseOperator d)
    {
        int n = d.Rows;
        var m = Matrix<double>.Build.Dense(n, n, (i, j) => 0.5 * (d[i, j] + d[j, i]));
        return m.Evd(Symmetricity.Symmetric).EigenValues.Select(e => e.Real).OrderByDescending(e => e).ToArray();
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Float32EstimatorsOnFloat32NtkMatchExactDenseAnswers(string which)
    {
        var (ops, dense) = Model(which);
        var ntk = ops.NtkS;
        Assert.True(ntk.AppliesFloat32Natively, $"{which}: NTK_S of the float32 linearisation does not apply float32 natively");
        int n = ntk.Domain.Size;
        var ev = Eigenvalues(dense);
        double prExact = EffectiveRank.OfSpectrum(ev);

        // Unit-vector probes: every moment exact up to the float32 operator.
        var mo = EffectiveRank.Moments(ntk, n, 1);
        Assert.True(mo.ParticipationRatio.Exact);
        Assert.True(TestMath.RelativeDifference(mo.ParticipationRatio.Value, prExact) < ExactTolerance, $"{which} PR {mo.ParticipationRatio.Value} vs {prExact}");
        Assert.True(TestMath.RelativeDifference(mo.Trace.Value, ev.Sum()) < ExactTolerance, $"{which} tr {mo.Trace.Value} vs {ev.Sum()}");

        // Partial rank along the last axis with the exact partial trace (traced size within the budget).
        string axis = ntk.Domain.Names[^1];
        var traced = ntk.Domain.Names.Where(a => a != axis).ToArray();
        double partialExact = EffectiveRank.OfMatrix(Reductions.PartialTrace(dense, traced));
        var partial = EffectiveRank.Partial(ntk, [axis], n, 1);
        Assert.True(TestMath.RelativeDifference(partial.Value, partialExact) < ExactTolerance, $"{which} PR_{axis} {partial.Value} vs {partialExact}");

        // Top eigenvalues (float64 Krylov basis, float32 applications) to 1e-4 of λ₁.
        var top = Spectral.TopEigenpairs(ntk, 4, 3, new SpectrumBudget(Math.Min(n, 120), 1e-7));
        for (int i = 0; i < 4; i++)
            Assert.True(Math.Abs(top.Values[i] - ev[i]) < ExactTolerance * ev[0], $"{which} λ{i + 1} {top.Values[i]} vs {ev[i]}");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Float32AndFloat64EstimatesOfNtkAgreeFromTheSameProbes(string which)
    {
        var (ops, dense) = Model(which);
        var pr32 = EffectiveRank.Moments(ops.NtkS, 24, 5).ParticipationRatio;
        var pr64 = EffectiveRank.Moments(dense, 24, 5).ParticipationRatio;
        Assert.False(pr32.Exact);
        // Same probes: the difference is float32 rounding, far below the standard error.
        Assert.True(TestMath.RelativeDifference(pr32.Value, pr64.Value) < ExactTolerance, $"{which} PR {pr32.Value} vs {pr64.Value} ± {pr64.StandardError}");
        var a32 = OperatorComparison.Alignment(ops.NtkS, ops.NtkS, 12, 5).Value;
        Assert.True(Math.Abs(a32 - 1) < 1e-9, $"{which}: alignment of NTK_S with itself {a32}");
    }
}
