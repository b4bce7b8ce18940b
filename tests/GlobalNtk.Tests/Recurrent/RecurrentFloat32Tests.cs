using System.Numerics.Tensors;
using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Blocks;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Recurrent;
using GlobalNtk.Ntk;
using GlobalNtk.Operators;
using MathNet.Numerics.LinearAlgebra;
using Xunit;
using Tensor = GlobalNtk.Dense.Tensor;

namespace GlobalNtk.Tests.Recurrent;

/// <summary>
/// The float32 path of the recurrent nets (<see cref="Precision.F32"/>) against the float64 one on
/// the same model and inputs.
/// </summary>
/// <remarks>
/// Tolerances (docs/math.md#numerics). float32 has unit roundoff u = 2⁻²⁴ ≈ 6.0e-8. Every number on
/// the f32 path (states, caches, products) carries a relative error of about √k·u for a sum of k
/// terms (random-sign rounding; k·u at worst): the longest sums here are the GEMMs over G·H ≤ 64
/// terms and the Gram products over B·T = 48 rows, so one product is good to about 8 u (64 u at
/// worst). The recurrences carry these errors through T = 12 steps of maps of norm about 1 (gain 1,
/// PyTorch initialisation), adding about one such error per step: ≈ 12 · 8 u ≈ 6e-6 relative for
/// an operator application, typically less. We assert the 1e-5 (measured: 2e-8 – 2.2e-7).
/// Eigenvalues of a symmetric matrix move by at most the norm of the perturbation (Weyl), and the
/// participation ratio PR = (tr A)²/tr A² is smooth in A, so both agree to the same relative order;
/// we assert 1e-4, the figure. A lower bound (1e-9) on the difference shows the f32 path
/// really ran in float32.
/// </remarks>
public class RecurrentFloat32Tests
{
    private const double OperatorTolerance = 1e-5;
    private const double SpectrumTolerance = 1e-4;
    private const double ProvesFloat32 = 1e-9;

    /// <summary>The test net of <paramref name="arch"/> (3 inputs, 16 units, 2 outputs) in a variant: "", "2 layers", "no bias" or "learnable h0".</summary>
    internal static RecurrentModel Model(string arch, string variant = "") =>
        RecurrentModel.Create(new RecurrentConfig(arch, 3, 16, 2)
        {
            Seed = 5, Activation = Activation.Tanh, Alpha = 0.3,
            Layers = variant == "2 layers" ? 2 : 1, Bias = variant != "no bias", LearnInitialState = variant == "learnable h0",
        });

    /// <summary>Fixed uniform inputs of <paramref name="b"/> trials of <paramref name="t"/> steps.</summary>
    internal static Tensor Inputs(RecurrentModel m, int b = 4, int t = 12) =>
        new(TestMath.Uniform(b * t * m.InputSize, 21), m.InputShape(b, t));

    /// <summary>
    /// Every architecture on the fused single-layer path (""), and the nets of the stacked path
    /// (<see cref="StackedRecurrentLinearization"/>): two layers, no biases, a learnable h0.
    /// </summary>
    public static TheoryData<string, string> Arches
    {
        get
        {
            var data = new TheoryData<string, string>();
            foreach (var arch in new[] { "rnn-tanh", "rnn-relu", "gru", "lstm", "leaky-rnn" }) data.Add(arch, "");
            foreach (var arch in new[] { "rnn-tanh", "gru", "lstm" })
                foreach (var variant in new[] { "2 layers", "no bias", "learnable h0" }) data.Add(arch, variant);
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(Arches))]
    public void OperatorApplicationsAgreeWithFloat64(string arch, string variant)
    {
        var model = Model(arch, variant);
        var x = Inputs(model);
        var lin64 = model.Linearize(x, Precision.F64);
        var lin32 = model.Linearize(x, Precision.F32);
        Assert.Equal(Precision.F32, lin32.Precision);
        Assert.Equal(Precision.F64, lin64.Precision);
        Assert.Equal(variant == "" ? typeof(RecurrentLinearization) : typeof(StackedRecurrentLinearization), lin32.GetType());

        double states = TestMath.RelativeError(lin32.States.Span, lin64.States.Span);
        Assert.InRange(states, ProvesFloat32, OperatorTolerance);

        var o64 = new NtkOperators(lin64);
        var o32 = new NtkOperators(lin32);
        var q = TestMath.Uniform(lin64.StateShape.Size, 3);
        var theta = TestMath.Uniform(lin64.Parameters.TotalSize, 4);
        foreach (var (name, a, b, input) in new (string, LinearOperator, LinearOperator, double[])[]
        {
            ("P", o64.P, o32.P, q), ("P*", o64.PAdjoint, o32.PAdjoint, q), ("P⁻¹", o64.PInverse, o32.PInverse, q),
            ("K Kronecker", o64.KKronecker, o32.KKronecker, q), ("K = J J*", o64.K, o32.K, q),
            ("NTK_S", o64.NtkS, o32.NtkS, q), ("J_θ", o64.Jtheta, o32.Jtheta, theta),
        })
        {
            double err = TestMath.RelativeError(b.Apply(input), a.Apply(input));
            Assert.True(err >= ProvesFloat32 && err <= OperatorTolerance, $"{arch} {variant} {name}: relative difference f32 vs f64 {err:E2}");
        }
        double adj = TestMath.RelativeError(o32.Jtheta.ApplyAdjoint(q), o64.Jtheta.ApplyAdjoint(q));
        Assert.InRange(adj, ProvesFloat32, OperatorTolerance);
        // Blocks of vectors (count·B rows per step, J_θ over count parameter vectors) agree as well.
        const int count = 3;
        var qs = TestMath.Uniform(count * lin64.StateShape.Size, 6);
        var thetas = TestMath.Uniform(count * lin64.Parameters.TotalSize, 7);
        foreach (var (name, a, b, input) in new (string, LinearOperator, LinearOperator, double[])[]
        {
            ("P", o64.P, o32.P, qs), ("P*", o64.PAdjoint, o32.PAdjoint, qs), ("NTK_S", o64.NtkS, o32.NtkS, qs), ("J_θ", o64.Jtheta, o32.Jtheta, thetas),
        })
        {
            double err = TestMath.RelativeError(b.ApplyBlock(input, count), a.ApplyBlock(input, count));
            Assert.True(err >= ProvesFloat32 && err <= OperatorTolerance, $"{arch} {variant} {name} block of {count}: relative difference f32 vs f64 {err:E2}");
        }
        double adjBlock = TestMath.RelativeError(o32.Jtheta.ApplyAdjointBlock(qs, count), o64.Jtheta.ApplyAdjointBlock(qs, count));
        Assert.InRange(adjBlock, ProvesFloat32, OperatorTolerance);
    }

    [Theory]
    [MemberData(nameof(Arches))]
    public void Float32OperatorsKeepTheirAdjointsAndSiteForm(string arch, string variant)
    {
        var model = Model(arch, variant);
        var lin = model.Linearize(Inputs(model), Precision.F32);
        var ops = new NtkOperators(lin);
        var rng = new Random(9);
        // ⟨A x, y⟩ = ⟨x, A* y⟩ up to the f32 rounding of each side.
        foreach (var op in new[] { ops.P, ops.PInverse, ops.Jtheta })
            Assert.True(TestMath.AdjointError(op, rng) < OperatorTolerance, $"{arch} {variant} {op.Name}");
        // The fused site kernel (single layer) equals the sum of the sites' D_s (Ĝ_s ⊗ I) D_s* applied
        // one by one; on the stacked path K is that sum, so this checks the float32 sites' D_s, D_s* and Û_s.
        var q = TestMath.Uniform(lin.StateShape.Size, 5);
        var fused = ops.KKronecker.Apply(q);
        var bySite = new double[q.Length];
        foreach (var site in lin.Sites)
        {
            int n = site.Rows, d = site.AugmentedWidth, m = site.OutDim;
            var a = new double[n * m];
            site.ApplyDAdjoint(q, a, 1);
            var c = new double[d * m];
            Gemm.Multiply(Trans.Yes, Trans.No, d, m, n, 1.0, site.Variables.Span, d, a, m, 0.0, c, m);
            Gemm.Multiply(Trans.No, Trans.No, n, m, d, 1.0, site.Variables.Span, d, c, m, 0.0, a, m);
            site.ApplyDAdd(a, bySite, 1);
        }
        // Parameters in no site (a learnable h0) enter K_Kronecker exactly: + J_rest J_rest* q.
        var inSites = lin.Sites.SelectMany(s => s.WeightParameters.Concat(s.BiasParameters)).ToHashSet();
        var ps = lin.Parameters;
        var jq = ops.Jtheta.ApplyAdjoint(q);
        bool anyRest = false;
        for (int i = 0; i < ps.Count; i++)
            if (inSites.Contains(ps[i].Name)) jq.AsSpan(ps.OffsetOf(i), ps[i].Size).Clear();
            else anyRest = true;
        Assert.Equal(variant == "learnable h0", anyRest);
        if (anyRest) TensorPrimitives.Add(bySite, ops.Jtheta.Apply(jq), bySite);
        Assert.True(TestMath.RelativeError(fused, bySite) < OperatorTolerance, $"{arch} {variant}: fused K vs per-site K");
        // Each site's D_s and D_s* are adjoint: ⟨D_s a, q⟩ = ⟨a, D_s* q⟩.
        foreach (var site in lin.Sites)
        {
            var a = TestMath.Uniform(site.Rows * site.OutDim, 8);
            var da = new double[q.Length];
            site.ApplyDAdd(a, da, 1);
            var dq = new double[a.Length];
            site.ApplyDAdjoint(q, dq, 1);
            double lhs = TensorPrimitives.Dot<double>(da, q), rhs = TensorPrimitives.Dot<double>(a, dq);
            double scale = TensorPrimitives.Norm<double>(da) * TensorPrimitives.Norm<double>(q);   // Cauchy–Schwarz bound on both sides
            Assert.True(Math.Abs(lhs - rhs) <= OperatorTolerance * scale, $"{arch} {variant} site {site.Name}: {lhs} vs {rhs}");
        }
    }

    [Fact]
    public void TopEigenvaluesAndEffectiveRankAgreeWithFloat64()
    {
        var model = Model("gru");
        var x = Inputs(model, 3, 8);   // state dimension 3·8·16 = 384: dense is cheap
        var dense64 = new NtkOperators(model.Linearize(x, Precision.F64)).NtkS.Materialize();
        var dense32 = new NtkOperators(model.Linearize(x, Precision.F32)).NtkS.Materialize();
        var (ev64, pr64) = Spectrum(dense64);
        var (ev32, pr32) = Spectrum(dense32);
        for (int i = 0; i < 5; i++)
            Assert.True(TestMath.RelativeDifference(ev32[i], ev64[i]) < SpectrumTolerance, $"eigenvalue {i + 1}: {ev32[i]} vs {ev64[i]}");
        Assert.True(TestMath.RelativeDifference(pr32, pr64) < SpectrumTolerance, $"PR {pr32} vs {pr64}");
    }

    private static (double[] Descending, double ParticipationRatio) Spectrum(DenseOperator dense)
    {
        int n = dense.Range.Size;
        var a = dense.Matrix;
        var m = Matrix<double>.Build.Dense(n, n, (i, j) => 0.5 * (a[i * n + j] + a[j * n + i]));
        var ev = m.Evd(Symmetricity.Symmetric).EigenValues.Select(e => e.Real).OrderByDescending(e => e).ToArray();
        double tr = ev.Sum(), tr2 = ev.Sum(e => e * e);
        return (ev, tr * tr / tr2);
    }

    [Fact]
    public void StackedNetsLinearizeInFloat32ThroughTheChainModelContract()
    {
        IChainModel model = RecurrentModel.Create(new RecurrentConfig("gru", 3, 8, 2) { Layers = 2, Bias = false, LearnInitialState = true });
        var lin = model.Linearize(Inputs((RecurrentModel)model, 2, 3), Precision.F32);
        Assert.IsType<StackedRecurrentLinearization>(lin);
        Assert.Equal(Precision.F32, lin.Precision);
    }

    [Fact]
    public void AStepBlockWithoutAFloat32PathRefusesItNamingTheBlock()
    {
        // The generic block path of the recurrent nets (cell blocks) has no float32 path yet.
        var model = RecurrentModel.Create(new RecurrentConfig("gru", 3, 8, 2));
        var block = CellBlock.Create("gru", 3, 8);
        Assert.False(block.Supports(Precision.F32));
        var ex = Assert.Throws<NotSupportedException>(() => block.Forward(model.Parameters, new double[2 * 3], 2, new double[2 * 8], Precision.F32));
        Assert.Contains("f32", ex.Message);
        Assert.Contains(nameof(CellBlock), ex.Message);
    }

    [Fact]
    public void TheChainModelContractDispatchesToTheFloat32Path()
    {
        IChainModel model = Model("gru");
        var lin = model.Linearize(Inputs((RecurrentModel)model), Precision.F32);
        Assert.Equal(Precision.F32, lin.Precision);
    }
}
