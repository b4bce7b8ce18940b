using System.ComponentModel;
using GlobalNtk.Cli.Common;
using GlobalNtk.Dense;
using GlobalNtk.IO;
using GlobalNtk.Models;
using Spectre.Console.Cli;

namespace GlobalNtk.Cli.Commands;

/// <summary>
/// Options shared by the commands that run one model file on one inputs file (forward, apply):
/// the model, how to read it, and the inputs. Derived settings add their own options after these.
/// </summary>
public abstract class ModelInputSettings : PrecisionSettings
{
    /// <summary>Help text of <c>--option</c> where it sets a model file's settings.</summary>
    public const string ModelOptionDescription =
        "Model setting, repeatable; overrides the file's metadata (e.g. norm_first=false, layer_norm_eps=1e-6).";

    /// <summary>Help text of <c>--option</c> for the commands that load a model (all but <c>inspect</c>, which it names).</summary>
    public const string ModelOptionSeeInspectDescription = ModelOptionDescription + " 'globalntk inspect' lists what a file needs.";

    /// <summary>Help text of <c>--time-major</c>.</summary>
    public const string TimeMajorDescription =
        "The inputs .npy is [[steps, trials, inputs]] (PyTorch's batch_first=False) instead of [[trials, steps, inputs]].";

    /// <summary>Model file.</summary>
    [CommandOption("-m|--model <FILE>")]
    [Description("Model weights (.safetensors, PyTorch names; arch from metadata or --arch).")]
    public string? Model { get; init; }

    /// <summary>Architecture override.</summary>
    [CommandOption("--arch <ARCH>")]
    [ArchListDescription("Architecture when the file's metadata has none.")]
    public string? Arch { get; init; }

    /// <summary>Model settings overriding the file's metadata.</summary>
    [CommandOption("--option <KEY=VALUE>")]
    [Description(ModelOptionSeeInspectDescription)]
    public string[]? Options { get; init; }

    /// <summary>Inputs file.</summary>
    [CommandOption("-i|--inputs <FILE>")]
    [Description("Inputs .npy [[trials, steps, inputs]] (float or integer, C order; a transformer with an embedding takes integer token ids [[sequences, tokens]]).")]
    public string? Inputs { get; init; }

    /// <summary>Inputs are [time, trial, input].</summary>
    [CommandOption("--time-major")]
    [Description(TimeMajorDescription)]
    public bool TimeMajor { get; init; }

    /// <summary>
    /// Loads <c>--model</c> (with <c>--arch</c> and <c>--option</c>), reads <c>--inputs</c> and
    /// linearises the model on them in <paramref name="precision"/>; each failure is one line naming its option.
    /// </summary>
    public (LoadedModel Loaded, ChainLinearization Linearization) Linearize(Precision precision)
    {
        var loaded = CliInputs.Model(Model, Arch, settings: Options);
        var inputs = CliInputs.Inputs(Inputs, timeMajor: TimeMajor);
        return (loaded, CliInputs.Linearize(loaded.Model, inputs, Inputs!, precision));
    }
}
