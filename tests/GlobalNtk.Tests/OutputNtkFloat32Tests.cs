using GlobalNtk.Analysis;
using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Recurrent;
using GlobalNtk.Models.Transformer;
using GlobalNtk.Ntk;
using GlobalNtk.Operators;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// The float32 output NTK Θ_y = C NTK_S Cᵀ + Θ_readout and the readout's float32 operator C, and what
/// runs on them: task-mode learnability, principal directions and SRB on a float32 trajectory.
/// </summary>
/// <remarks>
/// Tolerances.
/// <list type="bullet">
/// <item>Θ_y on float32 blocks against the float64 linearisation's Θ_y: 1e-5 relative, normwise (issue 12's
/// bound for operator applications). Its C NTK_S Cᵀ part is the float32 NTK_S (within 1e-6 of float64,
/// <see cref="Float32VectorTests"/>) between two float32 readout products (a few roundings each, plus the
/// states' own float32 forward pass that Z and the maps are taken at, ~1e-6 on these 3–5-step models);
/// Θ_readout is summed in float64 from float32 Z and rounded once.</item>
/// <item>C in float32 against float64: 1e-6 (one product over In ≤ 16 terms, rounded).</item>
/// <item>Adjoint identity of the float32 operators: |⟨A x, w⟩ − ⟨x, A* w⟩| ≤ 1e-6 ‖A x‖ ‖w‖ (every entry
/// carries a relative rounding of a few u₃₂ = 6e-8).</item>
/// <item>Task-mode ρ: 1e-5 relative against the float64 ρ (a Rayleigh quotient of a 1e-5 operator, summed in
/// float64; issue 12 asks for top eigenvalues within 1e-4).</item>
/// <item>Principal directions from float32 rows against the same rows widened: 1e-12 (both are float64
/// sums of the same exact values, in another order).</item>
/// </list>
/// Each float32 result must also differ from the float64 one by more than 1e-10: float32 arithmetic ran.
/// </remarks>
public class OutputNtkFloat32Tests
{
    private const double OperatorTolerance = 1e-5;
    private const double ProductTolerance = 1e-6;
    private const double AdjointTolerance = 1e-6;

    internal static (IChainModel Model, ChainLinearization Lin64, ChainLinearization Lin32) Setup(string which)
    {
        switch (which)
        {
            case "gru":
            {
                var model = RecurrentModel.Create(new RecurrentConfig("gru", 3, 10, 2) { Seed = 3 });
                var x = new Tensor(TestMath.Gaussian(new Random(8), 3 * 5 * 3), model.InputShape(3, 5));
                return (model, model.Linearize(x), model.Linearize(x, Precision.F32));
            }
            case "stacked":
            {
                // Two layers: the readout reads the top layer's h at a feature offset > 0.
                var model = RecurrentModel.Create(new RecurrentConfig("gru", 3, 6, 2) { Seed = 5, Layers = 2 });
                var x = new Tensor(TestMath.Gaussian(new Random(9), 2 * 4 * 3), model.InputShape(2, 4));
                return (model, model.Linearize(x), model.Linearize(x, Precision.F32));
            }
            case "transformer":
            {
                var config = new TransformerConfig(TransformerInput.Linear, 3, 8, 2, 2, 12, Activation.Gelu, Causal: true);
                var model = TransformerModel.Create(config, 3, seed: 4);
                var x = new Tensor(TestMath.Gaussian(new Random(2), 3 * 4 * 3), new AxisShape(("sequence", 3), ("token", 4), ("input", 3)));
                return (model, model.Linearize(x), model.Linearize(x, Precision.F32));
            }
            default:
            {
                var model = MlpModel.Create(5, 16, 3, 2, Activation.Tanh, 7);
                var x = new Tensor(TestMath.Gaussian(new Random(3), 6 * 5), new AxisShape(("sample", 6), ("input", 5)));
                return (model, model.Linearize(x), model.Linearize(x, Precision.F32));
            }
        }
    }

    public static TheoryData<string> Models => new() { "gru", "stacked", "transformer", "mlp" };

    [Theory, MemberData(nameof(Models))]
    public void Float32OutputNtkAgreesWithFloat64AndKeepsFloat32Blocks(string which)
    {
        var (model, lin64, lin32) = Setup(which);
        var theta64 = new NtkOperators(lin64).OutputNtk(model.Readout);
        var theta32 = new NtkOperators(lin32).OutputNtk(model.Readout);
        Assert.False(theta64.AppliesFloat32Natively);
        Assert.True(theta32.AppliesFloat32Natively);
        const int count = 3;
        var v = Float32.ToSingle(TestMath.Gaussian(new Random(21), count * theta64.Domain.Size));
        var v64 = Float32.ToDouble(v);
        var y = new float[v.Length];
        theta32.ApplyBlock(v, y, count);
        var expected = theta64.ApplyBlock(v64, count);
        double rel = TestMath.RelativeError(Float32.ToDouble(y), expected);
        Assert.True(rel <= OperatorTolerance, $"{which}: float32 Θ_y differs from float64 by {rel:E2}");
        Assert.True(rel > 1e-10, $"{which}: float32 Θ_y equals float64 to {rel:E2}; float32 arithmetic did not run");
        // float64 vectors through the float32 operator: one float32 application, rounded in and out.
        double viaDouble = TestMath.RelativeError(theta32.ApplyBlock(v64, count), expected);
        Assert.True(viaDouble <= OperatorTolerance, $"{which}: float64 vectors through float32 Θ_y: {viaDouble:E2}");

        // Self-adjoint on float32 blocks.
        var rng = new Random(22);
        int n = theta32.Domain.Size;
        var x = Float32.ToSingle(TestMath.Gaussian(rng, n)); var w = Float32.ToSingle(TestMath.Gaussian(rng, n));
        double gap = TestMath.Float32AdjointGap(theta32, null, x, w);
        Assert.True(gap <= AdjointTolerance, $"{which}: ⟨Θx, w⟩ vs ⟨x, Θ*w⟩, relative gap {gap:E2}");
    }

    /// <summary>A bias-free readout drops the 1 1ᵀ term in float32 as in float64.</summary>
    [Fact]
    public void BiasFreeReadoutAgrees()
    {
        var (model, lin64, lin32) = Setup("gru");
        var noBias = new Readout(model.Readout.Weight, null);
        var theta64 = new OutputNtkOperator(new NtkOperators(lin64).NtkS, noBias, lin64.States.Span, lin64.StateShape);
        var theta32 = new OutputNtkOperator(new NtkOperators(lin32).NtkS, noBias, lin32.StatesSingle.Span, lin32.StateShape);
        var v = Float32.ToSingle(TestMath.Gaussian(new Random(23), 2 * theta64.Domain.Size));
        var y = new float[v.Length];
        theta32.ApplyBlock(v, y, 2);
        double rel = TestMath.RelativeError(Float32.ToDouble(y), theta64.ApplyBlock(Float32.ToDouble(v), 2));
        Assert.True(rel <= OperatorTolerance, $"bias-free float32 Θ_y differs by {rel:E2}");
    }

    [Theory, MemberData(nameof(Models))]
    public void Float32ReadoutOperatorAgreesAndIsAdjoint(string which)
    {
        var (model, lin64, _) = Setup(which);
        var shape = lin64.StateShape;
        var c64 = model.Readout.AsOperator(shape);
        var c32 = model.Readout.AsOperator(shape, Precision.F32);
        Assert.False(c64.AppliesFloat32Natively);
        Assert.False(model.Readout.AsOperator(shape, Precision.F64).AppliesFloat32Natively);
        Assert.True(c32.AppliesFloat32Natively);
        var rng = new Random(24);
        const int count = 2;
        var z = Float32.ToSingle(TestMath.Gaussian(rng, count * shape.Size));
        var y = new float[count * c32.Range.Size];
        c32.ApplyBlock(z, y, count);
        double rel = TestMath.RelativeError(Float32.ToDouble(y), c64.ApplyBlock(Float32.ToDouble(z), count));
        Assert.True(rel <= ProductTolerance && rel > 1e-10, $"{which}: float32 C differs from float64 by {rel:E2}");
        var g = Float32.ToSingle(TestMath.Gaussian(rng, count * c32.Range.Size));
        var ct = new float[count * shape.Size];
        c32.ApplyAdjointBlock(g, ct, count);
        rel = TestMath.RelativeError(Float32.ToDouble(ct), c64.ApplyAdjointBlock(Float32.ToDouble(g), count));
        Assert.True(rel <= ProductTolerance && rel > 1e-10, $"{which}: float32 Cᵀ differs from float64 by {rel:E2}");
        double lhs = Float32.DotWide(y, g), rhs = Float32.DotWide(z, ct);
        double scale = Math.Sqrt(Float32.DotWide(y, y) * Float32.DotWide(g, g));
        Assert.True(Math.Abs(lhs - rhs) <= AdjointTolerance * scale, $"{which}: ⟨C z, g⟩ = {lhs} vs ⟨z, Cᵀ g⟩ = {rhs}");
    }

    [Theory, MemberData(nameof(Models))]
    public void ReadoutForwardAndStateErrorOnFloat32States(string which)
    {
        var (model, lin64, lin32) = Setup(which);
        var shape = lin64.StateShape;
        var y64 = model.Readout.Forward(lin64.States.Span, shape);
        var y32 = model.Readout.Forward(lin32.StatesSingle.Span, shape);
        // The float32 trajectory itself differs from float64 by ~1e-7; one product on top.
        Assert.True(TestMath.RelativeError(y32.Span, y64.Span) <= ProductTolerance);
        var targets = TestMath.Gaussian(new Random(25), y64.Length);
        var (l64, e64, _) = MseLoss.StateError(model.Readout, lin64.States.Span, shape, targets);
        var (l32, e32, _) = MseLoss.StateError(model.Readout, lin32.StatesSingle.Span, shape, targets);
        Assert.Equal(l64, l32, 1e-6 * l64);
        Assert.True(TestMath.RelativeError(Float32.ToDouble(e32), e64) <= ProductTolerance);
    }

    /// <summary>Task modes on a float32 Θ_y: a float32 block, no float64 application, ρ as float64 ρ to 1e-5.</summary>
    [Fact]
    public void LearnabilityRunsOnFloat32Blocks()
    {
        var (model, lin64, _) = Setup("gru");
        var theta64 = new NtkOperators(lin64).OutputNtk(model.Readout);
        var dense = theta64.Materialize();
        var counting = new EstimatorFloat32Tests.CountingFloat32Operator(dense);
        var targets = TestMath.Gaussian(new Random(26), theta64.Domain.Size);
        var modes = TaskModes.Of(targets, model.Readout.OutputSize);
        var rho32 = modes.Learnability(counting);
        Assert.Equal(0, counting.Float64Vectors);
        Assert.Equal(modes.Count, counting.Float32Vectors);
        var rho64 = modes.Learnability(theta64);
        for (int i = 0; i < modes.Count; i++)
            Assert.True(Math.Abs(rho32[i] - rho64[i]) <= 1e-5 * Math.Abs(rho64[i]), $"mode {i}: ρ₃₂ = {rho32[i]}, ρ₆₄ = {rho64[i]}");
    }

    [Theory, MemberData(nameof(Models))]
    public void TaskModeLearnabilityFloat32AgreesWithFloat64(string which)
    {
        var (model, lin64, lin32) = Setup(which);
        var theta64 = new NtkOperators(lin64).OutputNtk(model.Readout);
        var theta32 = new NtkOperators(lin32).OutputNtk(model.Readout);
        var targets = TestMath.Gaussian(new Random(27), theta64.Domain.Size);
        var modes = TaskModes.Of(targets, model.Readout.OutputSize);
        var rho64 = modes.Learnability(theta64);
        var rho32 = modes.Learnability(theta32);
        Assert.NotEqual(rho64, rho32);
        for (int i = 0; i < modes.Count; i++)
            Assert.True(Math.Abs(rho32[i] - rho64[i]) <= 1e-5 * Math.Abs(rho64[i]), $"{which} mode {i}: ρ₃₂ = {rho32[i]}, ρ₆₄ = {rho64[i]}");
    }

    [Fact]
    public void PrincipalDirectionsOfFloat32RowsEqualTheWidenedRows()
    {
        const int dim = 7, n = 40000; // several widened chunks (32768 values each)
        var rng = new Random(28);
        var rows = new float[n * dim];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < dim; j++) rows[i * dim + j] = (float)(3.0 + (j + 1) * RandomProbes.Gaussian(rng) + (j == 2 ? rows[i * dim] : 0));
        var p32 = PrincipalDirections.Of(rows, dim);
        var p64 = PrincipalDirections.Of(Float32.ToDouble(rows), dim);
        for (int i = 0; i < dim; i++)
        {
            Assert.Equal(p64.Variances[i], p32.Variances[i], 1e-12 * p64.Variances[0]);
            double dot = 0;
            for (int j = 0; j < dim; j++) dot += p32.Direction(i)[j] * p64.Direction(i)[j];
            Assert.True(1 - Math.Abs(dot) < 1e-12, $"direction {i}: |⟨v₃₂, v₆₄⟩| = {Math.Abs(dot)}");
        }
    }

    [Theory, MemberData(nameof(Models))]
    public void SrbOnFloat32StatesAgreesWithFloat64(string which)
    {
        var (_, lin64, lin32) = Setup(which);
        var ntk64 = new NtkOperators(lin64).NtkS;
        var ntk32 = new NtkOperators(lin32).NtkS;
        var e = TestMath.Gaussian(new Random(29), lin64.StateShape.Size);
        var ranks = SelfReferentialBias.DefaultRanks(lin64.StateShape.Sizes[^1], 4);
        var s64 = SelfReferentialBias.Compute(ntk64, lin64.States.Span, e, ranks, "test");
        var s32 = SelfReferentialBias.Compute(ntk32, lin32.StatesSingle.Span, Float32.ToSingle(e), ranks, "test");
        for (int i = 0; i < ranks.Length; i++)
        {
            Assert.Equal(s64.Index[i], s32.Index[i], 1e-4 * Math.Abs(s64.Index[i]));
            Assert.Equal(s64.ErrorFraction[i], s32.ErrorFraction[i], 1e-5);
            Assert.Equal(s64.ActivityVarianceFraction[i], s32.ActivityVarianceFraction[i], 1e-5);
        }
    }
}
