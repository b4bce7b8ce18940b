using System.ComponentModel;
using GlobalNtk.Cli.Common;
using GlobalNtk.Dense;
using GlobalNtk.IO;
using Spectre.Console.Cli;

namespace GlobalNtk.Cli.Commands;

/// <summary>Options of <c>forward</c>.</summary>
public sealed class ForwardSettings : ModelInputSettings
{
    /// <summary>Output file.</summary>
    [CommandOption("-o|--out <FILE>")]
    [Description("Where to write the states .npy (float64; [[B, T, S]], LSTM S = 2H as [[h, c]]); an existing file only with --force.")]
    public string? Out { get; init; }

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
        var precision = s.ComputePrecision;
        string outPath = CliInputs.Required(s.Out, "--out");
        using var output = OutputFile.Create(new OutputRequest(outPath, "forward", s.Force, [new("--model", s.Model), new("--inputs", s.Inputs)]));
        var (loaded, lin) = s.Linearize(precision);
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
