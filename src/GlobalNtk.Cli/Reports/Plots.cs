using ScottPlot;

namespace GlobalNtk.Cli.Reports;

/// <summary>One line of a figure: label, x and y values (NaN/Inf and, on log axes, non-positive points are skipped).</summary>
public sealed record Series(string Label, double[] X, double[] Y, bool Markers = true, bool Dashed = false);

/// <summary>Line charts rendered to PNG with ScottPlot 5 (labelled axes, legend, optional log₁₀ axes).</summary>
public static class Plots
{
    /// <summary>Default figure size in pixels.</summary>
    public const int Width = 900, Height = 560;

    /// <summary>Renders <paramref name="series"/> into a PNG at <paramref name="path"/>.</summary>
    public static void Lines(string path, string title, string xLabel, string yLabel, IReadOnlyList<Series> series,
        bool logX = false, bool logY = false, double? horizontalLine = null, string? horizontalLineLabel = null)
    {
        var plt = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        int colorIndex = 0;
        bool any = false;
        foreach (var s in series)
        {
            var (xs, ys) = Clean(s.X, s.Y, logX, logY);
            if (xs.Length == 0) continue;
            any = true;
            var sc = plt.Add.Scatter(xs, ys);
            sc.Color = palette.GetColor(colorIndex++);
            sc.LegendText = s.Label;
            sc.LineWidth = 2;
            sc.MarkerSize = s.Markers ? 6 : 0;
            if (s.Dashed) sc.LinePattern = LinePattern.Dashed;
        }
        if (horizontalLine is double h && (!logY || h > 0))
        {
            var line = plt.Add.HorizontalLine(logY ? Math.Log10(h) : h);
            line.Color = Colors.Gray;
            line.LinePattern = LinePattern.Dotted;
            line.LineWidth = 1.5f;
            if (horizontalLineLabel is not null) line.LegendText = horizontalLineLabel;
        }
        if (!any)
        {
            var t = plt.Add.Text("no data", 0, 0);
            t.LabelFontSize = 18;
        }
        plt.Title(title, 17);
        plt.XLabel(xLabel + (logX ? " (log scale)" : ""), 15);
        plt.YLabel(yLabel + (logY ? " (log scale)" : ""), 15);
        plt.Axes.Bottom.TickLabelStyle.FontSize = 13;
        plt.Axes.Left.TickLabelStyle.FontSize = 13;
        if (logX) plt.Axes.Bottom.TickGenerator = LogTicks();
        if (logY) plt.Axes.Left.TickGenerator = LogTicks();
        if (series.Count > 1 || horizontalLineLabel is not null)
        {
            plt.ShowLegend(Alignment.UpperRight);
            plt.Legend.FontSize = 13;
        }
        plt.Axes.Margins(0.05, 0.1);
        plt.SavePng(path, Width, Height);
    }

    private static (double[] X, double[] Y) Clean(double[] x, double[] y, bool logX, bool logY)
    {
        var xs = new List<double>(); var ys = new List<double>();
        for (int i = 0; i < Math.Min(x.Length, y.Length); i++)
        {
            double a = x[i], b = y[i];
            if (!double.IsFinite(a) || !double.IsFinite(b)) continue;
            if (logX) { if (a <= 0) continue; a = Math.Log10(a); }
            if (logY) { if (b <= 0) continue; b = Math.Log10(b); }
            xs.Add(a); ys.Add(b);
        }
        return (xs.ToArray(), ys.ToArray());
    }

    // Data are plotted as log10 values; ticks sit on integer decades and are labelled 10^k.
    private static ScottPlot.TickGenerators.NumericAutomatic LogTicks() => new()
    {
        MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
        IntegerTicksOnly = true,
        LabelFormatter = v => FormatPower(v),
    };

    private static string FormatPower(double exponent)
    {
        double v = Math.Pow(10, exponent);
        return exponent is >= -2 and <= 4 ? v.ToString("0.##", System.Globalization.CultureInfo.InvariantCulture) : $"1e{exponent:0}";
    }
}
