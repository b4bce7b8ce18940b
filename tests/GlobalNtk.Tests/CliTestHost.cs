using GlobalNtk.Cli;
using GlobalNtk.Cli.Common;

namespace GlobalNtk.Tests;

/// <summary>Runs the CLI in-process and captures stdout/stderr.</summary>
internal static class CliTestHost
{
    /// <param name="CrashLog">The crash log's text when the run hit an internal error (exit 70), else null.</param>
    internal sealed record Result(int Exit, string Out, string Err, string? CrashLog = null)
    {
        public string[] ErrLines => Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>
    /// Runs the CLI with its crash-log folder inside a temporary folder of this call (so a bug
    /// leaves nothing in the user's cache); the log's text comes back in <see cref="Result.CrashLog"/>.
    /// </summary>
    internal static Result Run(params string[] args)
    {
        using var logs = new TempDir();
        var o = new StringWriter(); var e = new StringWriter();
        int code = CliApp.Run(args, new CliIO(o, e) { LogDirectory = logs.Path });
        string? crash = Directory.EnumerateFiles(logs.Path).Select(File.ReadAllText).FirstOrDefault();
        return new Result(code, o.ToString(), e.ToString(), crash);
    }

    /// <summary>Asserts the error contract: exit 2 (bad input), exactly one stderr line containing every fragment, no crash log.</summary>
    internal static void AssertOneLineError(Result r, params string[] fragments)
    {
        Xunit.Assert.True(r.Exit == CliErrors.BadInput, $"expected exit {CliErrors.BadInput}, got {r.Exit}: {r.Err}{r.CrashLog}");
        var lines = r.ErrLines;
        Xunit.Assert.True(lines.Length == 1, $"expected one stderr line, got {lines.Length}: {r.Err}");
        Xunit.Assert.StartsWith("error: ", lines[0]);
        foreach (var f in fragments) Xunit.Assert.Contains(f, lines[0], StringComparison.OrdinalIgnoreCase);
    }
}
