using System.ComponentModel;
using GlobalNtk.Analysis;
using GlobalNtk.Cli.Common;
using Spectre.Console.Cli;

namespace GlobalNtk.Cli.Commands;

/// <summary>Probe budgets and seed shared by the commands that analyse (docs/math.md#estimators).</summary>
public class AnalysisSettings : CommonSettings
{
    /// <summary>Top-k eigenvalues (null: not given).</summary>
    [CommandOption("--top-k <K>")]
    [Description("Top eigenvalues of NTK_S, K and P P* to compute.")]
    [DefaultValue(CliDefaults.TopK), NullWhenOmitted]
    public int? TopK { get; init; }

    /// <summary>Probes for traces / effective ranks / alignment (null: not given).</summary>
    [CommandOption("--probes <N>")]
    [Description("Random probes for traces, effective ranks and alignment.")]
    [DefaultValue(CliDefaults.Probes), NullWhenOmitted]
    public int? Probes { get; init; }

    /// <summary>Probes per partial effective rank (null: not given).</summary>
    [CommandOption("--partial-probes <N>")]
    [Description("Probes per partial effective rank (each costs one application per kept index).")]
    [DefaultValue(CliDefaults.PartialProbes), NullWhenOmitted]
    public int? PartialProbes { get; init; }

    /// <summary>Seed (null: not given).</summary>
    [CommandOption("--seed <SEED>")]
    [Description("Seed of every random draw (same seed, same numbers).")]
    [DefaultValue(CliDefaults.Seed), NullWhenOmitted]
    public int? Seed { get; init; }

    /// <summary>The seed in effect.</summary>
    public int SeedOrDefault => Seed ?? CliDefaults.Seed;

    /// <summary>The options (the CLI's defaults for whatever was not given).</summary>
    public AnalysisOptions ToOptions(AnalysisOptions? defaults = null)
    {
        var d = defaults ?? new AnalysisOptions { TopK = CliDefaults.TopK, Probes = CliDefaults.Probes, PartialProbes = CliDefaults.PartialProbes, Seed = CliDefaults.Seed };
        var o = d with
        {
            TopK = CliInputs.AtLeast(TopK ?? d.TopK, 1, "--top-k"),
            Probes = CliInputs.AtLeast(Probes ?? d.Probes, 3, "--probes"),
            PartialProbes = CliInputs.AtLeast(PartialProbes ?? d.PartialProbes, 2, "--partial-probes"),
            Seed = Seed ?? d.Seed,
        };
        o.Validate();
        return o;
    }
}
