using GlobalNtk.Dense;
using GlobalNtk.Operators;
using Xunit;
using static GlobalNtk.Tests.OperatorTestUtil;

namespace GlobalNtk.Tests;

public class OperatorReductionTests
{
    private static readonly AxisShape S = new(("trial", 3), ("time", 4), ("unit", 5)); // 60

    private static int Flat(int b, int t, int h) => (b * 4 + t) * 5 + h;

    /// <summary>Dense definition: [tr_{trial,unit} A]_{t,t'} = Σ_{b,h} A[(b,t,h),(b,t',h)].</summary>
    private static double[] TimePartialTrace(DenseOperator a)
    {
        var r = new double[16];
        for (int t = 0; t < 4; t++) for (int t2 = 0; t2 < 4; t2++)
            for (int b = 0; b < 3; b++) for (int h = 0; h < 5; h++) r[t * 4 + t2] += a[Flat(b, t, h), Flat(b, t2, h)];
        return r;
    }

    [Fact]
    public void PartialTraceMatchesDenseDefinitionOnEveryAxisSet()
    {
        var a = RandomDense(new Random(1), S, S);
        var viaOperator = a * 1.0; // not a DenseOperator: exercises the probe path (exact: traced size ≤ probes)
        Assert.IsNotType<DenseOperator>(viaOperator);
        var pt = Reductions.PartialTrace(a, ["trial", "unit"]);
        Assert.Equal(new AxisShape(("time", 4)), pt.Domain);
        Assert.True(MaxAbsDiff(TimePartialTrace(a), pt.Matrix) < 1e-12);
        var ptOp = Reductions.PartialTraceWithError(viaOperator, ["unit", "trial"], probes: 15);
        Assert.True(ptOp.Exact);
        Assert.True(MaxAbsDiff(TimePartialTrace(a), ptOp.Value.Matrix) < 1e-12);

        // Space: tr_{trial,time} A is 5×5; trial: tr_{time,unit} A is 3×3; full trace for all axes.
        var space = new double[25];
        var trial = new double[9];
        for (int b = 0; b < 3; b++) for (int t = 0; t < 4; t++) for (int h = 0; h < 5; h++)
        {
            for (int h2 = 0; h2 < 5; h2++) space[h * 5 + h2] += a[Flat(b, t, h), Flat(b, t, h2)];
            for (int b2 = 0; b2 < 3; b2++) trial[b * 3 + b2] += a[Flat(b, t, h), Flat(b2, t, h)];
        }
        Assert.True(MaxAbsDiff(space, Reductions.PartialTrace(a, ["trial", "time"]).Matrix) < 1e-12);
        Assert.True(MaxAbsDiff(space, Reductions.PartialTrace(viaOperator, ["trial", "time"], 12).Matrix) < 1e-12);
        Assert.True(MaxAbsDiff(trial, Reductions.PartialTrace(viaOperator, ["time", "unit"], 20).Matrix) < 1e-12);
        Assert.Equal(a.Trace(), Reductions.PartialTrace(a, ["trial", "time", "unit"]).Matrix[0], 12);
    }

    [Fact]
    public void ProbedPartialTraceIsUnbiasedWithinStandardErrors()
    {
        var shape = new AxisShape(("trial", 4), ("time", 3), ("unit", 30)); // traced size 120 > probes
        var a = RandomDense(new Random(2), shape, shape);
        var exact = Reductions.PartialTrace(a, ["trial", "unit"]).Matrix; // dense: exact
        var est = Reductions.PartialTraceWithError(a * 1.0, ["trial", "unit"], probes: 100, seed: 9);
        Assert.False(est.Exact);
        Assert.Equal(100, est.Probes);
        // Entrywise z-scores of an unbiased mean of 100 samples: within 4 SE (9 entries), SE not degenerate.
        for (int i = 0; i < 9; i++)
        {
            Assert.True(est.StandardError[i] > 0);
            Assert.True(Math.Abs(est.Value.Matrix[i] - exact[i]) < 4 * est.StandardError[i], $"entry {i}");
        }
        var again = Reductions.PartialTraceWithError(a * 1.0, ["trial", "unit"], probes: 100, seed: 9);
        Assert.Equal(est.Value.Matrix, again.Value.Matrix);
    }

    [Fact]
    public void AxisAverageMatchesDenseDefinitionAndDiffersFromPartialTrace()
    {
        var a = RandomDense(new Random(3), S, S);
        // [avg A]_{t,t'} = (1/(B·H)) Σ_{b,h,b',h'} A[(b,t,h),(b',t',h')]
        var expected = new double[16];
        for (int t = 0; t < 4; t++) for (int t2 = 0; t2 < 4; t2++)
        {
            double s = 0;
            for (int b = 0; b < 3; b++) for (int h = 0; h < 5; h++) for (int b2 = 0; b2 < 3; b2++) for (int h2 = 0; h2 < 5; h2++)
                s += a[Flat(b, t, h), Flat(b2, t2, h2)];
            expected[t * 4 + t2] = s / 15;
        }
        var avg = Reductions.AxisAverage(a * 1.0, ["trial", "unit"]);
        Assert.True(MaxAbsDiff(expected, avg.Matrix) < 1e-12);
        Assert.True(MaxAbsDiff(expected, Reductions.PartialTrace(a, ["trial", "unit"]).Matrix) > 1e-3);

        // For a Kronecker product they agree up to normalisation: tr_{B,H}(I ⊗ G ⊗ I) = B·H·G, avg = G.
        var g = RandomDense(new Random(4), new AxisShape(("time", 4)), new AxisShape(("time", 4)));
        var kron = LinearOperator.Identity(new AxisShape(("trial", 3))).Kron(g).Kron(LinearOperator.Identity(new AxisShape(("unit", 5))));
        Assert.Equal(S, kron.Domain);
        var avgK = Reductions.AxisAverage(kron, ["trial", "unit"]).Matrix;
        var ptK = Reductions.PartialTrace(kron, ["trial", "unit"], 20).Matrix;
        // avg: restricting to constant inputs over (trial, unit) and averaging outputs returns G·(1) per (b,h) → G.
        Assert.True(MaxAbsDiff(g.Matrix, avgK) < 1e-12);
        Assert.True(MaxAbsDiff(g.Matrix.Select(x => 15 * x).ToArray(), ptK) < 1e-12);
    }

    [Fact]
    public void ReductionsRejectBadAxesAndNonSquareOperators()
    {
        var a = RandomDense(new Random(5), S, S);
        var ex = Assert.Throws<ShapeMismatchException>(() => Reductions.PartialTrace(a, ["layer"]));
        Assert.Contains("layer", ex.Message);
        Assert.Contains(S.ToString(), ex.Message);
        Assert.Throws<ShapeMismatchException>(() => Reductions.AxisAverage(RandomDense(new Random(6), S, AxisShape.Vector(3)), ["time"]));
    }
}
