using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using GlobalNtk.Cli.Common;
using GlobalNtk.Cli.Reports;
using GlobalNtk.Study;
using Spectre.Console.Cli;

namespace GlobalNtk.Cli.Commands;

/// <summary>Options of <c>reproduce</c>.</summary>
public sealed class ReproduceSettings : CommonSettings
{
    /// <summary>Study size.</summary>
    [CommandOption("--scale <SCALE>")]
    [DefaultValue(ReproduceCommand.DefaultScale)]
    [Description(ReproduceCommand.ScaleHelp)]
    public string Scale { get; init; } = ReproduceCommand.DefaultScale;

    /// <summary>Output folder.</summary>
    [CommandOption("-o|--out <DIR>")]
    [DefaultValue(ReproduceCommand.DefaultOut)]
    [Description("Study folder to write: report.md, figures (PNG+SVG), CSVs, results.json, units/. With --shard: the shard's folder. A new or empty folder, or with --force an earlier study.")]
    public string Out { get; init; } = ReproduceCommand.DefaultOut;

    /// <summary>Replace an earlier globalntk output.</summary>
    [CommandOption("--force")]
    [Description(OutputTarget.ForceDescription)]
    public bool Force { get; init; }

    /// <summary>Shard i/N.</summary>
    [CommandOption("--shard <I/N>")]
    [Description("Run only shard I of N (0-based; unit k belongs to shard k mod N) and write its units; assemble the report with --merge.")]
    public string? Shard { get; init; }

    /// <summary>Merge shard folders.</summary>
    [CommandOption("--merge")]
    [Description("Assemble the report from the shard folders given as arguments (every unit of the plan exactly once) instead of running units.")]
    public bool Merge { get; init; }

    /// <summary>Shard folders to merge.</summary>
    [CommandArgument(0, "[SHARD_DIRS]")]
    [Description("With --merge: the shard folders written by --shard.")]
    public string[] Dirs { get; init; } = [];
}

/// <summary>
/// <c>globalntk reproduce</c>: the paper's claims as a pre-registered study (GlobalNtk.Study):
/// runs every unit (or one shard of them, or merges shards) and writes the report folder.
/// </summary>
public sealed class ReproduceCommand : CliCommand<ReproduceSettings>
{
    /// <summary>Scale run when none is given.</summary>
    public const string DefaultScale = "quick";
    /// <summary>Study folder written when none is given.</summary>
    public const string DefaultOut = "globalntk-study";
    /// <summary>Measured cost of the quick scale (see the README).</summary>
    public const string QuickCost = "under a CPU-minute (measured: 44–52 s CPU, 3.3–8.4 min wall on a 2-core machine shared with other heavy jobs)";
    /// <summary>Estimated cost of the paper scale, from the quick scale's measured unit timings.</summary>
    public const string PaperCost = "110 units, about 25 CPU-minutes, estimated from measured paper-size units (GRU H=128: 41 s, H=64: 15 s, transformer d=32: 25 s CPU each), i.e. 15–25 min wall on 2 free cores";
    /// <summary>The --scale help: what each scale runs and what it costs.</summary>
    public const string ScaleHelp = "quick (3 seeds, H up to 128, 200 steps, 54 units: " + QuickCost + ") or paper (5 seeds per cell, 1500 steps, H = 64 for C3/C4, 5 C3 cells, 7 gains, " + PaperCost + "; shard it with --shard).";
    /// <summary>Seed of every bootstrap of the study.</summary>
    public const int StudySeed = 2026;
    private const string ShardFile = "shard.json";
    private const string UnitFile = "unit.json";

    /// <summary>What a shard folder records about itself.</summary>
    public sealed record ShardInfo(string Scale, string Plan, int Index, int Count, string[] Units, double WallSeconds, double CpuSeconds, Dictionary<string, double> UnitSeconds);

    /// <inheritdoc/>
    protected override CommandOutcome Run(ReproduceSettings s, CliProgress progress, CancellationToken ct)
    {
        StudyScale scale;
        try { scale = StudyScale.Named(s.Scale); }
        catch (ArgumentException ex) { throw new CliInputException($"--scale: {ex.Message}"); }
        var plan = StudyPlan.Of(scale);
        if (s.Merge && s.Shard is not null) throw new CliInputException("--merge and --shard exclude each other: merge the shards' folders after running them.");
        if (!s.Merge && s.Dirs.Length > 0) throw new CliInputException($"unexpected argument '{s.Dirs[0]}' (folders are only taken with --merge).");
        var clock = Stopwatch.StartNew();
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        double Cpu() => (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;

        if (s.Merge) return MergeShards(s, plan, clock);
        var (index, count) = s.Shard is null ? (0, 1) : ParseShard(s.Shard);
        var units = plan.Shard(index, count);
        using var folder = OutputFolder.Create(new OutputRequest(s.Out, "reproduce", s.Force, []), OutputMarker.ReportKind);
        var results = new List<UnitResult>();
        var seconds = new Dictionary<string, double>();
        progress.Run(s.Shard is null ? $"Study ({scale.Name})" : $"Shard {index}/{count} ({scale.Name})", p =>
        {
            for (int i = 0; i < units.Count; i++)
            {
                var u = units[i];
                var unitClock = Stopwatch.StartNew();
                string dir = folder.PathOf(StudyUnitRunner.FolderOf(u));
                int k = i;
                var result = StudyUnitRunner.Run(u, scale, dir, (stage, f) => p($"{u.Id} ({k + 1}/{units.Count}): {stage}", (k + f) / units.Count), ct);
                File.WriteAllText(Path.Combine(dir, UnitFile), CliJson.Serialize(result) + "\n");
                results.Add(result);
                seconds[u.Id] = unitClock.Elapsed.TotalSeconds;
            }
        });
        if (s.Shard is not null)
        {
            var info = new ShardInfo(scale.Name, plan.Fingerprint, index, count, units.Select(u => u.Id).ToArray(), clock.Elapsed.TotalSeconds, Cpu(), seconds);
            File.WriteAllText(folder.PathOf(ShardFile), CliJson.Serialize(info) + "\n");
            folder.Commit();
            return new CommandOutcome(new { command = "reproduce", shard = info, folder = Path.GetFullPath(s.Out) },
                [$"shard {index}/{count} of the {scale.Name} study: {units.Count} units in {clock.Elapsed.TotalSeconds:F1} s (CPU {Cpu():F1} s)",
                 $"shard folder: {Path.GetFullPath(s.Out)} (assemble with: globalntk reproduce --scale {scale.Name} --merge DIR… -o OUT)"]);
        }
        var timings = new StudyTimings(clock.Elapsed.TotalSeconds, Cpu(), 1, seconds);
        var study = StudyReport.Write(folder.WritePath, plan, StudySeed, results, timings);
        folder.Commit();
        return Outcome(study, s.Out, timings);
    }

    private static CommandOutcome Outcome(StudyResults study, string outDir, StudyTimings timings)
    {
        var lines = study.Claims.Select(c => $"{c.Id} {c.Title}: {StudyReport.Label(c.Verdict)} — " +
            string.Join("; ", c.Statistics.Select(x => $"{x.Name} {AnalysisReportWriter.F(x.Estimate.Value)} [{AnalysisReportWriter.F(x.Estimate.Low)}, {AnalysisReportWriter.F(x.Estimate.High)}]"))).ToList();
        lines.Add($"{study.Units.Count} units, wall {timings.WallSeconds:F1} s, CPU {timings.CpuSeconds:F1} s");
        lines.Add($"report: {Path.Combine(Path.GetFullPath(outDir), "report.md")}");
        return new CommandOutcome(new { command = "reproduce", folder = Path.GetFullPath(outDir), verdicts = study.Claims, timings }, lines);
    }

    /// <summary>Parses <c>i/N</c> (0 ≤ i &lt; N).</summary>
    public static (int Index, int Count) ParseShard(string text)
    {
        var parts = text.Split('/');
        if (parts.Length == 2 && int.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out int i)
            && int.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) && n >= 1 && i >= 0 && i < n)
            return (i, n);
        throw new CliInputException($"--shard must be I/N with 0 ≤ I < N (e.g. 0/4), got '{text}'.");
    }

    private CommandOutcome MergeShards(ReproduceSettings s, StudyPlan plan, Stopwatch clock)
    {
        if (s.Dirs.Length == 0) throw new CliInputException("--merge needs the shard folders as arguments (e.g. --merge shard-0 shard-1 -o study).");
        var byId = new Dictionary<string, (UnitResult Result, string Dir)>();
        var seconds = new Dictionary<string, double>();
        double wall = 0, cpu = 0;
        foreach (var dir in s.Dirs)
        {
            string infoPath = Path.Combine(dir, ShardFile);
            if (!File.Exists(infoPath)) throw new CliInputException($"--merge: '{dir}' is not a shard folder (no {ShardFile}; write one with --shard I/N).");
            var info = Read<ShardInfo>(infoPath);
            if (info.Scale != plan.Scale.Name || info.Plan != plan.Fingerprint)
                throw new CliInputException($"--merge: '{dir}' belongs to a different study (scale '{info.Scale}', plan {info.Plan}; expected '{plan.Scale.Name}', plan {plan.Fingerprint}).");
            wall = Math.Max(wall, info.WallSeconds); cpu += info.CpuSeconds;
            foreach (var id in info.Units)
            {
                var r = Read<UnitResult>(Path.Combine(dir, StudyUnitRunner.FolderOf(plan.Units.Single(u => u.Id == id)), UnitFile));
                if (r.Unit.Id != id) throw new CliInputException($"--merge: '{dir}' lists unit {id} but its unit.json is for {r.Unit.Id}.");
                if (!byId.TryAdd(id, (r, dir))) throw new CliInputException($"--merge: unit {id} appears in both '{byId[id].Dir}' and '{dir}'.");
                if (info.UnitSeconds.TryGetValue(id, out double sec)) seconds[id] = sec;
            }
        }
        var missing = plan.Units.Where(u => !byId.ContainsKey(u.Id)).ToArray();
        if (missing.Length > 0)
            throw new CliInputException($"--merge: {missing.Length} of {plan.Units.Count} units are missing (first: {missing[0].Id}); merge every shard of the study.");
        using var folder = OutputFolder.Create(new OutputRequest(s.Out, "reproduce", s.Force, s.Dirs.Select(d => new CommandInput("--merge", d)).ToArray()), OutputMarker.ReportKind);
        foreach (var u in plan.Units)
            CopyDirectory(Path.Combine(byId[u.Id].Dir, StudyUnitRunner.FolderOf(u)), folder.PathOf(StudyUnitRunner.FolderOf(u)));
        var timings = new StudyTimings(wall + clock.Elapsed.TotalSeconds, cpu, s.Dirs.Length, seconds);
        var study = StudyReport.Write(folder.WritePath, plan, StudySeed, plan.Units.Select(u => byId[u.Id].Result).ToArray(), timings);
        folder.Commit();
        return Outcome(study, s.Out, timings);
    }

    private static T Read<T>(string path)
    {
        try { return JsonSerializer.Deserialize<T>(GlobalNtk.IO.RegularFile.ReadAll(path), CliJson.Options) ?? throw new InvalidDataException($"{path}: empty JSON."); }
        catch (JsonException ex) { throw new InvalidDataException($"{path}: not a valid study file ({ex.Message})."); }
    }

    private static void CopyDirectory(string from, string to)
    {
        if (!Directory.Exists(from)) throw new CliInputException($"--merge: unit folder '{from}' is missing.");
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        foreach (var d in Directory.GetDirectories(from)) CopyDirectory(d, Path.Combine(to, Path.GetFileName(d)));
    }
}
