using System.Globalization;
using System.Text;
using GlobalNtk.IO;

namespace GlobalNtk.Training;

/// <summary>
/// Layout of a training folder: <c>ckpt-NNNNNN.safetensors</c> (the model after NNNNNN updates,
/// PyTorch names, metadata with arch, hyper-parameters and step), <c>optim-NNNNNN.safetensors</c>
/// (optimizer state for resuming), <c>log.csv</c> and <c>summary.json</c>.
/// </summary>
public static class Checkpoints
{
    /// <summary>File name of the loss/accuracy log.</summary>
    public const string LogFile = "log.csv";
    /// <summary>File name of the final summary.</summary>
    public const string SummaryFile = "summary.json";
    /// <summary>Header of <see cref="LogFile"/>.</summary>
    public const string LogHeader = "step,loss,grad_norm,eval_loss,eval_accuracy";

    /// <summary>Model checkpoint path after <paramref name="step"/> updates.</summary>
    public static string ModelPath(string dir, int step) => Path.Combine(dir, $"ckpt-{step.ToString("D6", CultureInfo.InvariantCulture)}.safetensors");

    /// <summary>Optimizer-state path after <paramref name="step"/> updates.</summary>
    public static string OptimizerPath(string dir, int step) => Path.Combine(dir, $"optim-{step.ToString("D6", CultureInfo.InvariantCulture)}.safetensors");

    /// <summary>The model checkpoints of a folder in training order (by step), empty if none.</summary>
    public static IReadOnlyList<(int Step, string Path)> List(string dir)
    {
        if (!Directory.Exists(dir)) return [];
        var list = new List<(int, string)>();
        foreach (var f in Directory.EnumerateFiles(dir, "ckpt-*.safetensors"))
        {
            string stem = Path.GetFileNameWithoutExtension(f)["ckpt-".Length..];
            if (int.TryParse(stem, NumberStyles.None, CultureInfo.InvariantCulture, out int step)) list.Add((step, f));
        }
        return list.OrderBy(x => x.Item1).ToList();
    }

    /// <summary>
    /// Whether <paramref name="fileName"/> is a file a training run writes into its folder
    /// (checkpoint, optimizer state, log, summary, or a temporary left by a killed writer).
    /// </summary>
    public static bool IsRunFile(string fileName) =>
        fileName is LogFile or SummaryFile || AtomicFile.IsTemporaryName(fileName) || StepOf(fileName, "ckpt-") is not null || StepOf(fileName, "optim-") is not null;

    private static int? StepOf(string fileName, string prefix) =>
        fileName.StartsWith(prefix, StringComparison.Ordinal) && fileName.EndsWith(".safetensors", StringComparison.Ordinal)
        && int.TryParse(fileName.AsSpan(prefix.Length, fileName.Length - prefix.Length - ".safetensors".Length), NumberStyles.None, CultureInfo.InvariantCulture, out int step)
            ? step : null;

    /// <summary>
    /// The <c>__metadata__</c> of a checkpoint, reading only its header (a run's checkpoints can be
    /// large and many).
    /// </summary>
    public static IReadOnlyDictionary<string, string> ReadMetadata(string path)
    {
        RegularFile.Size(path); // a FIFO or device named like a checkpoint is refused before it is opened
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        Span<byte> len = stackalloc byte[8];
        if (fs.Length < 8 || fs.ReadAtLeast(len, 8, throwOnEndOfStream: false) < 8)
            throw new DataFileException(path, "not a safetensors file (too short for its header length).");
        ulong n = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(len);
        if (n > (ulong)(fs.Length - 8) || n > 100_000_000)
            throw new DataFileException(path, $"safetensors header length {n} exceeds the file size {fs.Length}.");
        var header = new byte[(int)n];
        fs.ReadExactly(header);
        var md = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(header);
            if (doc.RootElement.TryGetProperty("__metadata__", out var m) && m.ValueKind == System.Text.Json.JsonValueKind.Object)
                foreach (var p in m.EnumerateObject())
                    if (p.Value.ValueKind == System.Text.Json.JsonValueKind.String) md[p.Name] = p.Value.GetString()!;
        }
        catch (System.Text.Json.JsonException) { throw new DataFileException(path, "safetensors header is not valid JSON."); }
        catch (InvalidOperationException) { throw new DataFileException(path, "safetensors header is not valid UTF-8."); }
        return md;
    }

    /// <summary>Writes the log atomically.</summary>
    public static void WriteLog(string dir, IEnumerable<TrainingLogRow> rows)
    {
        var sb = new StringBuilder(LogHeader).Append('\n');
        static string F(double? v) => v is double d ? d.ToString("R", CultureInfo.InvariantCulture) : "";
        foreach (var r in rows)
            sb.Append(r.Step.ToString(CultureInfo.InvariantCulture)).Append(',').Append(F(r.Loss)).Append(',').Append(F(r.GradNorm))
              .Append(',').Append(F(r.EvalLoss)).Append(',').Append(F(r.EvalAccuracy)).Append('\n');
        AtomicFile.WriteAllText(Path.Combine(dir, LogFile), sb.ToString());
    }

    /// <summary>Reads a log written by <see cref="WriteLog"/> (empty when the file is absent).</summary>
    public static List<TrainingLogRow> ReadLog(string dir)
    {
        string path = Path.Combine(dir, LogFile);
        if (!File.Exists(path)) return [];
        var lines = Encoding.UTF8.GetString(RegularFile.ReadAll(path)).Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
        if (lines.Length == 0 || lines[0] != LogHeader) throw new DataFileException(path, $"not a training log (expected header '{LogHeader}').");
        var rows = new List<TrainingLogRow>();
        for (int i = 1; i < lines.Length; i++)
        {
            if (lines[i].Length == 0) continue;
            var c = lines[i].Split(',');
            double? D(int k) => c[k].Length == 0 ? null
                : double.TryParse(c[k], NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v
                : throw new DataFileException(path, $"line {i + 1}: '{c[k]}' is not a number.");
            if (c.Length != 5 || !int.TryParse(c[0], NumberStyles.None, CultureInfo.InvariantCulture, out int step))
                throw new DataFileException(path, $"line {i + 1} is malformed: '{lines[i]}'.");
            rows.Add(new TrainingLogRow(step, D(1), D(2), D(3), D(4)));
        }
        return rows;
    }
}
