using GlobalNtk.Dense;
using GlobalNtk.Models.Recurrent;
using GlobalNtk.Tests.Reference;
using Xunit;
using static GlobalNtk.Tests.Recurrent.RecurrentTestKit;

namespace GlobalNtk.Tests.Recurrent;

/// <summary>Every cell's four derivative maps against central finite differences, adjoints, sites, forward.</summary>
public class RecurrentCellDerivativeTests
{
    private const double Eps = 1e-5;

    [Theory]
    [InlineData("rnn-tanh")][InlineData("rnn-relu")][InlineData("gru")][InlineData("lstm")][InlineData("leaky-rnn")][InlineData("leaky-rnn/relu")]
    public void ForwardMatchesScalarReference(string arch)
    {
        var model = Model(arch);
        var x = Inputs(model);
        var z0 = InitialState(model);
        var lin = model.Linearize(x, z0);
        var reference = ReferenceRecurrent.States(model, x, z0.Span.ToArray());
        Assert.True(RelErr(lin.States.Span, reference) < 1e-13, $"{arch}: forward differs from the reference");
        Assert.Equal(new AxisShape(("trial", B), ("time", T), ("unit", model.StateSize)), lin.StateShape);
        // Zero initial state by default.
        var zeroRef = ReferenceRecurrent.States(model, x);
        Assert.True(RelErr(model.Forward(x).Span, zeroRef) < 1e-13);
    }

    [Theory]
    [InlineData("rnn-tanh")][InlineData("rnn-relu")][InlineData("gru")][InlineData("lstm")][InlineData("leaky-rnn")][InlineData("leaky-rnn/relu")]
    public void StateJvpMatchesFiniteDifferences(string arch)
    {
        var model = Model(arch);
        var x = Inputs(model);
        var lin = model.Linearize(x, InitialState(model));
        int size = lin.StateShape.Size, s = lin.StateSize, count = 2;
        var v = Random(count * size, 21);
        var prev = PreviousStates(lin);
        for (int k = 1; k < T; k++)
        {
            var analytic = new double[count * size];
            lin.StateJvpAdd(k, v, analytic, count);
            for (int j = 0; j < count; j++)
            {
                // FD of f_k(z_{k−1} + ε v_{k−1}) for every trial, via one-step runs from perturbed states.
                var plus = (double[])prev.Clone(); var minus = (double[])prev.Clone();
                for (int b = 0; b < B; b++)
                    for (int i = 0; i < s; i++)
                    {
                        double dv = v[j * size + (b * T + k - 1) * s + i];
                        plus[(b * T + k) * s + i] += Eps * dv; minus[(b * T + k) * s + i] -= Eps * dv;
                    }
                var fp = OneStep(model, x, plus); var fm = OneStep(model, x, minus);
                var fd = new double[B * s]; var an = new double[B * s];
                for (int b = 0; b < B; b++)
                    for (int i = 0; i < s; i++)
                    {
                        int r = (b * T + k) * s + i;
                        fd[b * s + i] = (fp[r] - fm[r]) / (2 * Eps);
                        an[b * s + i] = analytic[j * size + r];
                    }
                Assert.True(RelErr(fd, an) < 1e-6, $"{arch} step {k} vector {j}: A_k v rel err {RelErr(fd, an):E2}");
            }
            // Nothing outside step k was touched.
            for (int j = 0; j < count; j++)
                for (int b = 0; b < B; b++)
                    for (int t = 0; t < T; t++)
                        if (t != k)
                            for (int i = 0; i < s; i++) Assert.Equal(0.0, analytic[j * size + (b * T + t) * s + i]);
        }
    }

    [Theory]
    [InlineData("rnn-tanh")][InlineData("rnn-relu")][InlineData("gru")][InlineData("lstm")][InlineData("leaky-rnn")][InlineData("leaky-rnn/relu")]
    public void StateVjpMatchesFiniteDifferenceGradient(string arch)
    {
        var model = Model(arch);
        var x = Inputs(model);
        var lin = model.Linearize(x, InitialState(model));
        int size = lin.StateShape.Size, s = lin.StateSize;
        var w = Random(size, 31);
        var prev = PreviousStates(lin);
        for (int k = 1; k < T; k++)
        {
            var analytic = new double[size];
            lin.StateVjpAdd(k, w, analytic, 1);
            // Gradient of L(z_{k−1}) = Σ_b ⟨w_k, f_k(z_{k−1})⟩, one coordinate at a time.
            var fd = new double[B * s]; var an = new double[B * s];
            for (int b = 0; b < B; b++)
                for (int i = 0; i < s; i++)
                {
                    var plus = (double[])prev.Clone(); var minus = (double[])prev.Clone();
                    plus[(b * T + k) * s + i] += Eps; minus[(b * T + k) * s + i] -= Eps;
                    var fp = OneStep(model, x, plus); var fm = OneStep(model, x, minus);
                    double d = 0;
                    for (int c = 0; c < s; c++) d += w[(b * T + k) * s + c] * (fp[(b * T + k) * s + c] - fm[(b * T + k) * s + c]);
                    fd[b * s + i] = d / (2 * Eps);
                    an[b * s + i] = analytic[(b * T + k - 1) * s + i];
                }
            Assert.True(RelErr(fd, an) < 1e-6, $"{arch} step {k}: A_kᵀ w rel err {RelErr(fd, an):E2}");
        }
    }

    [Theory]
    [InlineData("rnn-tanh")][InlineData("rnn-relu")][InlineData("gru")][InlineData("lstm")][InlineData("leaky-rnn")][InlineData("leaky-rnn/relu")]
    public void ParamJvpMatchesFiniteDifferences(string arch)
    {
        var model = Model(arch);
        var x = Inputs(model);
        var lin = model.Linearize(x, InitialState(model));
        int size = lin.StateShape.Size, m = lin.Parameters.TotalSize, count = 2;
        var dTheta = Random(count * m, 41);
        var analytic = new double[count * size];
        lin.ParamJvp(dTheta, analytic, count);
        var prev = PreviousStates(lin);
        var theta = model.Parameters.Flatten();
        for (int j = 0; j < count; j++)
        {
            var tp = (double[])theta.Clone(); var tm = (double[])theta.Clone();
            for (int i = 0; i < m; i++) { tp[i] += Eps * dTheta[j * m + i]; tm[i] -= Eps * dTheta[j * m + i]; }
            // z_{k−1} held fixed: one-step runs from the unperturbed trajectory.
            var fp = OneStep(WithTheta(model, tp), x, prev); var fm = OneStep(WithTheta(model, tm), x, prev);
            var fd = fp.Zip(fm, (a, b) => (a - b) / (2 * Eps)).ToArray();
            var an = analytic.AsSpan(j * size, size);
            Assert.True(RelErr(fd, an) < 1e-6, $"{arch} vector {j}: J_θ δθ rel err {RelErr(fd, an):E2}");
        }
    }

    [Theory]
    [InlineData("rnn-tanh")][InlineData("rnn-relu")][InlineData("gru")][InlineData("lstm")][InlineData("leaky-rnn")][InlineData("leaky-rnn/relu")]
    public void ParamVjpMatchesFiniteDifferenceGradient(string arch)
    {
        var model = Model(arch);
        var x = Inputs(model);
        var lin = model.Linearize(x, InitialState(model));
        int size = lin.StateShape.Size, m = lin.Parameters.TotalSize;
        var q = Random(size, 51);
        var analytic = new double[m];
        lin.ParamVjp(q, analytic, 1);
        var prev = PreviousStates(lin);
        var theta = model.Parameters.Flatten();
        var fd = new double[m];
        for (int i = 0; i < m; i++)
        {
            var tp = (double[])theta.Clone(); var tm = (double[])theta.Clone();
            tp[i] += Eps; tm[i] -= Eps;
            var fp = OneStep(WithTheta(model, tp), x, prev); var fm = OneStep(WithTheta(model, tm), x, prev);
            double d = 0;
            for (int r = 0; r < size; r++) d += q[r] * (fp[r] - fm[r]);
            fd[i] = d / (2 * Eps);
        }
        Assert.True(RelErr(fd, analytic) < 1e-6, $"{arch}: J_θ* q rel err {RelErr(fd, analytic):E2}");
    }

    [Theory]
    [InlineData("rnn-tanh")][InlineData("rnn-relu")][InlineData("gru")][InlineData("lstm")][InlineData("leaky-rnn")][InlineData("leaky-rnn/relu")]
    public void VjpsAreExactAdjointsOfJvps(string arch)
    {
        var model = Model(arch);
        var lin = model.Linearize(Inputs(model), InitialState(model));
        int size = lin.StateShape.Size, m = lin.Parameters.TotalSize, count = 3;
        var v = Random(count * size, 61); var w = Random(count * size, 62);
        for (int k = 1; k < T; k++)
        {
            var av = new double[count * size]; var atw = new double[count * size];
            lin.StateJvpAdd(k, v, av, count, 0.7);
            lin.StateVjpAdd(k, w, atw, count, 0.7);
            Assert.True(RelDiff(Dot(av, w), Dot(v, atw)) < 1e-12, $"{arch} step {k}: ⟨A v, w⟩ ≠ ⟨v, Aᵀ w⟩");
        }
        var dTheta = Random(count * m, 63);
        var jv = new double[count * size]; var jtw = new double[count * m];
        lin.ParamJvp(dTheta, jv, count);
        lin.ParamVjp(w, jtw, count);
        for (int j = 0; j < count; j++)
            Assert.True(RelDiff(Dot(jv.AsSpan(j * size, size), w.AsSpan(j * size, size)), Dot(dTheta.AsSpan(j * m, m), jtw.AsSpan(j * m, m))) < 1e-12,
                $"{arch} vector {j}: ⟨J δθ, q⟩ ≠ ⟨δθ, J* q⟩");
        foreach (var site in lin.Sites)
        {
            var a = Random(count * site.Rows * site.OutDim, 64);
            var da = new double[count * size]; var dtq = new double[count * site.Rows * site.OutDim];
            site.ApplyDAdd(a, da, count);
            site.ApplyDAdjoint(w, dtq, count);
            Assert.True(RelDiff(Dot(da, w), Dot(a, dtq)) < 1e-12, $"{arch} site {site.Name}: ⟨D a, q⟩ ≠ ⟨a, D* q⟩");
        }
    }

    [Theory]
    [InlineData("rnn-tanh")][InlineData("rnn-relu")][InlineData("gru")][InlineData("lstm")][InlineData("leaky-rnn")][InlineData("leaky-rnn/relu")]
    public void BlockOperationsAccumulateScaleAndAllowAliasing(string arch)
    {
        var model = Model(arch);
        var lin = model.Linearize(Inputs(model), InitialState(model));
        int size = lin.StateShape.Size, count = 2;
        const int k = 3;
        var v = Random(count * size, 71);
        // dst += alpha A v, block vs one vector at a time.
        var single = (double[])v.Clone();
        for (int j = 0; j < count; j++)
        {
            var one = v.AsSpan(j * size, size).ToArray();
            var res = new double[size];
            lin.StateJvpAdd(k, one, res, 1, -0.6);
            for (int i = 0; i < size; i++) single[j * size + i] += res[i];
        }
        var inPlace = (double[])v.Clone();
        lin.StateJvpAdd(k, inPlace, inPlace, count, -0.6);
        Assert.True(RelErr(inPlace, single) < 1e-14, $"{arch}: in-place block JVP differs");
        var singleT = (double[])v.Clone();
        for (int j = 0; j < count; j++)
        {
            var res = new double[size];
            lin.StateVjpAdd(k, v.AsSpan(j * size, size).ToArray(), res, 1, 1.7);
            for (int i = 0; i < size; i++) singleT[j * size + i] += res[i];
        }
        var inPlaceT = (double[])v.Clone();
        lin.StateVjpAdd(k, inPlaceT, inPlaceT, count, 1.7);
        Assert.True(RelErr(inPlaceT, singleT) < 1e-14, $"{arch}: in-place block VJP differs");
        Assert.Throws<ArgumentOutOfRangeException>(() => lin.StateJvpAdd(0, v, new double[count * size], count));
        Assert.Throws<ArgumentOutOfRangeException>(() => lin.StateVjpAdd(T, v, new double[count * size], count));
    }

    [Theory]
    [InlineData("rnn-tanh", 1)][InlineData("rnn-relu", 1)][InlineData("gru", 2)][InlineData("lstm", 1)][InlineData("leaky-rnn", 1)][InlineData("leaky-rnn/relu", 1)]
    public void SiteFormEqualsParamJvp(string arch, int siteCount)
    {
        var model = Model(arch);
        var lin = model.Linearize(Inputs(model), InitialState(model));
        int size = lin.StateShape.Size, m = lin.Parameters.TotalSize, count = 2;
        Assert.Equal(siteCount, lin.Sites.Count);
        var dTheta = Random(count * m, 81);
        var viaSites = new double[count * size];
        foreach (var site in lin.Sites)
        {
            Assert.Equal(new AxisShape(("trial", B), ("time", T)), site.RowShape);
            int w = site.AugmentedWidth, od = site.OutDim, rows = site.Rows;
            var u = site.Variables.Span;
            Assert.Equal(rows * w, u.Length);
            var a = new double[count * rows * od];
            for (int j = 0; j < count; j++)
            {
                // Ŵ_s = [δW_1 … δW_p, δb_1 … δb_q] from δθ, then a = Û Ŵᵀ (docs/math.md#kronecker-core), by loops.
                var what = new double[od * w];
                int col = 0;
                foreach (var name in site.WeightParameters)
                {
                    var p = lin.Parameters[name]; int off = lin.Parameters.OffsetOf(name), pw = p.Shape[1];
                    for (int r = 0; r < od; r++)
                        for (int c = 0; c < pw; c++) what[r * w + col + c] = dTheta[j * m + off + r * pw + c];
                    col += pw;
                }
                foreach (var name in site.BiasParameters)
                {
                    int off = lin.Parameters.OffsetOf(name);
                    for (int r = 0; r < od; r++) what[r * w + col] = dTheta[j * m + off + r];
                    col++;
                }
                Assert.Equal(w, col);
                for (int r = 0; r < rows; r++)
                    for (int o = 0; o < od; o++)
                    {
                        double acc = 0;
                        for (int c = 0; c < w; c++) acc += u[r * w + c] * what[o * w + c];
                        a[(j * rows + r) * od + o] = acc;
                    }
            }
            site.ApplyDAdd(a, viaSites, count);
        }
        var direct = new double[count * size];
        lin.ParamJvp(dTheta, direct, count);
        Assert.True(RelErr(viaSites, direct) < 1e-12, $"{arch}: Σ_s D_s(δW_s u_s + δb_s) ≠ J_θ δθ ({RelErr(viaSites, direct):E2})");
        // Every parameter appears in exactly one site.
        var named = lin.Sites.SelectMany(s => s.WeightParameters.Concat(s.BiasParameters)).ToList();
        Assert.Equal(lin.Parameters.Select(p => p.Name).OrderBy(n => n), named.OrderBy(n => n));
    }

    [Theory]
    [InlineData("rnn-tanh")][InlineData("rnn-relu")][InlineData("gru")][InlineData("lstm")][InlineData("leaky-rnn")][InlineData("leaky-rnn/relu")]
    public void PropagatedParamJvpEqualsWholeModelJacobian(string arch)
    {
        // dz/dθ = P J_θ (docs/math.md#global-ntk): v_k = (J_θ δθ)_k + A_k v_{k−1}, in place, against forward-mode AD of the unrolled reference.
        var model = Model(arch);
        var x = Inputs(model);
        var z0 = InitialState(model);
        var lin = model.Linearize(x, z0);
        int size = lin.StateShape.Size, m = lin.Parameters.TotalSize;
        var dTheta = Random(m, 91);
        var v = new double[size];
        lin.ParamJvp(dTheta, v, 1);
        for (int k = 1; k < T; k++) lin.StateJvpAdd(k, v, v, 1);
        var jac = ReferenceRecurrent.WholeModelJacobian(model, x, z0.Span.ToArray());
        var expected = new double[size];
        for (int r = 0; r < size; r++)
            for (int c = 0; c < m; c++) expected[r] += jac[r * m + c] * dTheta[c];
        Assert.True(RelErr(v, expected) < 1e-12, $"{arch}: P J_θ δθ ≠ (dz/dθ) δθ ({RelErr(v, expected):E2})");
    }

    [Theory]
    [InlineData("gru")][InlineData("leaky-rnn")][InlineData("leaky-rnn/relu")]
    public void WholeModelJacobianMatchesFiniteDifferences(string arch)
    {
        var model = Model(arch);
        var x = Inputs(model);
        int m = model.Parameters.TotalSize, size = B * T * model.StateSize;
        var jac = ReferenceRecurrent.WholeModelJacobian(model, x);
        var theta = model.Parameters.Flatten();
        var dTheta = Random(m, 101);
        var tp = theta.Select((t, i) => t + Eps * dTheta[i]).ToArray();
        var tm = theta.Select((t, i) => t - Eps * dTheta[i]).ToArray();
        var zp = WithTheta(model, tp).Forward(x).Span.ToArray();
        var zm = WithTheta(model, tm).Forward(x).Span.ToArray();
        var fd = zp.Zip(zm, (a, b) => (a - b) / (2 * Eps)).ToArray();
        var jv = new double[size];
        for (int r = 0; r < size; r++)
            for (int c = 0; c < m; c++) jv[r] += jac[r * m + c] * dTheta[c];
        Assert.True(RelErr(fd, jv) < 1e-6, $"{arch}: dz/dθ δθ rel err {RelErr(fd, jv):E2}");
    }
}

/// <summary>The multi-threaded row loops give exactly the single-threaded results.</summary>
public class RecurrentParallelTests
{
    [Theory]
    [InlineData("gru")][InlineData("lstm")][InlineData("leaky-rnn")]
    public void ParallelRowLoopsMatchSequential(string arch)
    {
        double[][] Run()
        {
            var model = Model(arch);
            var lin = model.Linearize(Inputs(model), InitialState(model));
            int size = lin.StateShape.Size, m = lin.Parameters.TotalSize, count = 3;
            var v = Random(count * size, 5);
            var jv = (double[])v.Clone(); var vj = (double[])v.Clone();
            for (int k = 1; k < T; k++) lin.StateJvpAdd(k, jv, jv, count, 0.9);
            for (int k = T - 1; k >= 1; k--) lin.StateVjpAdd(k, vj, vj, count, 0.9);
            var th = new double[count * m]; lin.ParamVjp(v, th, count);
            var pj = new double[count * size]; lin.ParamJvp(Random(count * m, 6), pj, count);
            var site = lin.Sites[^1];
            var da = new double[count * size]; site.ApplyDAdd(Random(count * site.Rows * site.OutDim, 7), da, count);
            var dt = new double[count * site.Rows * site.OutDim]; site.ApplyDAdjoint(v, dt, count);
            return [lin.States.ToArray(), jv, vj, th, pj, da, dt];
        }
        var sequential = Run();
        using (RowLoop.ParallelThreshold.Override(0))
        {
            var parallel = Run();
            for (int i = 0; i < sequential.Length; i++) Assert.Equal(sequential[i], parallel[i]);
        }
    }
}
