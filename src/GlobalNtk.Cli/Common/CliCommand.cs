using System.ComponentModel;
using Spectre.Console.Cli;

namespace GlobalNtk.Cli.Common;

/// <summary>Options every command has: <c>--quiet</c> and <c>--json</c>.</summary>
public class CommonSettings : CommandSettings
{
    /// <summary>No progress bars.</summary>
    [CommandOption("-q|--quiet")]
    [Description("No progress bars (errors are still reported).")]
    public bool Quiet { get; init; }

    /// <summary>Machine-readable results on stdout.</summary>
    [CommandOption("--json")]
    [Description("Print the results as JSON on stdout (progress goes to stderr).")]
    public bool Json { get; init; }
}

/// <summary>What a command produced: a value for <c>--json</c> and lines for humans.</summary>
public sealed record CommandOutcome(object Data, IReadOnlyList<string> Lines)
{
    /// <summary>
    /// Set when the command ran to the end but found the library at fault (a self-check row outside its
    /// tolerance): the results are still printed, then this one line goes to stderr and the exit code is
    /// <see cref="CliErrors.Internal"/>, so scripts and CI see the failure.
    /// </summary>
    public string? Failure { get; init; }
}

/// <summary>
/// Base of every <c>globalntk</c> command: runs <see cref="Run"/>, prints its outcome as text or
/// JSON, and returns 0 (or 70 after the one line of a <see cref="CommandOutcome.Failure"/>). Errors propagate to <see cref="CliApp"/>, which prints one line.
/// </summary>
public abstract class CliCommand<TSettings> : Command<TSettings> where TSettings : CommonSettings
{
    /// <summary>Does the work; throw <see cref="CliInputException"/> (or any library exception) on bad input.</summary>
    protected abstract CommandOutcome Run(TSettings settings, CliProgress progress, CancellationToken cancellationToken);

    /// <inheritdoc/>
    public sealed override int Execute(CommandContext context, TSettings settings, CancellationToken cancellationToken)
    {
        var io = CliIO.Current;
        var outcome = Run(settings, new CliProgress(io, settings.Quiet), cancellationToken);
        if (settings.Json) io.Out.WriteLine(CliJson.Document(context.Name, outcome.Data));
        else foreach (var line in outcome.Lines) io.Out.WriteLine(line);
        io.Out.Flush();
        if (outcome.Failure is null) return 0;
        io.Err.WriteLine(outcome.Failure);
        io.Err.Flush();
        return CliErrors.Internal;
    }
}
