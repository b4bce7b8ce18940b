using GlobalNtk.Dense;
using GlobalNtk.IO;
using GlobalNtk.Models;
using GlobalNtk.Models.Transformer;
using GlobalNtk.Tests.Reference;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// Transformers and MLPs built by PyTorch's own modules (nn.TransformerEncoder(Layer) post-LN and
/// pre-LN, GELU exact and tanh, custom eps, final norm, positional none / learned / sinusoid buffer,
/// √d scale; an nn.Sequential MLP, also stored as F16 and BF16), loaded from the files as a user
/// saved them, against PyTorch's float64 states, outputs, and autograd JVP and VJP
/// (Fixtures/Depth, written by tests/fixtures/make_depth_fixtures.py).
/// </summary>
public class PyTorchDepthFixtureTests
{
    /// <summary>Float64 throughout on both sides: agreement to rounding (observed ≲ 1e-15 relative).</summary>
    private const double Tol = 1e-9;

    public static TheoryData<string> Cases => new()
    {
        "tf_post_relu", "tf_post_gelu_final_learned", "tf_pre_geluTanh_embed_pe", "tf_pre_relu_nopos",
        "mlp_seq_tanh", "mlp_seq_gelutanh_f16", "mlp_seq_tanh_bf16", "mlp_seq_relu_nobias",
    };

    internal static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "Depth", name);

    [Theory]
    [InlineData("tf_post_relu")]
    [InlineData("tf_pre_relu_nopos")]
    public void ABiasFreeHeadLoadsWithoutABiasAndMatchesPyTorchLessTheBias(string name)
    {
        var full = ModelFile.Load(Fixture(name + ".safetensors"));
        var bias = full.Model.Readout.Bias!.Data;
        // The file with its head's bias removed (loaders share the file's arrays): the head is read as nn.Linear(bias=False).
        string biasName = full.FileTensors.Single(t => ReferenceEquals(t.Data, bias)).Name;
        using var d = new TempDir();
        string path = d.File("free.safetensors");
        new SafetensorsFile(full.FileTensors.Where(t => t.Name != biasName), full.Metadata).Write(path);
        var loaded = ModelFile.Load(path);
        Assert.False(loaded.Model.Readout.HasBias);
        Assert.DoesNotContain(loaded.Model.AllParameters, p => p.Name == Readout.BiasName);
        var reference = SafetensorsFile.Read(Fixture(name + ".ref.safetensors")).Tensors;
        var xRef = reference["inputs"];
        var x = new Tensor(xRef.Data, new AxisShape(xRef.Shape.Select((_, i) => "a" + i).ToArray(), xRef.Shape));
        var lin = loaded.Model.Linearize(x);
        var y = loaded.Model.Readout.Forward(lin.States.Span, lin.StateShape).Span.ToArray();
        var expected = reference["outputs"].Data.Select((v, i) => v - bias[i % bias.Length]).ToArray();
        Assert.True(DepthChecks.RelErr(y, expected) < Tol, $"{name}: bias-free outputs");
    }

    /// <summary>
    /// An nn.Sequential whose last Linear has no bias (<c>nn.Linear(5, 2, bias=False)</c>) loads with
    /// a bias-free readout: no bias is invented, and the output NTK Θ_y = C NTK_S C* + Z Zᵀ ⊗ I
    /// (no 1 1ᵀ term) matches PyTorch's J_y J_yᵀ v over every parameter, the head's weight included.
    /// </summary>
    [Fact]
    public void ASequentialWithABiasFreeLastLinearHasABiasFreeReadoutAndPyTorchsOutputNtk()
    {
        var loaded = ModelFile.Load(Fixture("mlp_seq_relu_nobias.safetensors"));
        var model = Assert.IsType<Models.Mlp.MlpModel>(loaded.Model);
        Assert.False(model.Readout.HasBias);
        Assert.Equal((2, 5, 3), (model.Layers, model.Hidden, model.Inputs));
        Assert.DoesNotContain(model.AllParameters, p => p.Name == Readout.BiasName);
        var inspection = ModelInspection.Of(loaded);
        Assert.Equal("net.4.weight", inspection.Tensors.Single(t => t.Name == Readout.WeightName).FileTensor);
        Assert.Equal("nn.Linear(5, 2, bias=False)", inspection.ReadoutText);
        Assert.Empty(inspection.Ignored);

        var reference = SafetensorsFile.Read(Fixture("mlp_seq_relu_nobias.ref.safetensors")).Tensors;
        var xRef = reference["inputs"];
        var lin = model.Linearize(new Tensor(xRef.Data, new AxisShape(("sample", xRef.Shape[0]), ("input", xRef.Shape[1]))));
        var y = new Ntk.NtkOperators(lin).OutputNtk(model.Readout).Apply(reference["out_cot"].Data);
        double err = DepthChecks.RelErr(y, reference["out_ntk"].Data);
        Assert.True(err < Tol, $"output NTK {err:E2}");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void StatesOutputsJvpAndVjpMatchPyTorch(string name)
    {
        var loaded = ModelFile.Load(Fixture(name + ".safetensors"));
        Assert.True(loaded.HasReadout);
        var reference = SafetensorsFile.Read(Fixture(name + ".ref.safetensors")).Tensors;
        var model = loaded.Model;
        var xRef = reference["inputs"];
        var x = new Tensor(xRef.Data, new AxisShape(xRef.Shape.Select((_, i) => "a" + i).ToArray(), xRef.Shape));
        var lin = model.Linearize(x);
        Assert.Equal(reference["states"].Shape, lin.StateShape.Sizes.ToArray());

        Assert.True(DepthChecks.RelErr(lin.States.Span, reference["states"].Data) < Tol, $"{name}: states");
        var y = model.Readout.Forward(lin.States.Span, lin.StateShape);
        Assert.True(DepthChecks.RelErr(y.Span, reference["outputs"].Data) < Tol, $"{name}: outputs");

        // The whole-model tangent dz = P J_θ δθ and its adjoint J_θ* P* q, as autograd computes them.
        var ps = lin.Parameters;
        var dTheta = ps.SelectMany(p => reference["dir." + p.Name].Data).ToArray();
        double jvpErr = DepthChecks.RelErr(DepthChecks.TotalTangent(lin, dTheta), reference["jvp"].Data);
        Assert.True(jvpErr < Tol, $"{name}: JVP {jvpErr:E2}");
        var ntk = new Ntk.NtkOperators(lin);
        var w = ntk.PAdjoint.Apply(reference["cot"].Data);
        var vjp = new double[ps.TotalSize];
        lin.ParamVjp(w, vjp, 1);
        double vjpErr = DepthChecks.RelErr(vjp, ps.SelectMany(p => reference["vjp." + p.Name].Data).ToArray());
        Assert.True(vjpErr < Tol, $"{name}: VJP {vjpErr:E2}");
    }

    /// <summary>
    /// The settings matter: computing a file with one setting flipped by --option moves the states
    /// at least 1000× beyond the tolerance above (tanh vs exact GELU is the smallest, ~3e-5), so the
    /// comparison can fail, as a silent default would make it.
    /// </summary>
    [Theory]
    [InlineData("tf_post_relu", "norm_first", "true")]
    [InlineData("tf_post_gelu_final_learned", "layer_norm_eps", "1e-5")]
    [InlineData("tf_post_gelu_final_learned", "final_norm_eps", "1e-2")]
    [InlineData("tf_pre_geluTanh_embed_pe", "gelu_approximate", "none")]
    [InlineData("tf_pre_geluTanh_embed_pe", "scale_embedding", "false")]
    [InlineData("tf_pre_relu_nopos", "positional", "sinusoidal")]
    [InlineData("tf_pre_relu_nopos", "causal", "false")]
    [InlineData("mlp_seq_tanh", "activation", "relu")]
    [InlineData("mlp_seq_relu_nobias", "activation", "tanh")]
    public void FlippingASettingBreaksTheMatch(string name, string key, string value)
    {
        var loaded = ModelFile.Load(Fixture(name + ".safetensors"), settings: new Dictionary<string, string> { [key] = value });
        var reference = SafetensorsFile.Read(Fixture(name + ".ref.safetensors")).Tensors;
        var xRef = reference["inputs"];
        var lin = loaded.Model.Linearize(new Tensor(xRef.Data, new AxisShape(xRef.Shape.Select((_, i) => "a" + i).ToArray(), xRef.Shape)));
        double err = DepthChecks.RelErr(lin.States.Span, reference["states"].Data);
        Assert.True(err > 1e-6, $"{name} with {key}={value}: states still match PyTorch ({err:E2})");
    }

    [Fact]
    public void SettingsAreReadWithTheirSource()
    {
        var post = ModelFile.Load(Fixture("tf_post_gelu_final_learned.safetensors"));
        var c = ((TransformerModel)post.Model).Config;
        Assert.False(c.NormFirst);
        Assert.Equal(1e-3, c.LayerNormEps);
        Assert.True(c.FinalNorm);
        Assert.Equal(1e-4, c.FinalNormEps);
        Assert.Equal(TransformerPositional.Learned, c.Positional);
        Assert.Equal(5, c.MaxPositions);
        Assert.Equal(SettingSource.Tensors, post.Settings.Single(s => s.Key == "positional").Source);
        Assert.Equal(SettingSource.Metadata, post.Settings.Single(s => s.Key == "norm_first").Source);

        var pre = ModelFile.Load(Fixture("tf_pre_geluTanh_embed_pe.safetensors"));
        var pc = ((TransformerModel)pre.Model).Config;
        Assert.Equal(Models.Mlp.Activation.GeluTanh, pc.Activation);
        Assert.True(pc.ScaleEmbedding);
        Assert.Equal(TransformerPositional.Sinusoidal, pc.Positional);
        Assert.Equal("pe", Assert.Single(pre.Ignored).Tensor.Name);

        // The command line overrides the metadata, and says so.
        var over = ModelFile.Load(Fixture("tf_post_relu.safetensors"), settings: new Dictionary<string, string> { ["layer_norm_eps"] = "1e-6" });
        Assert.Equal(1e-6, ((TransformerModel)over.Model).Config.LayerNormEps);
        Assert.Equal(SettingSource.CommandLine, over.Settings.Single(s => s.Key == "layer_norm_eps").Source);
    }

    [Fact]
    public void IntegerTokenIdsLoadFromNpy()
    {
        var ids = Npy.Read(Fixture("tf_pre_geluTanh_embed_pe.tokens.npy"));
        var reference = SafetensorsFile.Read(Fixture("tf_pre_geluTanh_embed_pe.ref.safetensors")).Tensors;
        Assert.Equal(reference["inputs"].Data, ids.Data);
    }
}
