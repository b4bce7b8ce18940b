using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using GlobalNtk.Dense;
using GlobalNtk.IO;
using GlobalNtk.Models;
using GlobalNtk.Tasks;

namespace GlobalNtk.Training;

/// <summary>
/// Trains any <see cref="IChainModel"/> (with its readout) on a task with the MSE loss, the
/// gradient coming from the NTK operators (<see cref="ModelGradient"/>). Deterministic: batch i
/// depends only on (seed, i), so the same seed gives a bit-identical run, and a run resumed from
/// a checkpoint (parameters and optimizer state) continues exactly as an uninterrupted one.
/// </summary>
public sealed class Trainer
{
    private readonly List<TrainingLogRow> _log;
    private FileJournal? _journal;

    /// <summary>A trainer at step 0 for an existing model and task.</summary>
    public Trainer(IChainModel model, ITask task, TrainingOptions options)
        : this(model, task, options, Training.Optimizer.Create(options.Optimizer, options.LearningRate), 0, [], resumed: false) { }

    private Trainer(IChainModel model, ITask task, TrainingOptions options, Optimizer optimizer, int step, List<TrainingLogRow> log, bool resumed)
    {
        options.Validate();
        Model = model; Task = task; Options = options; Optimizer = optimizer; Step = step; _log = log; Resumed = resumed;
        if (task.OutputSize != model.Readout.OutputSize)
            throw new ArgumentException($"Task '{task.Name}' has {task.OutputSize} outputs but the {model.Arch} model's readout has {model.Readout.OutputSize}.");
    }

    /// <summary>
    /// A fresh model of <paramref name="arch"/> (hidden width <paramref name="hidden"/>, initial
    /// gain <paramref name="gain"/>, seed <see cref="TrainingOptions.Seed"/>) sized for the named
    /// task, whose training batches use the same seed. Throws <see cref="MemoryBudgetException"/>
    /// (with the estimate) before allocating anything when the run cannot fit in memory.
    /// </summary>
    public static Trainer Create(string arch, int hidden, string task, TrainingOptions options, double gain = 1.0,
        TaskOptions? taskOptions = null, IReadOnlyDictionary<string, string>? modelOptions = null)
    {
        options.Validate();
        var t = TaskRegistry.Create(task, (taskOptions ?? new TaskOptions()) with { Seed = options.Seed });
        var spec = new ModelSpec(arch, t.InputSize, hidden, t.OutputSize)
        {
            Seed = options.Seed, Gain = gain, Options = modelOptions ?? new Dictionary<string, string>(),
        };
        // Refuse what cannot fit before allocating any of it (it would end in OutOfMemory midway).
        if (TrainingMemory.Estimate(spec, t, options) is { } memory)
            MemoryBudget.Require(memory, $"training {arch} (hidden width {hidden}, batches of {options.BatchSize} trials × {t.Steps} steps)");
        var model = ModelRegistry.Create(spec);
        return new Trainer(model, t, options);
    }

    /// <summary>
    /// Continues the run in <paramref name="dir"/> from its last checkpoint (model, optimizer state,
    /// log). <paramref name="steps"/> replaces the planned total when given.
    /// </summary>
    public static Trainer Resume(string dir, int? steps = null)
    {
        var ckpts = Checkpoints.List(dir);
        if (ckpts.Count == 0)
            throw new DataFileException(dir, "no checkpoint (ckpt-NNNNNN.safetensors) to resume from.");
        var (step, path) = ckpts[^1];
        var identity = RunIdentity(Checkpoints.ReadMetadata(path));
        // One folder, one run: every checkpoint must come from the same seed and configuration.
        foreach (var (_, other) in ckpts)
            if (Difference(identity, RunIdentity(Checkpoints.ReadMetadata(other))) is { } diff)
                throw new DataFileException(dir, $"holds checkpoints of different runs: {Path.GetFileName(other)} has {diff} but {Path.GetFileName(path)} has {Value(identity, diff)}; resume only a folder written by one run.");
        var loaded = ModelFile.Load(path);
        var md = loaded.Metadata;
        TrainingOptions options;
        ITask task;
        try
        {
            options = TrainingOptions.FromMetadata(md);
            if (steps is int s) options = options with { Steps = s };
            options.Validate();
            if (!md.TryGetValue("task", out var taskName)) throw new ArgumentException("checkpoint metadata has no 'task'.");
            task = TaskRegistry.Create(taskName, TaskOptionsFromMetadata(md, options.Seed));
            if (md.TryGetValue("step", out var st) && st != step.ToString(CultureInfo.InvariantCulture))
                throw new ArgumentException($"metadata step {st} does not match the file name (step {step}).");
        }
        catch (ArgumentException ex) { throw new DataFileException(path, ex.Message); }

        var optimizer = Training.Optimizer.Create(options.Optimizer, options.LearningRate);
        string optPath = Checkpoints.OptimizerPath(dir, step);
        var optFile = SafetensorsFile.Read(optPath);
        // The optimizer file carries the training keys (not the model's): each must match the checkpoint's.
        foreach (var kv in RunIdentity(optFile.Metadata))
            if (!identity.TryGetValue(kv.Key, out var v) || v != kv.Value)
                throw new DataFileException(optPath, $"optimizer state of a different run ({kv.Key} = {kv.Value}, checkpoint {Path.GetFileName(path)} has {v ?? "(none)"}); resume only a folder written by one run.");
        optimizer.LoadState(new TensorLookup(optPath, optFile), loaded.Model.AllParameters, step);
        var log = Checkpoints.ReadLog(dir).Where(r => r.Step <= step).ToList();
        return new Trainer(loaded.Model, task, options, optimizer, step, log, resumed: true);
    }

    /// <summary>
    /// The model at the current step. Every update makes a new model from the optimizer's new
    /// values (<see cref="IChainModel.WithParameters"/>); a model obtained earlier is unchanged.
    /// </summary>
    public IChainModel Model { get; private set; }
    /// <summary>The task.</summary>
    public ITask Task { get; }
    /// <summary>Hyper-parameters.</summary>
    public TrainingOptions Options { get; }
    /// <summary>The optimizer (with its state).</summary>
    public Optimizer Optimizer { get; }
    /// <summary>Updates done so far.</summary>
    public int Step { get; private set; }
    /// <summary>Whether this trainer continues a run from a checkpoint.</summary>
    public bool Resumed { get; }
    /// <summary>Log rows so far.</summary>
    public IReadOnlyList<TrainingLogRow> Log => _log;

    /// <summary>MSE and task accuracy on the task's fixed evaluation set.</summary>
    public (double Loss, double Accuracy) Evaluate()
    {
        var ev = Task.EvaluationSet;
        var y = ModelGradient.Predict(Model, ev.Inputs, Options.Precision);
        ModelGradient.CheckTargets(y, ev.Targets);
        return (MseLoss.Value(y.Span, ev.Targets.Span), Task.Accuracy(ev, y));
    }

    /// <summary>
    /// Trains up to <see cref="TrainingOptions.Steps"/> updates. With <paramref name="dir"/>, writes
    /// checkpoints (step 0, every <see cref="TrainingOptions.CheckpointEvery"/>, and the last),
    /// <c>log.csv</c> and <c>summary.json</c>, all atomically. A fresh run refuses a folder that
    /// already holds checkpoints. Cancellation stops between updates (the last checkpoint stays
    /// resumable).
    /// </summary>
    /// <param name="dir">Run folder (null: no files).</param>
    /// <param name="progress">Called once at the start and after every update, when that step's checkpoint (if any) is on disk.</param>
    /// <param name="cancellationToken">Stops between updates.</param>
    /// <param name="journal">Records every file written, so that a caller can undo a failed run.</param>
    public TrainingResult Run(string? dir = null, Action<TrainingProgress>? progress = null, CancellationToken cancellationToken = default,
        FileJournal? journal = null)
    {
        _journal = journal;
        var clock = Stopwatch.StartNew();
        if (dir != null)
        {
            if (!Resumed && Checkpoints.List(dir).Count > 0)
                throw new ArgumentException($"{dir}: already holds checkpoints; resume it or choose another output folder.");
            Directory.CreateDirectory(dir);
        }
        int start = Step;
        var grad = new double[Model.AllParameters.TotalSize];
        double loss = double.NaN;
        bool stoppedEarly = false;
        double evalLoss, evalAcc, initialEval;
        string? last = null;

        (evalLoss, evalAcc) = Evaluate();
        initialEval = evalLoss;
        if (start == 0)
        {
            _log.Clear();
            _log.Add(new TrainingLogRow(0, null, null, evalLoss, evalAcc));
            if (dir != null) last = SaveCheckpoint(dir);
        }
        progress?.Invoke(new TrainingProgress(Step, Options.Steps, loss, evalLoss, evalAcc));

        while (Step < Options.Steps && !stoppedEarly)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var batch = Task.TrainBatch(Step, Options.BatchSize);
            (loss, _) = ModelGradient.Compute(Model, batch.Inputs, batch.Targets, grad, Options.Precision);
            double norm = Numerics.Norm(grad);
            Numerics.EnsureFinite([norm], $"gradient at step {Step + 1}");
            // torch.nn.utils.clip_grad_norm_: scale by max/(‖g‖ + 1e-6) when that is < 1.
            if (Options.ClipNorm > 0)
            {
                double coef = Options.ClipNorm / (norm + 1e-6);
                if (coef < 1) Numerics.Scale(grad, coef);
            }
            Model = Model.WithParameters(Optimizer.Step(Model.AllParameters, grad));
            Step++;
            stoppedEarly = Options.LossTolerance > 0 && loss <= Options.LossTolerance;
            bool checkpoint = stoppedEarly || Options.IsCheckpointStep(Step);
            double? el = null, ea = null;
            if (checkpoint)
            {
                (evalLoss, evalAcc) = Evaluate();
                el = evalLoss; ea = evalAcc;
            }
            _log.Add(new TrainingLogRow(Step, loss, norm, el, ea));
            if (checkpoint && dir != null) last = SaveCheckpoint(dir);
            progress?.Invoke(new TrainingProgress(Step, Options.Steps, loss, el, ea));
        }
        if (dir != null && last == null) last = Checkpoints.ModelPath(dir, Step); // resumed at or past the end

        var result = new TrainingResult
        {
            Directory = dir, Steps = Step, StartStep = start, FinalLoss = loss, EvalLoss = evalLoss, EvalAccuracy = evalAcc,
            InitialEvalLoss = initialEval, StoppedEarly = stoppedEarly, LastCheckpoint = last, Seconds = clock.Elapsed.TotalSeconds,
            Log = _log.ToList(),
        };
        if (dir != null) WriteSummary(dir, result);
        return result;
    }

    /// <summary>Metadata of a checkpoint at the current step: training options, task and step (the model adds its own).</summary>
    public IReadOnlyDictionary<string, string> CheckpointMetadata()
    {
        var c = CultureInfo.InvariantCulture;
        var md = new Dictionary<string, string>(Options.ToMetadata())
        {
            ["format"] = "pt",
            ["task"] = Task.Name,
            ["task_steps"] = Task.Steps.ToString(c),
            ["eval_trials"] = Task.EvaluationSet.Trials.ToString(c),
            ["step"] = Step.ToString(c),
        };
        if (Task is TrialTask tt) md["input_noise"] = tt.Options.InputNoise.ToString("R", c);
        if (Optimizer is Adam adam) foreach (var kv in adam.Hyperparameters()) md[kv.Key] = kv.Value;
        return md;
    }

    /// <summary>
    /// What makes this run this run: the metadata every checkpoint file carries (training options,
    /// task, seed, model configuration) without what changes along the run (the step, and the total
    /// that <c>--resume</c> may extend). Two checkpoints belong to one run only if these are equal.
    /// </summary>
    public IReadOnlyDictionary<string, string> RunIdentity()
    {
        // As ModelFile.Save merges them: training metadata, then the model's own keys, then arch.
        var md = new Dictionary<string, string>(CheckpointMetadata(), StringComparer.Ordinal);
        foreach (var kv in Model.Metadata) md[kv.Key] = kv.Value;
        md[ModelFile.ArchKey] = Model.Arch;
        return RunIdentity(md);
    }

    /// <summary>The run identity (see <see cref="RunIdentity()"/>) in a checkpoint's metadata.</summary>
    public static IReadOnlyDictionary<string, string> RunIdentity(IReadOnlyDictionary<string, string> checkpointMetadata) =>
        checkpointMetadata.Where(kv => kv.Key is not ("step" or "steps")).OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);

    /// <summary>The first key where two run identities differ, as "key = value" of <paramref name="b"/>; null when equal.</summary>
    public static string? Difference(IReadOnlyDictionary<string, string> a, IReadOnlyDictionary<string, string> b)
    {
        foreach (var key in a.Keys.Union(b.Keys).Order(StringComparer.Ordinal))
        {
            a.TryGetValue(key, out var va); b.TryGetValue(key, out var vb);
            if (va != vb) return $"{key} = {vb ?? "(none)"}";
        }
        return null;
    }

    private static string Value(IReadOnlyDictionary<string, string> identity, string diff)
    {
        string key = diff[..diff.IndexOf(" = ", StringComparison.Ordinal)];
        return $"{key} = {(identity.TryGetValue(key, out var v) ? v : "(none)")}";
    }

    private string SaveCheckpoint(string dir)
    {
        var md = CheckpointMetadata();
        // Optimizer state first: a model checkpoint on disk always has its optimizer state.
        string optPath = Checkpoints.OptimizerPath(dir, Step);
        _journal?.BeforeWrite(optPath);
        new SafetensorsFile(Optimizer.StateTensors(Model.AllParameters), md).Write(optPath);
        string path = Checkpoints.ModelPath(dir, Step);
        _journal?.BeforeWrite(path);
        ModelFile.Save(path, Model, md);
        _journal?.BeforeWrite(Path.Combine(dir, Checkpoints.LogFile));
        Checkpoints.WriteLog(dir, _log);
        return path;
    }

    private void WriteSummary(string dir, TrainingResult r)
    {
        static double? N(double v) => double.IsFinite(v) ? v : null;
        var summary = new Dictionary<string, object?>
        {
            ["arch"] = Model.Arch, ["task"] = Task.Name, ["steps"] = r.Steps, ["startStep"] = r.StartStep,
            ["finalLoss"] = N(r.FinalLoss), ["evalLoss"] = N(r.EvalLoss), ["evalAccuracy"] = N(r.EvalAccuracy),
            ["initialEvalLoss"] = N(r.InitialEvalLoss), ["stoppedEarly"] = r.StoppedEarly,
            ["lastCheckpoint"] = r.LastCheckpoint is null ? null : Path.GetFileName(r.LastCheckpoint),
            ["seconds"] = r.Seconds, ["accuracyDefinition"] = Task.AccuracyDefinition,
            ["metadata"] = CheckpointMetadata().Concat(Model.Metadata).GroupBy(kv => kv.Key).ToDictionary(g => g.Key, g => g.Last().Value),
        };
        var json = new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        _journal?.BeforeWrite(Path.Combine(dir, Checkpoints.SummaryFile));
        AtomicFile.WriteAllText(Path.Combine(dir, Checkpoints.SummaryFile), JsonSerializer.Serialize(summary, json) + "\n");
    }

    private static TaskOptions TaskOptionsFromMetadata(IReadOnlyDictionary<string, string> md, int seed)
    {
        var c = CultureInfo.InvariantCulture;
        int? Int(string key) => md.TryGetValue(key, out var s)
            ? int.TryParse(s, NumberStyles.Integer, c, out int v) ? v : throw new ArgumentException($"checkpoint metadata '{key}' = '{s}' is not an integer.")
            : null;
        double noise = md.TryGetValue("input_noise", out var n)
            ? double.TryParse(n, NumberStyles.Float, c, out double d) ? d : throw new ArgumentException($"checkpoint metadata 'input_noise' = '{n}' is not a number.")
            : 0;
        return new TaskOptions { Seed = seed, Steps = Int("task_steps"), EvaluationTrials = Int("eval_trials"), InputNoise = noise };
    }
}
