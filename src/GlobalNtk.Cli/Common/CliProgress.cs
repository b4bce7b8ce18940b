using Spectre.Console;

namespace GlobalNtk.Cli.Common;

/// <summary>
/// Reports progress of long work: a fraction in [0, 1] and a stage description. The library
/// takes plain callbacks (<see cref="Report"/>) so it never depends on the console.
/// </summary>
public delegate void ProgressCallback(string stage, double fraction);

/// <summary>
/// A progress bar with elapsed time and ETA on stderr (Spectre.Console), or nothing when quiet.
/// </summary>
public sealed class CliProgress(CliIO io, bool quiet)
{
    /// <summary>Whether bars are suppressed.</summary>
    public bool Quiet { get; } = quiet;

    /// <summary>Runs <paramref name="work"/> with one bar titled <paramref name="title"/>; returns its result.</summary>
    public T Run<T>(string title, Func<ProgressCallback, T> work)
    {
        if (Quiet) return work((_, _) => { });
        T result = default!;
        io.ErrConsole().Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(),
                     new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(title), maxValue: 1.0);
                result = work((stage, f) =>
                {
                    task.Description = Markup.Escape(string.IsNullOrEmpty(stage) ? title : $"{title}: {stage}");
                    task.Value = Math.Clamp(f, 0, 1);
                });
                task.Value = 1.0;
                task.StopTask();
            });
        return result;
    }

    /// <summary>Runs <paramref name="work"/> with one bar (no result).</summary>
    public void Run(string title, Action<ProgressCallback> work) => Run<int>(title, p => { work(p); return 0; });

    /// <summary>A callback mapping [0,1] of a sub-task onto [from, to] of <paramref name="parent"/>.</summary>
    public static ProgressCallback Sub(ProgressCallback parent, double from, double to, string? stage = null) =>
        (s, f) => parent(stage is null ? s : string.IsNullOrEmpty(s) ? stage : $"{stage} – {s}", from + (to - from) * Math.Clamp(f, 0, 1));
}
