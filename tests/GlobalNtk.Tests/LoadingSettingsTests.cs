using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using GlobalNtk.IO;
using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Transformer;
using GlobalNtk.Tests.Reference;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// Loading never guesses a setting that changes the mathematics (issue 9 §3), reads F16 / BF16
/// tensors and integer .npy arrays, recognises PyTorch pickles, and <c>inspect</c> shows how a
/// file is read (§4).
/// </summary>
public class LoadingSettingsTests
{
    /// <summary>A copy of <paramref name="src"/> with its metadata replaced.</summary>
    private static void Rewrite(string src, string dst, Func<IReadOnlyDictionary<string, string>, Dictionary<string, string>> metadata)
    {
        var f = SafetensorsFile.Read(src);
        new SafetensorsFile(f.Tensors.Select(p => p.Clone()), metadata(f.Metadata)).Write(dst);
    }

    [Fact]
    public void MissingTransformerSettingsAreOneErrorNamingEachOfThem()
    {
        using var d = new TempDir();
        Rewrite(PyTorchDepthFixtureTests.Fixture("tf_post_relu.safetensors"), d.File("m.safetensors"),
            _ => new() { ["arch"] = "transformer", ["heads"] = "2" });
        var r = CliTestHost.Run("inspect", d.File("m.safetensors"));
        CliTestHost.AssertOneLineError(r, "missing settings", "activation (relu | gelu)", "causal", "norm_first", "layer_norm_eps", "positional",
            "scale_embedding", "--option KEY=VALUE");
        Assert.Equal(2, r.Exit);
        Assert.Equal("", r.Out);
        // Given on the command line, the same file loads.
        var ok = CliTestHost.Run("inspect", d.File("m.safetensors"), "--option", "activation=relu", "--option", "causal=false",
            "--option", "norm_first=false", "--option", "layer_norm_eps=1e-5", "--option", "positional=sinusoidal", "--option", "scale_embedding=false");
        Assert.True(ok.Exit == 0, ok.Err);
        Assert.Contains("norm_first = false", ok.Out);
        Assert.Contains("[command line]", ok.Out);
        // forward takes the same options and then matches PyTorch.
        var reference = SafetensorsFile.Read(PyTorchDepthFixtureTests.Fixture("tf_post_relu.ref.safetensors")).Tensors;
        Npy.Write(d.File("x.npy"), new NdArray(reference["inputs"].Shape, reference["inputs"].Data));
        var fw = CliTestHost.Run("forward", "--model", d.File("m.safetensors"), "--inputs", d.File("x.npy"), "--out", d.File("z.npy"),
            "--option", "activation=relu", "--option", "causal=false", "--option", "norm_first=false", "--option", "layer_norm_eps=1e-5",
            "--option", "positional=sinusoidal", "--option", "scale_embedding=false");
        Assert.True(fw.Exit == 0, fw.Err);
        Assert.True(DepthChecks.RelErr(Npy.Read(d.File("z.npy")).Data, reference["states"].Data) < 1e-9);
    }

    [Fact]
    public void GeluNeedsItsApproximationAndFinalNormItsEps()
    {
        using var d = new TempDir();
        Rewrite(PyTorchDepthFixtureTests.Fixture("tf_post_gelu_final_learned.safetensors"), d.File("m.safetensors"),
            md => md.Where(kv => kv.Key is not ("gelu_approximate" or "final_norm_eps")).ToDictionary(kv => kv.Key, kv => kv.Value));
        var e = Assert.Throws<DataFileException>(() => ModelFile.Load(d.File("m.safetensors")));
        Assert.Contains("gelu_approximate (none | tanh)", e.Message);
        Assert.Contains("final_norm_eps", e.Message);
    }

    [Fact]
    public void MlpWithoutActivationIsAnErrorNeverTanh()
    {
        using var d = new TempDir();
        Rewrite(PyTorchDepthFixtureTests.Fixture("mlp_seq_tanh.safetensors"), d.File("m.safetensors"), _ => new() { ["arch"] = "mlp" });
        var e = Assert.Throws<DataFileException>(() => ModelFile.Load(d.File("m.safetensors")));
        Assert.Contains("activation (tanh | relu | gelu | gelu_tanh)", e.Message);
        var m = ModelFile.Load(d.File("m.safetensors"), settings: new Dictionary<string, string> { ["activation"] = "tanh" });
        Assert.Equal(Activation.Tanh, ((MlpModel)m.Model).Activation);
    }

    [Fact]
    public void SettingsContradictingTheTensorsOrUnusedAreErrors()
    {
        var f = PyTorchDepthFixtureTests.Fixture("tf_post_gelu_final_learned.safetensors");
        var e = Assert.Throws<DataFileException>(() => ModelFile.Load(f, settings: new Dictionary<string, string> { ["final_norm"] = "false" }));
        Assert.Contains("final_norm = false from the command line contradicts the tensors", e.Message);
        e = Assert.Throws<DataFileException>(() => ModelFile.Load(f, settings: new Dictionary<string, string> { ["alpha"] = "0.2" }));
        Assert.Contains("alpha given but not used by a transformer model", e.Message);
        e = Assert.Throws<DataFileException>(() => ModelFile.Load(f, settings: new Dictionary<string, string> { ["layer_norm_eps"] = "-1" }));
        Assert.Contains("layer_norm_eps = '-1' (command line) is not valid", e.Message);
    }

    [Fact]
    public void OurOwnFilesCarryEverySettingAndRoundTrip()
    {
        using var d = new TempDir();
        var config = new TransformerConfig(TransformerInput.Linear, 3, 4, 2, 2, 6, Activation.GeluTanh, Causal: true)
        {
            NormFirst = false, LayerNormEps = 1e-4, FinalNorm = true, FinalNormEps = 1e-3,
            Positional = TransformerPositional.Learned, MaxPositions = 6, ScaleEmbedding = true,
        };
        var model = TransformerModel.Create(config, 2, seed: 3);
        ModelFile.Save(d.File("t.safetensors"), model);
        var back = (TransformerModel)ModelFile.Load(d.File("t.safetensors")).Model;
        Assert.Equal(config, back.Config);
        var x = new Dense.Tensor(DepthChecks.Gaussian(2 * 5 * 3, new Random(1)), new Dense.AxisShape(("sequence", 2), ("token", 5), ("input", 3)));
        Assert.Equal(model.Linearize(x).States.ToArray(), back.Linearize(x).States.ToArray());

        // What train writes (through the registry's options) loads too.
        var created = ModelRegistry.Create(new ModelSpec("transformer", 3, 4, 2)
        {
            Options = new Dictionary<string, string> { ["heads"] = "2", ["norm_first"] = "false", ["positional"] = "none", ["activation"] = "relu" },
        });
        ModelFile.Save(d.File("c.safetensors"), created);
        var c = ((TransformerModel)ModelFile.Load(d.File("c.safetensors")).Model).Config;
        Assert.False(c.NormFirst);
        Assert.Equal(TransformerPositional.None, c.Positional);
        ModelFile.Save(d.File("m.safetensors"), MlpModel.Create(2, 3, 2, 1, Activation.GeluTanh, 1));
        Assert.Equal(Activation.GeluTanh, ((MlpModel)ModelFile.Load(d.File("m.safetensors")).Model).Activation);
    }

    [Fact]
    public void FilesFromAnEarlierGlobalNtkNameTheSettingsItUsedToFix()
    {
        using var d = new TempDir();
        var model = TransformerModel.Create(new TransformerConfig(TransformerInput.Linear, 3, 4, 2, 1, 6, Activation.Gelu, Causal: true), 2, seed: 5);
        ModelFile.Save(d.File("new.safetensors"), model);
        // The keys the earlier version wrote: no layer_norm_eps, gelu_approximate, scale_embedding, final_norm.
        Rewrite(d.File("new.safetensors"), d.File("old.safetensors"), md => md.Where(kv => kv.Key is not ("layer_norm_eps" or "gelu_approximate" or "scale_embedding" or "final_norm"))
            .ToDictionary(kv => kv.Key, kv => kv.Value));
        var e = Assert.Throws<DataFileException>(() => ModelFile.Load(d.File("old.safetensors")));
        Assert.Contains("gelu_approximate (none | tanh), layer_norm_eps", e.Message);
        Assert.Contains("written by an earlier GlobalNtk, which always computed layer_norm_eps=1e-5", e.Message);
        var given = new Dictionary<string, string> { ["layer_norm_eps"] = "1e-5", ["gelu_approximate"] = "none", ["scale_embedding"] = "false" };
        Assert.Equal(model.Config, ((TransformerModel)ModelFile.Load(d.File("old.safetensors"), settings: given).Model).Config);
    }

    [Fact]
    public void HalfAndBFloat16TensorsAreWidenedExactly()
    {
        using var d = new TempDir();
        // F16 1.5, −0.25, 65504 (max half); BF16 1.0, −2.5 and 3.140625 (bf16 of π).
        ushort[] f16 = [0x3E00, 0xB400, 0x7BFF];
        ushort[] bf16 = [0x3F80, 0xC020, 0x4049];
        string header = "{\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[6,12]}}";
        var hb = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + hb.Length + 12];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)hb.Length);
        hb.CopyTo(bytes, 8);
        for (int i = 0; i < 3; i++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8 + hb.Length + 2 * i), f16[i]);
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8 + hb.Length + 6 + 2 * i), bf16[i]);
        }
        File.WriteAllBytes(d.File("half.safetensors"), bytes);
        var f = SafetensorsFile.Read(d.File("half.safetensors"));
        Assert.Equal([1.5, -0.25, 65504.0], f.Tensors["h"].Data);
        Assert.Equal([1.0, -2.5, 3.140625], f.Tensors["b"].Data);
    }

    [Theory]
    [InlineData("<i8", 8)]
    [InlineData("<i4", 4)]
    [InlineData("<i2", 2)]
    [InlineData("|u1", 1)]
    public void IntegerNpyArraysAreReadAsFloat64(string descr, int size)
    {
        using var d = new TempDir();
        long[] values = [0, 3, 1, 2, 5, 4];
        string dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': (2, 3), }}";
        int total = (10 + dict.Length + 1 + 63) / 64 * 64;
        string header = dict + new string(' ', total - 10 - dict.Length - 1) + "\n";
        var bytes = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, (byte)header.Length, 0 };
        bytes.AddRange(Encoding.Latin1.GetBytes(header));
        foreach (var v in values) bytes.AddRange(BitConverter.GetBytes(v).Take(size));
        File.WriteAllBytes(d.File("ids.npy"), bytes.ToArray());
        var a = Npy.Read(d.File("ids.npy"));
        Assert.Equal([2, 3], a.Shape);
        Assert.Equal(values.Select(v => (double)v), a.Data);
    }

    [Fact]
    public void ForwardTakesIntegerTokenIds()
    {
        using var d = new TempDir();
        var r = CliTestHost.Run("forward", "--model", PyTorchDepthFixtureTests.Fixture("tf_pre_geluTanh_embed_pe.safetensors"),
            "--inputs", PyTorchDepthFixtureTests.Fixture("tf_pre_geluTanh_embed_pe.tokens.npy"), "--out", d.File("z.npy"));
        Assert.True(r.Exit == 0, r.Err);
        var reference = SafetensorsFile.Read(PyTorchDepthFixtureTests.Fixture("tf_pre_geluTanh_embed_pe.ref.safetensors")).Tensors["states"];
        var z = Npy.Read(d.File("z.npy"));
        Assert.Equal(reference.Shape, z.Shape);
        Assert.True(DepthChecks.RelErr(z.Data, reference.Data) < 1e-9);
    }

    [Theory]
    [InlineData(new byte[] { (byte)'P', (byte)'K', 3, 4, 0, 0 }, "model.pt")]
    [InlineData(new byte[] { 0x80, 0x02, 0x8a, 0x0a }, "model.pth")]
    public void PyTorchPicklesAreRecognisedAndTheErrorShowsHowToSaveSafetensors(byte[] head, string name)
    {
        using var d = new TempDir();
        File.WriteAllBytes(d.File(name), head);
        var r = CliTestHost.Run("inspect", d.File(name));
        CliTestHost.AssertOneLineError(r, "torch.save", "from safetensors.torch import save_file", "metadata={'arch'", "norm_first");
        Assert.Equal(2, r.Exit);
        var f = CliTestHost.Run("forward", "--model", d.File(name), "--inputs", d.File(name), "--out", d.File("z.npy"));
        CliTestHost.AssertOneLineError(f, "torch.save");
        Assert.False(File.Exists(d.File("z.npy")));
    }

    [Theory]
    [InlineData(0x280)]
    [InlineData(0x380)]
    [InlineData(0x480)]
    [InlineData(0x580)]
    public void SafetensorsWhoseHeaderLengthSpellsAPickleOpcodeStillLoad(int headerLength)
    {
        // The 8-byte header length 0x0380 starts with the bytes 0x80 0x03, a pickle protocol-3
        // opcode; the file is still safetensors (its ninth byte opens the JSON header).
        using var d = new TempDir();
        ModelFile.Save(d.File("g.safetensors"), ModelRegistry.Create(new ModelSpec("gru", 3, 4, 2) { Seed = 1 }));
        byte[] bytes = File.ReadAllBytes(d.File("g.safetensors"));
        int oldLength = (int)BitConverter.ToInt64(bytes, 0);
        Assert.True(oldLength <= headerLength, $"header {oldLength} bytes is longer than {headerLength}");
        var padded = new byte[8 + headerLength + bytes.Length - 8 - oldLength];
        BitConverter.GetBytes((long)headerLength).CopyTo(padded, 0);
        bytes.AsSpan(8, oldLength).CopyTo(padded.AsSpan(8));
        padded.AsSpan(8 + oldLength, headerLength - oldLength).Fill((byte)' '); // JSON allows trailing spaces
        bytes.AsSpan(8 + oldLength).CopyTo(padded.AsSpan(8 + headerLength));
        Assert.Equal(0x80, padded[0]);
        File.WriteAllBytes(d.File("p.safetensors"), padded);
        var r = CliTestHost.Run("inspect", d.File("p.safetensors"), "--json");
        Assert.True(r.Exit == 0, r.Err);
        Assert.False(PyTorchPickle.LooksLikePickle(padded.AsSpan(0, 9)));
        Assert.True(PyTorchPickle.LooksLikePickle(new byte[] { 0x80, 0x03, 0x8a, 0x0a, 0, 0, 0, 0, 0x6c }));
    }

    [Fact]
    public void InspectWorksForRecurrentFilesAndUnusedOptionsAreRefused()
    {
        using var d = new TempDir();
        ModelFile.Save(d.File("g.safetensors"), ModelRegistry.Create(new ModelSpec("gru", 3, 4, 2) { Seed = 1 }));
        var r = CliTestHost.Run("inspect", d.File("g.safetensors"), "--json");
        Assert.True(r.Exit == 0, r.Err);
        var j = JsonDocument.Parse(r.Out).RootElement;
        Assert.Equal(["trial", "time", "unit"], j.GetProperty("stateAxes").EnumerateArray().Select(e => e.GetString()));
        Assert.All(j.GetProperty("tensors").EnumerateArray(), t => Assert.Equal(t.GetProperty("name").GetString(), t.GetProperty("fileTensor").GetString()));
        Assert.Equal(4 * 3 * (3 + 4 + 2), j.GetProperty("chainParameters").GetInt32());
        CliTestHost.AssertOneLineError(CliTestHost.Run("inspect", d.File("g.safetensors"), "--option", "alpha=0.3"), "alpha given but not used by a gru model");
    }

    [Fact]
    public void InspectShowsBlocksReadoutIgnoredTensorsCountAndSources()
    {
        var r = CliTestHost.Run("inspect", PyTorchDepthFixtureTests.Fixture("tf_pre_geluTanh_embed_pe.safetensors"), "--json");
        Assert.True(r.Exit == 0, r.Err);
        var j = JsonDocument.Parse(r.Out).RootElement;
        Assert.Equal("transformer", j.GetProperty("family").GetString());
        Assert.Equal(["sequence", "layer", "token", "feature"], j.GetProperty("stateAxes").EnumerateArray().Select(e => e.GetString()));
        var tensors = j.GetProperty("tensors").EnumerateArray().ToList();
        var inProj = tensors.Single(t => t.GetProperty("name").GetString() == "layers.1.self_attn.in_proj_weight");
        Assert.Equal("encoder.layers.1.self_attn.in_proj_weight", inProj.GetProperty("fileTensor").GetString());
        Assert.Equal("block 1 (step 2)", inProj.GetProperty("block").GetString());
        Assert.Equal("final norm (step 2)", tensors.Single(t => t.GetProperty("name").GetString() == "norm.weight").GetProperty("block").GetString());
        Assert.Equal("readout.weight", tensors.Single(t => t.GetProperty("block").GetString() == "readout" && t.GetProperty("name").GetString() == "readout.weight").GetProperty("fileTensor").GetString());
        Assert.Equal("pe", j.GetProperty("ignored")[0].GetProperty("name").GetString());
        var model = (TransformerModel)ModelFile.Load(PyTorchDepthFixtureTests.Fixture("tf_pre_geluTanh_embed_pe.safetensors")).Model;
        Assert.Equal(model.Parameters.TotalSize, j.GetProperty("chainParameters").GetInt32());
        var settings = j.GetProperty("settings").EnumerateArray().ToDictionary(s => s.GetProperty("key").GetString()!, s => s.GetProperty("source").GetString());
        Assert.Equal("metadata", settings["norm_first"]);
        Assert.Equal("inferred from tensors", settings["positional"]);
        Assert.Equal("inferred from tensors", settings["final_norm"]);
        Assert.Equal("metadata", settings["gelu_approximate"]);

        var mlp = CliTestHost.Run("inspect", PyTorchDepthFixtureTests.Fixture("mlp_seq_tanh_bf16.safetensors"));
        Assert.True(mlp.Exit == 0, mlp.Err);
        Assert.Contains("readout.weight [2, 5]   ← net.4.weight", mlp.Out);
        Assert.Contains("layers.1.weight [5, 5]  ← net.2.weight", mlp.Out);
    }
}

/// <summary>How an MLP's numbered Linear modules are read: ModuleList vs nn.Sequential, and what is refused.</summary>
public class MlpSequentialLoadingTests
{
    private static Parameter P(string name, params int[] shape) => new(name, shape, Enumerable.Range(0, shape.Aggregate(1, (a, b) => a * b)).Select(i => Math.Sin(i + name.Length)).ToArray());

    private static DataFileException Refused(TempDir d, params Parameter[] tensors)
    {
        new SafetensorsFile(tensors, new Dictionary<string, string> { ["arch"] = "mlp", ["activation"] = "tanh" }).Write(d.File("m.safetensors"));
        return Assert.Throws<DataFileException>(() => ModelFile.Load(d.File("m.safetensors")));
    }

    [Fact]
    public void SequentialWithASeparateHeadKeepsEveryLinearAsAHiddenLayer()
    {
        using var d = new TempDir();
        new SafetensorsFile([P("body.0.weight", 4, 2), P("body.0.bias", 4), P("body.2.weight", 4, 4), P("body.2.bias", 4), P("head.weight", 1, 4), P("head.bias", 1)],
            new Dictionary<string, string> { ["arch"] = "mlp", ["activation"] = "relu" }).Write(d.File("m.safetensors"));
        var loaded = ModelFile.Load(d.File("m.safetensors"));
        var m = (MlpModel)loaded.Model;
        Assert.Equal((2, 4, 2), (m.Inputs, m.Hidden, m.Layers));
        var inspection = ModelInspection.Of(loaded);
        Assert.Equal("head.weight", inspection.Tensors.Single(t => t.Name == "readout.weight").FileTensor);
        Assert.Equal("body.2.weight", inspection.Tensors.Single(t => t.Name == "layers.1.weight").FileTensor);
    }

    [Fact]
    public void ABiasFreeHeadLoadsWithoutABias()
    {
        using var d = new TempDir();
        Parameter[] body = [P("body.0.weight", 4, 2), P("body.0.bias", 4), P("body.2.weight", 4, 4), P("body.2.bias", 4)];
        var md = new Dictionary<string, string> { ["arch"] = "mlp", ["activation"] = "tanh" };
        new SafetensorsFile([.. body, P("head.weight", 1, 4)], md).Write(d.File("free.safetensors"));
        new SafetensorsFile([.. body, P("head.weight", 1, 4), new Parameter("head.bias", [1])], md).Write(d.File("zero.safetensors"));
        var loaded = ModelFile.Load(d.File("free.safetensors"));
        var free = (MlpModel)loaded.Model;
        var zero = (MlpModel)ModelFile.Load(d.File("zero.safetensors")).Model;
        Assert.False(free.Readout.HasBias);
        Assert.True(zero.Readout.HasBias);
        Assert.Equal(zero.AllParameters.TotalSize - 1, free.AllParameters.TotalSize);
        // y = W h: the same outputs as the head with a zero bias.
        var x = new GlobalNtk.Dense.Tensor(Enumerable.Range(0, 6).Select(i => Math.Cos(i)).ToArray(), new GlobalNtk.Dense.AxisShape(("sample", 3), ("input", 2)));
        Assert.Equal(GlobalNtk.Training.ModelGradient.Predict(zero, x).Span.ToArray(), GlobalNtk.Training.ModelGradient.Predict(free, x).Span.ToArray());
        Assert.Contains("  readout: nn.Linear(4, 1, bias=False)", ModelInspection.Of(loaded).Lines());
        Assert.DoesNotContain(ModelInspection.Of(loaded).Tensors, t => t.Name == "readout.bias");
    }

    [Fact]
    public void LinearsWithNoActivationBetweenOrASingleLinearAreRefused()
    {
        using var d = new TempDir();
        Assert.Contains("no activation between", Refused(d, P("0.weight", 4, 2), P("0.bias", 4), P("1.weight", 4, 4), P("1.bias", 4), P("3.weight", 1, 4), P("3.bias", 1)).Message);
        Assert.Contains("missing tensor '*0.bias'", Refused(d, P("0.weight", 4, 2), P("2.weight", 1, 4), P("2.bias", 1)).Message);
        // Only the readout may be bias-free: a hidden Linear without a bias, or the Sequential's last one when a separate head follows.
        Assert.Contains("missing tensor '*2.bias' (the bias of hidden Linear '2' [4]; only the readout may be bias-free)",
            Refused(d, P("0.weight", 4, 2), P("0.bias", 4), P("2.weight", 4, 4), P("4.weight", 1, 4)).Message);
        Assert.Contains("missing tensor '*body.2.bias'",
            Refused(d, P("body.0.weight", 4, 2), P("body.0.bias", 4), P("body.2.weight", 4, 4), P("head.weight", 1, 4), P("head.bias", 1)).Message);
        Assert.Contains("hidden layer 1 of width 4", Refused(d, P("0.weight", 4, 2), P("0.bias", 4), P("2.weight", 3, 4), P("2.bias", 3), P("4.weight", 1, 3), P("4.bias", 1)).Message);
        Assert.Contains("several groups of numbered layers", Refused(d, P("a.0.weight", 4, 2), P("a.0.bias", 4), P("b.0.weight", 4, 2), P("b.0.bias", 4)).Message);
    }
}
