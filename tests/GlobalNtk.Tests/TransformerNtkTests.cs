using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Ntk;
using GlobalNtk.Tests.Reference;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// The shared NTK operators (P, P*, P⁻¹, J_θ, K generic and Kronecker, NTK_S, output NTK) on depth
/// chains (step = layer): every identity of docs/math.md#global-ntk against dz/dθ from forward-mode AD of
/// the independent loop implementations.
/// </summary>
public class TransformerNtkTests
{
    /// <summary>dz/dθ as a row-major [state, m] matrix from the reference's Jacobian rows [m][state].</summary>
    internal static double[] DenseJacobian(double[][] rows, int stateSize)
    {
        int m = rows.Length;
        var a = new double[stateSize * m];
        for (int i = 0; i < m; i++)
            for (int k = 0; k < stateSize; k++) a[k * m + i] = rows[i][k];
        return a;
    }

    /// <summary>
    /// Θ_y q computed densely: C (dz/dθ)(dz/dθ)ᵀ Cᵀ q plus the readout's own term
    /// Σ_r' (z_r·z_r' + 1) q_r' (rows r of the readout's features), in loops.
    /// </summary>
    internal static double[] DenseOutputNtk(Readout readout, ChainLinearization lin, double[][] jac, double[] q)
    {
        var c = readout.AsOperator(lin.StateShape);
        var ntk = DepthChecks.WholeModelNtk(jac, c.ApplyAdjoint(q));
        var y = c.Apply(ntk);
        var z = readout.Features(lin.States.Span, lin.StateShape);
        int n = readout.InputSize, o = readout.OutputSize, rows = z.Length / n;
        for (int r = 0; r < rows; r++)
            for (int r2 = 0; r2 < rows; r2++)
            {
                double g = 1.0;
                for (int i = 0; i < n; i++) g += z[r * n + i] * z[r2 * n + i];
                for (int k = 0; k < o; k++) y[r * o + k] += g * q[r2 * o + k];
            }
        return y;
    }

    [Theory]
    [MemberData(nameof(TransformerTests.Configs), MemberType = typeof(TransformerTests))]
    public void OperatorIdentitiesAndWholeModelNtkHold(string name)
    {
        var (model, x) = TransformerTests.Setup(name, chunkRows: 2 * 4);
        var lin = model.Linearize(x);
        var jac = DepthChecks.WholeModelJacobian(model.Parameters,
            src => ReferenceDepthModels.Transformer(model.Config, src, x.Span.ToArray(), 3, 4));
        // Adjoints, P P⁻¹ = I, generic K = Kronecker K (incl. the LayerNorm/embedding rest), P K P* = (dz/dθ)(dz/dθ)ᵀ.
        NtkChecks.All(lin, DenseJacobian(jac, lin.StateShape.Size), seed: 31);
    }

    [Theory]
    [InlineData("gelu-causal")]
    [InlineData("embedding")]
    public void OutputNtkMatchesDenseReference(string name)
    {
        var (model, x) = TransformerTests.Setup(name);
        var lin = model.Linearize(x);
        var jac = DepthChecks.WholeModelJacobian(model.Parameters,
            src => ReferenceDepthModels.Transformer(model.Config, src, x.Span.ToArray(), 3, 4));
        var theta = new NtkOperators(lin).OutputNtk(model.Readout);
        Assert.Equal(new AxisShape(("sequence", 3), ("token", 4), ("output", 2)), theta.Range);
        var q = DepthChecks.Gaussian(theta.Domain.Size, new Random(3));
        double err = DepthChecks.RelErr(theta.Apply(q), DenseOutputNtk(model.Readout, lin, jac, q));
        Assert.True(err < 1e-10, $"Θ_y vs dense: {err:E2}");
    }

    [Fact]
    public void KroneckerCoreRankBoundCoversEverySiteAndTheRest()
    {
        var (model, x) = TransformerTests.Setup("gelu-causal");
        var lin = model.Linearize(x);
        var core = new NtkOperators(lin).KroneckerCore;
        // Sites are per layer over (sequence, token) rows; LayerNorm gains/biases are the rest.
        Assert.Equal(lin.Sites.Count, core.Sites.Count);
        Assert.Equal(2 * 4 * 4, core.RestParameterCount); // 2 layers × (norm1, norm2) × (weight, bias) × d = 4
        long bound = lin.Sites.Sum(s => (long)Math.Min(s.Rows, s.AugmentedWidth) * s.OutDim) + core.RestParameterCount;
        Assert.True(core.RankBound <= bound, $"rank bound {core.RankBound} > Σ min(N, d̂)·m + rest {bound}");
    }
}

public class MlpNtkTests
{
    [Theory]
    [InlineData(Activation.Tanh)]
    [InlineData(Activation.Relu)]
    [InlineData(Activation.Gelu)]
    public void OperatorIdentitiesAndWholeModelNtkHold(Activation act)
    {
        var model = MlpModel.Create(2, 4, 3, 2, act, 1);
        model = (MlpModel)model.WithChainValues(model.Parameters.Flatten().Select(v => 2.0 * v).ToArray());
        var x = new Tensor(DepthChecks.Gaussian(3 * 2, new Random(4)), new AxisShape(("sample", 3), ("input", 2)));
        var lin = model.Linearize(x);
        var jac = DepthChecks.WholeModelJacobian(model.Parameters,
            src => ReferenceDepthModels.Mlp(2, 4, 3, act, src, x.Span.ToArray(), 3));
        NtkChecks.All(lin, TransformerNtkTests.DenseJacobian(jac, lin.StateShape.Size), seed: 41);
        var theta = new NtkOperators(lin).OutputNtk(model.Readout);
        Assert.Equal(new AxisShape(("sample", 3), ("output", 2)), theta.Range);
        var q = DepthChecks.Gaussian(theta.Domain.Size, new Random(5));
        Assert.True(DepthChecks.RelErr(theta.Apply(q), TransformerNtkTests.DenseOutputNtk(model.Readout, lin, jac, q)) < 1e-10);
    }
}
