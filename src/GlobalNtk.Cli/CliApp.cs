using System.Reflection;
using GlobalNtk.Cli.Common;
using Spectre.Console;
using Spectre.Console.Cli;

namespace GlobalNtk.Cli;

/// <summary>
/// Builds the <c>globalntk</c> command tree and enforces the CLI's shared contract: every error
/// becomes exactly one line on stderr and a non-zero exit code (2 = bad input, 70 = internal),
/// results go to stdout (text, or JSON with <c>--json</c>), progress to stderr.
/// </summary>
/// <remarks>
/// Conventions for command authors: derive from <see cref="CliCommand{TSettings}"/> with settings
/// derived from <see cref="CommonSettings"/>; report bad input by throwing
/// <see cref="CliInputException"/> (or let the library's exceptions through); write outputs via
/// <see cref="AtomicFolder"/> (folders) or GlobalNtk.IO's atomic writers (files); show long work with <see cref="CliProgress"/>; register the
/// command below with a description and at least one example.
/// </remarks>
public static class CliApp
{
    /// <summary>Runs the CLI on the process console; returns the exit code.</summary>
    public static int Run(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Runs the CLI in-process with the given writers (used by the tests); returns the exit code.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var io = new CliIO(stdout, stderr);
        CliIO.Current = io;
        var app = new CommandApp();
        app.Configure(c =>
        {
            c.SetApplicationName("globalntk");
            c.ConfigureConsole(AnsiConsole.Create(new AnsiConsoleSettings
            {
                Out = new AnsiConsoleOutput(stdout),
                Ansi = ReferenceEquals(stdout, Console.Out) && !Console.IsOutputRedirected ? AnsiSupport.Detect : AnsiSupport.No,
                Interactive = InteractionSupport.No,
            }));
            c.PropagateExceptions();
            c.CaseSensitivity(CaseSensitivity.None);
            Configure(c);
        });
        try
        {
            return app.Run(args);
        }
        catch (Exception ex)
        {
            stderr.WriteLine(CliErrors.OneLine(ex));
            stderr.Flush();
            return CliErrors.ExitCode(ex);
        }
    }

    private static void Configure(IConfigurator c)
    {
        c.AddCommand<Commands.TrainCommand>("train").WithDescription("Train a model on a generated task; checkpoints (safetensors, PyTorch names), log.csv and summary.json go to --out.")
            .WithExample("train", "--task", "flip-flop", "--arch", "gru", "--hidden", "64", "--steps", "2000", "--lr", "0.001", "--optimizer", "adam", "--gain", "1.5", "--seed", "1", "--out", "runs/gru-ff")
            .WithExample("train", "--resume", "--out", "runs/gru-ff", "--steps", "4000");
        c.AddCommand<VersionCommand>("version").WithDescription("Print the version.").WithExample("version");
        c.AddCommand<Commands.SelfCheckCommand>("selfcheck").WithDescription("Run the randomised estimators against exact values on random operators with known spectra.").WithExample("selfcheck", "--seed", "1");
    }
}

/// <summary><c>globalntk version</c>.</summary>
public sealed class VersionCommand : Command
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, CancellationToken cancellationToken)
    {
        var v = typeof(VersionCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
        CliIO.Current.Out.WriteLine($"globalntk {v.Split('+')[0]}");
        return 0;
    }
}
