using System.ComponentModel;
using System.Reflection;
using System.Text.Json;
using GlobalNtk.Cli;
using GlobalNtk.Cli.Common;
using GlobalNtk.IO;
using GlobalNtk.Tasks;
using Spectre.Console.Cli;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>The CLI behaves like a tool: version, help, did-you-mean, option names, defaults, JSON documents.</summary>
public class CliHabitsTests
{
    private static readonly string[] WritingCommands = ["demo", "train", "forward", "apply", "analyze", "sweep"];

    [Fact]
    public void VersionFlagAndCommandPrintTheSameLine()
    {
        var flag = CliTestHost.Run("--version");
        var command = CliTestHost.Run("version");
        Assert.Equal(0, flag.Exit);
        Assert.Equal(0, command.Exit);
        Assert.Equal($"globalntk {CliApp.Version}", flag.Out.Trim());
        Assert.Equal(flag.Out, command.Out);
        Assert.Matches(@"^\d+\.\d+\.\d+", CliApp.Version);
        Assert.Equal("", flag.Err);
    }

    [Fact]
    public void HelpListsEveryCommandAndHelpCommandShowsItsOptions()
    {
        var all = CliTestHost.Run("help");
        Assert.Equal(0, all.Exit);
        foreach (var c in CliApp.Catalog().Commands) Assert.Contains(c.Name, all.Out);

        var train = CliTestHost.Run("help", "train");
        Assert.Equal(0, train.Exit);
        Assert.Equal(CliTestHost.Run("train", "--help").Out, train.Out);
        foreach (var option in new[] { "--trial-steps", "--seed", "--out", "--resume" }) Assert.Contains(option, train.Out);
    }

    [Fact]
    public void HelpOfAnUnknownCommandSuggestsTheClosest()
    {
        var r = CliTestHost.Run("help", "anlyze");
        CliTestHost.AssertOneLineError(r, "unknown command 'anlyze'", "did you mean 'analyze'?");
        Assert.Equal(CliErrors.BadInput, r.Exit);
    }

    [Theory]
    [InlineData(new[] { "trian", "--task", "sine" }, "unknown command 'trian'", "did you mean 'train'?")]
    [InlineData(new[] { "train", "--stesp", "3", "--out", "x" }, "unknown option '--stesp' for 'train'", "did you mean '--steps'?")]
    [InlineData(new[] { "analyze", "--prboes", "3" }, "unknown option '--prboes' for 'analyze'", "did you mean '--probes'?")]
    [InlineData(new[] { "sweep", "--gain=1" }, "unknown option '--gain' for 'sweep'", "did you mean '--gains'?")]
    [InlineData(new[] { "train", "--task-steps", "10" }, "unknown option '--task-steps' for 'train'", "it is now '--trial-steps'")]
    [InlineData(new[] { "analyze", "--model", "m.safetensors", "--partial-probes", "4" }, "unknown option '--partial-probes' for 'analyze'", "it is now '--partial-budget'")]
    public void MisspeltCommandOrOptionGetsOneLineWithASuggestion(string[] args, string what, string suggestion)
    {
        var r = CliTestHost.Run(args);
        CliTestHost.AssertOneLineError(r, what, suggestion);
        Assert.StartsWith("error: ", r.ErrLines[0]);
        Assert.Equal(CliErrors.BadInput, r.Exit);
        Assert.Equal("", r.Out);
    }

    [Fact]
    public void FarOffWordsGetNoSuggestion()
    {
        var command = CliTestHost.Run("frobnicate");
        CliTestHost.AssertOneLineError(command, "unknown command 'frobnicate'", "commands: demo");
        Assert.DoesNotContain("did you mean", command.Err);
        var option = CliTestHost.Run("forward", "--zzzzzzzz");
        CliTestHost.AssertOneLineError(option, "unknown option '--zzzzzzzz' for 'forward'", "globalntk help forward");
        Assert.DoesNotContain("did you mean", option.Err);
    }

    [Theory]
    [InlineData("kitten", "sitting", 3)]
    [InlineData("", "abc", 3)]
    [InlineData("steps", "steps", 0)]
    [InlineData("STEPS", "steps", 0)]
    [InlineData("stesp", "steps", 2)]
    [InlineData("flaw", "lawn", 2)]
    public void LevenshteinDistance(string a, string b, int expected)
    {
        Assert.Equal(expected, CliSuggest.Distance(a, b));
        Assert.Equal(expected, CliSuggest.Distance(b, a));
    }

    [Fact]
    public void ClosestNeedsAFewEditsAtMost()
    {
        Assert.Equal("--steps", CliSuggest.Closest("--step", ["--seed", "--steps", "--lr"]));
        Assert.Equal("--lr", CliSuggest.Closest("--lt", ["--lr", "--out"]));
        Assert.Null(CliSuggest.Closest("--xy", ["--lr", "--out"]));
        Assert.Null(CliSuggest.Closest("--partial", ["--probes", "--seed"]));
    }

    [Fact]
    public void NegativeNumbersAreValuesNotOptions()
    {
        Assert.Null(CliSuggest.Explain(["train", "--gain", "-1.5", "--noise", "-1e3"], CliApp.Catalog()));
    }

    [Fact]
    public void EveryCommandThatWritesHasShortAndLongOut()
    {
        var catalog = CliApp.Catalog();
        foreach (var name in WritingCommands)
        {
            var c = catalog.Find(name);
            Assert.NotNull(c);
            Assert.Contains("-o", c!.Options);
            Assert.Contains("--out", c.Options);
        }
        // and any command added later that writes (has an Out setting) follows the same rule
        foreach (var c in catalog.Commands.Where(c => c.SettingsType.GetProperty("Out") is not null))
        {
            Assert.Contains("-o", c.Options);
            Assert.Contains("--out", c.Options);
        }
    }

    [Fact]
    public void TrialLengthHasOneNameEverywhere()
    {
        var catalog = CliApp.Catalog();
        foreach (var c in catalog.Commands) Assert.DoesNotContain(c.Options, o => o.Contains("task-steps"));
        foreach (var name in new[] { "train", "demo", "sweep" }) Assert.Contains("--trial-steps", catalog.Find(name)!.Options);
    }

    [Fact]
    public void EverySeedOptionDefaultsToTheOneDefaultSeed()
    {
        int seeds = 0;
        foreach (var c in CliApp.Catalog().Commands)
            foreach (var p in Options(c.SettingsType).Where(p => p.Option.LongNames.Contains("seed")))
            {
                seeds++;
                Assert.Equal(CliDefaults.Seed, Convert.ToInt32(p.Property.GetCustomAttribute<DefaultValueAttribute>()?.Value));
                object? initial = p.Property.GetValue(Activator.CreateInstance(c.SettingsType));
                Assert.True(initial is null || Convert.ToInt32(initial) == CliDefaults.Seed, $"{c.Name} --seed starts at {initial}");
            }
        Assert.True(seeds >= 5, $"only {seeds} --seed options found");
        Assert.Equal(CliDefaults.Seed, new GlobalNtk.Cli.Commands.AnalyzeSettings().ToOptions().Seed);
    }

    [Fact]
    public void DefaultsComeFromAttributesNotFromDescriptions()
    {
        foreach (var c in CliApp.Catalog().Commands)
        {
            var fresh = Activator.CreateInstance(c.SettingsType);
            foreach (var (p, o) in Options(c.SettingsType))
            {
                string description = p.GetCustomAttribute<DescriptionAttribute>()?.Description ?? "";
                // ("default" as the name of a --budget preset, followed by its cost, is not a default value)
                Assert.DoesNotMatch(@"(?i)(?<!quick\|)\bdefault\b(?!\s*~)", description);
                if (p.GetCustomAttribute<DefaultValueAttribute>() is not { } d) continue;
                object? initial = p.GetValue(fresh);
                if (p.GetCustomAttribute<NullWhenOmittedAttribute>() is not null) Assert.Null(initial);
                else Assert.Equal(Convert.ToString(d.Value, System.Globalization.CultureInfo.InvariantCulture),
                    Convert.ToString(initial, System.Globalization.CultureInfo.InvariantCulture));
            }
        }
        var help = CliTestHost.Run("help", "train").Out;
        Assert.Contains("DEFAULT", help);
        Assert.Matches(@"--steps <N>\s+1000\b", help);
        Assert.Matches(@"--seed <SEED>\s+1\b", help);
    }

    [Fact]
    public void OmittedOptionsWithShownDefaultsStayUnsetForResume()
    {
        using var d = new TempDir();
        // Every train option has a shown default; none may count as "given" for --resume.
        var r = CliTestHost.Run("train", "--resume", "--out", d.File("missing"));
        CliTestHost.AssertOneLineError(r, "does not exist");
        Assert.DoesNotContain("only --steps may change", r.Err);
    }

    [Fact]
    public void TaskAndArchitectureListsInHelpAreComplete()
    {
        foreach (var command in new[] { "train", "sweep", "analyze" })
        {
            string help = string.Join(' ', CliTestHost.Run("help", command).Out.Split((char[])[' ', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries));
            foreach (var task in TaskRegistry.Names) Assert.Contains(task, help);
            foreach (var arch in ModelRegistry.Architectures) Assert.Contains(arch, help);
        }
    }

    [Fact]
    public void JsonDocumentsCarryCommandAndVersionAndUnescapedText()
    {
        string json = CliJson.Document("test", new { text = "λ₁ → 3 ≤ 4 <b> & 'q'", command = "ignored", n = 1.5 });
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        Assert.Equal("test", root.GetProperty("command").GetString());
        Assert.Equal(CliApp.Version, root.GetProperty("version").GetString());
        Assert.Equal("λ₁ → 3 ≤ 4 <b> & 'q'", root.GetProperty("text").GetString());
        Assert.Equal(["command", "version", "text", "n"], root.EnumerateObject().Select(p => p.Name).ToArray());
        Assert.DoesNotContain("\\u", json);
        Assert.Contains("λ₁ → 3", json);

        using var list = JsonDocument.Parse(CliJson.Document("rows", new[] { 1, 2 }));
        Assert.Equal(2, list.RootElement.GetProperty("result").GetArrayLength());
    }

    [Fact]
    public void VersionAndSelfCheckJsonAreDocuments()
    {
        foreach (var args in new[] { new[] { "version", "--json" }, ["selfcheck", "--json"] })
        {
            var r = CliTestHost.Run(args);
            Assert.Equal(0, r.Exit);
            using var doc = JsonDocument.Parse(r.Out);
            Assert.Equal(args[0], doc.RootElement.GetProperty("command").GetString());
            Assert.Equal(CliApp.Version, doc.RootElement.GetProperty("version").GetString());
            Assert.DoesNotContain("\\u", r.Out);
        }
    }

    [Fact]
    public void AnalyzeJsonAndResultsHoldNoMarkdown()
    {
        using var f = new CliFixture();
        string outDir = f.Dir.File("rep");
        var r = CliTestHost.Run(["analyze", "--model", f.ModelPath, "--inputs", f.X, "--targets", f.Y, "-o", outDir, "--json", .. CliFixture.FastAnalysis]);
        Assert.Equal(0, r.Exit);
        foreach (var json in new[] { r.Out, File.ReadAllText(Path.Combine(outDir, "results.json")) })
        {
            using var doc = JsonDocument.Parse(json);
            Assert.Equal("analyze", doc.RootElement.GetProperty("command").GetString());
            Assert.Equal(CliApp.Version, doc.RootElement.GetProperty("version").GetString());
            Assert.DoesNotContain("**", json);
            Assert.DoesNotContain("`", json);
            Assert.DoesNotContain("\\u", json);
        }
        // the report itself is still Markdown
        Assert.Contains("**Setup.**", File.ReadAllText(Path.Combine(outDir, "report.md")));
        foreach (var png in Directory.GetFiles(outDir, "*.png")) Assert.True(File.Exists(Path.ChangeExtension(png, ".svg")), png);
    }

    [Fact]
    public void MarkdownBecomesPlainText()
    {
        Assert.Equal("Setup. Model gru, file m.safetensors, see Figure 1 (a.png); NTK_S and c_s(r).",
            CliText.PlainFromMarkdown("**Setup.** Model gru, file `m.safetensors`, see ![Figure 1](a.png); NTK_S and c_s(r)."));
    }

    private static IEnumerable<(PropertyInfo Property, CommandOptionAttribute Option)> Options(Type settings) =>
        settings.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Select(p => (p, p.GetCustomAttribute<CommandOptionAttribute>()))
            .Where(x => x.Item2 is not null)
            .Select(x => (x.p, x.Item2!));
}
