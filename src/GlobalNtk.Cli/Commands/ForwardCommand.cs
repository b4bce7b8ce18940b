using System.ComponentModel;
using GlobalNtk.Cli.Common;
using GlobalNtk.Dense;
using GlobalNtk.IO;
using Spectre.Console.Cli;

namespace GlobalNtk.Cli.Commands;

/// <summary>Options of <c>forward</c>.</summary>
public sealed class ForwardSettings : CommonSettings
{
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
    [Description("Model setting, repeatable; overrides the file's metadata (e.g. norm_first=false, layer_norm_eps=1e-6). 'globalntk inspect' lists what a file needs.")]
    public string[]? Options { get; init; }

    /// <summary>Inputs file.</summary>
    [CommandOption("-i|--inputs <FILE>")]
    [Description("Inputs .npy [[trials, steps, inputs]] (float or integer, C order; a transformer with an embedding takes integer token ids [[sequences, tokens]]).")]
    public string? Inputs { get; init; }

    /// <summary>Inputs are [time, trial, input].</summary>
    [CommandOption("--time-major")]
    [Description("The inputs .npy is [[steps, trials, inputs]] (PyTorch's batch_first=False) instead of [[trials, steps, inputs]].")]
    public bool TimeMajor { get; init; }

    /// <summary>Output file.</summary>
    [CommandOption("-o|--out <FILE>")]
    [Description("Where to write the states .npy (float64; [[B, T, S]], LSTM S = 2H as [[h, c]]); an existing file only with --force.")]
    public string? Out { get; init; }

    /// <summary>Compute precision (null: f64).</summary>
    [CommandOption("--precision <P>")]
    [DefaultValue("f64"), NullWhenOmitted]
    [Description(CliInputs.PrecisionDescription)]
    public string? Precision { get; init; }

    /// <summary>Replace an earlier globalntk output.</summary>
    [CommandOption("--force")]
    [Description(OutputTarget.ForceDescription)]
    public bool Force { get; init; }
}

/// <summary><c>globalntk forward</c>: the model's states on given inputs.</summary>
public sealed class ForwardCommand : CliCommand<ForwardSettings>
{
    /// <inheritdoc/>
    protected override CommandOutcome Run(ForwardSettings s, CliProgress progress, CancellationToken ct)
    {
        var precision = CliInputs.ParsePrecision(s.Precision);
        string outPath = CliInputs.Required(s.Out, "--out");
        using var output = OutputFile.Create(new OutputRequest(outPath, "forward", s.Force, [new("--model", s.Model), new("--inputs", s.Inputs)]));
        var loaded = CliInputs.Model(s.Model, s.Arch, settings: s.Options);
        var inputs = CliInputs.Inputs(s.Inputs, timeMajor: s.TimeMajor);
        var lin = CliInputs.Linearize(loaded.Model, inputs, s.Inputs!, precision);
        var states = new Tensor(lin.States.ToArray(), lin.StateShape);
        Npy.Write(output.TempPath, states);
        output.Commit();
        var shape = lin.StateShape;
        return new CommandOutcome(
            new { model = s.Model, arch = loaded.Model.Arch, inputs = s.Inputs, @out = outPath,
                  stateAxes = shape.Names, stateShape = shape.Sizes },
            [$"wrote states {shape} to {outPath}"]);
    }
}
