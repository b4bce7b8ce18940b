using GlobalNtk.Cli;

namespace GlobalNtk.Tests;

/// <summary>Runs the CLI in-process and captures stdout/stderr.</summary>
internal static class CliTestHost
{
    internal sealed record Result(int Exit, string Out, string Err)
    {
        public string[] ErrLines => Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    internal static Result Run(params string[] args)
    {
        var o = new StringWriter(); var e = new StringWriter();
        int code = CliApp.Run(args, o, e);
        return new Result(code, o.ToString(), e.ToString());
    }

    /// <summary>Asserts the error contract: non-zero exit, exactly one stderr line containing every fragment.</summary>
    internal static void AssertOneLineError(Result r, params string[] fragments)
    {
        Xunit.Assert.NotEqual(0, r.Exit);
        var lines = r.ErrLines;
        Xunit.Assert.True(lines.Length == 1, $"expected one stderr line, got {lines.Length}: {r.Err}");
        foreach (var f in fragments) Xunit.Assert.Contains(f, lines[0], StringComparison.OrdinalIgnoreCase);
    }
}
