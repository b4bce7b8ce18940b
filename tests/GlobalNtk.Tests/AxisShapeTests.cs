using GlobalNtk.Dense;
using Xunit;

namespace GlobalNtk.Tests;

public class AxisShapeTests
{
    [Fact]
    public void SizesStridesAndReductions()
    {
        var s = new AxisShape(("trial", 2), ("time", 3), ("unit", 4));
        Assert.Equal(24, s.Size);
        Assert.Equal(new[] { 12, 4, 1 }, s.Strides());
        Assert.Equal(3, s["time"]);
        Assert.Equal(new AxisShape(("trial", 2), ("unit", 4)), s.Drop(new[] { "time" }));
        Assert.Equal("(trial=2, time=3, unit=4)", s.ToString());
        var ex = Assert.Throws<ArgumentException>(() => s.IndexOf("layer"));
        Assert.Contains("(trial=2, time=3, unit=4)", ex.Message);
    }

    [Fact]
    public void TensorViewsShareStorage()
    {
        var t = new Tensor(new AxisShape(("trial", 2), ("unit", 3)));
        t.Slice(1).Span[2] = 5;
        Assert.Equal(5, t[1, 2]);
        Assert.Equal(5, t.Reshape(AxisShape.Vector(6)).Span[5]);
        Assert.Throws<ArgumentException>(() => t.Reshape(AxisShape.Vector(5)));
    }
}
