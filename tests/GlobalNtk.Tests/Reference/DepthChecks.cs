using GlobalNtk.Dense;
using GlobalNtk.Models;
using Xunit;

namespace GlobalNtk.Tests.Reference;

/// <summary>Model-independent checks of a <see cref="ChainLinearization"/>'s derivative maps.</summary>
public static class DepthChecks
{
    /// <summary>Standard normal entries (<see cref="TestMath.Gaussian"/>).</summary>
    public static double[] Gaussian(int n, Random rng) => TestMath.Gaussian(rng, n);

    /// <summary><see cref="TestMath.RelativeError"/>.</summary>
    public static double RelErr(ReadOnlySpan<double> actual, ReadOnlySpan<double> expected) => TestMath.RelativeError(actual, expected);

    private static void AssertAdjoint(double lhs, double rhs, double tol, string what)
    {
        double rel = TestMath.RelativeDifference(lhs, rhs);

        Assert.True(rel <= tol, $"{what}: ⟨Ax,y⟩ = {lhs}, ⟨x,A*y⟩ = {rhs}, relative gap {rel:E2} > {tol:E0}.");
    }

    /// <summary>⟨A_k x, y⟩ = ⟨x, A_kᵀ y⟩ for every step, on blocks of <paramref name="count"/> vectors.</summary>
    public static void StateAdjoint(ChainLinearization lin, int count, int seed, double tol = 1e-12)
    {
        var rng = new Random(seed); int n = lin.StateShape.Size * count;
        for (int k = 1; k < lin.Steps; k++)
        {
            var x = Gaussian(n, rng); var y = Gaussian(n, rng);
            var ax = new double[n]; var aty = new double[n];
            lin.StateJvpAdd(k, x, ax, count, 0.7);
            lin.StateVjpAdd(k, y, aty, count, 0.7);
            AssertAdjoint(Numerics.Dot(ax, y), Numerics.Dot(x, aty), tol, $"A_{k}");
        }
    }

    /// <summary>⟨J_θ x, y⟩ = ⟨x, J_θ* y⟩.</summary>
    public static void ParamAdjoint(ChainLinearization lin, int count, int seed, double tol = 1e-12)
    {
        var rng = new Random(seed); int m = lin.Parameters.TotalSize, n = lin.StateShape.Size;
        var x = Gaussian(m * count, rng); var y = Gaussian(n * count, rng);
        var jx = new double[n * count]; var jty = new double[m * count];
        lin.ParamJvp(x, jx, count);
        lin.ParamVjp(y, jty, count);
        AssertAdjoint(Numerics.Dot(jx, y), Numerics.Dot(x, jty), tol, "J_θ");
    }

    /// <summary>⟨D_s a, q⟩ = ⟨a, D_s* q⟩ for every site.</summary>
    public static void SiteAdjoint(ChainLinearization lin, int count, int seed, double tol = 1e-12)
    {
        var rng = new Random(seed); int n = lin.StateShape.Size;
        foreach (var site in lin.Sites)
        {
            int na = site.Rows * site.OutDim * count;
            var a = Gaussian(na, rng); var q = Gaussian(n * count, rng);
            var da = new double[n * count]; var dq = new double[na];
            site.ApplyDAdd(a, da, count);
            site.ApplyDAdjoint(q, dq, count);
            AssertAdjoint(Numerics.Dot(da, q), Numerics.Dot(a, dq), tol, $"D of site {site.Name}");
        }
    }

    /// <summary>
    /// J_θ δθ against central differences (step 1e-6) of <paramref name="immediate"/>, the states of a
    /// parameter set with every z_{k−1} held at the unperturbed trajectory (the immediate Jacobian,
    /// docs/math.md#global-ntk), to 1e-6 relative; then J_θ* against that J_θ on the same δθ
    /// (⟨J_θ* q, δθ⟩ = ⟨J_θ δθ, q⟩ to 1e-6 of ‖J_θ* q‖‖δθ‖). δθ, then q, are Gaussian from <paramref name="rng"/>.
    /// </summary>
    public static void ParamJacobianMatchesFiniteDifferences(ChainLinearization lin, ParameterSet ps, Func<ParameterSet, double[]> immediate, Random rng)
    {
        int n = lin.StateShape.Size;
        var dTheta = Gaussian(ps.TotalSize, rng);
        var jvp = new double[n];
        lin.ParamJvp(dTheta, jvp, 1);
        const double eps = 1e-6;
        var theta = ps.Flatten();
        double[] Shifted(double sign) => immediate(ps.WithValues(theta.Zip(dTheta, (t, d) => t + sign * eps * d).ToArray()));
        var fp = Shifted(+1); var fm = Shifted(-1);
        var fd = fp.Zip(fm, (a, b) => (a - b) / (2 * eps)).ToArray();
        double err = RelErr(jvp, fd);
        Assert.True(err < 1e-6, $"J_θ JVP vs finite differences: {err:E2}");
        var q = Gaussian(n, rng);
        var vjp = new double[theta.Length];
        lin.ParamVjp(q, vjp, 1);
        Assert.True(Math.Abs(Numerics.Dot(vjp, dTheta) - Numerics.Dot(fd, q)) < 1e-6 * Numerics.Norm(vjp) * Numerics.Norm(dTheta));
    }

    /// <summary>
    /// docs/math.md#kronecker-core: Σ_s D_s (δW_s û_s) + J_rest δθ_rest = J_θ δθ, where J_rest is J_θ restricted to
    /// the parameters that belong to no site. Returns the relative error.
    /// </summary>
    public static double SiteFormError(ChainLinearization lin, int seed)
    {
        var rng = new Random(seed); var ps = lin.Parameters; int m = ps.TotalSize, n = lin.StateShape.Size;
        var dTheta = Gaussian(m, rng);
        var expected = new double[n];
        lin.ParamJvp(dTheta, expected, 1);

        var rest = (double[])dTheta.Clone();
        var sum = new double[n];
        foreach (var site in lin.Sites)
        {
            // [δW_1 … δW_w, δb_1 … δb_nb] as [OutDim, AugmentedWidth], matching Û's columns.
            int aw = site.AugmentedWidth, od = site.OutDim;
            var dw = new double[od * aw];
            int col = 0;
            foreach (var name in site.WeightParameters)
            {
                var p = ps[name]; int w = p.Shape[1], off = ps.OffsetOf(name);
                for (int o = 0; o < od; o++) for (int c = 0; c < w; c++) dw[o * aw + col + c] = dTheta[off + o * w + c];
                Array.Clear(rest, off, p.Size);
                col += w;
            }
            foreach (var name in site.BiasParameters)
            {
                int off = ps.OffsetOf(name);
                for (int o = 0; o < od; o++) dw[o * aw + col] = dTheta[off + o];
                Array.Clear(rest, off, od);
                col++;
            }
            Assert.Equal(aw, col);
            var a = new double[site.Rows * od];
            Gemm.Multiply(Trans.No, Trans.Yes, site.Rows, od, aw, 1.0, site.Variables.Span, aw, dw, aw, 0.0, a, od);
            site.ApplyDAdd(a, sum, 1);
        }
        var jrest = new double[n];
        lin.ParamJvp(rest, jrest, 1);
        Numerics.Axpy(1.0, jrest, sum);
        return RelErr(sum, expected);
    }

    /// <summary>v = P J_θ δθ by the recursion v_k = (J_θ δθ)_k + A_k v_{k−1} (docs/math.md#global-ntk): dz/dθ · δθ.</summary>
    public static double[] TotalTangent(ChainLinearization lin, double[] dTheta)
    {
        var v = new double[lin.StateShape.Size];
        lin.ParamJvp(dTheta, v, 1);
        for (int k = 1; k < lin.Steps; k++) lin.StateJvpAdd(k, v, v, 1);
        return v;
    }

    /// <summary>The whole-model Jacobian dz/dθ as [m, state] rows (row i = ∂z/∂θ_i), by forward-mode AD of a reference model.</summary>
    public static double[][] WholeModelJacobian(ParameterSet ps, Func<ReferenceDepthModels.ParameterSource, Dual[]> model)
    {
        int m = ps.TotalSize;
        var rows = new double[m][];
        Parallel.For(0, m, i =>
        {
            var z = model(name =>
            {
                var p = ps[name]; int off = ps.OffsetOf(name);
                var a = new Dual[p.Size];
                for (int j = 0; j < p.Size; j++) a[j] = new Dual(p.Data[j], off + j == i ? 1.0 : 0.0);
                return a;
            });
            rows[i] = z.Select(v => v.D).ToArray();
        });
        return rows;
    }

    /// <summary>(dz/dθ)(dz/dθ)ᵀ q from the rows of <see cref="WholeModelJacobian"/>.</summary>
    public static double[] WholeModelNtk(double[][] jac, double[] q)
    {
        var y = new double[q.Length];
        foreach (var row in jac) Numerics.Axpy(Numerics.Dot(row, q), row, y);
        return y;
    }

    /// <summary>Reference values with zero tangents.</summary>
    public static ReferenceDepthModels.ParameterSource Values(ParameterSet ps) =>
        name => ps[name].Data.Select(v => new Dual(v)).ToArray();
}
