using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Spectre.Console;

namespace GlobalNtk.Cli.Common;

/// <summary>
/// Where a command writes: results (and <c>--json</c>) to <see cref="Out"/>, progress and errors
/// to <see cref="Err"/>. Held per logical call (AsyncLocal) so tests can run the CLI in-process
/// with their own writers, in parallel.
/// </summary>
public sealed class CliIO
{
    private static readonly AsyncLocal<CliIO?> CurrentSlot = new();

    /// <summary>Creates an I/O pair.</summary>
    public CliIO(TextWriter @out, TextWriter err) { Out = @out; Err = err; }

    /// <summary>Standard output: the command's results.</summary>
    public TextWriter Out { get; }
    /// <summary>Standard error: progress and the one-line error message.</summary>
    public TextWriter Err { get; }

    /// <summary>
    /// Where crash logs (stack traces of internal errors) go; null: <see cref="DefaultLogDirectory"/>.
    /// Tests set it per call, so parallel tests need no process-wide environment variable.
    /// </summary>
    public string? LogDirectory { get; init; }

    /// <summary>Environment variable that overrides the crash-log folder.</summary>
    public const string LogDirectoryVariable = "GLOBALNTK_LOG_DIR";

    /// <summary>
    /// The crash-log folder when none is set: <c>$GLOBALNTK_LOG_DIR</c>, else
    /// <c>$XDG_CACHE_HOME/globalntk/logs</c> (default <c>~/.cache/globalntk/logs</c>), else
    /// <c>globalntk-logs</c> in the temp folder when there is no home folder.
    /// </summary>
    public static string DefaultLogDirectory()
    {
        var dir = Environment.GetEnvironmentVariable(LogDirectoryVariable);
        if (!string.IsNullOrWhiteSpace(dir)) return dir;
        var cache = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (string.IsNullOrWhiteSpace(cache) || !Path.IsPathRooted(cache))
        {
            var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            cache = string.IsNullOrWhiteSpace(home) ? null : Path.Combine(home, ".cache");
        }
        return cache is null ? Path.Combine(Path.GetTempPath(), "globalntk-logs") : Path.Combine(cache, "globalntk", "logs");
    }

    /// <summary>The I/O of the running CLI call (the process console when none was set).</summary>
    public static CliIO Current
    {
        get => CurrentSlot.Value ?? new CliIO(Console.Out, Console.Error);
        internal set => CurrentSlot.Value = value;
    }

    /// <summary>A Spectre console on <see cref="Err"/> (progress bars never pollute stdout/JSON).</summary>
    public IAnsiConsole ErrConsole() => AnsiConsole.Create(new AnsiConsoleSettings
    {
        Out = new AnsiConsoleOutput(Err),
        Ansi = ReferenceEquals(Err, Console.Error) && !Console.IsErrorRedirected ? AnsiSupport.Detect : AnsiSupport.No,
        Interactive = ReferenceEquals(Err, Console.Error) && !Console.IsErrorRedirected ? InteractionSupport.Detect : InteractionSupport.No,
    });
}

/// <summary>The JSON conventions of every command's <c>--json</c> output and of <c>results.json</c>.</summary>
public static class CliJson
{
    /// <summary>
    /// camelCase, indented, NaN/Infinity written as strings (never silently dropped), and text as
    /// written: "λ₁ → 3" stays readable instead of "\u03BB\u2081 \u2192 3" (the output is a file or a
    /// pipe, never HTML, so HTML-safe escaping would only hide the text).
    /// </summary>
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    /// <summary>Serialises <paramref name="value"/> with <see cref="Options"/>.</summary>
    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, Options);

    /// <summary>
    /// A JSON document of <paramref name="command"/>: <c>command</c> and <c>version</c> first, then
    /// the properties of <paramref name="data"/> (a value that is not an object goes under <c>result</c>).
    /// </summary>
    public static string Document(string command, object? data)
    {
        var doc = new JsonObject { ["command"] = command, ["version"] = CliApp.Version };
        var node = JsonSerializer.SerializeToNode(data, Options);
        if (node is JsonObject fields)
        {
            foreach (var (key, value) in fields.ToArray())
            {
                fields.Remove(key);
                if (key is not ("command" or "version")) doc[key] = value;
            }
        }
        else if (node is not null) doc["result"] = node;
        return doc.ToJsonString(Options);
    }
}
