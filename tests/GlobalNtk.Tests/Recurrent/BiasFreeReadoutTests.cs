using GlobalNtk.Dense;
using GlobalNtk.IO;
using GlobalNtk.Models;
using GlobalNtk.Models.Recurrent;
using GlobalNtk.Ntk;
using GlobalNtk.Tasks;
using GlobalNtk.Tests.Reference;
using GlobalNtk.Training;
using Xunit;

namespace GlobalNtk.Tests.Recurrent;

/// <summary>
/// A bias-free readout (nn.Linear(bias=False)): no bias is invented, trained or saved, and the
/// output NTK has no 1 1ᵀ term (docs/math.md#output-ntk).
/// </summary>
public class BiasFreeReadoutTests
{
    /// <summary>A model over <paramref name="source"/>'s tensors with its readout's bias dropped.</summary>
    private static RecurrentModel WithoutReadoutBias(RecurrentModel source) =>
        RecurrentModel.FromParameters(source.Config,
            source.AllParameters.Where(p => p.Name != Readout.BiasName).Select(p => p.Clone()));

    /// <summary>
    /// dy/d(all parameters) by central differences of the whole model's outputs, [outputs, P]:
    /// each parameter entry is moved by ±h in a new model (parameters are immutable values).
    /// </summary>
    private static double[] FiniteDifferenceJacobian(RecurrentModel model, Tensor x, double h = 1e-6)
    {
        var theta = model.AllParameters.Flatten();
        int outLen = model.Predict(x).Length, n = theta.Length;
        var jac = new double[outLen * n];
        for (int col = 0; col < n; col++)
        {
            double keep = theta[col];
            theta[col] = keep + h; var plus = model.WithParameters(model.AllParameters.WithValues(theta)).Predict(x).Span.ToArray();
            theta[col] = keep - h; var minus = model.WithParameters(model.AllParameters.WithValues(theta)).Predict(x).Span.ToArray();
            theta[col] = keep;
            for (int r = 0; r < outLen; r++) jac[r * n + col] = (plus[r] - minus[r]) / (2 * h);
        }
        return jac;
    }

    [Theory]
    [InlineData("gru", 2)]   // stacked path
    [InlineData("lstm", 1)]  // fused single-layer path
    [InlineData("rnn-tanh", 2)]
    public void OutputNtkEqualsFiniteDifferenceJJt(string arch, int layers)
    {
        var source = RecurrentModel.Create(new RecurrentConfig(arch, 2, 3, 2) { Layers = layers, Seed = 5, Gain = 1.3 });
        var model = WithoutReadoutBias(source);
        Assert.False(model.Readout.HasBias);
        Assert.Null(model.Readout.Bias);
        Assert.DoesNotContain(model.AllParameters, p => p.Name == Readout.BiasName);
        var x = new Tensor(DepthChecks.Gaussian(2 * 4 * 2, new Random(6)), model.InputShape(2, 4));

        var lin = model.Linearize(x);
        var theta = new NtkOperators(lin).OutputNtk(model.Readout);
        NtkChecks.Adjoint(theta, 61);
        var got = NtkChecks.Dense(theta);
        int outLen = theta.Domain.Size, n = model.AllParameters.TotalSize;
        var j = FiniteDifferenceJacobian(model, x);
        var dense = new double[outLen * outLen];
        Gemm.Multiply(Trans.No, Trans.Yes, outLen, outLen, n, 1.0, j, n, j, n, 0.0, dense, outLen);
        // Central differences with h = 1e-6: O(h²) ≈ 1e-12 truncation and O(ε/h) ≈ 1e-10 rounding
        // per entry of J, so ≈ 1e-9 on J Jᵀ; the bias term 1 1ᵀ ⊗ I (wrong here) is O(1) per entry.
        double err = NtkChecks.RelDiff(got, dense);
        Assert.True(err < 1e-7, $"{arch} L={layers}: Θ_y vs finite-difference J Jᵀ {err:E2}");

        // The same tensors with a (zero) bias: Θ_y gains exactly 1 1ᵀ ⊗ I_out.
        var biased = RecurrentModel.FromParameters(model.Config, model.AllParameters.Select(p => p.Clone())
            .Append(new Parameter(Readout.BiasName, [model.Readout.OutputSize])));
        var withBias = NtkChecks.Dense(new NtkOperators(biased.Linearize(x)).OutputNtk(biased.Readout));
        int o = model.Readout.OutputSize;
        for (int a = 0; a < outLen; a++)
            for (int b = 0; b < outLen; b++)
                Assert.Equal(got[a * outLen + b] + (a % o == b % o ? 1.0 : 0.0), withBias[a * outLen + b], 9);
    }

    [Fact]
    public void ForwardAndGradientHaveNoBias()
    {
        var source = RecurrentModel.Create(new RecurrentConfig("gru", 2, 3, 2) { Layers = 2, Seed = 8 });
        var model = WithoutReadoutBias(source);
        var x = new Tensor(DepthChecks.Gaussian(2 * 3 * 2, new Random(9)), model.InputShape(2, 3));
        // y = W h_top exactly: the source's outputs less its bias.
        var y = model.Predict(x).Span.ToArray();
        var ySource = source.Predict(x).Span.ToArray();
        var b = source.Readout.Bias!.Data;
        for (int r = 0; r < y.Length; r++) Assert.Equal(ySource[r] - b[r % 2], y[r], 12);
        // The gradient has one slot per parameter (no bias) and its readout part matches finite differences.
        var target = new Tensor(DepthChecks.Gaussian(y.Length, new Random(10)), model.Predict(x).Shape);
        var grad = new double[model.AllParameters.TotalSize];
        ModelGradient.Compute(model, x, target, grad);
        var theta = model.AllParameters.Flatten();
        int off = model.AllParameters.OffsetOf(Readout.WeightName);
        double Loss() => MseLoss.Evaluate(model.WithParameters(model.AllParameters.WithValues(theta)).Predict(x).Span, target.Span, new double[y.Length]);
        for (int i = 0; i < model.Readout.Weight.Size; i++)
        {
            double keep = theta[off + i], h = 1e-6;
            theta[off + i] = keep + h; double lp = Loss();
            theta[off + i] = keep - h; double lm = Loss();
            theta[off + i] = keep;
            Assert.Equal((lp - lm) / (2 * h), grad[off + i], 7);
        }
    }

    [Fact]
    public void TrainingNeverCreatesABiasAndCheckpointsLoadBackBiasFree()
    {
        using var dir = new TempDir();
        var options = new TrainingOptions { Steps = 4, BatchSize = 4, LearningRate = 0.01, CheckpointEvery = 2, Seed = 3 };
        var task = TaskRegistry.Create("sine", new TaskOptions { Seed = 3 });
        var source = RecurrentModel.Create(new RecurrentConfig("gru", task.InputSize, 3, task.OutputSize) { Layers = 2, Seed = 3 });
        var model = WithoutReadoutBias(source);
        var w0 = model.Readout.Weight.Data.ToArray();
        string run = dir.File("run");
        var trainer = new Trainer(model, task, options);
        trainer.Run(run);
        Assert.False(trainer.Model.Readout.HasBias);
        Assert.NotEqual(w0, trainer.Model.Readout.Weight.Values.ToArray());   // the readout weight did train
        Assert.Equal(w0, model.Readout.Weight.Values.ToArray());              // the model it started from did not change

        var ckpts = Checkpoints.List(run);
        Assert.True(ckpts.Count >= 2, $"{ckpts.Count} checkpoints");
        foreach (var (_, path) in ckpts)
        {
            var file = SafetensorsFile.Read(path);
            Assert.True(file.Tensors.Contains(Readout.WeightName));
            Assert.False(file.Tensors.Contains(Readout.BiasName), $"{path} gained a readout bias");
            var back = Assert.IsType<RecurrentModel>(ModelFile.Load(path).Model);
            Assert.False(back.Readout.HasBias);
            Assert.DoesNotContain(back.AllParameters, p => p.Name == Readout.BiasName);
        }
        var last = Assert.IsType<RecurrentModel>(ModelFile.Load(ckpts[^1].Path).Model);
        var x = new Tensor(DepthChecks.Gaussian(2 * 3 * task.InputSize, new Random(4)), last.InputShape(2, 3));
        Assert.Equal(((RecurrentModel)trainer.Model).Predict(x).Span.ToArray(), last.Predict(x).Span.ToArray());

        // inspect says so.
        var r = CliTestHost.Run("inspect", ckpts[^1].Path);
        Assert.True(r.Exit == 0, r.Err);
        Assert.Contains($"readout: nn.Linear(3, {task.OutputSize}, bias=False)", r.Out);
        Assert.DoesNotContain("readout.bias", r.Out);

        // Resuming keeps it bias-free (the optimizer state has no bias slot either).
        var resumed = Trainer.Resume(run, steps: 6);
        Assert.False(resumed.Model.Readout.HasBias);
        resumed.Run(run);
        Assert.False(SafetensorsFile.Read(Checkpoints.List(run)[^1].Path).Tensors.Contains(Readout.BiasName));
    }
}
