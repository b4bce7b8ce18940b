using System.ComponentModel;
using GlobalNtk.Cli.Common;
using GlobalNtk.Dense;
using GlobalNtk.IO;
using GlobalNtk.Ntk;
using GlobalNtk.Operators;
using Spectre.Console.Cli;

namespace GlobalNtk.Cli.Commands;

/// <summary>Options of <c>apply</c>.</summary>
public sealed class ApplySettings : ModelInputSettings
{
    /// <summary>Operator name.</summary>
    [CommandOption("--operator <OP>")]
    [Description("P (propagation), Pstar (P*, BPTT), Pinv (P⁻¹), K (J_θ J_θ*), NTK (NTK_S = P K P*).")]
    public string? Operator { get; init; }

    /// <summary>Vector file.</summary>
    [CommandOption("--vector <FILE>")]
    [Description("State-shaped vector .npy (the shape `forward` writes).")]
    public string? Vector { get; init; }

    /// <summary>Output file.</summary>
    [CommandOption("-o|--out <FILE>")]
    [Description("Where to write the result .npy (float64, state-shaped); an existing file only with --force.")]
    public string? Out { get; init; }

    /// <summary>Replace an earlier globalntk output.</summary>
    [CommandOption("--force")]
    [Description(OutputTarget.ForceDescription)]
    public bool Force { get; init; }
}

/// <summary><c>globalntk apply</c>: one matrix-free operator applied to one vector.</summary>
public sealed class ApplyCommand : CliCommand<ApplySettings>
{
    /// <summary>Valid operator names (case-insensitive) and what they are.</summary>
    public static readonly IReadOnlyDictionary<string, string> Operators = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["P"] = "P", ["Pstar"] = "P*", ["Pinv"] = "P⁻¹", ["K"] = "K", ["NTK"] = "NTK_S",
    };

    /// <summary>The named operator of <paramref name="ops"/>.</summary>
    public static LinearOperator Select(NtkOperators ops, string name) => name.ToLowerInvariant() switch
    {
        "p" => ops.P,
        "pstar" => ops.PAdjoint,
        "pinv" => ops.PInverse,
        "k" => ops.KKronecker,
        "ntk" => ops.NtkS,
        _ => throw new CliInputException($"unknown operator '{name}' (valid: {string.Join(", ", Operators.Keys)})."),
    };

    /// <inheritdoc/>
    protected override CommandOutcome Run(ApplySettings s, CliProgress progress, CancellationToken ct)
    {
        var precision = s.ComputePrecision;
        string opName = CliInputs.Required(s.Operator, "--operator");
        if (!Operators.ContainsKey(opName))
            throw new CliInputException($"unknown operator '{opName}' (valid: {string.Join(", ", Operators.Keys)}).");
        string outPath = CliInputs.Required(s.Out, "--out");
        CliInputs.ExistingFile(s.Vector, "--vector");
        using var output = OutputFile.Create(new OutputRequest(outPath, "apply", s.Force,
            [new("--model", s.Model), new("--inputs", s.Inputs), new("--vector", s.Vector)]));
        var (_, lin) = s.Linearize(precision);
        var q = CliInputs.Matching(s.Vector, lin.StateShape, "--vector", "states");
        var op = Select(new NtkOperators(lin), opName);
        var y = op.Apply(q.Span);
        Numerics.EnsureFinite(y, $"{Operators[opName]} applied to --vector '{s.Vector}'");
        Npy.Write(output.TempPath, new Tensor(y, lin.StateShape));
        output.Commit();
        return new CommandOutcome(
            new { @operator = Operators[opName], model = s.Model, inputs = s.Inputs, vector = s.Vector, @out = outPath,
                  stateAxes = lin.StateShape.Names, stateShape = lin.StateShape.Sizes, inputNorm = Numerics.Norm(q.Span), outputNorm = Numerics.Norm(y) },
            [$"wrote {Operators[opName]}·q {lin.StateShape} to {outPath} (‖q‖ = {Numerics.Norm(q.Span):G6}, ‖{Operators[opName]}·q‖ = {Numerics.Norm(y):G6})"]);
    }
}
