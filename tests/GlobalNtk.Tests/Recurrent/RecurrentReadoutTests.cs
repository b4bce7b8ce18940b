using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Operators;
using Xunit;
using static GlobalNtk.Tests.Recurrent.RecurrentTestKit;

namespace GlobalNtk.Tests.Recurrent;

/// <summary>The readout: forward by loops, C's adjoint, parameter VJP, last-step layout (transformers).</summary>
public class RecurrentReadoutTests
{
    [Theory]
    [InlineData(false)][InlineData(true)]
    public void ForwardOperatorAndGradientsMatchLoops(bool lastStepOnly)
    {
        // A 4-axis state (sequence, layer, token, feature) read at features [2, 5).
        var shape = new AxisShape(("sequence", 2), ("layer", 3), ("token", 4), ("feature", 6));
        var readout = Readout.Initialize(3, 2, new Random(1), featureOffset: 2, lastStepOnly: lastStepOnly);
        var z = Random(shape.Size, 2);
        var y = readout.Forward(z, shape);
        var expectedShape = lastStepOnly
            ? new AxisShape(("sequence", 2), ("token", 4), ("output", 2))
            : new AxisShape(("sequence", 2), ("layer", 3), ("token", 4), ("output", 2));
        Assert.Equal(expectedShape, y.Shape);
        var w = readout.Weight.Data; var bias = readout.Bias!.Data;
        var dy = Random(y.Length, 3);
        var dW = new double[6]; var dB = new double[2];
        int r = 0;
        for (int s = 0; s < 2; s++)
            for (int l = lastStepOnly ? 2 : 0; l < 3; l++)
                for (int t = 0; t < 4; t++, r++)
                    for (int o = 0; o < 2; o++)
                    {
                        double acc = bias[o];
                        for (int i = 0; i < 3; i++)
                        {
                            double zi = z[((s * 3 + l) * 4 + t) * 6 + 2 + i];
                            acc += w[o * 3 + i] * zi;
                            dW[o * 3 + i] += dy[r * 2 + o] * zi;
                        }
                        dB[o] += dy[r * 2 + o];
                        Assert.Equal(acc, y.Span[r * 2 + o], 1e-13);
                    }
        var gW = new double[6]; var gB = new double[2];
        readout.ParameterVjp(z, shape, dy, gW, gB);
        Assert.True(RelErr(gW, dW) < 1e-14 && RelErr(gB, dB) < 1e-14);
        Assert.Equal(r * 3, readout.Features(z, shape).Length);

        // C is the linear part; block of 3 vectors; adjoint identity.
        var c = readout.AsOperator(shape);
        var x = Random(3 * shape.Size, 4); var q = Random(3 * c.Range.Size, 5);
        var cx = c.ApplyBlock(x, 3); var ctq = c.ApplyAdjointBlock(q, 3);
        Assert.True(RelDiff(Dot(cx, q), Dot(x, ctq)) < 1e-12);
        var y0 = readout.Forward(x.AsSpan(0, shape.Size), shape).Span.ToArray();
        for (int i = 0; i < y0.Length; i++) Assert.Equal(y0[i] - bias[i % 2], cx[i], 1e-13);
    }

    [Fact]
    public void BadShapesAreNamed()
    {
        var w = new Parameter(Readout.WeightName, [2, 3]);
        Assert.Contains("'readout.bias' has shape [3], expected [2]",
            Assert.Throws<ArgumentException>(() => new Readout(w, new Parameter(Readout.BiasName, [3]))).Message);
        var readout = new Readout(w, new Parameter(Readout.BiasName, [2]), featureOffset: 2);
        var shape = new AxisShape(("trial", 2), ("time", 3), ("unit", 4));
        var ex = Assert.Throws<ShapeMismatchException>(() => readout.Forward(new double[shape.Size], shape));
        Assert.Contains("(trial=2, time=3, unit=4)", ex.Message);
        var bad = TestMath.WithEntry(new Parameter(Readout.WeightName, [2, 3]), 4, double.NaN);
        Assert.Throws<NonFiniteException>(() => new Readout(bad, new Parameter(Readout.BiasName, [2])));
    }
}
