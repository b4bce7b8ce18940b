using GlobalNtk.Dense;
using GlobalNtk.Operators;
using Spectre.Console.Cli;

namespace GlobalNtk.Cli.Common;

/// <summary>A problem with what the user gave the CLI (file, option, shape); its message is shown as is.</summary>
public sealed class CliInputException(string message) : Exception(message);

/// <summary>Turns any exception into the single stderr line and exit code of the CLI's contract.</summary>
public static class CliErrors
{
    /// <summary>Exit code for bad input (files, options, shapes, NaN/Inf).</summary>
    public const int BadInput = 2;
    /// <summary>Exit code for an internal failure (a bug): still one line.</summary>
    public const int Internal = 70;

    /// <summary>Exit code for <paramref name="ex"/>.</summary>
    public static int ExitCode(Exception ex) => IsInputError(ex) ? BadInput : Internal;

    /// <summary>Whether the exception reports bad input rather than a bug.</summary>
    public static bool IsInputError(Exception ex) => Unwrap(ex) is CliInputException or CommandParseException
        or CommandRuntimeException or FileNotFoundException or DirectoryNotFoundException or IOException
        or UnauthorizedAccessException or InvalidDataException or FormatException or ArgumentException
        or NonFiniteException or KeyNotFoundException or NotSupportedException or OverflowException
        or System.Text.Json.JsonException;

    /// <summary>The one line written to stderr: "error: …" (first line of the message, whitespace collapsed).</summary>
    public static string OneLine(Exception ex)
    {
        var e = Unwrap(ex);
        string msg = e.Message;
        if (string.IsNullOrWhiteSpace(msg)) msg = e.GetType().Name;
        msg = string.Join(' ', msg.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries).Select(s => s.Trim()));
        string prefix = IsInputError(e) ? "error: " : $"internal error ({e.GetType().Name}): ";
        return prefix + msg;
    }

    private static Exception Unwrap(Exception ex)
    {
        while (ex is AggregateException { InnerExceptions.Count: 1 } or System.Reflection.TargetInvocationException && ex.InnerException is not null)
            ex = ex.InnerException!;
        return ex;
    }
}
