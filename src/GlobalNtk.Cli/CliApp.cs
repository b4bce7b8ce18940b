using System.Reflection;
using Spectre.Console.Cli;

namespace GlobalNtk.Cli;

/// <summary>Builds the <c>globalntk</c> command tree.</summary>
public static class CliApp
{
    /// <summary>Runs the CLI; returns the process exit code.</summary>
    public static int Run(string[] args)
    {
        var app = new CommandApp();
        app.Configure(c =>
        {
            c.SetApplicationName("globalntk");
            c.AddCommand<VersionCommand>("version").WithDescription("Print the version.");
            c.AddCommand<Commands.SelfCheckCommand>("selfcheck").WithDescription("Run the randomised estimators against exact values on random operators with known spectra.");
        });
        return app.Run(args);
    }
}

/// <summary><c>globalntk version</c>.</summary>
public sealed class VersionCommand : Command
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, CancellationToken cancellationToken)
    {
        var v = typeof(VersionCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
        Console.WriteLine($"globalntk {v.Split('+')[0]}");
        return 0;
    }
}
