using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Ntk;
using GlobalNtk.Tests.Reference;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// ChainLinearization.ParamJvpSubset / ParamVjpSubset (the J_rest term of the Kronecker core,
/// docs/math.md#kronecker-core): equal to the full J_θ / J_θ* with the δθ scattered / gathered by hand, and an
/// adjoint pair — for the transformer's own restricted path and the base-class default (MLP).
/// </summary>
public class ParamSubsetTests
{
    private const int Count = 2;

    public static TheoryData<string> TransformerConfigs => TransformerTests.Configs;

    [Theory]
    [MemberData(nameof(TransformerConfigs))]
    public void TransformerSubsetsMatchMaskedFullJacobian(string name)
    {
        var (model, x) = TransformerTests.Setup(name, chunkRows: 2 * 4);
        var lin = model.Linearize(x);
        var ps = lin.Parameters;
        // The Kronecker rest (LayerNorm gains/biases, embedding) and a scrambled mixed subset:
        // a lone site weight without its bias, a lone bias, a LayerNorm gain, the input tensor.
        var rest = new SiteParameterMap(lin).Rest;
        Assert.NotEmpty(rest);
        var mixed = new[]
        {
            ps.IndexOf("layers.1.self_attn.in_proj_weight"), ps.IndexOf("layers.0.linear2.bias"),
            ps.IndexOf("layers.1.norm2.weight"), 0, ps.IndexOf("layers.0.self_attn.out_proj.weight"),
        };
        CheckSubset(lin, rest, seed: 3);
        CheckSubset(lin, mixed, seed: 4);
    }

    [Fact]
    public void BaseClassDefaultMatchesMaskedFullJacobian()
    {
        var model = MlpModel.Create(2, 4, 3, 2, Activation.Tanh, 5);
        var x = new Tensor(DepthChecks.Gaussian(3 * 2, new Random(6)), new AxisShape(("sample", 3), ("input", 2)));
        var lin = model.Linearize(x);
        int n = lin.Parameters.Count;
        CheckSubset(lin, [n - 1, 1, 2], seed: 7);
        CheckSubset(lin, Enumerable.Range(0, n).Reverse().ToArray(), seed: 8);
    }

    [Fact]
    public void BadSubsetsAreRejected()
    {
        var (model, x) = TransformerTests.Setup("relu");
        var lin = model.Linearize(x);
        var q = new double[lin.StateShape.Size];
        var ex = Assert.Throws<ArgumentException>(() => lin.ParamVjpSubset([1, 1], q, new double[2 * lin.Parameters[1].Size], 1));
        Assert.Contains(lin.Parameters[1].Name, ex.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => lin.ParamVjpSubset([lin.Parameters.Count], q, new double[8], 1));
    }

    /// <summary>Restricted JVP/VJP vs the full ones with hand-made scatter/gather (≤ 1e-12), and ⟨J_S a, q⟩ = ⟨a, J_S* q⟩.</summary>
    private static void CheckSubset(ChainLinearization lin, IReadOnlyList<int> subset, int seed)
    {
        var ps = lin.Parameters;
        int m = ps.TotalSize, n = lin.StateShape.Size, k = subset.Sum(i => ps[i].Size);
        var rng = new Random(seed);
        var a = DepthChecks.Gaussian(Count * k, rng);
        var q = DepthChecks.Gaussian(Count * n, rng);

        // Reference: scatter a into a full δθ (zeros elsewhere) / gather the full VJP.
        var full = new double[Count * m];
        for (int j = 0; j < Count; j++)
        {
            int off = 0;
            foreach (int i in subset) { a.AsSpan(j * k + off, ps[i].Size).CopyTo(full.AsSpan(j * m + ps.OffsetOf(i))); off += ps[i].Size; }
        }
        var jvpRef = new double[Count * n];
        lin.ParamJvp(full, jvpRef, Count);
        var vjpFull = new double[Count * m];
        lin.ParamVjp(q, vjpFull, Count);
        var vjpRef = new double[Count * k];
        for (int j = 0; j < Count; j++)
        {
            int off = 0;
            foreach (int i in subset) { vjpFull.AsSpan(j * m + ps.OffsetOf(i), ps[i].Size).CopyTo(vjpRef.AsSpan(j * k + off)); off += ps[i].Size; }
        }

        var jvp = new double[Count * n];
        Array.Fill(jvp, double.NaN); // must be overwritten
        lin.ParamJvpSubset(subset, a, jvp, Count);
        var vjp = new double[Count * k];
        Array.Fill(vjp, double.NaN);
        lin.ParamVjpSubset(subset, q, vjp, Count);

        AssertClose(jvpRef, jvp, "restricted JVP");
        AssertClose(vjpRef, vjp, "restricted VJP");
        double lhs = Numerics.Dot(jvp, q), rhs = Numerics.Dot(a, vjp);
        Assert.True(Math.Abs(lhs - rhs) <= 1e-12 * Math.Max(1.0, Numerics.Norm(jvp) * Numerics.Norm(q)), $"adjoint identity: {lhs} vs {rhs}");
    }

    private static void AssertClose(double[] expected, double[] actual, string what)
    {
        double err = 0;
        for (int i = 0; i < expected.Length; i++) err = Math.Max(err, Math.Abs(expected[i] - actual[i]));
        double scale = Math.Max(1e-300, expected.Max(Math.Abs));
        Assert.True(err <= 1e-12 * scale, $"{what}: max error {err:E3} relative to {scale:E3}");
        Assert.True(expected.Any(v => v != 0), $"{what}: reference is identically zero (test would be vacuous)");
    }
}
