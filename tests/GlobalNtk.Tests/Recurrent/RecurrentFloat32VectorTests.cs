using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Recurrent;
using GlobalNtk.Ntk;
using GlobalNtk.Operators;
using Xunit;

namespace GlobalNtk.Tests.Recurrent;

/// <summary>
/// Float32 blocks of vectors through the operators of a float32 recurrent linearisation
/// (<see cref="Precision.F32"/>): on one layer (<see cref="RecurrentLinearization"/>) P, P*, P⁻¹, P⁻*,
/// K's fused site kernel, NTK_S, J_θ, J_θ* and the sites' D/D* read and write float32 blocks natively;
/// on the stacked path (<see cref="StackedRecurrentLinearization"/>) the state maps, J_θ, J_θ* and the
/// sites' D/D* (so K and NTK_S) do.
/// </summary>
/// <remarks>
/// Tolerances. Against the float64 operators of the float64 linearisation: 1e-5 relative (normwise),
/// the figure, with the same justification as <see cref="RecurrentFloat32Tests"/> (float32
/// products of ≤ 64 terms, u = 6e-8, carried through T = 12 steps of maps of norm about 1: ≈ 6e-6 at
/// worst, typically 1e-7). Keeping the vectors in float32 adds one rounding per step to the sweeps'
/// running sums (v_k = q_k + A_k v_{k−1} rounded to float32), i.e. another ≤ T·u ≈ 7e-7, so the same
/// bound holds; the same 1e-5 bounds the difference to the float64-vector path of the same float32
/// linearisation (the converting default). Where a step adds E δz and D δa into the float32 row
/// separately (fused GRU, LSTM, leaky), the sweeps must differ from it by more than 1e-10 (their sums
/// really ran in float32); where a step adds one float32 row (Elman, every stacked step) they equal it
/// bit for bit (see the test). J_θ, J_θ*, the sites' D* and the fused K add every float32 result once into
/// a zeroed block (J_θ* bias sums accumulate in float64 on both paths and are rounded once), so there
/// the float32 entry points equal the converting default exactly. Adjoint identities on float32 blocks:
/// |⟨Ax, w⟩ − ⟨x, A*w⟩| ≤ 1e-5 ‖Ax‖‖w‖, the two sides being float32 evaluations of the same bilinear
/// form (inner products accumulated in float64).
/// </remarks>
public class RecurrentFloat32VectorTests
{
    private const double Tolerance = 1e-5;
    private const double ProvesFloat32 = 1e-10;

    /// <summary>Every cell on the fused single-layer path (""), and the stacked path: two layers, no biases, a learnable h0.</summary>
    public static TheoryData<string, string> Arches
    {
        get
        {
            var data = new TheoryData<string, string>();
            foreach (var arch in new[] { "rnn-tanh", "rnn-relu", "gru", "lstm", "leaky-rnn" }) data.Add(arch, "");
            foreach (var arch in new[] { "rnn-tanh", "gru", "lstm", "leaky-rnn" }) data.Add(arch, "2 layers");
            data.Add("gru", "no bias");
            data.Add("lstm", "learnable h0");
            return data;
        }
    }

    private static (ChainLinearization Lin64, ChainLinearization Lin32) Linearize(string arch, string variant = "")
    {
        var model = RecurrentFloat32Tests.Model(arch, variant);
        var x = RecurrentFloat32Tests.Inputs(model);
        var (lin64, lin32) = (model.Linearize(x, Precision.F64), model.Linearize(x, Precision.F32));
        Assert.IsType(variant == "" ? typeof(RecurrentLinearization) : typeof(StackedRecurrentLinearization), lin32);
        return (lin64, lin32);
    }

    private static float[] RandomSingle(Random rng, int n) => Float32.ToSingle(TestMath.Gaussian(rng, n));

    [Theory]
    [MemberData(nameof(Arches))]
    public void Float32BlocksAgreeWithFloat64AndWithTheConvertingDefault(string arch, string variant)
    {
        var (lin64, lin32) = Linearize(arch, variant);
        Assert.True(lin32.HasSingleStateMaps);
        Assert.False(lin64.HasSingleStateMaps);
        var o64 = new NtkOperators(lin64);
        var o32 = new NtkOperators(lin32);
        Assert.Same(o32.KKronecker, o32.KApplied);   // what the float32 NTK_S runs
        // A step that forms its whole row A_k v_{k−1} in float32 and adds it once into the block (an Elman
        // cell, A_k = D_k W_hh without an E term; every stacked step) rounds v_k = fl(q_k + A_k v_{k−1}) on
        // both paths (the float64 path's exact sum is rounded when the next step reads it, and at the
        // end), so there the sweeps equal the converting default bit for bit. The fused GRU, LSTM and
        // leaky steps add E δz and D δa into the float32 row one after the other, which rounds twice.
        bool sweepsExact = variant != "" || arch.StartsWith("rnn-", StringComparison.Ordinal);
        var pairs = new (string Name, LinearOperator F64, LinearOperator F32, bool Exact)[]
        {
            ("P", o64.P, o32.P, sweepsExact), ("P*", o64.PAdjoint, o32.PAdjoint, sweepsExact), ("P⁻¹", o64.PInverse, o32.PInverse, sweepsExact),
            ("P⁻*", o64.PInverse.Adjoint, o32.PInverse.Adjoint, sweepsExact), ("NTK_S", o64.NtkS, o32.NtkS, false),
            ("K (Kronecker core)", o64.KKronecker, o32.KKronecker, variant == ""),   // the fused kernel (one layer)
            ("J_θ", o64.Jtheta, o32.Jtheta, true), ("J_θ*", o64.Jtheta.Adjoint, o32.Jtheta.Adjoint, true),
            // The generic K keeps its dθ block in float32: J_θ* rounds it once, as J_θ does on entry on the float64 path.
            ("K = J_θJ_θ*", o64.K, o32.K, true),
        };
        Assert.True(o32.K.AppliesFloat32Natively);
        Assert.False(o64.K.AppliesFloat32Natively);
        var rng = new Random(12);
        const int count = 3;
        double largestOwn = 0;
        foreach (var (name, a64, a32, exact) in pairs)
        {
            var v = RandomSingle(rng, count * a64.Domain.Size);
            var v64 = Float32.ToDouble(v);
            var y = new float[count * a32.Range.Size];
            a32.ApplyBlock(v, y, count);
            double rel = TestMath.RelativeError(Float32.ToDouble(y), a64.ApplyBlock(v64, count));
            Assert.True(rel <= Tolerance, $"{arch} {variant} {name}: float32 vectors differ from float64 by {rel:E2}");
            // The converting default: the float64-vector map of the same float32 linearisation, rounded once.
            var viaDouble = Float32.ToSingle(a32.ApplyBlock(v64, count));
            if (exact)
            {
                Assert.Equal(viaDouble, y);
                continue;
            }
            double own = TestMath.RelativeError(Float32.ToDouble(y), Float32.ToDouble(viaDouble));
            Assert.True(own <= Tolerance, $"{arch} {variant} {name}: float32 against float64 vectors of the float32 linearisation: {own:E2}");
            if (name.StartsWith('P')) largestOwn = Math.Max(largestOwn, own);
        }
        // The fused steps with an E term round differently from the converting default: the float32 sweeps really ran.
        if (!sweepsExact)
            Assert.True(largestOwn > ProvesFloat32, $"{arch} {variant}: float32 sweeps equal the float64-vector path everywhere ({largestOwn:E2}); the float32 sweeps did not run");
    }

    [Theory]
    [MemberData(nameof(Arches))]
    public void Float32BlocksKeepTheAdjointIdentities(string arch, string variant)
    {
        var (_, lin32) = Linearize(arch, variant);
        var ops = new NtkOperators(lin32);
        var rng = new Random(13);
        foreach (var (name, a, adj) in new[]
        {
            ("P", ops.P, ops.PAdjoint), ("P⁻¹", ops.PInverse, ops.PInverse.Adjoint), ("J_θ", ops.Jtheta, ops.Jtheta.Adjoint),
            ("K", ops.KKronecker, ops.KKronecker), ("NTK_S", ops.NtkS, ops.NtkS),
        })
        {
            const int count = 2;
            var x = RandomSingle(rng, count * a.Domain.Size);
            var w = RandomSingle(rng, count * a.Range.Size);
            double gap = TestMath.Float32AdjointGap(a, adj, x, w, count);
            Assert.True(gap <= Tolerance, $"{arch} {variant} {name}: ⟨A x, w⟩ vs ⟨x, A* w⟩, relative gap {gap:E2}");
        }
    }

    [Theory]
    [MemberData(nameof(Arches))]
    public void SitesApplyFloat32DAndDAdjointOnFloat32Blocks(string arch, string variant)
    {
        var (lin64, lin32) = Linearize(arch, variant);
        var rng = new Random(14);
        int size = lin32.StateShape.Size;
        const int count = 2;
        for (int i = 0; i < lin32.Sites.Count; i++)
        {
            WeightSite s32 = lin32.Sites[i], s64 = lin64.Sites[i];
            int n = s32.Rows * s32.OutDim;
            // Û in float32 is the engine's own array; the float64 Û is it widened.
            Assert.Equal(s32.Variables.ToArray(), Float32.ToDouble(s32.VariablesSingle.ToArray()));
            Assert.True(s64.VariablesSingle.IsEmpty);

            var q = RandomSingle(rng, count * size);
            var a = new float[count * n];
            Assert.True(s32.TryApplyDAdjointSingle((ReadOnlySpan<float>)q, a, count));
            var a64 = new double[count * n];
            s64.ApplyDAdjoint(Float32.ToDouble(q), a64, count);
            Assert.True(TestMath.RelativeError(Float32.ToDouble(a), a64) <= Tolerance, $"{arch} {variant} site {s32.Name} D*");
            var aMixed = new float[count * n];
            Assert.True(s32.TryApplyDAdjointSingle(Float32.ToDouble(q), aMixed, count));
            Assert.Equal(aMixed, a);

            var b = RandomSingle(rng, count * n);
            var d = new float[count * size];
            Assert.True(s32.TryApplyDAddSingle((ReadOnlySpan<float>)b, d, count));
            var d64 = new double[count * size];
            s64.ApplyDAdd(Float32.ToDouble(b), d64, count);
            Assert.True(TestMath.RelativeError(Float32.ToDouble(d), d64) <= Tolerance, $"{arch} {variant} site {s32.Name} D");
            var dMixed = new double[count * size];
            Assert.True(s32.TryApplyDAddSingle((ReadOnlySpan<float>)b, dMixed, count));
            Assert.Equal(Float32.ToSingle(dMixed), d);   // each row added once into zeros: the same rounding

            // ⟨D b, q⟩ = ⟨b, D* q⟩ on float32 blocks.
            double lhs = Float32.DotWide(d, q), rhs = Float32.DotWide(b, a);
            double scale = Math.Sqrt(Float32.DotWide(d, d) * Float32.DotWide(q, q));
            Assert.True(Math.Abs(lhs - rhs) <= Tolerance * scale, $"{arch} {variant} site {s32.Name}: {lhs} vs {rhs}");

            // A float64 linearisation's sites have no float32 maps.
            Assert.False(s64.TryApplyDAdjointSingle((ReadOnlySpan<float>)q, a, count));
        }
    }

    /// <summary>Every recurrent site (single-layer and stacked) refuses a too-short block in float64 and float32, naming the site.</summary>
    [Theory]
    [InlineData("gru", "")]
    [InlineData("lstm", "2 layers")]
    public void SitesCheckTheirBlocks(string arch, string variant)
    {
        var (lin64, lin32) = Linearize(arch, variant);
        int size = lin64.StateShape.Size;
        foreach (var s in lin64.Sites)
        {
            int n = s.Rows * s.OutDim;
            Assert.Contains($"Site '{s.Name}' ApplyDAdd", Assert.Throws<ArgumentException>(() => s.ApplyDAdd(new double[n - 1], new double[size], 1)).Message);
            Assert.Contains($"Site '{s.Name}' ApplyDAdjoint", Assert.Throws<ArgumentException>(() => s.ApplyDAdjoint(new double[size - 1], new double[n], 1)).Message);
        }
        foreach (var s in lin32.Sites)
        {
            int n = s.Rows * s.OutDim;
            Assert.Throws<ArgumentException>(() => s.TryApplyDAddSingle((ReadOnlySpan<float>)new float[n], new float[size - 1], 1));
            Assert.Throws<ArgumentException>(() => s.TryApplyDAdjointSingle(new double[size], new float[n - 1], 1));
        }
    }

    [Fact]
    public void Float32StateMapsCheckTheirBlocks()
    {
        var (lin64, lin32) = Linearize("gru");
        int size = lin32.StateShape.Size;
        Assert.Throws<ArgumentException>(() => lin32.StateJvpAdd(1, new float[size - 1], new float[size], 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => lin32.StateVjpAdd(0, new float[size], new float[size], 1));
        Assert.Throws<NotSupportedException>(() => lin64.StateJvpAdd(1, new float[size], new float[size], 1));
        Assert.False(lin64.TryAddSiteKernel(new float[size], new float[size], 1));
        var bad = new float[size];
        bad[5] = float.PositiveInfinity;
        var ex = Assert.Throws<NonFiniteException>(() => new NtkOperators(lin32).NtkS.ApplyBlock(bad, new float[size], 1));
        Assert.Contains("NTK_S", ex.Message);
    }
}
