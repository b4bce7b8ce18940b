using System.Globalization;
using System.Reflection;
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
        or System.Text.Json.JsonException or MemoryBudgetException;

    /// <summary>
    /// Writes the one stderr line for <paramref name="ex"/> and returns the exit code. Bad input
    /// gets "error: …"; a bug gets "internal error (…)" and the path of a crash log holding the
    /// stack trace (<see cref="CrashLog"/>, in <see cref="CliIO.LogDirectory"/>).
    /// </summary>
    public static int Report(Exception ex, IReadOnlyList<string> args, CliIO io)
    {
        int code = ExitCode(ex);
        string line = OneLine(ex, args);
        if (code == Internal)
        {
            try { line += $" This is a bug; the stack trace is in {CrashLog.Write(Unwrap(ex), args, io.LogDirectory ?? CliIO.DefaultLogDirectory())}"; }
            catch (Exception logError) { line += $" This is a bug (no crash log: {Collapse(logError.Message)})"; }
        }
        io.Err.WriteLine(line);
        io.Err.Flush();
        return code;
    }

    /// <summary>The one line written to stderr: "error: …" (first line of the message, whitespace collapsed).</summary>
    public static string OneLine(Exception ex) => OneLine(ex, []);

    /// <summary>
    /// Like <see cref="OneLine(Exception)"/>; with the command line, an option value that failed
    /// to convert is reported with the option's name and expected type.
    /// </summary>
    public static string OneLine(Exception ex, IReadOnlyList<string> args)
    {
        var e = Unwrap(ex);
        string msg = (e is CommandRuntimeException cre ? OptionValueErrors.Describe(cre, args) : null) ?? e.Message;
        if (string.IsNullOrWhiteSpace(msg)) msg = e.GetType().Name;
        msg = Collapse(msg);
        string prefix = IsInputError(e) ? "error: " : $"internal error ({e.GetType().Name}): ";
        return prefix + msg;
    }

    private static string Collapse(string msg) =>
        string.Join(' ', msg.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries).Select(s => s.Trim()));

    private static Exception Unwrap(Exception ex)
    {
        while (ex is AggregateException { InnerExceptions.Count: 1 } or System.Reflection.TargetInvocationException && ex.InnerException is not null)
            ex = ex.InnerException!;
        return ex;
    }
}

/// <summary>
/// Spectre.Console.Cli reports a bad option value as "Failed to convert '1e3' to Nullable`1."
/// without the option; this finds the option on the command line and says what it expects:
/// "--steps: '1e3' is not an integer.", "--hidden needs a value (an integer)."
/// </summary>
internal static class OptionValueErrors
{
    private const string Prefix = "Failed to convert '";

    /// <summary>Every option of every command: name (with dashes) → value type (null for flags).</summary>
    private static readonly Lazy<Dictionary<string, Type?>> Options = new(() =>
    {
        var d = new Dictionary<string, Type?>(StringComparer.OrdinalIgnoreCase);
        foreach (var t in typeof(CliErrors).Assembly.GetTypes().Where(t => typeof(CommandSettings).IsAssignableFrom(t)))
            foreach (var p in t.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            {
                if (p.GetCustomAttribute<CommandOptionAttribute>() is not { } o) continue;
                var type = Nullable.GetUnderlyingType(p.PropertyType) ?? p.PropertyType;
                Type? value = type == typeof(bool) && o.ValueName is null ? null : type.IsArray ? type.GetElementType() : type;
                foreach (var n in o.LongNames) d.TryAdd("--" + n, value);
                foreach (var n in o.ShortNames) d.TryAdd("-" + n, value);
            }
        return d;
    });

    /// <summary>The message naming the option, or null when the failure is not a conversion of an option value.</summary>
    public static string? Describe(CommandRuntimeException ex, IReadOnlyList<string> args)
    {
        if (!ex.Message.StartsWith(Prefix, StringComparison.Ordinal) || ex.InnerException is not ArgumentException inner) return null;
        int end = ex.Message.LastIndexOf("' to ", StringComparison.Ordinal);
        if (end < Prefix.Length) return null;
        string value = ex.Message[Prefix.Length..end];
        bool overflow = inner.InnerException is OverflowException;

        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            if (!a.StartsWith('-')) continue;
            int sep = a.IndexOfAny(['=', ':']);
            string name = sep > 0 ? a[..sep] : a;
            if (!Options.Value.TryGetValue(name, out var type) || type is null) continue;
            string? given = sep > 0 ? a[(sep + 1)..] : i + 1 < args.Count && !IsOption(args[i + 1]) ? args[i + 1] : null;
            if (given is null) return $"{name} needs a value ({Expected(type)}).";
            if (given == value)
                return overflow ? $"{name}: '{value}' is out of range ({Expected(type)} from {Range(type)})."
                                : $"{name}: '{value}' is not {Expected(type)}.";
        }
        return null;
    }

    private static bool IsOption(string a) => a.StartsWith('-') && Options.Value.ContainsKey(a.Split('=', ':')[0]);

    private static string Expected(Type t) =>
        t == typeof(int) || t == typeof(long) || t == typeof(short) || t == typeof(uint) || t == typeof(ulong) ? "an integer"
        : t == typeof(double) || t == typeof(float) || t == typeof(decimal) ? "a number"
        : t == typeof(bool) ? "true or false"
        : t.IsEnum ? $"one of {string.Join(", ", Enum.GetNames(t).Select(n => n.ToLowerInvariant()))}"
        : t == typeof(string) ? "text"
        : $"a {t.Name}";

    private static string Range(Type t)
    {
        var c = CultureInfo.InvariantCulture;
        object? min = t.GetField("MinValue")?.GetValue(null), max = t.GetField("MaxValue")?.GetValue(null);
        return min is IFormattable lo && max is IFormattable hi ? $"{lo.ToString(null, c)} to {hi.ToString(null, c)}" : "its type's range";
    }
}
