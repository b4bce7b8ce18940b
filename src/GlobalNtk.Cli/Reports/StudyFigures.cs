using ScottPlot;

namespace GlobalNtk.Cli.Reports;

/// <summary>A curve with optional 95 % interval bars at each point (NaN and, on log axes, non-positive values are skipped); <c>Dashed</c> draws open markers (the initialisation curves).</summary>
public sealed record IntervalSeries(string Label, double[] X, double[] Y, double[]? Low = null, double[]? High = null,
    bool Dashed = false, bool Line = true);

/// <summary>
/// The study report's figures: lines with interval bars, saved as PNG and SVG (same plot), log
/// axes drawn as log₁₀ of the data with labelled decades.
/// </summary>
public static class StudyFigures
{
    /// <summary>Renders <paramref name="series"/> to <c>name.png</c> and <c>name.svg</c> in <paramref name="dir"/>; <paramref name="xTicks"/> labels the x axis at those values.</summary>
    public static void Save(string dir, string name, string title, string xLabel, string yLabel, IReadOnlyList<IntervalSeries> series,
        bool logX = false, bool logY = false, double? reference = null, string? referenceLabel = null, string[]? xTickLabels = null, double[]? xTicks = null)
    {
        var plt = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        double T(double v, bool log) => log ? (v > 0 ? Math.Log10(v) : double.NaN) : v;
        int colour = 0;
        bool any = false;
        foreach (var s in series)
        {
            var c = palette.GetColor(colour++);
            var xs = new List<double>(); var ys = new List<double>();
            for (int i = 0; i < Math.Min(s.X.Length, s.Y.Length); i++)
            {
                double x = T(s.X[i], logX), y = T(s.Y[i], logY);
                if (!double.IsFinite(x) || !double.IsFinite(y)) continue;
                xs.Add(x); ys.Add(y);
                if (s.Low is not null && s.High is not null)
                {
                    double lo = T(s.Low[i], logY), hi = T(s.High[i], logY);
                    if (double.IsFinite(lo) && double.IsFinite(hi) && hi > lo)
                    {
                        var bar = plt.Add.Line(x, lo, x, hi);
                        bar.Color = c; bar.LineWidth = 1.5f;
                    }
                }
            }
            if (xs.Count == 0) continue;
            any = true;
            var sc = plt.Add.Scatter(xs.ToArray(), ys.ToArray());
            sc.Color = c; sc.LegendText = s.Label; sc.LineWidth = s.Line ? 2 : 0; sc.MarkerSize = 8;
            // Open markers instead of dash patterns: Skia's SVG backend does not support path effects.
            sc.MarkerShape = s.Dashed ? MarkerShape.OpenCircle : MarkerShape.FilledCircle;
        }
        if (reference is double r && double.IsFinite(T(r, logY)))
        {
            var line = plt.Add.HorizontalLine(T(r, logY));
            line.Color = Colors.Gray; line.LineWidth = 1f;
            if (referenceLabel is not null) line.LegendText = referenceLabel;
        }
        if (!any) plt.Add.Text("no data", 0, 0).LabelFontSize = 18;
        plt.Title(title, 16);
        plt.XLabel(logX ? $"{xLabel} (log scale)" : xLabel, 14);
        plt.YLabel(logY ? $"log₁₀ {yLabel}" : yLabel, 14);
        if (xTickLabels is not null)
            plt.Axes.Bottom.SetTicks(Enumerable.Range(0, xTickLabels.Length).Select(i => (double)i).ToArray(), xTickLabels);
        else if (xTicks is not null) // labelled at the data's own x values (e.g. the hidden sizes on a log axis)
            plt.Axes.Bottom.SetTicks(xTicks.Select(x => T(x, logX)).ToArray(), xTicks.Select(x => x.ToString("G4", System.Globalization.CultureInfo.InvariantCulture)).ToArray());
        plt.ShowLegend(Edge.Right);
        plt.Legend.FontSize = 12;
        plt.Axes.Margins(0.06, 0.1);
        plt.SavePng(Path.Combine(dir, name + ".png"), Plots.Width, Plots.Height);
        plt.SaveSvg(Path.Combine(dir, name + ".svg"), Plots.Width, Plots.Height);
    }
}
