using System.Diagnostics;
using System.Text.Json.Nodes;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// <c>reproduce</c> end to end on the tiny test scale: the unsharded study, and three shards run
/// as separate processes then merged, give the same results.json.
/// </summary>
public class CliReproduceTests
{
    /// <summary>The built CLI next to the test assembly (copied there by the project reference).</summary>
    private static string CliDll()
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "GlobalNtk.Cli.dll");
        Assert.True(File.Exists(dll) && File.Exists(Path.ChangeExtension(dll, ".runtimeconfig.json")),
            $"the CLI build (GlobalNtk.Cli.dll with its runtimeconfig) is not next to the test assembly in {AppContext.BaseDirectory}");
        return dll;
    }

    private static Process Start(string workDir, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = workDir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(CliDll());
        foreach (var a in args) psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    private static (int Exit, string Out, string Err) Wait(Process p)
    {
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void ShardedRunsMergedAsSeparateProcessesEqualTheUnshardedStudy()
    {
        using var tmp = new TempDir();
        var whole = Start(tmp.Path, "reproduce", "--scale", "test", "-o", "whole", "--quiet");
        var shards = Enumerable.Range(0, 3).Select(i => Start(tmp.Path, "reproduce", "--scale", "test", "--shard", $"{i}/3", "-o", $"shard-{i}", "--quiet")).ToArray();
        foreach (var p in shards.Append(whole))
        {
            var r = Wait(p);
            Assert.True(r.Exit == 0, $"exit {r.Exit}: {r.Err}");
        }
        var merged = Wait(Start(tmp.Path, "reproduce", "--scale", "test", "--merge", "shard-0", "shard-1", "shard-2", "-o", "merged", "--quiet"));
        Assert.True(merged.Exit == 0, $"exit {merged.Exit}: {merged.Err}");
        Assert.Contains("C1 Exactness of the Kronecker core: supported", merged.Out);

        // results.json holds no timings, so the two must be identical byte for byte
        string a = File.ReadAllText(Path.Combine(tmp.Path, "whole", "results.json"));
        string b = File.ReadAllText(Path.Combine(tmp.Path, "merged", "results.json"));
        Assert.Equal(a, b);
        var json = JsonNode.Parse(a)!;
        Assert.Equal(5, json["claims"]!.AsArray().Count);
        // every unit folder named in results.json exists in both, with its unit.json
        foreach (var u in json["units"]!.AsArray())
            foreach (var dir in new[] { "whole", "merged" })
                Assert.True(File.Exists(Path.Combine(tmp.Path, dir, u!["folder"]!.GetValue<string>(), "unit.json")));
        foreach (var f in new[] { "report.md", "verdicts.csv", "c2_bottleneck.csv", "fig2_rank_vs_hidden.png", "fig2_rank_vs_hidden.svg", "timings.json" })
            Assert.True(File.Exists(Path.Combine(tmp.Path, "merged", f)), f);
        string report = File.ReadAllText(Path.Combine(tmp.Path, "merged", "report.md"));
        Assert.StartsWith("# GlobalNtk study", report);
        Assert.True(report.IndexOf("| claim |", StringComparison.Ordinal) < report.IndexOf("![Figure 1]", StringComparison.Ordinal));

        // an incomplete merge is refused with one line and writes nothing
        var partial = Wait(Start(tmp.Path, "reproduce", "--scale", "test", "--merge", "shard-0", "shard-1", "-o", "partial"));
        Assert.Equal(2, partial.Exit);
        Assert.Single(partial.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("missing", partial.Err);
        Assert.False(Directory.Exists(Path.Combine(tmp.Path, "partial")));
    }

    [Fact]
    public void BadShardSpecsAreOneLineErrors()
    {
        using var tmp = new TempDir();
        CliTestHost.AssertOneLineError(CliTestHost.Run("reproduce", "--scale", "test", "--shard", "3/3", "-o", tmp.File("x")), "--shard");
        CliTestHost.AssertOneLineError(CliTestHost.Run("reproduce", "--scale", "huge", "-o", tmp.File("x")), "--scale");
        CliTestHost.AssertOneLineError(CliTestHost.Run("reproduce", "--scale", "test", "--merge", "-o", tmp.File("x")), "--merge");
        CliTestHost.AssertOneLineError(CliTestHost.Run("reproduce", "--scale", "test", "--merge", tmp.Path, "-o", tmp.File("x")), "not a shard folder");
        Assert.False(Directory.Exists(tmp.File("x")));
    }
}

/// <summary><c>sweep --shard/--merge</c>: the merged report equals the unsharded one apart from timings.</summary>
public class CliSweepShardTests
{
    private static JsonNode WithoutTimings(string path)
    {
        var node = JsonNode.Parse(File.ReadAllText(path))!;
        Strip(node);
        return node;
        static void Strip(JsonNode? n)
        {
            if (n is JsonObject o)
            {
                foreach (var key in o.Select(kv => kv.Key).Where(k => k is "seconds" or "stageSeconds").ToArray()) o.Remove(key);
                foreach (var kv in o) Strip(kv.Value);
            }
            else if (n is JsonArray a) foreach (var x in a) Strip(x);
        }
    }

    [Fact]
    public void ShardedSweepMergesToTheUnshardedResult()
    {
        using var tmp = new TempDir();
        string[] common = ["sweep", "--task", "flip-flop", "--arch", "gru", "--gains", "0.5,1,1.5", "--hidden", "4", "--steps", "3", "--batch", "2",
            "--trial-steps", "6", "--trials", "2", "--probes", "6", "--partial-budget", "12", "--top-k", "2", "--quiet"];
        Assert.Equal(0, CliTestHost.Run([.. common, "-o", tmp.File("whole")]).Exit);
        Assert.Equal(0, CliTestHost.Run([.. common, "--shard", "0/2", "-o", tmp.File("s0")]).Exit);
        Assert.Equal(0, CliTestHost.Run([.. common, "--shard", "1/2", "-o", tmp.File("s1")]).Exit);
        var merged = CliTestHost.Run("sweep", "--merge", tmp.File("s1"), tmp.File("s0"), "-o", tmp.File("merged"), "--quiet");
        Assert.True(merged.Exit == 0, merged.Err);
        Assert.Equal(WithoutTimings(tmp.File("whole/results.json")).ToJsonString(), WithoutTimings(tmp.File("merged/results.json")).ToJsonString());
        Assert.True(File.Exists(tmp.File("merged/sweep.md")));
        Assert.True(Directory.Exists(tmp.File("merged/run-g1.5")));
        var missing = CliTestHost.Run("sweep", "--merge", tmp.File("s0"), "-o", tmp.File("partial"));
        CliTestHost.AssertOneLineError(missing, "gain 1");
        Assert.False(Directory.Exists(tmp.File("partial")));
    }
}
