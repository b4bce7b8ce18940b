using System.Text.Json;
using GlobalNtk.Dense;
using GlobalNtk.IO;
using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Recurrent;
using GlobalNtk.Tests.Reference;
using Xunit;

namespace GlobalNtk.Tests.Recurrent;

/// <summary>
/// The recurrent loader records where every setting came from (issue 9 §2–§4): layers, bias and
/// h0 from the tensors, the leaky RNN's alpha and activation from the metadata or
/// <c>--option KEY=VALUE</c>, and a missing one is an error naming it, never a default.
/// </summary>
public class RecurrentSettingsTests
{
    private static RecurrentModel Leaky() =>
        RecurrentModel.Create(new RecurrentConfig("leaky-rnn", 2, 4, 2) { Alpha = 0.3, Activation = Activation.Relu, Seed = 5, Gain = 1.4 });

    /// <summary>The model's tensors under <paramref name="dst"/> with only the metadata keys kept by <paramref name="keep"/>.</summary>
    private static void SaveWith(IChainModel model, string dst, Func<string, bool> keep)
    {
        var md = new Dictionary<string, string>(model.Metadata) { ["arch"] = model.Arch };
        new SafetensorsFile(model.AllParameters, md.Where(kv => keep(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value)).Write(dst);
    }

    private static Tensor Inputs(RecurrentModel m) => new(DepthChecks.Gaussian(3 * 5 * m.InputSize, new Random(6)), m.InputShape(3, 5));

    private static Dictionary<string, ModelSetting> Settings(LoadedModel loaded) =>
        ModelInspection.Of(loaded).Settings.ToDictionary(s => s.Key);

    [Fact]
    public void LeakyAlphaAndActivationMustBeReadOrGivenNeverDefaulted()
    {
        using var d = new TempDir();
        var source = Leaky();
        string bare = d.File("bare.safetensors");
        SaveWith(source, bare, k => k == "arch");
        var e = Assert.Throws<DataFileException>(() => ModelFile.Load(bare));
        Assert.Contains("missing settings for a leaky-rnn model", e.Message);
        Assert.Contains("alpha (a number in (0, 1])", e.Message);
        Assert.Contains("activation (tanh | relu)", e.Message);
        Assert.Contains("--option KEY=VALUE", e.Message);

        // Given on the command line, the file computes exactly what the source model does.
        var given = ModelFile.Load(bare, settings: new Dictionary<string, string> { ["alpha"] = "0.3", ["activation"] = "relu" });
        var m = Assert.IsType<RecurrentModel>(given.Model);
        Assert.Equal((0.3, Activation.Relu), (m.Config.Alpha, m.Config.Activation));
        Assert.Equal(source.Forward(Inputs(source)).Span.ToArray(), m.Forward(Inputs(source)).Span.ToArray());
        var s = Settings(given);
        Assert.Equal(SettingSource.CommandLine, s["alpha"].Source);
        Assert.Equal(SettingSource.CommandLine, s["activation"].Source);
        Assert.Contains("leak rate", s["alpha"].Meaning);
        // gain and seed only describe the initialisation: a bare file does not invent them.
        Assert.False(s.ContainsKey("gain"));
        Assert.False(s.ContainsKey("seed"));

        // alpha changes the mathematics: another value, other states.
        var other = (RecurrentModel)ModelFile.Load(bare, settings: new Dictionary<string, string> { ["alpha"] = "0.2", ["activation"] = "relu" }).Model;
        Assert.True(DepthChecks.RelErr(other.Forward(Inputs(source)).Span, source.Forward(Inputs(source)).Span) > 1e-3);

        // Only alpha missing: the error names alpha alone.
        var one = Assert.Throws<DataFileException>(() => ModelFile.Load(bare, settings: new Dictionary<string, string> { ["activation"] = "tanh" }));
        Assert.Contains("missing setting for a leaky-rnn model", one.Message);
        Assert.Contains("alpha", one.Message);
        Assert.DoesNotContain("activation (", one.Message);
        // A bad value names the setting, its source and what is allowed.
        var bad = Assert.Throws<DataFileException>(() => ModelFile.Load(bare, settings: new Dictionary<string, string> { ["alpha"] = "1.5", ["activation"] = "relu" }));
        Assert.Contains("setting alpha = '1.5' (command line) is not valid; expected a number in (0, 1]", bad.Message);
        var gelu = Assert.Throws<DataFileException>(() => ModelFile.Load(bare, settings: new Dictionary<string, string> { ["alpha"] = "0.5", ["activation"] = "gelu" }));
        Assert.Contains("setting activation = 'gelu' (command line) is not valid; expected tanh | relu", gelu.Message);
    }

    [Fact]
    public void OurOwnLeakyFilesCarryAlphaAndTheCommandLineOverridesIt()
    {
        using var d = new TempDir();
        var source = Leaky();
        string path = d.File("own.safetensors");
        ModelFile.Save(path, source);
        var loaded = ModelFile.Load(path);
        var s = Settings(loaded);
        Assert.Equal(("0.3", SettingSource.Metadata), (s["alpha"].Value, s["alpha"].Source));
        Assert.Equal(("relu", SettingSource.Metadata), (s["activation"].Value, s["activation"].Source));
        Assert.Equal(SettingSource.Metadata, s["gain"].Source);
        Assert.Contains("initialisation only", s["gain"].Meaning);
        Assert.Equal(source.Forward(Inputs(source)).Span.ToArray(), ((RecurrentModel)loaded.Model).Forward(Inputs(source)).Span.ToArray());

        var over = ModelFile.Load(path, settings: new Dictionary<string, string> { ["alpha"] = "0.25" });
        Assert.Equal(0.25, ((RecurrentModel)over.Model).Config.Alpha);
        Assert.Equal(("0.25", SettingSource.CommandLine), (Settings(over)["alpha"].Value, Settings(over)["alpha"].Source));
    }

    [Fact]
    public void LayersBiasAndH0AreReadOffTheTensorsAndMayNotBeContradicted()
    {
        using var d = new TempDir();
        var model = RecurrentModel.Create(new RecurrentConfig("lstm", 2, 3, 2) { Layers = 2, Bias = false, LearnInitialState = true, Seed = 2 });
        string path = d.File("lstm.safetensors");
        SaveWith(model, path, k => k == "arch");   // a bare state dict: nothing but the tensors
        var s = Settings(ModelFile.Load(path));
        Assert.Equal(("2", SettingSource.Tensors), (s["layers"].Value, s["layers"].Source));
        Assert.Contains("'rnn.weight_hh_l0' … 'rnn.weight_hh_l1'", s["layers"].Meaning);
        Assert.Equal(("false", SettingSource.Tensors), (s["bias"].Value, s["bias"].Source));
        Assert.Equal(("true", SettingSource.Tensors), (s["h0"].Value, s["h0"].Source));
        Assert.Contains("'h0' [2, 3]", s["h0"].Meaning);

        foreach (var (key, value, says) in new[] { ("layers", "1", "layers = 2"), ("bias", "true", "bias = false"), ("h0", "false", "h0 = true") })
        {
            var e = Assert.Throws<DataFileException>(() => ModelFile.Load(path, settings: new Dictionary<string, string> { [key] = value }));
            Assert.Contains($"setting {key} = {value} from the command line contradicts the tensors", e.Message);
            Assert.Contains(says, e.Message);
        }
        // The same from the metadata.
        string lying = d.File("lying.safetensors");
        SaveWith(model, lying, k => k is "arch" or "layers");
        new SafetensorsFile(SafetensorsFile.Read(lying).Tensors, new Dictionary<string, string> { ["arch"] = "lstm", ["layers"] = "3" }).Write(lying);
        Assert.Contains("setting layers = 3 from the metadata contradicts the tensors",
            Assert.Throws<DataFileException>(() => ModelFile.Load(lying)).Message);
        // Agreeing statements load.
        Assert.NotNull(ModelFile.Load(path, settings: new Dictionary<string, string> { ["layers"] = "2", ["bias"] = "false", ["h0"] = "true" }));
        // A setting a gated cell does not have is refused, not ignored.
        Assert.Contains("option alpha given but not used by a lstm model (it reads: layers, bias, h0)",
            Assert.Throws<DataFileException>(() => ModelFile.Load(path, settings: new Dictionary<string, string> { ["alpha"] = "0.5" })).Message);
    }

    [Fact]
    public void TheCommandLineTakesAlphaForRecurrentFilesAndInspectShowsItsSource()
    {
        using var d = new TempDir();
        var source = Leaky();
        string bare = d.File("bare.safetensors");
        SaveWith(source, bare, k => k == "arch");
        CliTestHost.AssertOneLineError(CliTestHost.Run("inspect", bare), "missing settings for a leaky-rnn model", "alpha", "activation");

        var r = CliTestHost.Run("inspect", bare, "--option", "alpha=0.3", "--option", "activation=relu");
        Assert.True(r.Exit == 0, r.Err);
        Assert.Contains("alpha = 0.3", r.Out);
        Assert.Contains("[command line]  the leak rate", r.Out);
        Assert.Contains("layers = 1", r.Out);
        Assert.Contains("[inferred from tensors]  'rnn.weight_hh_l0'", r.Out);

        var j = CliTestHost.Run("inspect", bare, "--option", "alpha=0.3", "--option", "activation=relu", "--json");
        Assert.True(j.Exit == 0, j.Err);
        var settings = JsonDocument.Parse(j.Out).RootElement.GetProperty("settings").EnumerateArray()
            .ToDictionary(s => s.GetProperty("key").GetString()!, s => s.GetProperty("source").GetString());
        Assert.Equal("command line", settings["alpha"]);
        Assert.Equal("inferred from tensors", settings["bias"]);
        Assert.Equal("inferred from tensors", settings["h0"]);

        // forward takes the same options and computes the source model's states.
        var x = Inputs(source);
        Npy.Write(d.File("x.npy"), new NdArray(x.Shape.Sizes.ToArray(), x.Span.ToArray()));
        var fw = CliTestHost.Run("forward", "--model", bare, "--inputs", d.File("x.npy"), "--out", d.File("z.npy"),
            "--option", "alpha=0.3", "--option", "activation=relu");
        Assert.True(fw.Exit == 0, fw.Err);
        Assert.Equal(source.Forward(x).Span.ToArray(), Npy.Read(d.File("z.npy")).Data);
    }
}
