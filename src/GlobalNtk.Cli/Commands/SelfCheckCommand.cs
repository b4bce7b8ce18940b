using System.ComponentModel;
using System.Globalization;
using GlobalNtk.Cli.Common;
using GlobalNtk.Dense;
using GlobalNtk.Estimators;
using GlobalNtk.Ntk;
using Spectre.Console;
using Spectre.Console.Cli;

namespace GlobalNtk.Cli.Commands;

/// <summary>
/// <c>globalntk selfcheck [--seed N] [--precision f64|f32]</c>: the randomised estimators against exact
/// values on random operators with known spectra, then the NTK operators of two small models (adjoint
/// identities, P K P* against the whole-model NTK, dz/dθ against finite differences), in the chosen
/// precision, printed as a table (or JSON rows with <c>--json</c>). Exits 70 if a row fails.
/// </summary>
public sealed class SelfCheckCommand : CliCommand<SelfCheckCommand.Settings>
{
    /// <summary>Options of <c>selfcheck</c>.</summary>
    public sealed class Settings : PrecisionSettings
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
        var precision = settings.ComputePrecision;
        var rows = SelfCheck.Run(settings.Seed, precision).Concat(OperatorSelfCheck.Run(settings.Seed, precision)).ToList();
        var table = new Table().Title($"GlobalNtk self-check (seed {settings.Seed}, {precision.Name()})")
            .AddColumn("quantity").AddColumn(new TableColumn("estimate").RightAligned())
            .AddColumn(new TableColumn("exact").RightAligned()).AddColumn(new TableColumn("std. error / residual").RightAligned())
            .AddColumn(new TableColumn("rel. error").RightAligned()).AddColumn(new TableColumn("pass").Centered());
        static string F(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
        foreach (var r in rows)
            table.AddRow(Markup.Escape(r.Name), F(r.Estimate), F(r.Exact), F(r.StandardError), RelativeError(r).ToString("E1", CultureInfo.InvariantCulture), r.Passed ? "yes" : "NO");

        // Render to plain text lines so the shared CLI contract (stdout lines or --json) holds.
        var text = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(text), Ansi = AnsiSupport.No, Interactive = InteractionSupport.No,
        });
        console.Profile.Width = 120;
        console.Write(table);
        var lines = text.ToString().TrimEnd().Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
        lines = [.. lines, "A row passes when |estimate − exact| ≤ 4 × std. error + its rounding tolerance (tolerances: docs/math.md#numerics)."];
        var data = rows.Select(r => new { r.Name, r.Estimate, r.Exact, r.StandardError, RelativeError = RelativeError(r), r.Tolerance, r.Passed }).ToArray();
        return new CommandOutcome(new { seed = settings.Seed, precision = precision.Name(), rows = data }, lines) { Failure = FailureLine(rows) };
    }

    /// <summary>
    /// Null when every row passed; otherwise the one stderr line that names the failed rows (a failed row
    /// means a wrong operator or estimator in this build, so the command exits 70 like any other bug).
    /// </summary>
    internal static string? FailureLine(IReadOnlyList<SelfCheckRow> rows)
    {
        var failed = rows.Where(r => !r.Passed).Select(r => r.Name).ToList();
        return failed.Count == 0 ? null
            : $"error: selfcheck: {failed.Count} of {rows.Count} rows outside their tolerance: {string.Join("; ", failed)}. This is a bug; please report it with this table.";
    }

    // Rows whose exact value is 0 (relative differences of two operators) report the difference itself.
    private static double RelativeError(SelfCheckRow r) => r.Exact == 0 ? Math.Abs(r.Estimate) : Math.Abs(r.Estimate - r.Exact) / Math.Abs(r.Exact);
}
