using System.ComponentModel;
using GlobalNtk.Analysis;
using GlobalNtk.Cli.Common;
using Spectre.Console.Cli;

namespace GlobalNtk.Cli.Commands;

/// <summary>Probe budgets and seed shared by the commands that analyse (docs/math.md#estimators).</summary>
public class AnalysisSettings : CommonSettings
{
    /// <summary>Top-k eigenvalues.</summary>
    [CommandOption("--top-k <K>")]
    [Description("Top eigenvalues of NTK_S, K and P P* to compute (default 20).")]
    public int? TopK { get; init; }

    /// <summary>Probes for traces / effective ranks / alignment.</summary>
    [CommandOption("--probes <N>")]
    [Description("Random probes for traces, effective ranks and alignment (default 60).")]
    public int? Probes { get; init; }

    /// <summary>Probes per partial effective rank.</summary>
    [CommandOption("--partial-probes <N>")]
    [Description("Probes per partial effective rank (each costs one application per kept index; default 10).")]
    public int? PartialProbes { get; init; }

    /// <summary>Seed.</summary>
    [CommandOption("--seed <SEED>")]
    [Description("Seed of every random draw (default 1).")]
    public int? Seed { get; init; }

    /// <summary>The options (defaults for whatever was not given).</summary>
    public AnalysisOptions ToOptions(AnalysisOptions? defaults = null)
    {
        var d = defaults ?? new AnalysisOptions { PartialProbes = 10 };
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
