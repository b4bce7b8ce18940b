using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Ntk;
using GlobalNtk.Operators;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>The scratch pool's bounded retention and reuse (each test uses its own pool instance).</summary>
public class ScratchPoolTests
{
    private const int Big = ScratchPool.SmallLength + 1;

    [Fact]
    public void LargeArraysAreReusedByExactLength()
    {
        var pool = new ScratchPool(1L << 30);
        var a = pool.Rent(Big);
        Assert.Equal(Big, a.Length);
        pool.Return(a);
        Assert.Equal(8L * Big, pool.RetainedBytes);
        Assert.Same(a, pool.Rent(Big));           // same length: the retained array
        Assert.Equal(0, pool.RetainedBytes);
        pool.Return(a);
        Assert.NotSame(a, pool.Rent(Big + 1));    // another length: never a retained array of the wrong size
    }

    [Fact]
    public void RetentionStaysWithinTheCapDroppingTheOldestFirst()
    {
        long cap = 8L * (3 * Big + 1);            // room for the last three returned (Big, Big + 1, Big doubles)
        var pool = new ScratchPool(cap);
        var arrays = Enumerable.Range(0, 5).Select(i => pool.Rent(Big + i % 2)).ToArray();
        foreach (var a in arrays) { pool.Return(a); Assert.True(pool.RetainedBytes <= cap, $"{pool.RetainedBytes} retained, cap {cap}"); }
        // The last three returned are kept (lengths Big, Big+1, Big); the first two were dropped.
        Assert.Equal(8L * (3 * Big + 1), pool.RetainedBytes);
        Assert.Same(arrays[4], pool.Rent(Big));
        Assert.Same(arrays[3], pool.Rent(Big + 1));
        Assert.Same(arrays[2], pool.Rent(Big));
        Assert.Equal(0, pool.RetainedBytes);
        Assert.NotSame(arrays[0], pool.Rent(Big));
    }

    [Fact]
    public void SlightlyLargerArraysAreReusedButNotMuchLargerOnes()
    {
        var pool = new ScratchPool(1L << 30);
        var near = pool.Rent(Big + 5);
        var far = pool.Rent(2 * Big + 2);
        pool.Return(far);
        pool.Return(near);
        Assert.Same(near, pool.Rent(Big));        // smallest that fits, within 2× of the request
        Assert.NotSame(far, pool.Rent(Big));      // more than twice the request: left for larger ones
        Assert.Same(far, pool.Rent(2 * Big));
    }

    [Fact]
    public void AnArrayLargerThanTheCapIsNotRetained()
    {
        var pool = new ScratchPool(8L * Big);
        var a = pool.Rent(2 * Big);
        pool.Return(a);
        Assert.Equal(0, pool.RetainedBytes);
        Assert.NotSame(a, pool.Rent(2 * Big));
    }

    [Fact]
    public void BlockBufferSpanHasTheRequestedLength()
    {
        using var small = new BlockBuffer(10);
        using var big = new BlockBuffer(Big + 3);
        Assert.Equal(10, small.Span.Length);
        Assert.Equal(Big + 3, big.Span.Length);
        Assert.True(ScratchPool.Shared.CapacityBytes == MemoryBudget.ScratchPoolBytes);
    }
}

/// <summary>The rest term tr(J_rest J_rest*) grouped one scalar per step per JVP, and the cheaper form of K.</summary>
public class RestTraceGroupingTests
{
    // tr(J_rest J_rest*) one unit vector at a time (the ungrouped definition).
    private static double PerScalar(ChainLinearization lin, out int restSize)
    {
        var map = new SiteParameterMap(lin);
        int k = restSize = map.RestSize, n = lin.StateShape.Size;
        double total = 0;
        var e = new double[k];
        var y = new double[n];
        for (int p = 0; p < k; p++)
        {
            Array.Clear(e);
            e[p] = 1.0;
            lin.ParamJvpSubset(map.Rest, e, y, 1);
            total += Numerics.Dot(y, y);
        }
        return total;
    }

    [Theory]
    [InlineData("gelu-causal")]
    [InlineData("post-ln-final-learned")]
    [InlineData("embedding")]
    public void TransformerRestTraceIsExactWithFewerJvps(string config)
    {
        var (model, x) = TransformerTests.Setup(config);
        var lin = model.Linearize(x);
        double reference = PerScalar(lin, out int restSize);
        var (trace, applications) = KroneckerCore.RestTraceOf(lin, new SiteParameterMap(lin));
        Assert.True(reference > 0);
        // Only rounding differs (sums of orthogonal images): relative 1e-12.
        Assert.Equal(reference, trace, 1e-12 * reference);
        // LayerNorms of different layers share JVPs: fewer vectors than scalars (probes included).
        var groups = KroneckerCore.RestGroups(lin, new SiteParameterMap(lin), out int probes);
        Assert.True(groups.Count < restSize, $"{groups.Count} groups for {restSize} scalars");
        Assert.Equal(groups.Count + probes, applications);
        Assert.Equal(restSize, groups.Sum(g => g.Length));
        Assert.Equal(restSize, groups.SelectMany(g => g).Distinct().Count());
        Assert.Equal(trace, new NtkOperators(lin).KroneckerCore.RestTrace, 1e-12 * trace);
    }

    [Theory]
    [InlineData("gelu-causal")]
    [InlineData("post-ln-final-learned")]
    public void RestTraceAboveItsLimitIsAnUnbiasedHutchinsonEstimateWithACalibratedError(string config)
    {
        var (model, x) = TransformerTests.Setup(config);
        var lin = model.Linearize(x);
        var map = new SiteParameterMap(lin);
        double exact = KroneckerCore.RestTraceOf(lin, map).Trace;
        KroneckerCore.RestGroups(lin, map, out int detection);
        const int seeds = 40, probes = 24;
        var estimates = new double[seeds];
        var z = new double[seeds];
        for (int s = 0; s < seeds; s++)
        {
            var r = KroneckerCore.RestTraceOf(lin, map, exactLimit: 0, probes, RngKey.FromSeed(s));
            Assert.Equal(TraceMethod.Hutchinson, r.Method);
            Assert.Equal(probes + detection, r.Applications);
            Assert.True(r.StandardError > 0);
            estimates[s] = r.Trace;
            z[s] = (r.Trace - exact) / r.StandardError;
        }
        // Unbiased: the mean of 40 independent estimates lies within 4 of its own standard errors of the exact trace.
        var pooled = SampleStatistics.MeanWithError(estimates);
        Assert.True(Math.Abs(pooled.Mean - exact) <= 4 * pooled.StandardError, $"mean {pooled.Mean} ± {pooled.StandardError} vs exact {exact}");
        // Calibrated: z = (estimate − exact)/SE has mean ≈ 0 (±0.5 ≈ 3/√40) and spread ≈ 1 (t with 23
        // degrees of freedom: 1.05; skewed ‖J v‖² samples widen it a little).
        double meanZ = z.Average(), sdZ = Math.Sqrt(z.Sum(v => (v - meanZ) * (v - meanZ)) / (seeds - 1));
        Assert.InRange(meanZ, -0.5, 0.5);
        Assert.InRange(sdZ, 0.6, 1.6);
        // Exact below the limit, and the core reports which one it used.
        var exactCore = new NtkOperators(lin).KroneckerCore;
        Assert.Equal(TraceMethod.Exact, exactCore.RestTraceMethod);
        Assert.Equal(0.0, exactCore.RestTraceStandardError);
        var estCore = new NtkOperators(lin, 3, long.MaxValue, probes, kroneckerRestExactLimit: 0).KroneckerCore;
        Assert.Equal(TraceMethod.Hutchinson, estCore.RestTraceMethod);
        Assert.True(estCore.IsEstimated);
        Assert.Equal(estCore.RestTraceStandardError, estCore.TraceKStandardError, 1e-12 * estCore.TraceKStandardError);
        Assert.Equal(exactCore.TraceK - exactCore.RestTrace + estCore.RestTrace, estCore.TraceK, 1e-10 * exactCore.TraceK);
    }

    [Fact]
    public void SharedRecurrentGainIsNotGrouped()
    {
        // The gain γ of a recurrent cell acts at every time step: its scalars keep one JVP each.
        var model = new NtkTinyRnn(4, 2, 0.5, 5, jointSite: true);
        var lin = model.Linearize(NtkTinyRnn.RandomInputs(2, 4, 2, 6));
        double reference = PerScalar(lin, out int restSize);
        var groups = KroneckerCore.RestGroups(lin, new SiteParameterMap(lin), out _);
        Assert.Equal(restSize, groups.Count);
        Assert.Equal(reference, KroneckerCore.RestTraceOf(lin, new SiteParameterMap(lin)).Trace, 1e-12 * reference);
    }

    [Fact]
    public void AppliedFormOfKIsKroneckerStepByStepOnBlockChainsGenericOnTheFusedTransformer()
    {
        var (model, x) = TransformerTests.Setup("gelu-causal");
        var ops = new NtkOperators(model.Linearize(x));
        Assert.Same(ops.KKronecker, ops.KApplied);   // block chain: the step kernel, one sweep pair per layer
        Assert.Same(ops.NtkS, ops.NtkSApplied);
        var fused = new NtkOperators(model.LinearizeFused(x));
        Assert.Same(fused.K, fused.KApplied);        // no step kernel: one generic pass beats a pass per site
        int s = ops.NtkS.Domain.Size;
        var q = NtkChecks.Random(3 * s, 12);
        Assert.True(NtkChecks.RelDiff(fused.NtkSApplied.ApplyBlock(q, 3), ops.NtkS.ApplyBlock(q, 3)) <= 1e-12);
        Assert.True(NtkChecks.RelDiff(fused.KApplied.ApplyBlock(q, 3), ops.KApplied.ApplyBlock(q, 3)) <= 1e-12);

        var rnn = new NtkTinyRnn(4, 2, 0.5, 5, jointSite: false);
        var rops = new NtkOperators(rnn.Linearize(NtkTinyRnn.RandomInputs(2, 4, 2, 6)));
        Assert.Same(rops.KKronecker, rops.KApplied);
        Assert.Same(rops.NtkS, rops.NtkSApplied);
    }
}
