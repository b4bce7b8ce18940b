using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Recurrent;
using GlobalNtk.Models.Transformer;
using GlobalNtk.Ntk;
using Xunit;
using Tensor = GlobalNtk.Dense.Tensor;

namespace GlobalNtk.Tests;

/// <summary>
/// The Kronecker core on a float32 linearisation applies D_s to float32 blocks and forms the Gram,
/// traces and mode contributions in float64 from a float32 Û widened a few rows at a time, instead of
/// widening Û and every state- and site-sized block. Checked against the float64-block path on the same
/// float32 linearisation (its sites seen through a float64-only view): D's values are the same in both
/// (float32 products, unit or ±1 inputs exact in float32), so only float64 summation order differs.
/// </summary>
public class NtkKroneckerCoreFloat32Tests
{
    /// <summary>
    /// Float64 accumulations of the same float32-valued terms in a different order: each sum of n
    /// positive terms moves by at most ~n·ε relative (n ≤ a few thousand here), so 1e-12 has margin and
    /// still fails on any value change (float32 rounding would show at 1e-8).
    /// </summary>
    private const double OrderTolerance = 1e-12;

    public static TheoryData<string> Models => new() { "gru", "lstm-2", "gru-2", "transformer", "mlp" };

    private static (ChainLinearization Lin64, ChainLinearization Lin32) Linearize(string name)
    {
        if (name == "transformer")
        {
            var config = new TransformerConfig(TransformerInput.Linear, 3, 8, 2, 2, 12, Activation.Gelu, Causal: true);
            var model = (IChainModel)TransformerModel.Create(config, 2, seed: 3);
            var x = new Tensor(TestMath.Uniform(2 * 5 * 3, 4), new AxisShape(("sequence", 2), ("token", 5), ("input", 3)));
            return (model.Linearize(x, Precision.F64), model.Linearize(x, Precision.F32));
        }
        if (name == "mlp")
        {
            var model = MlpModel.Create(3, 7, 3, 2, Activation.Tanh, seed: 5);
            var x = new Tensor(TestMath.Uniform(9 * 3, 6), new AxisShape(("trial", 9), ("input", 3)));
            return (model.Linearize(x, Precision.F64), model.Linearize(x, Precision.F32));
        }
        var parts = name.Split('-');
        var rnn = RecurrentModel.Create(new RecurrentConfig(parts[0], 3, 10, 2) { Seed = 7, Layers = parts.Length > 1 ? int.Parse(parts[1]) : 1 });
        var xr = new Tensor(TestMath.Uniform(3 * 8 * 3, 8), rnn.InputShape(3, 8));
        return (rnn.Linearize(xr, Precision.F64), rnn.Linearize(xr, Precision.F32));
    }

    private static void AssertClose(double expected, double actual, double tolerance, string what) =>
        Assert.True(Math.Abs(actual - expected) <= tolerance * Math.Max(Math.Abs(expected), 1e-300), $"{what}: {actual:R} against {expected:R}");

    /// <summary>Every site's spectrum, tr Ĝ, tr K_s and mode contributions of <paramref name="b"/> against <paramref name="a"/>.</summary>
    private static void AssertSameCore(KroneckerCore a, KroneckerCore b, double tolerance)
    {
        Assert.Equal(a.Sites.Count, b.Sites.Count);
        for (int s = 0; s < a.Sites.Count; s++)
        {
            var (x, y) = (a.Sites[s], b.Sites[s]);
            Assert.Equal(x.Method, y.Method);
            Assert.Equal(x.NumericalRank, y.NumericalRank);
            AssertClose(x.Trace, y.Trace, tolerance, $"{x.Name} tr Ĝ");
            for (int i = 0; i < x.Spectrum.Count; i++)
                Assert.True(Math.Abs(x.Spectrum[i] - y.Spectrum[i]) <= tolerance * x.Spectrum[0], $"{x.Name} σ²[{i}]: {y.Spectrum[i]:R} against {x.Spectrum[i]:R}");
            AssertClose(x.TraceK, y.TraceK, tolerance, $"{x.Name} tr K_s");
            double top = x.ModeContributions.Max();
            for (int i = 0; i < x.ModeContributions.Count; i++)
                Assert.True(Math.Abs(x.ModeContributions[i] - y.ModeContributions[i]) <= tolerance * top,
                    $"{x.Name} contribution {i}: {y.ModeContributions[i]:R} against {x.ModeContributions[i]:R}");
            AssertClose(x.TraceStandardError, y.TraceStandardError, tolerance, $"{x.Name} standard error");
        }
        AssertClose(a.TraceK, b.TraceK, tolerance, "tr K");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Float32SitesRunOnFloat32BlocksWithTheFloat64BlockPathsResults(string name)
    {
        var (_, lin32) = Linearize(name);
        Assert.All(lin32.Sites, s => Assert.True(KroneckerCore.AppliesSingle(s), $"site {s.Name} has float32 maps"));
        // A low exact limit sends the transformer's attention sites (and nothing row-local) to Hutchinson.
        long limit = name == "transformer" ? 10 : KroneckerCore.DefaultExactApplicationLimit;
        var native = new KroneckerCore(lin32, limit, probes: 5, seed: 3);
        var widened = new KroneckerCore(new Float64SiteView(lin32), limit, probes: 5, seed: 3);
        if (name == "transformer") Assert.Contains(native.Sites, s => s.Method == TraceMethod.Hutchinson);
        AssertSameCore(widened, native, OrderTolerance);
        // The native path never asked for the widened Û (the view did, through its own sites).
        Assert.All(native.Sites, s => Assert.True(KroneckerCore.AppliesSingle(s.Site)));
    }

    [Theory]
    [InlineData("gru-2")]
    [InlineData("transformer")]
    public void WideningInRowChunksGivesTheWholeWidenedResults(string name)
    {
        var (_, lin32) = Linearize(name);
        long limit = name == "transformer" ? 10 : KroneckerCore.DefaultExactApplicationLimit;
        var whole = new KroneckerCore(new Float64SiteView(lin32), limit, probes: 4, seed: 1);
        KroneckerCore chunked;
        using (SiteCore.WideChunkElements.Override(50))   // a few rows per chunk, and a ragged last one
            chunked = new KroneckerCore(lin32, limit, probes: 4, seed: 1);
        using (SiteCore.WideChunkElements.Override(50))
            AssertSameCore(whole, chunked, OrderTolerance);
        // Left modes formed chunk by chunk: still orthonormal.
        var site = chunked.Sites[0];
        int r = site.NumericalRank, n = site.Rows;
        double[] v;
        using (SiteCore.WideChunkElements.Override(50)) v = site.LeftModes(r);
        for (int i = 0; i < r; i++)
            for (int k = 0; k <= i; k++)
                Assert.Equal(i == k ? 1.0 : 0.0, Numerics.Dot(v.AsSpan(i * n, n), v.AsSpan(k * n, n)), 1e-9);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Float64CoreIsTheFloat64BlockPathExactly(string name)
    {
        var (lin64, _) = Linearize(name);
        Assert.All(lin64.Sites, s => Assert.False(KroneckerCore.AppliesSingle(s)));
        long limit = name == "transformer" ? 10 : KroneckerCore.DefaultExactApplicationLimit;
        AssertSameCore(new KroneckerCore(new Float64SiteView(lin64), limit, probes: 5, seed: 3), new KroneckerCore(lin64, limit, probes: 5, seed: 3), 0.0);
    }

    /// <summary>
    /// Float32 against float64 linearisations: tr K and c(r) within 1e-4 relative (issue 12's bar for
    /// spectral summaries; the float32 forward pass and maps carry ~1e-6 relative error on these nets).
    /// </summary>
    [Theory]
    [MemberData(nameof(Models))]
    public void Float32CoreAgreesWithFloat64(string name)
    {
        var (lin64, lin32) = Linearize(name);
        var (c64, c32) = (new KroneckerCore(lin64), new KroneckerCore(lin32));
        AssertClose(c64.TraceK, c32.TraceK, 1e-4, "tr K");
        var (k64, k32) = (c64.ModeCaptureCurve(), c32.ModeCaptureCurve());
        for (int r = 0; r < k64.Length; r++) Assert.True(Math.Abs(k64[r] - k32[r]) <= 1e-4, $"c({r + 1}): {k32[r]:R} against {k64[r]:R}");
    }
}
