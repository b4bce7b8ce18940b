using ScottPlot;

namespace GlobalNtk.Cli.Reports;

/// <summary>
/// One line of a figure: label, x and y values (NaN/Inf and, on log axes, non-positive points are
/// skipped), and optionally one standard error per point, drawn as an error bar (±1 SE).
/// </summary>
/// <remarks>
/// Solid lines carry filled circles; dashed lines carry larger open squares, so a dashed curve that
/// lies exactly on a solid one stays visible.
/// </remarks>
public sealed record Series(string Label, double[] X, double[] Y, bool Markers = true, bool Dashed = false, double[]? Error = null);

/// <summary>
/// Line charts rendered with ScottPlot 5 as PNG and, beside it, SVG (same name, <c>.svg</c>):
/// labelled axes, legend, optional log₁₀ axes, error bars.
/// </summary>
public static class Plots
{
    /// <summary>Default figure size in pixels.</summary>
    public const int Width = 1050, Height = 560;

    /// <summary>
    /// Renders <paramref name="series"/> into a PNG at <paramref name="path"/> and an SVG beside it.
    /// On a log axis, values ≤ 0 cannot be drawn: the figure then says how many were left out.
    /// Returns that count.
    /// </summary>
    public static int Lines(string path, string title, string xLabel, string yLabel, IReadOnlyList<Series> series,
        bool logX = false, bool logY = false, double? horizontalLine = null, string? horizontalLineLabel = null, bool integerX = false)
    {
        var plt = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        int colorIndex = 0;
        bool any = false;
        int leftOut = 0;
        var drawn = new List<(string Label, double[] X, double[] Y)>();
        double lo = double.PositiveInfinity, hi = double.NegativeInfinity, xlo = double.PositiveInfinity, xhi = double.NegativeInfinity;
        foreach (var s in series)
        {
            var (xs, ys, err, dropped) = Clean(s, logX, logY);
            leftOut += dropped;
            if (xs.Length == 0) continue;
            any = true;
            lo = Math.Min(lo, ys.Min()); hi = Math.Max(hi, ys.Max());
            xlo = Math.Min(xlo, xs.Min()); xhi = Math.Max(xhi, xs.Max());
            var color = palette.GetColor(colorIndex++);
            if (err is { } e)
            {
                var bars = new ScottPlot.Plottables.ErrorBar(xs, ys, null, null, e.Below, e.Above) { Color = color, LineWidth = 1.5f, CapSize = 6 };
                plt.Add.Plottable(bars);
                lo = Math.Min(lo, ys.Select((y, i) => y - e.Below[i]).Min()); hi = Math.Max(hi, ys.Select((y, i) => y + e.Above[i]).Max());
            }
            var sc = plt.Add.Scatter(xs, ys);
            sc.Color = color;
            // Say so when this curve lies exactly on an earlier one (it would otherwise look missing).
            var same = drawn.FirstOrDefault(d => d.X.SequenceEqual(xs) && d.Y.SequenceEqual(ys));
            sc.LegendText = same.Label is null ? s.Label : $"{s.Label} (same as {same.Label})";
            drawn.Add((s.Label, xs, ys));
            sc.LineWidth = 2;
            sc.MarkerShape = s.Dashed ? MarkerShape.OpenSquare : MarkerShape.FilledCircle;
            sc.MarkerSize = !s.Markers ? 0 : s.Dashed ? 11 : 6;
            if (s.Dashed) sc.LinePattern = LinePattern.Dashed;
        }
        if (leftOut > 0)
        {
            var note = plt.Add.Annotation($"{leftOut} value{(leftOut == 1 ? "" : "s")} ≤ 0 not shown (log scale)", Alignment.LowerLeft);
            note.LabelBackgroundColor = Colors.White.WithAlpha(0.85);
            note.LabelBorderColor = Colors.Gray;
            note.LabelFontSize = 13;
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
        plt.SaveSvg(SvgPath(path), Width, Height);
        return leftOut;
    }

    /// <summary>Where the SVG twin of the figure at <paramref name="pngPath"/> goes.</summary>
    public static string SvgPath(string pngPath) => Path.ChangeExtension(pngPath, ".svg");

    // Plotted coordinates (log10 on log axes), error-bar lengths below/above each point in those
    // coordinates, and how many finite points a log axis had to leave out because they are ≤ 0.
    private static (double[] X, double[] Y, (double[] Below, double[] Above)? Error, int LeftOut) Clean(Series s, bool logX, bool logY)
    {
        var xs = new List<double>(); var ys = new List<double>(); var below = new List<double>(); var above = new List<double>();
        int leftOut = 0;
        for (int i = 0; i < Math.Min(s.X.Length, s.Y.Length); i++)
        {
            double a = s.X[i], b = s.Y[i];
            if (!double.IsFinite(a) || !double.IsFinite(b)) continue;
            if ((logX && a <= 0) || (logY && b <= 0)) { leftOut++; continue; }
            double se = s.Error is { } e && i < e.Length && double.IsFinite(e[i]) && e[i] > 0 ? e[i] : 0;
            if (logX) a = Math.Log10(a);
            if (logY)
            {
                double top = Math.Log10(b + se), y = Math.Log10(b);
                // A bar that reaches 0 or below has no end on a log axis: it runs one decade down.
                double bottom = b - se > 0 ? Math.Log10(b - se) : y - 1;
                xs.Add(a); ys.Add(y); below.Add(y - bottom); above.Add(top - y);
            }
            else { xs.Add(a); ys.Add(b); below.Add(se); above.Add(se); }
        }
        var err = s.Error is null ? ((double[], double[])?)null : (below.ToArray(), above.ToArray());
        return (xs.ToArray(), ys.ToArray(), err, leftOut);
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
