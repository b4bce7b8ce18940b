using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Tests.Reference;
using Xunit;

namespace GlobalNtk.Tests;

public class MlpTests
{
    private const int B = 3, Nin = 2, H = 4, L = 3;

    private static (MlpModel Model, Tensor X) Setup(Activation act, int seed = 1)
    {
        var model = MlpModel.Create(Nin, H, L, 2, act, seed);
        var rng = new Random(seed + 100);
        // Larger weights than the default init so that every nonlinearity is exercised.
        model = (MlpModel)model.WithChainValues(model.Parameters.Flatten().Select(v => 2.0 * v).ToArray());
        var x = new Tensor(DepthChecks.Gaussian(B * Nin, rng), new AxisShape(("sample", B), ("input", Nin)));
        return (model, x);
    }

    /// <summary>f_k(prev) = φ(W_k prev + b_k) written out in loops.</summary>
    private static double[] Layer(ParameterSet ps, Activation act, int k, double[] prev)
    {
        var w = ps[$"layers.{k}.weight"].Data; var b = ps[$"layers.{k}.bias"].Data;
        var y = new double[H];
        for (int o = 0; o < H; o++)
        {
            double a = b[o];
            for (int i = 0; i < prev.Length; i++) a += w[o * prev.Length + i] * prev[i];
            y[o] = act.Value(a);
        }
        return y;
    }

    private static double[] Row(ReadOnlySpan<double> z, int b, int k) => z.Slice((b * L + k) * H, H).ToArray();

    [Theory]
    [InlineData(Activation.Tanh)]
    [InlineData(Activation.Relu)]
    [InlineData(Activation.Gelu)]
    public void ForwardMatchesReferenceLoops(Activation act)
    {
        var (model, x) = Setup(act);
        var lin = model.Linearize(x);
        Assert.Equal(new AxisShape(("sample", B), ("layer", L), ("unit", H)), lin.StateShape);
        var reference = ReferenceDepthModels.Mlp(Nin, H, L, act, DepthChecks.Values(model.Parameters), x.Span.ToArray(), B);
        Assert.True(DepthChecks.RelErr(lin.States.Span, reference.Select(v => v.V).ToArray()) < 1e-14);
    }

    [Theory]
    [InlineData(Activation.Tanh)]
    [InlineData(Activation.Relu)]
    [InlineData(Activation.Gelu)]
    public void StateJvpAndVjpMatchFiniteDifferences(Activation act)
    {
        var (model, x) = Setup(act);
        var lin = model.Linearize(x);
        var z = lin.States.Span.ToArray();
        var rng = new Random(5);
        const double eps = 1e-6;
        for (int k = 1; k < L; k++)
        {
            var v = DepthChecks.Gaussian(z.Length, rng);
            var jvp = new double[z.Length];
            lin.StateJvpAdd(k, v, jvp, 1);
            var fd = new double[z.Length];
            for (int b = 0; b < B; b++)
            {
                var prev = Row(z, b, k - 1); var dv = Row(v, b, k - 1);
                var plus = Layer(model.Parameters, act, k, prev.Zip(dv, (p, d) => p + eps * d).ToArray());
                var minus = Layer(model.Parameters, act, k, prev.Zip(dv, (p, d) => p - eps * d).ToArray());
                for (int o = 0; o < H; o++) fd[(b * L + k) * H + o] = (plus[o] - minus[o]) / (2 * eps);
            }
            Assert.True(DepthChecks.RelErr(jvp, fd) < 1e-6, $"A_{k} JVP vs finite differences");
            // VJP: the transpose of the finite-difference JVP, checked column by column through ⟨e_i, ·⟩.
            var w = DepthChecks.Gaussian(z.Length, rng);
            var vjp = new double[z.Length];
            lin.StateVjpAdd(k, w, vjp, 1);
            Assert.True(Math.Abs(Numerics.Dot(vjp, v) - Numerics.Dot(fd, w)) < 1e-6 * Numerics.Norm(vjp) * Numerics.Norm(v));
        }
    }

    [Theory]
    [InlineData(Activation.Tanh)]
    [InlineData(Activation.Relu)]
    [InlineData(Activation.Gelu)]
    public void ParamJvpAndVjpMatchFiniteDifferences(Activation act)
    {
        var (model, x) = Setup(act);
        var lin = model.Linearize(x);
        var z = lin.States.Span.ToArray();
        double[] Immediate(ParameterSet ps)
        {
            var y = new double[z.Length];
            for (int b = 0; b < B; b++)
                for (int k = 0; k < L; k++)
                {
                    // z_{k−1} held at the unperturbed trajectory (the immediate Jacobian, docs/math.md#global-ntk).
                    var prev = k == 0 ? x.Span.Slice(b * Nin, Nin).ToArray() : Row(z, b, k - 1);
                    Layer(ps, act, k, prev).CopyTo(y, (b * L + k) * H);
                }
            return y;
        }
        DepthChecks.ParamJacobianMatchesFiniteDifferences(lin, model.Parameters, Immediate, new Random(6));
    }

    [Theory]
    [InlineData(Activation.Tanh, 1)]
    [InlineData(Activation.Gelu, 3)]
    public void AdjointIdentitiesHold(Activation act, int count)
    {
        var (model, x) = Setup(act);
        var lin = model.Linearize(x);
        DepthChecks.StateAdjoint(lin, count, 11);
        DepthChecks.ParamAdjoint(lin, count, 12);
        DepthChecks.SiteAdjoint(lin, count, 13);
    }

    [Theory]
    [InlineData(Activation.Tanh)]
    [InlineData(Activation.Relu)]
    [InlineData(Activation.Gelu)]
    public void SiteFormEqualsParamJvp(Activation act)
    {
        var (model, x) = Setup(act);
        var lin = model.Linearize(x);
        Assert.Equal(L, lin.Sites.Count);
        Assert.Equal(["layers.0.weight"], lin.Sites[0].WeightParameters);
        Assert.Equal(Nin, lin.Sites[0].Width);
        Assert.True(DepthChecks.SiteFormError(lin, 3) < 1e-13);
    }

    [Theory]
    [InlineData(Activation.Tanh)]
    [InlineData(Activation.Gelu)]
    public void PropagatedTangentEqualsWholeModelForwardModeAd(Activation act)
    {
        var (model, x) = Setup(act);
        var lin = model.Linearize(x);
        var jac = DepthChecks.WholeModelJacobian(model.Parameters,
            src => ReferenceDepthModels.Mlp(Nin, H, L, act, src, x.Span.ToArray(), B));
        var rng = new Random(9);
        var dTheta = DepthChecks.Gaussian(model.Parameters.TotalSize, rng);
        var expected = new double[lin.StateShape.Size];
        for (int i = 0; i < dTheta.Length; i++) Numerics.Axpy(dTheta[i], jac[i], expected);
        Assert.True(DepthChecks.RelErr(DepthChecks.TotalTangent(lin, dTheta), expected) < 1e-12);
    }

    [Fact]
    public void BadInputsRaiseClearErrors()
    {
        var (model, x) = Setup(Activation.Tanh);
        var e = Assert.Throws<ArgumentException>(() => model.Linearize(new Tensor(new AxisShape(("sample", 2), ("input", 5)))));
        Assert.Contains("input = 2", e.Message);
        x.Span[1] = double.NaN;
        Assert.Throws<NonFiniteException>(() => model.Linearize(x));
        var bad = new ParameterSet(model.Parameters.Select(p => p.Name == "layers.1.weight" ? new Parameter(p.Name, [H, H + 1]) : p.Clone()));
        var e2 = Assert.Throws<ArgumentException>(() => new MlpModel(Nin, H, L, Activation.Tanh, bad, model.Readout));
        Assert.Contains("layers.1.weight", e2.Message);
    }

    [Fact]
    public void GeluUsesExactErf()
    {
        // PyTorch: torch.nn.functional.gelu(torch.tensor(1.0, dtype=float64)) = 0.8413447460685429
        Assert.Equal(0.8413447460685429, Activation.Gelu.Value(1.0), 15);
        Assert.Equal(-0.04550026389635842, Activation.Gelu.Value(-2.0), 15);
        double h = 1e-6, xv = 0.37;
        Assert.Equal((Activation.Gelu.Value(xv + h) - Activation.Gelu.Value(xv - h)) / (2 * h), Activation.Gelu.Derivative(xv), 9);
    }
}
