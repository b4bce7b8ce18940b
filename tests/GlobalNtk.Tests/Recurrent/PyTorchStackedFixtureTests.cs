using GlobalNtk.Dense;
using GlobalNtk.IO;
using GlobalNtk.Models;
using GlobalNtk.Models.Recurrent;
using GlobalNtk.Ntk;
using GlobalNtk.Tests.Reference;
using GlobalNtk.Tests;
using Xunit;

namespace GlobalNtk.Tests.Recurrent;

/// <summary>
/// Stacked (L = 2), bias-free and learnable-h0 nn.RNN / nn.GRU / nn.LSTM against references that
/// PyTorch itself computed (tests/fixtures/make_fixtures.py, float64): the states of every layer at
/// every step, and autograd's whole-model J δθ, Jᵀ q and J Jᵀ q. The tolerance 1e-9 (relative) is
/// far above float64 rounding through a few GEMMs and far below any modelling error.
/// </summary>
public class PyTorchStackedFixtureTests
{
    public static TheoryData<string> Fixtures => new()
    {
        "gru_l2", "lstm_l2", "rnn_tanh_l2", "gru_nobias", "lstm_l2_nobias", "rnn_relu_l2_nobias",
        "gru_h0", "gru_l2_h0", "lstm_l2_h0", "rnn_tanh_l2_nobias_h0",
    };

    internal static (RecurrentModel Model, SafetensorsFile File) Load(string name)
    {
        var file = SafetensorsFile.Read(Path.Combine(AppContext.BaseDirectory, "fixtures", "pytorch", name + ".safetensors"));
        var md = file.Metadata;
        var x = file.Tensors["x"];
        int hidden = file.Tensors["rnn.weight_hh_l0"].Shape[1];
        var config = new RecurrentConfig(md["arch"], x.Shape[2], hidden, OutputSize: 2)
        {
            Layers = int.Parse(md["layers"]), Bias = md["bias"] == "true", LearnInitialState = md["h0"] == "true",
        };
        var order = md["order"].Split(',');
        var rng = new Random(1);
        var ps = order.Select(n => file.Tensors[n].Clone()).ToList();
        ps.Add(new Parameter(Readout.WeightName, [2, hidden], DepthChecks.Gaussian(2 * hidden, rng)));
        ps.Add(new Parameter(Readout.BiasName, [2], DepthChecks.Gaussian(2, rng)));
        var model = RecurrentModel.FromParameters(config, ps);
        // θ is the state dict in PyTorch's order, then h0: the fixture's flat vectors use that order.
        Assert.Equal(order, model.Parameters.Select(p => p.Name));
        return (model, file);
    }

    private static Tensor Inputs(SafetensorsFile f)
    {
        var x = f.Tensors["x"];
        return new Tensor(x.Data, new AxisShape(("trial", x.Shape[0]), ("time", x.Shape[1]), ("input", x.Shape[2])));
    }

    private static double[] Row(Parameter p, int j) => p.Data.AsSpan(j * p.Shape[1], p.Shape[1]).ToArray();

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void StatesAndWholeModelProductsMatchPyTorch(string name)
    {
        var (model, f) = Load(name);
        var lin = model.Linearize(Inputs(f));
        Assert.IsType<StackedRecurrentLinearization>(lin);
        Assert.True(DepthChecks.RelErr(lin.States.Span, f.Tensors["z"].Data) < 1e-12, $"{name}: states");
        var ops = new NtkOperators(lin);
        for (int j = 0; j < 2; j++)
        {
            var jvp = ops.WholeModelJacobian.Apply(Row(f.Tensors["dtheta"], j));
            Assert.True(DepthChecks.RelErr(jvp, Row(f.Tensors["jvp"], j)) < 1e-9, $"{name}: (dz/dθ) δθ");
            var vjp = ops.WholeModelJacobian.ApplyAdjoint(Row(f.Tensors["q"], j));
            Assert.True(DepthChecks.RelErr(vjp, Row(f.Tensors["vjp"], j)) < 1e-9, $"{name}: (dz/dθ)* q");
            var ntk = Row(f.Tensors["ntk"], j);
            Assert.True(DepthChecks.RelErr(ops.WholeModelNtk.Apply(Row(f.Tensors["q"], j)), ntk) < 1e-9, $"{name}: whole-model NTK");
            // P K P* (both K's) is the whole-model NTK computed by PyTorch's autograd.
            Assert.True(DepthChecks.RelErr(ops.NtkS.Apply(Row(f.Tensors["q"], j)), ntk) < 1e-10, $"{name}: P K P* vs autograd J Jᵀ");
        }
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void OperatorIdentitiesAndSitesHold(string name)
    {
        var (model, f) = Load(name);
        var lin = model.Linearize(Inputs(f));
        DepthChecks.StateAdjoint(lin, 3, 1);
        DepthChecks.ParamAdjoint(lin, 3, 2);
        DepthChecks.SiteAdjoint(lin, 2, 3);
        Assert.True(DepthChecks.SiteFormError(lin, 4) < 1e-12, $"{name}: Σ D_s(δW_s Û) + J_rest = J_θ");
        NtkChecks.All(lin, null, seed: 5);
        var ops = new NtkOperators(lin);
        Assert.All(lin.Sites, s => Assert.True(KroneckerCore.IsRowLocal(lin, s)));
        if (model.Config.LearnInitialState) Assert.True(ops.KroneckerCore.RestParameterCount > 0);   // h0 is in no site
    }

    [Theory]
    [InlineData("gru")]
    [InlineData("lstm")]
    [InlineData("rnn-tanh")]
    [InlineData("leaky-rnn")]
    public void GenericStackedPathEqualsFusedSingleLayerPath(string arch)
    {
        var model = RecurrentModel.Create(new RecurrentConfig(arch, 2, 4, 2) { Seed = 3, Gain = 1.5 });
        model = model.WithInitialState(DepthChecks.Gaussian(model.StateSize, new Random(4)));
        var x = new Tensor(DepthChecks.Gaussian(3 * 5 * 2, new Random(5)), model.InputShape(3, 5));
        var fused = model.Linearize(x);
        var generic = model.LinearizeStacked(x);
        Assert.IsType<RecurrentLinearization>(fused);
        Assert.True(DepthChecks.RelErr(generic.States.Span, fused.States.Span) < 1e-15);
        var a = new NtkOperators(fused); var b = new NtkOperators(generic);
        var e = DepthChecks.Gaussian(3 * fused.StateShape.Size, new Random(6));
        foreach (var (p, q) in new[] { (a.P, b.P), (a.PAdjoint, b.PAdjoint), (a.K, b.K), (a.KKronecker, b.KKronecker), (a.NtkS, b.NtkS) })
            Assert.True(DepthChecks.RelErr(q.ApplyBlock(e, 3), p.ApplyBlock(e, 3)) < 1e-12);
    }

    [Fact]
    public void ReadoutReadsTheTopLayerAndTrainingUpdatesH0()
    {
        var (model, f) = Load("gru_l2_h0");
        var x = Inputs(f);
        var lin = model.Linearize(x);
        var z = f.Tensors["z"].Data; int h = model.HiddenSize, s = model.StateSize;
        var y = model.Predict(x);
        var w = model.Readout.Weight.Data; var bias = model.Readout.Bias!.Data;
        // y = W h_top + b at (trial 1, time 2).
        int row = 1 * 3 + 2;
        for (int o = 0; o < 2; o++)
        {
            double expect = bias[o];
            for (int i = 0; i < h; i++) expect += w[o * h + i] * z[row * s + h + i];
            Assert.Equal(expect, y.Span[row * 2 + o], 12);
        }
        // The gradient reaches h0 and a step moves it.
        var grad = new double[model.AllParameters.TotalSize];
        var target = new Tensor(new double[y.Length], y.Shape);
        Training.ModelGradient.Compute(model, x, target, grad);
        int off = model.AllParameters.OffsetOf("h0");
        Assert.Contains(grad.AsSpan(off, 2 * h).ToArray(), g => Math.Abs(g) > 1e-6);
        var h0 = model.Parameters["h0"].ToArray();
        var stepped = model.WithParameters(new Training.Sgd(0.5).Step(model.AllParameters, grad));
        Assert.NotEqual(h0, stepped.Parameters["h0"].ToArray());
        // The step made a new model: this one and its linearisation keep their h0.
        Assert.Equal(h0, model.Parameters["h0"].ToArray());
        Assert.Equal(h0, lin.Parameters["h0"].ToArray());
    }
}

/// <summary>The fixtures' state dicts as a user saves them: loaded by <see cref="ModelFile"/> with nothing but the tensors.</summary>
public class PyTorchStackedLoadingTests
{
    [Theory]
    [InlineData("gru_l2", null)]
    [InlineData("lstm_l2_nobias", null)]
    [InlineData("rnn_relu_l2_nobias", "rnn-relu")]
    [InlineData("lstm_l2_h0", null)]
    [InlineData("rnn_tanh_l2_nobias_h0", "rnn-tanh")]
    public void StateDictLoadsUnchangedUnderAnyPrefix(string name, string? arch)
    {
        var (_, f) = PyTorchStackedFixtureTests.Load(name);
        var order = f.Metadata["order"].Split(',');
        int h = f.Tensors["rnn.weight_hh_l0"].Shape[1];
        var rng = new Random(2);
        var head = DepthChecks.Gaussian(3 * h, rng);
        // "net.rnn.*" and "net.h0" as a module with an nn.GRU called rnn registers them; a bias-free nn.Linear head.
        var tensors = order.Select(n => ("net." + n, f.Tensors[n].Shape, f.Tensors[n].Data))
            .Append(("net.head.weight", new[] { 3, h }, head)).ToArray();
        using var dir = new TempDir();
        string path = dir.File(name + ".safetensors");
        File.WriteAllBytes(path, IOModelFileTests.PyTorchFile(null, tensors));
        var loaded = ModelFile.Load(path, arch);
        Assert.True(loaded.HasReadout);
        var model = Assert.IsType<RecurrentModel>(loaded.Model);
        // nn.Linear(bias=False): no bias is invented.
        Assert.False(model.Readout.HasBias);
        Assert.DoesNotContain(model.AllParameters, p => p.Name == Readout.BiasName);
        Assert.Equal(f.Metadata["arch"], model.Arch);
        Assert.Equal(int.Parse(f.Metadata["layers"]), model.Layers);
        Assert.Equal(f.Metadata["bias"] == "true", model.Config.Bias);
        Assert.Equal(f.Metadata["h0"] == "true", model.Config.LearnInitialState);
        var x = f.Tensors["x"];
        var inputs = new Tensor(x.Data, model.InputShape(x.Shape[0], x.Shape[1]));
        // The hand-built file stores float32 (as most checkpoints): agreement to float32 rounding.
        var states = model.Forward(inputs).Span.ToArray();
        Assert.True(DepthChecks.RelErr(states, f.Tensors["z"].Data) < 1e-5);
        // The bias-free head: y = W h_top at (trial 0, time 0).
        var y = model.Predict(inputs);
        int top = RecurrentModel.TopOffset(model.Config);
        for (int o = 0; o < 3; o++)
        {
            double expect = 0;
            for (int i = 0; i < h; i++) expect += (double)(float)head[o * h + i] * states[top + i];
            Assert.Equal(expect, y.Span[o], 12);
        }
        // Saved and read back, it is the same model (layers, bias, h0 in the metadata).
        string again = dir.File("again.safetensors");
        ModelFile.Save(again, model);
        Assert.False(SafetensorsFile.Read(again).Tensors.Contains(Readout.BiasName));
        var back = Assert.IsType<RecurrentModel>(ModelFile.Load(again).Model);
        Assert.False(back.Readout.HasBias);
        Assert.Equal(back.Predict(inputs).Span.ToArray(), y.Span.ToArray());
        Assert.Equal(model.Forward(inputs).Span.ToArray(), back.Forward(inputs).Span.ToArray());
    }
}
