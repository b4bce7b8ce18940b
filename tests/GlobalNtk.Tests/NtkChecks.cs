using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Ntk;
using GlobalNtk.Operators;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>Model-independent checks of the NTK operators, shared by every model's tests.</summary>
internal static class NtkChecks
{
    /// <summary>Entries uniform in [−1, 1) (<see cref="TestMath.Uniform(int, int, double)"/>).</summary>
    public static double[] Random(int n, int seed) => TestMath.Uniform(n, seed);

    /// <summary><see cref="TestMath.RelativeError"/>.</summary>
    public static double RelDiff(ReadOnlySpan<double> a, ReadOnlySpan<double> b) => TestMath.RelativeError(a, b);

    /// <summary>The adjoint identity (<see cref="TestMath.AdjointError"/>) on a block of 3, and block = vector-by-vector.</summary>
    public static void Adjoint(LinearOperator op, int seed, double tol = 1e-12)
    {
        const int count = 3;
        double gap = TestMath.AdjointError(op, new Random(seed), count);
        Assert.True(gap <= tol, $"{op.Name}: adjoint identity off by {gap:E2}");
        var x = Random(count * op.Domain.Size, seed + 1);
        var ax = op.ApplyBlock(x, count);
        // A block is exactly the vectors applied one by one.
        for (int j = 0; j < count; j++)
        {
            var single = op.Apply(x.AsSpan(j * op.Domain.Size, op.Domain.Size));
            Assert.True(RelDiff(single, ax.AsSpan(j * op.Range.Size, op.Range.Size)) <= 1e-13, $"{op.Name}: block vector {j} differs from a single apply");
        }
    }

    /// <summary>All operator identities of docs/math.md#global-ntk on one linearisation; dense dz/dθ [state, m] optional.</summary>
    public static void All(ChainLinearization lin, double[]? denseJacobian, int seed)
    {
        var ops = new NtkOperators(lin);
        int s = lin.StateShape.Size, m = lin.Parameters.TotalSize;
        foreach (var op in new[] { ops.P, ops.PAdjoint, ops.PInverse, ops.Jtheta, ops.K, ops.KKronecker, ops.NtkS, ops.WholeModelJacobian, ops.WholeModelNtk })
            Adjoint(op, seed);

        const int count = 4;
        var q = Random(count * s, seed + 7);
        // P P⁻¹ = P⁻¹ P = I, and P* is the adjoint of P.
        Assert.True(RelDiff(ops.P.ApplyBlock(ops.PInverse.ApplyBlock(q, count), count), q) <= 1e-12, "P P⁻¹ ≠ I");
        Assert.True(RelDiff(ops.PInverse.ApplyBlock(ops.P.ApplyBlock(q, count), count), q) <= 1e-12, "P⁻¹ P ≠ I");
        Assert.True(RelDiff(ops.PAdjoint.ApplyBlock(q, count), ops.P.ApplyAdjointBlock(q, count)) <= 1e-14, "P* ≠ adjoint of P");

        // Generic and Kronecker-core K agree.
        var kg = ops.K.ApplyBlock(q, count);
        var kk = ops.KKronecker.ApplyBlock(q, count);
        Assert.True(RelDiff(kk, kg) <= 1e-12, $"Kronecker K vs generic K: {RelDiff(kk, kg):E2}");

        // P K P* = whole-model NTK (fused sweep) = dense dual-number (dz/dθ)(dz/dθ)ᵀ.
        var ntk = ops.NtkS.ApplyBlock(q, count);
        var whole = ops.WholeModelNtk.ApplyBlock(q, count);
        Assert.True(RelDiff(ntk, whole) <= 1e-10, $"NTK_S vs fused whole-model NTK: {RelDiff(ntk, whole):E2}");
        Assert.True(RelDiff(ops.NtkSWith(ops.K).ApplyBlock(q, count), whole) <= 1e-10, "P K_generic P* vs whole-model NTK");
        if (denseJacobian is not null)
        {
            var jtq = new double[count * m];
            var dense = new double[count * s];
            Gemm.Multiply(Trans.No, Trans.No, count, m, s, 1.0, q, s, denseJacobian, m, 0.0, jtq, m);           // (Jᵀq)ᵀ
            Gemm.Multiply(Trans.No, Trans.Yes, count, s, m, 1.0, jtq, m, denseJacobian, m, 0.0, dense, s);      // J Jᵀ q
            Assert.True(RelDiff(ntk, dense) <= 1e-10, $"NTK_S vs dense dual-number NTK: {RelDiff(ntk, dense):E2}");
            var dth = Random(count * m, seed + 9);
            var jd = ops.WholeModelJacobian.ApplyBlock(dth, count);
            var jdDense = new double[count * s];
            Gemm.Multiply(Trans.No, Trans.Yes, count, s, m, 1.0, dth, m, denseJacobian, m, 0.0, jdDense, s);
            Assert.True(RelDiff(jd, jdDense) <= 1e-10, $"fused dz/dθ vs dense dual-number: {RelDiff(jd, jdDense):E2}");
        }
    }

    /// <summary>Dense matrix of an operator (columns = images of unit vectors), row-major [range, domain].</summary>
    public static double[] Dense(LinearOperator op)
    {
        int n = op.Domain.Size, r = op.Range.Size;
        var eye = new double[n * n];
        for (int i = 0; i < n; i++) eye[i * n + i] = 1;
        var cols = op.ApplyBlock(eye, n);   // [n, r]: row i = A e_i
        var a = new double[r * n];
        for (int i = 0; i < n; i++)
            for (int k = 0; k < r; k++) a[k * n + i] = cols[i * r + k];
        return a;
    }

    /// <summary>
    /// The first-order identity on the loss of the model's own readout against random targets:
    /// Δz = −η NTK_S e + O(η²), with η in units of ‖e‖/‖NTK_S e‖ so both steps are small; the
    /// relative error is below 5% and shrinks tenfold with a tenfold smaller step (O(η)).
    /// </summary>
    public static void FirstOrderOnReadoutLoss(IChainModel model, Tensor x, int targetSeed)
    {
        var lin = model.Linearize(x);
        var targets = new Tensor(model.Readout.OutputShape(lin.StateShape));
        Random(targets.Length, targetSeed).CopyTo(targets.Span);
        var e = MseLoss.StateError(model.Readout, lin.States.Span, lin.StateShape, targets.Span).StateError;
        double scale = Numerics.Norm(e) / Numerics.Norm(new NtkOperators(lin).NtkS.Apply(e));
        var big = FirstOrderIdentity.Check(model, x, targets, 1e-2 * scale);
        var small = FirstOrderIdentity.Check(model, x, targets, 1e-3 * scale);
        Assert.True(big.RelativeError < 0.05, $"{model.Arch}: relative error {big.RelativeError:E2}");
        Assert.InRange(small.RelativeError / big.RelativeError, 0.07, 0.13);
    }
}
