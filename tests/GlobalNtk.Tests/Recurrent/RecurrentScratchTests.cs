using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Recurrent;
using Xunit;
using static GlobalNtk.Tests.Recurrent.RecurrentTestKit;

namespace GlobalNtk.Tests.Recurrent;

/// <summary>
/// The row-chunked maps of the recurrent linearisation (J_θ, J_θ*, K's site kernel, the sites' D
/// and D*) with pooled scratch: chunk size, a warm pool and concurrent callers must not change
/// the results. A scratch block shared by two callers, or a chunk that skips or repeats rows,
/// makes these differ.
/// </summary>
public class RecurrentScratchTests
{
    private const int Count = 2;

    /// <summary>Every row-chunked map on fixed inputs: J_θ, J_θ*, K's site kernel, the last site's D and D*.</summary>
    private static double[][] Maps(ChainLinearization lin)
    {
        int size = lin.StateShape.Size, m = lin.Parameters.TotalSize;
        var q = Random(Count * size, 5);
        var pj = new double[Count * size]; lin.ParamJvp(Random(Count * m, 6), pj, Count);
        var th = new double[Count * m]; lin.ParamVjp(q, th, Count);
        var k = new double[Count * size]; lin.TryAddSiteKernel(q, k, Count);   // stacked: none (zeros)
        var site = lin.Sites[^1];
        var da = new double[Count * size]; site.ApplyDAdd(Random(Count * site.Rows * site.OutDim, 7), da, Count);
        var dt = new double[Count * site.Rows * site.OutDim]; site.ApplyDAdjoint(q, dt, Count);
        return [pj, th, k, da, dt];
    }

    private static ChainLinearization Linearize(string arch, Precision precision)
    {
        var model = Model(arch);
        return model.Linearize(Inputs(model), InitialState(model), precision);
    }

    private static void AssertClose(double[][] expected, double[][] actual, double tol, string what)
    {
        string[] names = ["J_θ", "J_θ*", "K sites", "D", "D*"];
        for (int i = 0; i < expected.Length; i++)
        {
            double err = RelErr(actual[i], expected[i]);
            Assert.True(err <= tol, $"{what}: {names[i]} differs by {err:E2} (tolerance {tol:E0})");
        }
    }

    [Theory]
    [InlineData("gru", "f64")][InlineData("lstm", "f64")][InlineData("leaky-rnn", "f64")][InlineData("rnn-tanh", "f64")]
    [InlineData("gru", "f32")][InlineData("lstm", "f32")]
    public void RowChunksGiveTheWholeBlockResult(string arch, string precisionName)
    {
        Assert.True(PrecisionNames.TryParse(precisionName, out var precision));
        var lin = Linearize(arch, precision);
        var whole = Maps(lin);   // default budget: all B·T = 15 rows in one chunk
        Assert.Contains(whole, a => a.Any(v => v != 0));
        int p = ((RecurrentLinearization)lin).PreWidth;
        // 1, 2 and 4 rows per chunk: chunks that divide B·T = 15 unevenly, and single rows.
        foreach (int rows in new[] { 1, 2, 4 })
            using (RecurrentLinearization.RowChunkElements.Override((long)rows * p))
                // Only the order of the J_θ* sums over rows changes: rounding of the compute type.
                AssertClose(whole, Maps(lin), precision == Precision.F32 ? 1e-5 : 1e-13, $"{arch} {precisionName}, {rows} rows per chunk");
    }

    [Theory]
    [InlineData("gru", "f64")][InlineData("lstm", "f32")]
    public void StackedSitesInRowChunksGiveTheWholeBlockResult(string arch, string precisionName)
    {
        Assert.True(PrecisionNames.TryParse(precisionName, out var precision));
        var model = RecurrentModel.Create(new RecurrentConfig(arch, N, H, O) { Seed = 7, Gain = 1.3, Layers = 2 });
        var lin = model.Linearize(Inputs(model), null, precision);
        Assert.IsNotType<RecurrentLinearization>(lin);
        var whole = Maps(lin);
        int width = Math.Max(model.Config.GateCount * H * (arch == "gru" ? 2 : 1), lin.StateSize);
        // The last site is layer 1's: its D* carries q down from layer 2 of the same row.
        foreach (int rows in new[] { 1, 4 })
            using (RecurrentLinearization.RowChunkElements.Override((long)rows * width))
                AssertClose(whole, Maps(lin), precision == Precision.F32 ? 1e-5 : 1e-13, $"stacked {arch} {precisionName}, {rows} rows per chunk");
        // The first site (layer 0) maps through both layers.
        var first = lin.Sites[0];
        var q = Random(Count * lin.StateShape.Size, 9);
        var a0 = new double[Count * first.Rows * first.OutDim]; first.ApplyDAdjoint(q, a0, Count);
        var d0 = new double[Count * lin.StateShape.Size]; first.ApplyDAdd(a0, d0, Count);
        using (RecurrentLinearization.RowChunkElements.Override(3L * width))
        {
            var a1 = new double[a0.Length]; first.ApplyDAdjoint(q, a1, Count);
            var d1 = new double[d0.Length]; first.ApplyDAdd(a0, d1, Count);
            double tol = precision == Precision.F32 ? 1e-5 : 1e-13;
            Assert.True(RelErr(a1, a0) <= tol && RelErr(d1, d0) <= tol, $"layer-0 site: D* {RelErr(a1, a0):E2}, D {RelErr(d1, d0):E2}");
        }
    }

    [Fact]
    public void WarmPoolAndConcurrentCallersGiveTheSameResults()
    {
        var lin = Linearize("gru", Precision.F64);
        var cold = Maps(lin);
        // The pool now holds dirty arrays of these lengths: contents must never leak into a result.
        AssertClose(cold, Maps(lin), 0, "warm pool");
        long twoRows = 2L * ((RecurrentLinearization)lin).PreWidth;
        using (RecurrentLinearization.RowChunkElements.Override(twoRows))
        {
            var chunked = Maps(lin);
            // Eight callers at once on one linearisation (the analysis applies operators from
            // parallel estimators): each must get its own scratch.
            var results = new double[8][][];
            Parallel.For(0, results.Length, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
            {
                using (RecurrentLinearization.RowChunkElements.Override(twoRows))
                    results[i] = Maps(lin);
            });
            foreach (var r in results) AssertClose(chunked, r, 0, "concurrent callers");
        }
    }
}
