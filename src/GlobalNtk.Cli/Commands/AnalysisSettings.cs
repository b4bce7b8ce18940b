using System.ComponentModel;
using System.Globalization;
using GlobalNtk.Analysis;
using GlobalNtk.Cli.Common;
using Spectre.Console.Cli;

namespace GlobalNtk.Cli.Commands;

/// <summary>Budgets and seed shared by the commands that analyse (analyze, demo, sweep; docs/math.md#estimators).</summary>
public class AnalysisSettings : PrecisionSettings
{
    /// <summary>Preset of budgets (null: not given).</summary>
    [CommandOption("--budget <PRESET>")]
    [DefaultValue(CliDefaults.Budget), NullWhenOmitted]
    [Description("quick|default|thorough: probes, tolerances and budgets together. Cost in operator applications per checkpoint " +
                 "(a 3-axis state; each application costs about one NTK_S matrix-vector product): " +
                 "quick ~290 (top-8, spectra ≤ 32 applications to 1e-2, ranks stop at a 10 % SE: at most 12 probes, 24 per partial rank), " +
                 "default ~440 (top-10, ≤ 60 to 1e-3, ranks stop at a 5 % SE: at most 30 probes, 24 per partial rank), " +
                 "thorough ~3900 (top-20, ≤ 600 to 1e-5, every budget spent: 160 probes, 240 per partial rank; SEs several times smaller). " +
                 "Ranks usually stop well below their budget where the SE target is met. " +
                 "Options below override the preset.")]
    public string? Budget { get; init; }

    /// <summary>Top-k eigenvalues.</summary>
    [CommandOption("--top-k <K>")]
    [Description("Top eigenvalues of NTK_S, K and P P* to compute (preset: 8/10/20).")]
    public int? TopK { get; init; }

    /// <summary>Probes for traces / effective ranks / alignment (null: not given).</summary>
    [CommandOption("--probes <N>")]
    [Description("Random probes (one application each) for traces, effective ranks and alignment (preset: 12/30/160).")]
    public int? Probes { get; init; }

    /// <summary>Applications per partial effective rank.</summary>
    [CommandOption("--partial-budget <N>")]
    [Description("Operator applications per partial effective rank, at least 6; the estimator is chosen to fit (preset: 24/24/240).")]
    public int? PartialBudget { get; init; }

    /// <summary>Applications per spectrum.</summary>
    [CommandOption("--spectrum-budget <N>")]
    [Description("Most operator applications per top-k spectrum, never exceeded (preset: 32/60/600).")]
    public int? SpectrumBudget { get; init; }

    /// <summary>Relative eigenvalue tolerance.</summary>
    [CommandOption("--tolerance <TOL>")]
    [Description("Relative eigenvalue tolerance of the spectra: stop when every eigenvalue's error bound is below TOL·λ₁ (preset: 1e-2/1e-3/1e-5).")]
    public string? Tolerance { get; init; }

    /// <summary>Relative SE target of the ranks (null: not given).</summary>
    [CommandOption("--se-target <R>")]
    [Description("Relative standard-error target of every effective rank: probing stops once PR's SE is at most R·PR (budgets stay the cap); 0 spends every budget (preset: 0.1/0.05/0).")]
    public string? SeTarget { get; init; }

    /// <summary>Seed (null: not given).</summary>
    [CommandOption("--seed <SEED>")]
    [Description("Seed of every random draw (same seed, same numbers).")]
    [DefaultValue(CliDefaults.Seed), NullWhenOmitted]
    public int? Seed { get; init; }

    /// <summary>The seed in effect.</summary>
    public int SeedOrDefault => Seed ?? CliDefaults.Seed;

    /// <summary>The preset named by <c>--budget</c> (default when not given).</summary>
    public AnalysisBudget Preset() => Budget?.Trim().ToLowerInvariant() switch
    {
        null or "default" => AnalysisBudget.Default,
        "quick" => AnalysisBudget.Quick,
        "thorough" => AnalysisBudget.Thorough,
        _ => throw new CliInputException($"--budget must be quick, default or thorough, got '{Budget}'."),
    };

    /// <summary>The options: the preset, then whatever was given explicitly.</summary>
    public AnalysisOptions ToOptions()
    {
        var d = AnalysisOptions.ForBudget(Preset()) with { Seed = CliDefaults.Seed };
        double tolerance = d.SpectrumTolerance;
        if (Tolerance is not null)
        {
            if (!double.TryParse(Tolerance, NumberStyles.Float, CultureInfo.InvariantCulture, out tolerance) || !(tolerance > 0 && tolerance < 1))
                throw new CliInputException($"--tolerance must be a number in (0, 1), got '{Tolerance}'.");
        }
        double target = d.RelativeTarget;
        if (SeTarget is not null)
        {
            if (!double.TryParse(SeTarget, NumberStyles.Float, CultureInfo.InvariantCulture, out target) || !(target >= 0 && target < 1))
                throw new CliInputException($"--se-target must be a number in [0, 1), got '{SeTarget}'.");
        }
        var o = d with
        {
            RelativeTarget = target,
            TopK = CliInputs.AtLeast(TopK ?? d.TopK, 1, "--top-k"),
            Probes = CliInputs.AtLeast(Probes ?? d.Probes, 3, "--probes"),
            PartialBudget = CliInputs.AtLeast(PartialBudget ?? d.PartialBudget, 6, "--partial-budget"),
            SpectrumBudget = CliInputs.AtLeast(SpectrumBudget ?? d.SpectrumBudget, 2, "--spectrum-budget"),
            SpectrumTolerance = tolerance,
            Seed = Seed ?? d.Seed,
            Precision = ComputePrecision,
        };
        o.Validate();
        return o;
    }

    /// <summary>One sentence describing the estimators and budgets of <paramref name="o"/> for report setups.</summary>
    public static string Describe(AnalysisOptions o) =>
        $"Estimators (budget preset `{o.Budget}`): top-{o.TopK} eigenpairs by block Krylov within {o.SpectrumBudget} operator applications per spectrum " +
        $"(relative eigenvalue tolerance {o.SpectrumTolerance:G2}); tr A, tr A² and PR = (tr A)²/tr A² from at most {o.Probes} Rademacher probes deflated by the top eigenvectors; " +
        $"partial ranks within {o.PartialBudget} applications each (exact, per-index or Kronecker probes, whichever fits); " +
        (o.RelativeTarget > 0 ? $"probing stops once an effective rank's SE is at most {o.RelativeTarget:0.###} of its value; " : "") + $"seed {o.Seed}; {(o.Precision == GlobalNtk.Dense.Precision.F32 ? "float32" : "float64")} operators. ± values are one standard error.";
}
