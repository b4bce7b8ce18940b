namespace GlobalNtk.Tasks;

/// <summary>
/// Tasks by name. Built-in: <c>flip-flop</c>, <c>memory-pro</c>, <c>integration</c>, <c>sine</c>
/// (docs/math.md#tasks); other model families add theirs with <see cref="Register"/>.
/// </summary>
public static class TaskRegistry
{
    private static readonly object Gate = new();
    private static readonly SortedDictionary<string, (string Description, Func<TaskOptions, ITask> Create)> Entries = new(StringComparer.Ordinal)
    {
        ["flip-flop"] = ("3-bit flip-flop: hold the sign of the last ±1 pulse per channel", o => new FlipFlopTask(o)),
        ["memory-pro"] = ("memory-guided response: report a remembered direction after a delay", o => new MemoryProTask(o)),
        ["integration"] = ("integrate a noisy scalar input (line attractor)", o => new IntegrationTask(o)),
        ["sine"] = ("generate a sine wave whose frequency is given by a constant cue", o => new SineTask(o)),
        ["n-back"] = ("n-back recall (n = 2): output the ±1 inputs seen 2 tokens earlier (a causal-transformer sequence task)", o => new NBackTask(o)),
        ["regression"] = ("MLP regression: fit a fixed teacher y = sin(A x + c), inputs (sample, input)", o => new RegressionTask(o)),
    };

    /// <summary>Registered task names, sorted.</summary>
    public static IReadOnlyList<string> Names { get { lock (Gate) return Entries.Keys.ToArray(); } }

    /// <summary>One-line description of a registered task.</summary>
    public static string Describe(string name) { lock (Gate) return Lookup(name).Description; }

    /// <summary>Creates the named task; an unknown name throws, listing the valid ones.</summary>
    public static ITask Create(string name, TaskOptions? options = null)
    {
        Func<TaskOptions, ITask> create;
        lock (Gate) create = Lookup(name).Create;
        return create(options ?? new TaskOptions());
    }

    /// <summary>Adds (or replaces) a task.</summary>
    public static void Register(string name, string description, Func<TaskOptions, ITask> create)
    {
        if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException("Task name must not be empty.");
        lock (Gate) Entries[name] = (description, create);
    }

    private static (string Description, Func<TaskOptions, ITask> Create) Lookup(string name) =>
        Entries.TryGetValue(name ?? "", out var e) ? e
            : throw new ArgumentException($"Unknown task '{name}' (valid: {string.Join(", ", Entries.Keys)}).");
}
