using GlobalNtk.Models.Mlp;
using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Recurrent;
using Xunit;
using static GlobalNtk.Tests.Recurrent.RecurrentTestKit;

namespace GlobalNtk.Tests.Recurrent;

/// <summary>Creation, initialisation, metadata and bad-input handling of recurrent models.</summary>
public class RecurrentModelTests
{
    [Theory]
    [InlineData("rnn-tanh", 1)][InlineData("rnn-relu", 1)][InlineData("gru", 3)][InlineData("lstm", 4)][InlineData("leaky-rnn", 1)]
    public void CreatesPyTorchNamesShapesAndInit(string arch, int gates)
    {
        var cfg = new RecurrentConfig(arch, 3, 16, 2) { Seed = 5, Gain = 2.0 };
        var model = RecurrentModel.Create(cfg);
        var names = model.AllParameters.Select(p => p.Name).ToList();
        var expected = arch == "leaky-rnn"
            ? new[] { "rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_hh_l0", "readout.weight", "readout.bias" }
            : new[] { "rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0", "readout.weight", "readout.bias" };
        Assert.Equal(expected, names);
        Assert.Equal(new[] { gates * 16, 3 }, model.Parameters["rnn.weight_ih_l0"].Shape);
        Assert.Equal(new[] { gates * 16, 16 }, model.Parameters["rnn.weight_hh_l0"].Shape);
        Assert.Equal(new[] { 2, 16 }, model.Readout.Weight.Shape);
        double bound = 1 / Math.Sqrt(16);
        foreach (var p in model.AllParameters)
        {
            double limit = p.Name == "rnn.weight_hh_l0" ? 2.0 * bound : bound;
            Assert.All(p.Data, v => Assert.InRange(Math.Abs(v), 0, limit));
            // Uniform draws fill the range: the largest magnitude is close to the bound.
            if (p.Size >= 32) Assert.True(p.Data.Max(Math.Abs) > 0.8 * limit, $"{p.Name} does not reach its init bound");
        }
        // Same seed → same model; gain scales W_hh only.
        var again = RecurrentModel.Create(cfg);
        Assert.Equal(model.AllParameters.Flatten(), again.AllParameters.Flatten());
        var unitGain = RecurrentModel.Create(cfg with { Gain = 1.0 });
        var whh = model.Parameters["rnn.weight_hh_l0"].Data; var whh1 = unitGain.Parameters["rnn.weight_hh_l0"].Data;
        for (int i = 0; i < whh.Length; i++) Assert.Equal(2.0 * whh1[i], whh[i], 1e-13);
        Assert.Equal(unitGain.Parameters["rnn.weight_ih_l0"].Data, model.Parameters["rnn.weight_ih_l0"].Data);
        Assert.NotEqual(model.AllParameters.Flatten(), RecurrentModel.Create(cfg with { Seed = 6 }).AllParameters.Flatten());
    }

    [Fact]
    public void MetadataRoundTripsAndFromParametersRebuildsTheModel()
    {
        var cfg = new RecurrentConfig("leaky-rnn", 2, 5, 3) { Alpha = 0.25, Gain = 1.5, Seed = 9, Activation = Activation.Relu };
        var model = RecurrentModel.Create(cfg);
        var md = model.Metadata;
        Assert.Equal("leaky-rnn", md["arch"]);
        Assert.Equal("recurrent", md["family"]);
        Assert.Equal("5", md["hidden_size"]);
        Assert.Equal(cfg, RecurrentConfig.FromMetadata(md));
        var rebuilt = RecurrentModel.FromParameters(RecurrentConfig.FromMetadata(md), model.AllParameters.Clone().Reverse());
        var x = Inputs(rebuilt);
        Assert.Equal(model.Predict(x).Span.ToArray(), rebuilt.Predict(x).Span.ToArray());
        // New values make a new model; the old one keeps its values.
        var theta = model.AllParameters.Flatten();
        double w0 = theta[0];
        theta[0] += 1;
        var moved = model.WithAllValues(theta);
        Assert.Equal(theta[0], moved.Parameters["rnn.weight_ih_l0"].Values[0]);
        Assert.Equal(w0, model.Parameters["rnn.weight_ih_l0"].Values[0]);
    }

    [Fact]
    public void ReadoutReadsHiddenPartOfLstmStateAtEveryStep()
    {
        var model = Model("lstm");
        var x = Inputs(model);
        var lin = model.Linearize(x);
        var y = model.Predict(x);
        Assert.Equal(new AxisShape(("trial", B), ("time", T), ("output", O)), y.Shape);
        var z = lin.States.Span; var w = model.Readout.Weight.Data; var bias = model.Readout.Bias!.Data;
        int s = model.StateSize;
        for (int r = 0; r < B * T; r++)
            for (int o = 0; o < O; o++)
            {
                double acc = bias[o];
                for (int i = 0; i < H; i++) acc += w[o * H + i] * z[r * s + i];
                Assert.Equal(acc, y.Span[r * O + o], 1e-13);
            }
    }

    [Fact]
    public void InitialStateIsZeroOrGiven()
    {
        var zero = Model("gru");
        var x = Inputs(zero);
        var z0 = Random(zero.StateSize, 3);
        var model = zero.WithInitialState(z0);
        z0[0] += 1;   // the model holds its own copy
        var lin = (RecurrentLinearization)model.Linearize(x);
        for (int b = 0; b < B; b++) Assert.Equal(model.InitialState.ToArray(), lin.InitialState.Span.Slice(b * model.StateSize, model.StateSize).ToArray());
        Assert.Equal(z0[0] - 1, model.InitialState[0]);
        Assert.True(zero.InitialState.IsEmpty);
        Assert.All(((RecurrentLinearization)zero.Linearize(x)).InitialState.ToArray(), v => Assert.Equal(0.0, v));
        Assert.All(((RecurrentLinearization)model.WithInitialState(null).Linearize(x)).InitialState.ToArray(), v => Assert.Equal(0.0, v));
        Assert.Contains("expected state size 4", Assert.Throws<ArgumentException>(() => zero.WithInitialState(new double[3])).Message);
    }

    [Fact]
    public void UnknownArchListsTheValidOnes()
    {
        var ex = Assert.Throws<ArgumentException>(() => RecurrentModel.Create("transformerish", 2, 4, 1));
        Assert.Contains("'transformerish'", ex.Message);
        Assert.Contains("rnn-tanh, rnn-relu, gru, lstm, leaky-rnn", ex.Message);
    }

    [Theory]
    [InlineData("rnn.weight_hh_l0", new[] { 12, 3 }, "Tensor 'rnn.weight_hh_l0' has shape [12, 3], expected [12, 4]")]
    [InlineData("rnn.weight_ih_l0", new[] { 12, 5 }, "Tensor 'rnn.weight_ih_l0' has shape [12, 5], expected [12, 2]")]
    [InlineData("rnn.bias_ih_l0", new[] { 4 }, "Tensor 'rnn.bias_ih_l0' has shape [4], expected [12]")]
    [InlineData("readout.weight", new[] { 3, 5 }, "Tensor 'readout.weight' has shape [3, 5], expected [3, 4]")]
    public void MisShapedTensorsAreNamed(string name, int[] shape, string message)
    {
        var model = Model("gru");
        var ps = model.AllParameters.Clone().Select(p => p.Name == name ? new Parameter(name, shape) : p);
        var ex = Assert.Throws<ArgumentException>(() => RecurrentModel.FromParameters(model.Config, ps));
        Assert.Contains(message, ex.Message);
    }

    [Fact]
    public void MissingAndExtraTensorsAreNamed()
    {
        var model = Model("lstm");
        var missing = model.AllParameters.Clone().Where(p => p.Name != "rnn.bias_hh_l0");
        Assert.Contains("Missing tensor 'rnn.bias_hh_l0' (expected shape [16]",
            Assert.Throws<ArgumentException>(() => RecurrentModel.FromParameters(model.Config, missing)).Message);
        var extra = model.AllParameters.Clone().Append(new Parameter("rnn.weight_hh_l1", [16, 4]));
        Assert.Contains("Unexpected tensor 'rnn.weight_hh_l1' [16, 4]",
            Assert.Throws<ArgumentException>(() => RecurrentModel.FromParameters(model.Config, extra)).Message);
    }

    [Theory]
    [InlineData(double.NaN)][InlineData(double.PositiveInfinity)]
    public void NonFiniteWeightsAndInputsAreNamed(double bad)
    {
        var model = Model("rnn-tanh");
        var ps = model.AllParameters.Select(p => p.Name == "rnn.weight_hh_l0" ? TestMath.WithEntry(p, 5, bad) : p);
        var ex = Assert.Throws<NonFiniteException>(() => RecurrentModel.FromParameters(model.Config, ps));
        Assert.Contains("'rnn.weight_hh_l0' [4, 4]", ex.Message);
        var ro = model.AllParameters.Select(p => p.Name == "readout.bias" ? TestMath.WithEntry(p, 1, bad) : p);
        Assert.Contains("'readout.bias'", Assert.Throws<NonFiniteException>(() => RecurrentModel.FromParameters(model.Config, ro)).Message);

        var x = Inputs(model);
        x.Span[4] = bad;
        Assert.Contains("inputs (trial=3, time=5, input=2)", Assert.Throws<NonFiniteException>(() => model.Linearize(x)).Message);

        // Weights that become non-finite in training (a diverged step: new values, a new model) are caught too.
        var gru = Model("gru");
        var diverged = new ParameterSet(gru.AllParameters.Select(p => p.Name == "rnn.bias_ih_l0" ? TestMath.WithEntry(p, 0, bad) : p));
        Assert.Contains("'rnn.bias_ih_l0'", Assert.Throws<NonFiniteException>(() => gru.WithParameters(diverged).Linearize(Inputs(gru))).Message);
    }

    [Fact]
    public void MisShapedInputsAreNamed()
    {
        var model = Model("gru");
        var x = new Tensor(new AxisShape(("trial", 2), ("time", 3), ("input", 5)));
        var ex = Assert.Throws<ArgumentException>(() => model.Linearize(x));
        Assert.Contains("(trial=2, time=3, input=5)", ex.Message);
        Assert.Contains("input=2", ex.Message);
        var z0 = new Tensor(new AxisShape(("trial", 3), ("unit", 7)));
        Assert.Contains("(trial=3, unit=7)", Assert.Throws<ArgumentException>(() => model.Linearize(Inputs(model), z0)).Message);
    }

    [Fact]
    public void InvalidConfigValuesAreRejected()
    {
        Assert.Contains("alpha", Assert.Throws<ArgumentException>(() => RecurrentModel.Create(new RecurrentConfig("leaky-rnn", 2, 4, 1) { Alpha = 1.5 })).Message);
        Assert.Contains("activation must be tanh or relu, got gelu", Assert.Throws<ArgumentException>(() =>
            RecurrentModel.Create(new RecurrentConfig("leaky-rnn", 2, 4, 1) { Activation = Activation.Gelu })).Message);
        Assert.Contains("hidden size", Assert.Throws<ArgumentException>(() => RecurrentModel.Create("gru", 2, 0, 1)).Message);
        Assert.Contains("missing key 'hidden_size'", Assert.Throws<ArgumentException>(() =>
            RecurrentConfig.FromMetadata(new Dictionary<string, string> { ["arch"] = "gru", ["input_size"] = "2", ["output_size"] = "1" })).Message);
    }
}
