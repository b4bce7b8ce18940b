using System.ComponentModel;
using System.Globalization;
using GlobalNtk.Cli.Common;
using GlobalNtk.Estimators;
using Spectre.Console;
using Spectre.Console.Cli;

namespace GlobalNtk.Cli.Commands;

/// <summary>
/// <c>globalntk selfcheck [--seed N]</c>: the randomised estimators against exact values on random
/// operators with known spectra, printed as a table (or JSON rows with <c>--json</c>).
/// </summary>
public sealed class SelfCheckCommand : CliCommand<SelfCheckCommand.Settings>
{
    /// <summary>Options of <c>selfcheck</c>.</summary>
    public sealed class Settings : CommonSettings
    {
        /// <summary>Random seed (same seed → same table).</summary>
        [CommandOption("--seed <SEED>")]
        [Description("Random seed (same seed gives the same table).")]
        [DefaultValue(CliDefaults.Seed)]
        public int Seed { get; init; } = CliDefaults.Seed;
    }

    /// <inheritdoc/>
    protected override CommandOutcome Run(Settings settings, CliProgress progress, CancellationToken cancellationToken)
    {
        var rows = SelfCheck.Run(settings.Seed);
        var table = new Table().Title($"GlobalNtk self-check (seed {settings.Seed})")
            .AddColumn("quantity").AddColumn(new TableColumn("estimate").RightAligned())
            .AddColumn(new TableColumn("exact").RightAligned()).AddColumn(new TableColumn("std. error / residual").RightAligned())
            .AddColumn(new TableColumn("rel. error").RightAligned());
        static string F(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
        foreach (var r in rows)
            table.AddRow(Markup.Escape(r.Name), F(r.Estimate), F(r.Exact), F(r.StandardError), RelativeError(r).ToString("E1", CultureInfo.InvariantCulture));

        // Render to plain text lines so the shared CLI contract (stdout lines or --json) holds.
        var text = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(text), Ansi = AnsiSupport.No, Interactive = InteractionSupport.No,
        });
        console.Profile.Width = 120;
        console.Write(table);
        var lines = text.ToString().TrimEnd().Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
        var data = rows.Select(r => new { r.Name, r.Estimate, r.Exact, r.StandardError, RelativeError = RelativeError(r) }).ToArray();
        return new CommandOutcome(new { seed = settings.Seed, rows = data }, lines);
    }

    private static double RelativeError(SelfCheckRow r) => Math.Abs(r.Estimate - r.Exact) / Math.Max(Math.Abs(r.Exact), double.Epsilon);
}
