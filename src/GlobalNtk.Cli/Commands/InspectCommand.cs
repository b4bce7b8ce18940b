using System.ComponentModel;
using GlobalNtk.Cli.Common;
using GlobalNtk.IO;
using Spectre.Console.Cli;

namespace GlobalNtk.Cli.Commands;

/// <summary>Options of <c>inspect</c>.</summary>
public sealed class InspectSettings : CommonSettings
{
    /// <summary>Model file.</summary>
    [CommandArgument(0, "<MODEL>")]
    [Description("Model weights (.safetensors, PyTorch names).")]
    public string? Model { get; init; }

    /// <summary>Architecture override.</summary>
    [CommandOption("--arch <ARCH>")]
    [ArchListDescription("Architecture when the file's metadata has none.")]
    public string? Arch { get; init; }

    /// <summary>Model settings overriding the file's metadata.</summary>
    [CommandOption("--option <KEY=VALUE>")]
    [Description(ModelInputSettings.ModelOptionDescription)]
    public string[]? Options { get; init; }
}

/// <summary>
/// <c>globalntk inspect MODEL</c>: how a file will be read, before anything runs — family, sizes,
/// state layout, which tensor feeds which block, the readout, ignored tensors, parameter count,
/// and each setting with where it came from. A missing setting fails here exactly as it would in
/// any other command, naming it.
/// </summary>
public sealed class InspectCommand : CliCommand<InspectSettings>
{
    /// <inheritdoc/>
    protected override CommandOutcome Run(InspectSettings s, CliProgress progress, CancellationToken ct)
    {
        var loaded = CliInputs.Model(s.Model, s.Arch, "MODEL", s.Options);
        var inspection = ModelInspection.Of(loaded);
        return new CommandOutcome(new
        {
            command = "inspect", model = inspection.Path, family = inspection.Family, arch = inspection.Arch,
            stateAxes = inspection.StateAxes, stateSizes = inspection.StateSizes,
            chainParameters = inspection.ChainParameters, readoutParameters = inspection.ReadoutParameters, hasReadout = inspection.HasReadout,
            readout = inspection.ReadoutText, readoutBias = inspection.ReadoutHasBias,
            tensors = inspection.Tensors.Select(t => new { block = t.Block, name = t.Name, shape = t.Shape, fileTensor = t.FileTensor }),
            ignored = inspection.Ignored.Select(i => new { name = i.Name, shape = i.Shape, why = i.Why }),
            settings = inspection.Settings.Select(x => new { key = x.Key, value = x.Value, source = x.SourceText, meaning = x.Meaning }),
        }, inspection.Lines().ToList());
    }
}
