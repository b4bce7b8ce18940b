using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Recurrent;
using GlobalNtk.Ntk;
using GlobalNtk.Tests.Recurrent;
using GlobalNtk.Tests.Reference;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>The NTK operators on every recurrent cell (docs/math.md#global-ntk), against dual-number references.</summary>
public class NtkRecurrentTests
{
    public static TheoryData<string> Cells => new(RecurrentConfig.Architectures);

    private static (RecurrentModel Model, Tensor X, Tensor Z0, ChainLinearization Lin) Setup(string arch)
    {
        var model = RecurrentTestKit.Model(arch);
        var x = RecurrentTestKit.Inputs(model);
        var z0 = RecurrentTestKit.InitialState(model);
        return (model, x, z0, model.Linearize(x, z0));
    }

    [Theory, MemberData(nameof(Cells))]
    public void OperatorIdentitiesAndWholeModelNtk(string arch)
    {
        var (model, x, z0, lin) = Setup(arch);
        NtkChecks.All(lin, ReferenceRecurrent.WholeModelJacobian(model, x, z0.Span.ToArray()), seed: 41);
    }

    [Theory, MemberData(nameof(Cells))]
    public void KroneckerCoreTracesAreExact(string arch)
    {
        var (_, _, _, lin) = Setup(arch);
        // Every cell acts unit by unit: the row-local traces below take one D* per colour (S / H of
        // them), so this test checks the colouring against the dense K and the mode-by-mode path.
        var rl = (RecurrentLinearization)lin;
        Assert.All(lin.Sites, s => Assert.Equal(rl.Cell.StateSize / rl.Cell.HiddenSize, s.SliceColouring(new int[rl.Cell.StateSize])));
        var ops = new NtkOperators(lin);
        var core = ops.KroneckerCore;
        Assert.All(lin.Sites, s => Assert.True(KroneckerCore.IsRowLocal(lin, s)));
        int n = lin.StateShape.Size;
        var k = NtkChecks.Dense(ops.KKronecker);
        double tr = Enumerable.Range(0, n).Sum(i => k[i * n + i]);
        Assert.Equal(tr, core.TraceK, 1e-12 * tr);
        Assert.Equal(1.0, core.ModeCapture(core.MaxRank), 1e-12);
        // The general (mode-by-mode) path gives the same per-mode contributions.
        var renamed = new Float64SiteView(lin, renameRows: true);
        Assert.All(renamed.Sites, s => Assert.False(KroneckerCore.IsRowLocal(renamed, s)));
        var general = new KroneckerCore(renamed);
        for (int s = 0; s < core.Sites.Count; s++)
        {
            for (int i = 0; i < core.Sites[s].ModeContributions.Count; i++)
                Assert.Equal(core.Sites[s].ModeContributions[i], general.Sites[s].ModeContributions[i], 1e-10 * tr);
        }
        Assert.Equal(core.TraceK, general.TraceK, 1e-12 * tr);
    }

    [Theory, MemberData(nameof(Cells))]
    public void OutputNtkMatchesDenseOutputJacobian(string arch)
    {
        var (model, x, z0, lin) = Setup(arch);
        var ops = new NtkOperators(lin);
        var theta = ops.OutputNtk(model.Readout);
        NtkChecks.Adjoint(theta, 51);
        var readout = model.Readout;
        int s = lin.StateShape.Size, m = lin.Parameters.TotalSize, o = readout.OutputSize, inSize = readout.InputSize;
        int outLen = theta.Domain.Size, rows = readout.Rows(lin.StateShape);
        // Dense dy/d(θ, W_out, b_out): [C·dz/dθ | Z ⊗ I | 1 ⊗ I].
        var jz = ReferenceRecurrent.WholeModelJacobian(model, x, z0.Span.ToArray());
        var c = NtkChecks.Dense(readout.AsOperator(lin.StateShape));   // [outLen, s]
        var z = readout.Features(lin.States.Span, lin.StateShape);
        int cols = m + o * inSize + o;
        var jy = new double[outLen * cols];
        Gemm.Multiply(Trans.No, Trans.No, outLen, m, s, 1.0, c, s, jz, m, 0.0, jy, cols);
        for (int r = 0; r < rows; r++)
            for (int oo = 0; oo < o; oo++)
            {
                int row = (r * o + oo) * cols;
                for (int i = 0; i < inSize; i++) jy[row + m + oo * inSize + i] = z[r * inSize + i];
                jy[row + m + o * inSize + oo] = 1.0;
            }
        const int count = 3;
        var q = NtkChecks.Random(count * outLen, 52);
        var t = new double[count * cols];
        var dense = new double[count * outLen];
        Gemm.Multiply(Trans.No, Trans.No, count, cols, outLen, 1.0, q, outLen, jy, cols, 0.0, t, cols);
        Gemm.Multiply(Trans.No, Trans.Yes, count, outLen, cols, 1.0, t, cols, jy, cols, 0.0, dense, outLen);
        var got = theta.ApplyBlock(q, count);
        Assert.True(NtkChecks.RelDiff(got, dense) <= 1e-10, $"{arch}: Θ_y vs dense {NtkChecks.RelDiff(got, dense):E2}");
    }

    [Theory, MemberData(nameof(Cells))]
    public void FirstOrderIdentityOnReadoutMse(string arch)
    {
        var model = RecurrentTestKit.Model(arch);
        NtkChecks.FirstOrderOnReadoutLoss(model, RecurrentTestKit.Inputs(model), 61);

    }
}
