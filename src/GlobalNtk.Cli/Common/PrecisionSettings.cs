using System.ComponentModel;
using Spectre.Console.Cli;

namespace GlobalNtk.Cli.Common;

/// <summary>
/// Options of every command that computes through the operator stack: <see cref="CommonSettings"/> and
/// <c>--precision</c>, defined here once and parsed by <see cref="CliInputs.ParsePrecision"/>.
/// </summary>
public class PrecisionSettings : CommonSettings
{
    /// <summary>Compute precision as given (null: f64).</summary>
    [CommandOption("--precision <P>")]
    [DefaultValue("f64"), NullWhenOmitted]
    [Description(CliInputs.PrecisionDescription)]
    public string? Precision { get; init; }

    /// <summary>The precision in effect; a bad value is one <c>error:</c> line naming <c>--precision</c>.</summary>
    public Dense.Precision ComputePrecision => CliInputs.ParsePrecision(Precision);
}
