using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;

namespace GlobalNtk.Cli.Common;

/// <summary>
/// The stack trace of an internal error (a bug, exit 70) goes to a new log file, so the user sees
/// one line on stderr that points to it. A log never replaces an existing file.
/// </summary>
public static class CrashLog
{
    /// <summary>
    /// Writes <paramref name="ex"/> (type, message, stack trace, inner exceptions), the command
    /// line and the versions to a new file in <paramref name="directory"/> (created when
    /// missing); returns its path, or throws when it could not be written.
    /// </summary>
    public static string Write(Exception ex, IReadOnlyList<string> args, string directory)
    {
        Directory.CreateDirectory(directory);
        var now = DateTime.UtcNow;
        string name = $"crash-{now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}.log";
        string path = Path.GetFullPath(Path.Combine(directory, name));
        var version = typeof(CrashLog).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "?";
        // CreateNew: fails rather than overwrite (the name is unique anyway).
        using var w = new StreamWriter(new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read));
        w.WriteLine($"globalntk {version} internal error at {now.ToString("O", CultureInfo.InvariantCulture)}");
        w.WriteLine($"command line: globalntk {string.Join(' ', args.Select(Quote))}");
        w.WriteLine($"runtime: {RuntimeInformation.FrameworkDescription} on {RuntimeInformation.OSDescription} ({RuntimeInformation.ProcessArchitecture})");
        w.WriteLine();
        w.WriteLine(ex.ToString());
        return path;
    }

    private static string Quote(string a) => a.Length > 0 && a.All(c => char.IsLetterOrDigit(c) || "-_./=:,+@%".Contains(c)) ? a : "'" + a.Replace("'", "'\\''") + "'";
}
