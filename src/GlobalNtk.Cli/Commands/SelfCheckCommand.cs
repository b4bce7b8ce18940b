using System.ComponentModel;
using System.Globalization;
using GlobalNtk.Estimators;
using Spectre.Console;
using Spectre.Console.Cli;

namespace GlobalNtk.Cli.Commands;

/// <summary><c>globalntk selfcheck [--seed N]</c>: randomised estimators against exact values on operators with known spectra.</summary>
public sealed class SelfCheckCommand : Command<SelfCheckCommand.Settings>
{
    /// <summary>Options of <c>selfcheck</c>.</summary>
    public sealed class Settings : CommandSettings
    {
        /// <summary>Random seed (same seed → same table).</summary>
        [CommandOption("--seed <SEED>")]
        [Description("Random seed (same seed gives the same table).")]
        [DefaultValue(0)]
        public int Seed { get; init; }
    }

    /// <inheritdoc/>
    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var rows = SelfCheck.Run(settings.Seed);
        var table = new Table().Title($"GlobalNtk self-check (seed {settings.Seed})")
            .AddColumn("quantity").AddColumn(new TableColumn("estimate").RightAligned())
            .AddColumn(new TableColumn("exact").RightAligned()).AddColumn(new TableColumn("std. error / residual").RightAligned())
            .AddColumn(new TableColumn("rel. error").RightAligned());
        static string F(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
        foreach (var r in rows)
        {
            double rel = Math.Abs(r.Estimate - r.Exact) / Math.Max(Math.Abs(r.Exact), double.Epsilon);
            table.AddRow(Markup.Escape(r.Name), F(r.Estimate), F(r.Exact), F(r.StandardError), rel.ToString("E1", CultureInfo.InvariantCulture));
        }
        AnsiConsole.Write(table);
        return 0;
    }
}
