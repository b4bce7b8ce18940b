using System.Text.RegularExpressions;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// Rules on the repository's own source, read from the checkout the tests were built from (found
/// by walking up from the test assembly to GlobalNtk.slnx): the product cites only its own
/// documentation, randomness is seeded in one place, and lower layers never use higher ones.
/// </summary>
public class SourceRulesTests
{
    private static readonly string[] TextExtensions = [".cs", ".md", ".csproj", ".props", ".targets", ".json", ".txt", ".sh", ".slnx"];

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "GlobalNtk.slnx"))) return dir.FullName;
        throw new InvalidOperationException($"No GlobalNtk.slnx above {AppContext.BaseDirectory}.");
    }

    /// <summary>Source and documentation files under the given top-level folders (build outputs excluded).</summary>
    private static IEnumerable<string> Files(string root, params string[] folders)
    {
        foreach (var folder in folders)
        {
            var path = Path.Combine(root, folder);
            if (File.Exists(path)) { yield return path; continue; }
            if (!Directory.Exists(path)) continue;
            foreach (var f in Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories))
            {
                var rel = Path.GetRelativePath(root, f).Replace('\\', '/');
                if (("/" + rel).Contains("/bin/") || ("/" + rel).Contains("/obj/")) continue;

                if (TextExtensions.Contains(Path.GetExtension(f))) yield return f;
            }
        }
    }

    [Fact]
    public void ProductCitesOnlyItsOwnDocumentation()
    {
        var root = RepositoryRoot();
        // Built from parts so that this file does not match itself.
        string spec = "MATH" + ".md", shared = "shared" + "/";
        var offending = new List<string>();
        foreach (var f in Files(root, "src", "tests", "bench", "docs", "README.md"))
        {
            var lines = File.ReadAllLines(f);
            for (int i = 0; i < lines.Length; i++)
                if (lines[i].Contains(spec, StringComparison.Ordinal) || lines[i].Contains(shared, StringComparison.Ordinal))
                    offending.Add($"{Path.GetRelativePath(root, f)}:{i + 1}: {lines[i].Trim()}");
        }
        Assert.True(offending.Count == 0, "Cite docs/math.md, not a file users do not have:\n" + string.Join("\n", offending));
        Assert.True(File.Exists(Path.Combine(root, "docs", "math.md")), "docs/math.md is missing");
    }

    [Fact]
    public void CitedMathSectionsExist()
    {
        var root = RepositoryRoot();
        var doc = File.ReadAllText(Path.Combine(root, "docs", "math.md"));
        // GitHub's anchors: a heading's text lower-cased, punctuation dropped, spaces as hyphens.
        var anchors = Regex.Matches(doc, @"^#+ (.+)$", RegexOptions.Multiline)
            .Select(m => Regex.Replace(Regex.Replace(m.Groups[1].Value.Trim().ToLowerInvariant(), @"[^\p{L}\p{Nd} _-]", ""), " ", "-"))
            .ToHashSet();
        var missing = new List<string>();
        foreach (var f in Files(root, "src", "tests", "bench", "README.md"))
            foreach (Match m in Regex.Matches(File.ReadAllText(f), @"math\.md#([A-Za-z0-9_-]+)"))
                if (!anchors.Contains(m.Groups[1].Value)) missing.Add($"{Path.GetRelativePath(root, f)}: #{m.Groups[1].Value}");
        Assert.True(missing.Count == 0, "Citations of docs/math.md sections that do not exist:\n" + string.Join("\n", missing.Distinct()));
    }

    [Fact]
    public void GeneratorsAreCreatedOnlyFromAnRngKey()
    {
        var root = RepositoryRoot();
        var offending = Files(root, "src")
            .Where(f => f.EndsWith(".cs") && Path.GetFileName(f) != "RngKey.cs")
            .SelectMany(f => File.ReadAllLines(f).Select((l, i) => (f, l, i)))
            .Where(x => x.l.Contains("new Random(") && !x.l.TrimStart().StartsWith("//"))
            .Select(x => $"{Path.GetRelativePath(root, x.f)}:{x.i + 1}")
            .ToList();
        Assert.True(offending.Count == 0, "Seed generators through RngKey (FromSeed/Fold), not new Random(seed):\n" + string.Join("\n", offending));
    }

    [Fact]
    public void LowerLayersNeverUseHigherOnes()
    {
        var root = RepositoryRoot();
        string[][] layers = [["Dense"], ["Operators"], ["Estimators"], ["Models"], ["Ntk"], ["Analysis"], ["IO", "Tasks", "Training"]];
        int Rank(string ns) => Array.FindIndex(layers, l => l.Contains(ns));
        var offending = new List<string>();
        foreach (var f in Files(Path.Combine(root, "src", "GlobalNtk"), "."))
        {
            if (!f.EndsWith(".cs")) continue;
            var rel = Path.GetRelativePath(Path.Combine(root, "src", "GlobalNtk"), f).Replace('\\', '/');
            int own = Rank(rel.Split('/')[0]);
            if (own < 0) continue;
            foreach (Match m in Regex.Matches(File.ReadAllText(f), @"\bGlobalNtk\.(\w+)"))
            {
                int used = Rank(m.Groups[1].Value);
                if (used > own) offending.Add($"{rel} uses GlobalNtk.{m.Groups[1].Value}");
            }
        }
        Assert.True(offending.Count == 0, "Layering: Dense → Operators → Estimators → Models → Ntk → Analysis → IO/Tasks/Training:\n" + string.Join("\n", offending.Distinct()));
    }
}
