using System.Text;
using System.Text.Json;
using GlobalNtk.IO;

namespace GlobalNtk.Cli.Common;

/// <summary>What a <see cref="OutputMarker"/> says about its folder.</summary>
/// <param name="Tool">Always "globalntk".</param>
/// <param name="Kind"><see cref="OutputMarker.ReportKind"/> or <see cref="OutputMarker.RunKind"/>.</param>
/// <param name="Command">The command that wrote the folder.</param>
/// <param name="Version">globalntk's version.</param>
/// <param name="Created">When the folder was started (UTC).</param>
/// <param name="Files">A report's files (relative, '/'-separated): all that <c>--force</c> may replace.</param>
/// <param name="Run">A training run's identity (seed and configuration, see GlobalNtk.Training.Trainer.RunIdentity): <c>--resume</c> checks it.</param>
public sealed record MarkerInfo(string Tool, string Kind, string Command, string Version, DateTimeOffset Created,
    IReadOnlyList<string>? Files = null, IReadOnlyDictionary<string, string>? Run = null);

/// <summary>
/// The file <c>.globalntk</c> (JSON, <see cref="MarkerInfo"/>) that globalntk leaves in every folder
/// it writes, so a later <c>--force</c> or <c>--resume</c> can tell its own folders from a user's.
/// While a process writes the folder it holds the marker open with an exclusive OS lock
/// (<see cref="FileShare.None"/>: <c>flock</c> on Unix), which the OS releases when the process
/// ends in any way, <c>kill -9</c> included; a second writer finds it locked and is refused.
/// </summary>
public sealed class OutputMarker : IDisposable
{
    /// <summary>The marker's file name.</summary>
    public const string FileName = ".globalntk";
    /// <summary>Kind of a report folder (analyze, sweep, demo).</summary>
    public const string ReportKind = "report";
    /// <summary>Kind of a training run folder (train).</summary>
    public const string RunKind = "run";

    private static readonly JsonSerializerOptions Json = new(CliJson.Options) { DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull };
    // Windows cannot rename or delete a file held without FILE_SHARE_DELETE; elsewhere anything but
    // None would be a shared lock.
    private static readonly FileShare Exclusive = OperatingSystem.IsWindows() ? FileShare.Delete : FileShare.None;

    private FileStream? _stream;

    private OutputMarker(FileStream stream, MarkerInfo? info) { _stream = stream; Info = info; }

    /// <summary>What the marker says (null for a marker just created for an old run folder, until <see cref="Write"/>).</summary>
    public MarkerInfo? Info { get; private set; }

    /// <summary>How <see cref="TryAcquire"/> found a folder.</summary>
    public enum State
    {
        /// <summary>No marker: not a globalntk folder.</summary>
        None,
        /// <summary>A marker held by a live process.</summary>
        Locked,
        /// <summary>A <c>.globalntk</c> file that is not globalntk's marker.</summary>
        Foreign,
        /// <summary>Our marker, now locked by this process.</summary>
        Acquired,
    }

    /// <summary>A new marker in <paramref name="dir"/>, created and locked at once (fails if one exists).</summary>
    public static OutputMarker CreateNew(string dir, MarkerInfo? info)
    {
        var fs = new FileStream(Path.Combine(dir, FileName), FileMode.CreateNew, FileAccess.ReadWrite, Exclusive);
        var m = new OutputMarker(fs, null);
        try { if (info is not null) m.Write(info); }
        catch { m.Dispose(); File.Delete(Path.Combine(dir, FileName)); throw; }
        return m;
    }

    /// <summary>Looks for a marker in <paramref name="dir"/> and locks it when it is ours and free.</summary>
    public static State TryAcquire(string dir, out OutputMarker? marker)
    {
        marker = null;
        string path = Path.Combine(dir, FileName);
        if (!File.Exists(path)) return State.None;
        try { RegularFile.Size(path); } catch (DataFileException) { return State.Foreign; } // never open a FIFO or device
        FileStream fs;
        try { fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, Exclusive); }
        catch (FileNotFoundException) { return State.None; }
        catch (UnauthorizedAccessException) { return State.Foreign; }
        catch (IOException) { return State.Locked; } // the lock of a live writer
        MarkerInfo? info = null;
        try
        {
            var bytes = new byte[Math.Min(fs.Length, 16 << 20)];
            fs.ReadExactly(bytes);
            info = JsonSerializer.Deserialize<MarkerInfo>(bytes, Json);
        }
        catch (JsonException) { }
        catch (IOException) { }
        if (info is null || info.Tool != "globalntk" || info.Kind is not (ReportKind or RunKind))
        {
            fs.Dispose();
            return State.Foreign;
        }
        marker = new OutputMarker(fs, info);
        return State.Acquired;
    }

    /// <summary>Whether a leftover folder's marker is ours and not held by a live process.</summary>
    public static bool IsAbandoned(string dir)
    {
        if (TryAcquire(dir, out var m) != State.Acquired) return false;
        m!.Dispose();
        return true;
    }

    /// <summary>Replaces the marker's content (through the locked handle).</summary>
    public void Write(MarkerInfo info)
    {
        var fs = _stream ?? throw new ObjectDisposedException(nameof(OutputMarker));
        var bytes = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(info, Json) + "\n");
        fs.SetLength(0);
        fs.Position = 0;
        fs.Write(bytes);
        fs.Flush(flushToDisk: true);
        Info = info;
    }

    /// <summary>A marker for <paramref name="command"/> started now.</summary>
    public static MarkerInfo New(string command, string kind, IReadOnlyDictionary<string, string>? run = null) =>
        new("globalntk", kind, command, OutputTarget.Version, DateTimeOffset.UtcNow, null, run);

    /// <summary>Releases the lock.</summary>
    public void Dispose()
    {
        _stream?.Dispose();
        _stream = null;
    }
}
