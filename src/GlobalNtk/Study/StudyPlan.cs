using System.Globalization;

namespace GlobalNtk.Study;

/// <summary>What a study unit does.</summary>
public enum UnitKind
{
    /// <summary>C1: compare the generic and Kronecker K, and P K P* with the whole-model NTK, on a small model (no training).</summary>
    Exactness,
    /// <summary>C2–C5: one training run, measured at initialisation, at every checkpoint and at the end.</summary>
    Training,
}

/// <summary>
/// One independent piece of the study: a training run plus its analysis, or one exactness check.
/// Its result depends only on these fields (every seed derives from them), never on which
/// process or shard runs it.
/// </summary>
/// <param name="Id">Folder-safe unique name, e.g. <c>gru-flip-flop-h32-g1-s2</c>.</param>
/// <param name="Kind">Exactness check or training run.</param>
/// <param name="Arch">Architecture (a ModelRegistry name).</param>
/// <param name="Task">Task (a TaskRegistry name).</param>
/// <param name="Hidden">Hidden width (d for a transformer).</param>
/// <param name="Gain">Initial recurrent gain g.</param>
/// <param name="Seed">Seed of the initialisation, the training batches and the estimators.</param>
/// <param name="Label">The architecture label shown in reports (e.g. <c>stacked gru</c>).</param>
public sealed record StudyUnit(string Id, UnitKind Kind, string Arch, string Task, int Hidden, double Gain, int Seed, string Label)
{
    /// <summary>Architecture options (e.g. <c>layers</c>).</summary>
    public IReadOnlyDictionary<string, string> ModelOptions { get; init; } = new Dictionary<string, string>();
}

/// <summary>An architecture covered by the exactness check C1: label, registry name, a task that sizes it, options.</summary>
public sealed record ExactnessArch(string Label, string Arch, string Task, IReadOnlyDictionary<string, string> Options);

/// <summary>A recurrent (architecture, task) cell of the self-referential-bias claim C3.</summary>
public sealed record SrbCell(string Arch, string Task);

/// <summary>
/// Sizes of a study. <c>quick</c> is the README's example (minutes on 2 cores), <c>paper</c> the
/// full study (≥ 5 seeds per cell), <c>test</c> a seconds-long configuration for the test suite.
/// Every number is fixed here, before any data are seen.
/// </summary>
public sealed record StudyScale
{
    /// <summary>Scale name.</summary>
    public required string Name { get; init; }
    /// <summary>Seeds of every cell.</summary>
    public required int[] Seeds { get; init; }
    /// <summary>Hidden widths H of the bottleneck claim C2 (GRU on flip-flop).</summary>
    public required int[] HiddenSizes { get; init; }
    /// <summary>Hidden width of the C3 and C4 runs.</summary>
    public required int Hidden { get; init; }
    /// <summary>Initial gains g of C4.</summary>
    public required double[] Gains { get; init; }
    /// <summary>Training steps of every run.</summary>
    public required int Steps { get; init; }
    /// <summary>Checkpoints measured during training (the misdirection curve of C3), start and end included.</summary>
    public int Checkpoints { get; init; } = 5;
    /// <summary>Training batch.</summary>
    public int Batch { get; init; } = 16;
    /// <summary>Adam learning rate.</summary>
    public double LearningRate { get; init; } = 0.01;
    /// <summary>Steps per trial of the recurrent tasks (null: each task's own).</summary>
    public int? TrialSteps { get; init; }
    /// <summary>Trials of each task's fixed evaluation set (the analysis batch).</summary>
    public required int EvalTrials { get; init; }
    /// <summary>Probes of every effective-rank estimate.</summary>
    public int Probes { get; init; } = 60;
    /// <summary>(arch, task) cells of C3.</summary>
    public required SrbCell[] SrbCells { get; init; }
    /// <summary>Transformer width d of C5 (2 layers, 2 heads, causal, on n-back).</summary>
    public required int TransformerDim { get; init; }
    /// <summary>Hidden width of the small C1 models.</summary>
    public int ExactnessHidden { get; init; } = 6;
    /// <summary>Trials and steps of the C1 batch.</summary>
    public int ExactnessTrials { get; init; } = 2;
    /// <summary>Steps per trial of the C1 batch.</summary>
    public int ExactnessSteps { get; init; } = 5;

    /// <summary>Largest r of SRB(r) and c(r).</summary>
    public const int MaxRank = 8;

    /// <summary>
    /// Architectures of C1. Adding one (e.g. a stacked GRU once recurrent models compose) is one
    /// line here.
    /// </summary>
    public static readonly ExactnessArch[] ExactnessArchitectures =
    [
        new("rnn-tanh", "rnn-tanh", "flip-flop", NoOptions),
        new("rnn-relu", "rnn-relu", "flip-flop", NoOptions),
        new("leaky-rnn", "leaky-rnn", "flip-flop", NoOptions),
        new("gru", "gru", "flip-flop", NoOptions),
        new("lstm", "lstm", "flip-flop", NoOptions),
        new("stacked gru", "gru", "flip-flop", new Dictionary<string, string> { ["layers"] = "2" }),
        new("mlp", "mlp", "regression", NoOptions),
        new("transformer", "transformer", "n-back", new Dictionary<string, string> { ["layers"] = "2", ["heads"] = "2" }),
    ];

    private static IReadOnlyDictionary<string, string> NoOptions => new Dictionary<string, string>();

    /// <summary>Options of the C5 transformer.</summary>
    public static IReadOnlyDictionary<string, string> TransformerOptions => new Dictionary<string, string> { ["layers"] = "2", ["heads"] = "2" };

    /// <summary>The seconds-long scale of the test suite.</summary>
    public static StudyScale Test { get; } = new()
    {
        Name = "test", Seeds = [1, 2], HiddenSizes = [4, 8], Hidden = 4, Gains = [0.5, 1, 2], Steps = 6, Checkpoints = 3,
        Batch = 4, TrialSteps = 8, EvalTrials = 2, Probes = 12, SrbCells = [new("gru", "flip-flop"), new("lstm", "flip-flop")],
        TransformerDim = 4, ExactnessHidden = 4, ExactnessSteps = 3,
    };

    /// <summary>The README's example: 3 seeds, small models, a few hundred steps.</summary>
    public static StudyScale Quick { get; } = new()
    {
        Name = "quick", Seeds = [1, 2, 3], HiddenSizes = [16, 32, 64, 128], Hidden = 32, Gains = [0.25, 0.5, 1, 1.5, 2], Steps = 200,
        TrialSteps = 40, EvalTrials = 8, Probes = 40,
        SrbCells = [new("gru", "flip-flop"), new("lstm", "flip-flop"), new("gru", "memory-pro")],
        TransformerDim = 16,
    };

    /// <summary>The full study: 5 seeds per cell, longer training, more architectures and gains.</summary>
    public static StudyScale Paper { get; } = new()
    {
        Name = "paper", Seeds = [1, 2, 3, 4, 5], HiddenSizes = [16, 32, 64, 128], Hidden = 64,
        Gains = [0.25, 0.5, 0.75, 1, 1.25, 1.5, 2], Steps = 1500, Checkpoints = 7, TrialSteps = 60, EvalTrials = 16, Probes = 60,
        SrbCells = [new("gru", "flip-flop"), new("lstm", "flip-flop"), new("rnn-tanh", "flip-flop"), new("gru", "memory-pro"), new("lstm", "integration")],
        TransformerDim = 32,
    };

    /// <summary>The scale called <paramref name="name"/> (test, quick or paper).</summary>
    public static StudyScale Named(string name) => (name ?? "").Trim().ToLowerInvariant() switch
    {
        "test" => Test,
        "quick" => Quick,
        "paper" => Paper,
        _ => throw new ArgumentException($"unknown study scale '{name}' (valid: quick, paper)."),
    };
}

/// <summary>
/// The ordered, de-duplicated list of units of a study and their assignment to shards. The
/// order depends only on the scale, so every process computes the same plan.
/// </summary>
public sealed class StudyPlan
{
    private StudyPlan(StudyScale scale, IReadOnlyList<StudyUnit> units) { Scale = scale; Units = units; }

    /// <summary>The scale.</summary>
    public StudyScale Scale { get; }
    /// <summary>Every unit, in plan order.</summary>
    public IReadOnlyList<StudyUnit> Units { get; }

    /// <summary>A fingerprint of the plan (unit ids in order), to check that shards belong to the same study.</summary>
    public string Fingerprint
    {
        get
        {
            ulong h = 1469598103934665603UL; // FNV-1a: stable across processes (string.GetHashCode is not)
            foreach (char c in string.Join("|", Units.Select(u => u.Id)) + "|" + Scale.Name)
            {
                h ^= c;
                h *= 1099511628211UL;
            }
            return h.ToString("x16", CultureInfo.InvariantCulture);
        }
    }

    /// <summary>Builds the plan of <paramref name="scale"/>.</summary>
    public static StudyPlan Of(StudyScale scale)
    {
        var units = new List<StudyUnit>();
        var seen = new HashSet<string>();
        void Add(StudyUnit u) { if (seen.Add(u.Id)) units.Add(u); }
        foreach (int seed in scale.Seeds)
        {
            foreach (var a in StudyScale.ExactnessArchitectures)
                Add(new StudyUnit($"c1-{a.Label.Replace(' ', '-')}-s{seed}", UnitKind.Exactness, a.Arch, a.Task, scale.ExactnessHidden, 1.0, seed, a.Label) { ModelOptions = a.Options });
            foreach (int h in scale.HiddenSizes) Add(Training("gru", "flip-flop", h, 1.0, seed));
            foreach (var cell in scale.SrbCells) Add(Training(cell.Arch, cell.Task, scale.Hidden, 1.0, seed));
            foreach (double g in scale.Gains) Add(Training("gru", "flip-flop", scale.Hidden, g, seed));
            Add(Training("transformer", "n-back", scale.TransformerDim, 1.0, seed) with { ModelOptions = StudyScale.TransformerOptions });
        }
        return new StudyPlan(scale, units);
    }

    /// <summary>The id of a training unit.</summary>
    public static StudyUnit Training(string arch, string task, int hidden, double gain, int seed) =>
        new($"{arch}-{task}-h{hidden}-g{gain.ToString("0.###", CultureInfo.InvariantCulture)}-s{seed}", UnitKind.Training, arch, task, hidden, gain, seed, arch);

    /// <summary>
    /// The units of shard <paramref name="index"/> of <paramref name="count"/>: unit i goes to shard
    /// i mod count (round robin over the plan order, which interleaves cheap and costly units).
    /// </summary>
    public IReadOnlyList<StudyUnit> Shard(int index, int count)
    {
        if (count < 1) throw new ArgumentException($"shard count must be ≥ 1, got {count}.");
        if (index < 0 || index >= count) throw new ArgumentException($"shard index must be in 0..{count - 1}, got {index}.");
        return Units.Where((_, i) => i % count == index).ToArray();
    }
}
