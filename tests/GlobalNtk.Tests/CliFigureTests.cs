using System.Xml.Linq;
using GlobalNtk.Cli.Reports;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// Figures: an SVG beside every PNG, error bars, visible coinciding curves, and a note for values a
/// log axis cannot show. Checked on the SVG's structure and text, never on rendered fonts or pixels.
/// </summary>
public class CliFigureTests
{
    private static readonly double[] X = [1, 2, 3, 4, 5];

    private static XDocument Render(TempDir d, string name, IReadOnlyList<Series> series, bool logY, out int leftOut)
    {
        string png = d.File(name + ".png");
        leftOut = Plots.Lines(png, "title", "x", "y", series, logY: logY);
        Assert.True(File.Exists(png));
        Assert.Equal(d.File(name + ".svg"), Plots.SvgPath(png));
        return XDocument.Load(Plots.SvgPath(png));
    }

    private static string Text(XDocument svg) => string.Concat(svg.Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value + "\n"));

    // Stroke segments: one per "M" of every path, plus line/polyline elements.
    private static int Strokes(XDocument svg) => svg.Descendants().Sum(e => e.Name.LocalName switch
    {
        "path" => ((string?)e.Attribute("d") ?? "").Count(ch => ch == 'M'),
        "line" or "polyline" => 1,
        _ => 0,
    });

    [Fact]
    public void WritesSvgBesidePng()
    {
        using var d = new TempDir();
        var svg = Render(d, "fig", [new Series("rank", X, [5, 4, 3, 2, 1])], logY: false, out int leftOut);
        Assert.Equal("svg", svg.Root!.Name.LocalName);
        Assert.Equal(0, leftOut);
        Assert.Contains("title", Text(svg));
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(d.File("fig.png"))[..4]);
    }

    [Fact]
    public void SaysHowManyValuesALogAxisLeftOut()
    {
        using var d = new TempDir();
        var svg = Render(d, "log", [new Series("a", X, [1, 0, 0.1, -2, double.NaN]), new Series("b", X, [1, 2, 3, 4, 0])], logY: true, out int leftOut);
        Assert.Equal(3, leftOut); // 0, −2 and 0; NaN is a missing value, not a value ≤ 0
        Assert.Contains("3 values ≤ 0 not shown", Text(svg));

        var linear = Render(d, "lin", [new Series("a", X, [1, 0, 0.1, -2, 3])], logY: false, out int none);
        Assert.Equal(0, none);
        Assert.DoesNotContain("not shown", Text(linear));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DrawsOneErrorBarPerPoint(bool logY)
    {
        using var d = new TempDir();
        double[] y = [10, 8, 6, 4, 2];
        // A wide second curve fixes the axis range, so both figures get the same ticks and grid.
        var wide = new Series("wide", X, [0.5, 40, 0.5, 40, 0.5]);
        var plain = Render(d, "plain", [new Series("PR", X, y), wide], logY, out _);
        var bars = Render(d, "bars", [new Series("PR", X, y, Error: [1, 1, 1, 1, 1.5]), wide], logY, out int leftOut);
        Assert.Equal(0, leftOut);
        Assert.True(Strokes(bars) - Strokes(plain) >= y.Length, $"error bars added {Strokes(bars) - Strokes(plain)} strokes for {y.Length} points");
    }

    [Fact]
    public void MarksACurveThatLiesOnAnother()
    {
        using var d = new TempDir();
        double[] y = [100, 10, 1, 0.1, 0.01];
        var svg = Render(d, "same", [new Series("Ĝ[ih] init", X, y), new Series("Ĝ[ih] trained", X, y.ToArray(), Dashed: true), new Series("Ĝ[hh] init", X, y.Select(v => 2 * v).ToArray())],
            logY: true, out _);
        string text = Text(svg);
        Assert.Contains("(same as Ĝ[ih] init)", text);
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(text, "same as"));
    }
}
