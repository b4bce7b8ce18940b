using System.Globalization;
using System.Text;

namespace GlobalNtk.Cli.Reports;

/// <summary>A small CSV builder (invariant culture, round-trip doubles, quoted text when needed).</summary>
public sealed class Csv
{
    private readonly StringBuilder _sb = new();
    private readonly int _columns;

    /// <summary>Starts a table with a header row.</summary>
    public Csv(params string[] header)
    {
        _columns = header.Length;
        Line(header.Cast<object?>().ToArray());
    }

    /// <summary>Appends a row (numbers in round-trip form).</summary>
    public Csv Row(params object?[] cells)
    {
        if (cells.Length != _columns) throw new ArgumentException($"CSV row has {cells.Length} cells, header has {_columns}.");
        Line(cells);
        return this;
    }

    /// <summary>Writes the table.</summary>
    public void Save(string path) => File.WriteAllText(path, _sb.ToString());

    /// <inheritdoc/>
    public override string ToString() => _sb.ToString();

    private void Line(object?[] cells)
    {
        _sb.AppendJoin(',', cells.Select(Format));
        _sb.Append('\n');
    }

    private static string Format(object? v) => v switch
    {
        null => "",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        IFormattable x => x.ToString(null, CultureInfo.InvariantCulture),
        _ => Quote(v.ToString() ?? ""),
    };

    private static string Quote(string s) =>
        s.IndexOfAny([',', '"', '\n']) >= 0 ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;
}
