using ScottPlot;

namespace GlobalNtk.Cli.Reports;

/// <summary>One line of a figure: label, x and y values (NaN/Inf and, on log axes, non-positive points are skipped).</summary>
public sealed record Series(string Label, double[] X, double[] Y, bool Markers = true, bool Dashed = false);

/// <summary>Line charts rendered to PNG with ScottPlot 5 (labelled axes, legend, optional log₁₀ axes).</summary>
public static class Plots
{
    /// <summary>Default figure size in pixels.</summary>
    public const int Width = 1050, Height = 560;

    /// <summary>Renders <paramref name="series"/> into a PNG at <paramref name="path"/>.</summary>
    public static void Lines(string path, string title, string xLabel, string yLabel, IReadOnlyList<Series> series,
        bool logX = false, bool logY = false, double? horizontalLine = null, string? horizontalLineLabel = null, bool integerX = false)
    {
        var plt = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        int colorIndex = 0;
        bool any = false;
        double lo = double.PositiveInfinity, hi = double.NegativeInfinity, xlo = double.PositiveInfinity, xhi = double.NegativeInfinity;
        foreach (var s in series)
        {
            var (xs, ys) = Clean(s.X, s.Y, logX, logY);
            if (xs.Length == 0) continue;
            any = true;
            lo = Math.Min(lo, ys.Min()); hi = Math.Max(hi, ys.Max());
            xlo = Math.Min(xlo, xs.Min()); xhi = Math.Max(xhi, xs.Max());
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
        if (logX && any) plt.Axes.Bottom.TickGenerator = LogTicks(xlo, xhi);
        else if (integerX) plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        if (logY && any) plt.Axes.Left.TickGenerator = LogTicks(lo, hi);
        if (series.Count > 1 || horizontalLineLabel is not null)
        {
            // outside the data area, so it never hides a curve
            plt.ShowLegend(Edge.Right);
            plt.Legend.FontSize = 12;
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

    // Data are plotted as log10 values. Ticks at decades when the range spans several, else at
    // 1-2-5 (or 1..9) multiples so a narrow range still gets labelled ticks.
    private static ScottPlot.TickGenerators.NumericManual LogTicks(double lo, double hi)
    {
        var gen = new ScottPlot.TickGenerators.NumericManual();
        double span = hi - lo;
        double[] mantissas = span >= 3 ? [1] : span >= 1 ? [1, 2, 5] : span >= 0.4 ? [1, 2, 3, 4, 5, 6, 7, 8, 9]
            : Enumerable.Range(0, 19).Select(i => 1 + 0.5 * i).ToArray();
        int step = span >= 12 ? (int)Math.Ceiling(span / 8) : 1;
        int count = 0;
        for (int k = (int)Math.Floor(lo) - 1; k <= (int)Math.Ceiling(hi) + 1; k++)
        {
            foreach (double m in mantissas)
            {
                double pos = k + Math.Log10(m);
                bool inRange = pos >= lo - 0.1 * Math.Max(span, 0.1) && pos <= hi + 0.1 * Math.Max(span, 0.1);
                if (m == 1 && (k % step == 0) && inRange) { gen.AddMajor(pos, FormatPower(k, 1)); count++; }
                else if (m != 1 && inRange) { gen.AddMajor(pos, FormatPower(k, m)); count++; }
                else if (span >= 3 && m == 1) for (int j = 2; j <= 9; j++) gen.AddMinor(k + Math.Log10(j));
            }
        }
        if (count < 2) gen.AddMajor(Math.Round(lo, 2), FormatValue(Math.Pow(10, lo)));
        return gen;
    }

    private static string FormatPower(int k, double m)
    {
        double v = m * Math.Pow(10, k);
        return k is >= -3 and <= 4 ? FormatValue(v) : m == 1 ? $"1e{k}" : $"{m}e{k}";
    }

    private static string FormatValue(double v) => v.ToString(Math.Abs(v) >= 1e5 || Math.Abs(v) < 1e-3 ? "0.#e0" : "0.####", System.Globalization.CultureInfo.InvariantCulture);
}
