using System.Text.Json;
using GlobalNtk.Cli.Common;

namespace GlobalNtk.Cli.Commands;

/// <summary>
/// <c>sweep --shard I/N</c> and <c>sweep --merge DIR…</c>: each gain is an independent unit (one
/// training run plus its analysis, seeded by the sweep's seed alone), so a shard runs gains
/// k ≡ I (mod N) and the merge rebuilds the report from the shards' run folders.
/// </summary>
public static class SweepShards
{
    /// <summary>Each gain's result inside its run folder.</summary>
    public const string PointFile = "point.json";
    private const string ShardFile = "shard.json";

    /// <summary>What a sweep shard folder records: the settings it ran with and its gains.</summary>
    public sealed record SweepShardInfo(SweepSettings Settings, int Index, int Count, string[] RunFolders, double Seconds);

    /// <summary>Writes shard.json, commits the shard folder and describes it.</summary>
    public static CommandOutcome Finish(OutputFolder folder, SweepSettings s, int index, int count, IReadOnlyList<SweepPoint> points, double seconds)
    {
        var info = new SweepShardInfo(s, index, count, points.Select(p => p.RunFolder).ToArray(), seconds);
        File.WriteAllText(folder.PathOf(ShardFile), CliJson.Serialize(info) + "\n");
        folder.Commit();
        return new CommandOutcome(new { command = "sweep", shard = info, folder = folder.Display },
            [$"sweep shard {index}/{count}: {points.Count} gains in {seconds:F1} s", $"shard folder: {folder.Display} (assemble with: globalntk sweep --merge DIR… -o OUT)"]);
    }

    /// <summary>Merges shard folders (same settings, every gain exactly once) into the sweep report at --out.</summary>
    public static CommandOutcome Merge(SweepSettings s)
    {
        string outDir = CliInputs.Required(s.Out, "--out");
        if (s.Shard is not null) throw new CliInputException("--merge and --shard exclude each other: merge the shards' folders after running them.");
        if (s.Dirs.Length == 0) throw new CliInputException("--merge needs the shard folders as arguments (e.g. --merge shard-0 shard-1 -o sweep).");
        SweepSettings? settings = null;
        string? signature = null;
        var points = new List<(SweepPoint Point, string Dir)>();
        double seconds = 0;
        foreach (var dir in s.Dirs)
        {
            string path = Path.Combine(dir, ShardFile);
            if (!File.Exists(path)) throw new CliInputException($"--merge: '{dir}' is not a sweep shard folder (no {ShardFile}; write one with sweep --shard I/N).");
            var info = Read<SweepShardInfo>(path);
            string sig = Signature(info.Settings);
            if (signature is not null && sig != signature) throw new CliInputException($"--merge: '{dir}' was run with different sweep settings than '{s.Dirs[0]}'.");
            signature = sig; settings ??= info.Settings;
            seconds = Math.Max(seconds, info.Seconds);
            foreach (var run in info.RunFolders) points.Add((Read<SweepPoint>(Path.Combine(dir, run, PointFile)), dir));
        }
        var gains = CliInputs.Numbers(settings!.Gains, "--gains");
        var ordered = new List<(SweepPoint Point, string Dir)>();
        foreach (double g in gains)
        {
            var match = points.Where(p => p.Point.Gain == g).ToArray();
            if (match.Length != 1)
                throw new CliInputException($"--merge: gain {g} appears {match.Length} times in the shard folders (expected once; merge every shard of the sweep exactly once).");
            ordered.Add(match[0]);
        }
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var folder = OutputFolder.Create(new OutputRequest(outDir, "sweep", s.Force, s.Dirs.Select(d => new CommandInput("--merge", d)).ToArray()), OutputMarker.ReportKind);
        foreach (var (p, dir) in ordered) Copy(Path.Combine(dir, p.RunFolder), folder.PathOf(p.RunFolder));
        var summary = SweepCommand.Write(folder.WritePath, settings, settings.Arch!, settings.Task!, ordered.Select(p => p.Point).ToList(),
            settings.ToOptions(), seconds + clock.Elapsed.TotalSeconds);
        folder.Commit();
        return new CommandOutcome(new { command = "sweep", reportFolder = Path.GetFullPath(outDir), summary },
            [$"merged {ordered.Count} gains from {s.Dirs.Length} shards; Spearman correlation of PR(NTK_S) at init with final loss: {Reports.AnalysisReportWriter.F(summary.RankLossCorrelation)}",
             $"report: {Path.Combine(Path.GetFullPath(outDir), "sweep.md")}"]);
    }

    // Settings that must agree between shards (not where they wrote or how they printed).
    private static string Signature(SweepSettings s) =>
        CliJson.Serialize(new { s.Task, s.Arch, s.Gains, s.Hidden, s.Steps, s.LearningRate, s.Batch, s.TrialSteps, s.Trials, s.Budget, s.TopK, s.Probes, s.PartialBudget, s.SpectrumBudget, s.Tolerance, s.Seed });

    private static T Read<T>(string path)
    {
        try { return JsonSerializer.Deserialize<T>(GlobalNtk.IO.RegularFile.ReadAll(path), CliJson.Options) ?? throw new InvalidDataException($"{path}: empty JSON."); }
        catch (JsonException ex) { throw new InvalidDataException($"{path}: not a valid sweep file ({ex.Message})."); }
    }

    private static void Copy(string from, string to)
    {
        if (!Directory.Exists(from)) throw new CliInputException($"--merge: run folder '{from}' is missing.");
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        foreach (var d in Directory.GetDirectories(from)) Copy(d, Path.Combine(to, Path.GetFileName(d)));
    }
}
