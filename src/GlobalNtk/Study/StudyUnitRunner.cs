using GlobalNtk.Analysis;
using GlobalNtk.Dense;
using GlobalNtk.Estimators;
using GlobalNtk.IO;
using GlobalNtk.Models;
using GlobalNtk.Ntk;
using GlobalNtk.Operators;
using GlobalNtk.Tasks;
using GlobalNtk.Training;

namespace GlobalNtk.Study;

/// <summary>C1's measurement on one small model: relative Frobenius differences, computed exactly (probes = dimension).</summary>
/// <param name="Dimension">State dimension.</param>
/// <param name="Parameters">Chain parameters m.</param>
/// <param name="KRelativeDifference">‖K_Kronecker − K_generic‖_F / ‖K_generic‖_F.</param>
/// <param name="NtkRelativeDifference">‖P K P* − (dz/dθ)(dz/dθ)*‖_F / ‖(dz/dθ)(dz/dθ)*‖_F, dz/dθ by the fused tangent sweep.</param>
/// <param name="FiniteDifferenceRelativeDifference">
/// ‖P K P* − J_fd J_fdᵀ‖_F / ‖J_fd J_fdᵀ‖_F with J_fd the Jacobian of the unrolled forward pass by
/// central finite differences (step <see cref="StudyUnitRunner.FiniteDifferenceStep"/>): a reference
/// that shares no code with the operators.
/// </param>
public sealed record ExactnessResult(int Dimension, int Parameters, double KRelativeDifference, double NtkRelativeDifference,
    double FiniteDifferenceRelativeDifference);

/// <summary>The study's quantities of one model on its task's evaluation set (docs/math.md §5–6).</summary>
/// <param name="Step">Training step.</param>
/// <param name="Loss">Evaluation MSE.</param>
/// <param name="Dimension">State dimension (trials × steps × units, or the transformer's).</param>
/// <param name="PrNtk">PR(NTK_S).</param>
/// <param name="PrNtkSe">Its standard error.</param>
/// <param name="PrK">PR(K).</param>
/// <param name="PrKSe">Its standard error.</param>
/// <param name="KroneckerBound">Σ_s m_s·PR(Ĝ_s) over the weight sites.</param>
/// <param name="Srb">SRB(r), r = 1..8 (fewer when the state vector is shorter).</param>
/// <param name="ModeCapture">c(r) = tr K_r / tr K, r = 1..8.</param>
/// <param name="Misdirection">cos(Δz, −e) = ⟨NTK_S e, e⟩ / (‖NTK_S e‖‖e‖).</param>
/// <param name="Rho">Task-mode learnability ρ_i.</param>
/// <param name="LearnedFraction">Learned fraction ‖a_iᵀŶ‖/σ_i of each task mode.</param>
public sealed record Snapshot(int Step, double Loss, int Dimension, double PrNtk, double PrNtkSe, double PrK, double PrKSe,
    double KroneckerBound, double[] Srb, double[] ModeCapture, double Misdirection, double[] Rho, double[] LearnedFraction);

/// <summary>Evaluation loss and misdirection at one checkpoint.</summary>
public sealed record TrajectoryPoint(int Step, double EvalLoss, double Misdirection);

/// <summary>What one unit measured. <paramref name="Folder"/> is relative to the study folder and holds the run.</summary>
public sealed record UnitResult(StudyUnit Unit, string Folder, ExactnessResult? Exactness, Snapshot? Init, Snapshot? Trained,
    IReadOnlyList<TrajectoryPoint>? Trajectory, double? FinalAccuracy);

/// <summary>
/// Runs one <see cref="StudyUnit"/>: an exactness check, or a training run (checkpoints and log
/// written to a run folder) measured at initialisation, at every checkpoint and at the end. The
/// result depends only on the unit and the scale.
/// </summary>
public static class StudyUnitRunner
{
    /// <summary>Folder of a unit inside the study folder.</summary>
    public static string FolderOf(StudyUnit unit) => Path.Combine("units", unit.Id);

    /// <summary>
    /// Runs <paramref name="unit"/>, writing its run into <paramref name="unitDir"/> (created);
    /// <paramref name="progress"/> gets (stage, fraction).
    /// </summary>
    public static UnitResult Run(StudyUnit unit, StudyScale scale, string unitDir, Action<string, double>? progress = null,
        CancellationToken ct = default)
    {
        Directory.CreateDirectory(unitDir);
        string folder = FolderOf(unit).Replace('\\', '/');
        return unit.Kind == UnitKind.Exactness
            ? new UnitResult(unit, folder, Exactness(unit, scale), null, null, null, null)
            : Train(unit, scale, unitDir, folder, progress, ct);
    }

    /// <summary>C1: generic vs Kronecker K and P K P* vs the whole-model NTK, exact (every basis vector probed).</summary>
    public static ExactnessResult Exactness(StudyUnit unit, StudyScale scale)
    {
        bool timeless = unit.Task == "regression";
        var task = TaskRegistry.Create(unit.Task, new TaskOptions
        {
            Seed = unit.Seed, Steps = timeless ? null : scale.ExactnessSteps, EvaluationTrials = scale.ExactnessTrials,
        });
        var model = ModelRegistry.Create(new ModelSpec(unit.Arch, task.InputSize, unit.Hidden, task.OutputSize)
        {
            Seed = unit.Seed, Gain = unit.Gain, Options = unit.ModelOptions,
        });
        var lin = model.Linearize(task.EvaluationSet.Inputs);
        var ops = new NtkOperators(lin);
        int dim = lin.StateShape.Size;
        // probes = dimension: the estimator probes every basis vector, so the difference is exact.
        var key = RngKey.FromSeed(unit.Seed).Fold("study exactness"); // probes = dimension: exact, the seed only orders the basis
        var k = OperatorComparison.RelativeDifference(ops.KKronecker, ops.K, dim, key.Fold("K").Seed);
        var ntk = OperatorComparison.RelativeDifference(ops.NtkS, ops.WholeModelNtk, dim, key.Fold("NTK").Seed);
        double fd = FiniteDifferenceDifference(model, task.EvaluationSet.Inputs, ops.NtkS);
        return new ExactnessResult(dim, lin.Parameters.TotalSize, k.Value, ntk.Value, fd);
    }

    /// <summary>Central-difference step on θ of C1's finite-difference reference (truncation and rounding both ~1e-11 relative).</summary>
    public const double FiniteDifferenceStep = 1e-5;

    /// <summary>
    /// ‖<paramref name="ntk"/> − J_fd J_fdᵀ‖_F / ‖J_fd J_fdᵀ‖_F, J_fd[:, j] = (z(θ + h e_j) − z(θ − h e_j)) / 2h from
    /// the model's own forward pass (dense: for small models only).
    /// </summary>
    public static double FiniteDifferenceDifference(IChainModel model, Tensor inputs, LinearOperator ntk)
    {
        var theta = model.Parameters.Flatten();
        int m = theta.Length, n = ntk.Domain.Size;
        var jac = new double[m * n]; // row j = column j of J_fd
        for (int j = 0; j < m; j++)
        {
            double t = theta[j];
            theta[j] = t + FiniteDifferenceStep;
            var plus = model.WithChainValues(theta).Linearize(inputs).States.Span.ToArray();
            theta[j] = t - FiniteDifferenceStep;
            var minus = model.WithChainValues(theta).Linearize(inputs).States.Span;
            theta[j] = t;
            var row = jac.AsSpan(j * n, n);
            for (int i = 0; i < n; i++) row[i] = (plus[i] - minus[i]) / (2 * FiniteDifferenceStep);
        }
        var reference = new double[n * n];
        Gemm.Multiply(Trans.Yes, Trans.No, n, n, m, 1.0, jac, n, jac, n, 0.0, reference, n);
        double diff = 0, norm = 0;
        var e = new double[n];
        for (int c = 0; c < n; c++)
        {
            Array.Clear(e); e[c] = 1;
            var col = ntk.Apply(e);
            for (int r = 0; r < n; r++) { double d = col[r] - reference[r * n + c]; diff += d * d; norm += reference[r * n + c] * reference[r * n + c]; }
        }
        return Math.Sqrt(diff / norm);
    }

    private static UnitResult Train(StudyUnit unit, StudyScale scale, string unitDir, string folder, Action<string, double>? progress, CancellationToken ct)
    {
        var options = new TrainingOptions
        {
            Steps = scale.Steps, BatchSize = scale.Batch, LearningRate = scale.LearningRate, Optimizer = "adam",
            CheckpointEvery = Math.Max(1, scale.Steps / Math.Max(1, scale.Checkpoints - 1)), Seed = unit.Seed,
        };
        // n-back keeps its own sequence length (the transformer's token count).
        var taskOptions = new TaskOptions { Steps = unit.Task == "n-back" ? null : scale.TrialSteps, EvaluationTrials = scale.EvalTrials };
        var trainer = Trainer.Create(unit.Arch, unit.Hidden, unit.Task, options, unit.Gain, taskOptions, unit.ModelOptions);
        var ev = trainer.Task.EvaluationSet;
        progress?.Invoke("measuring at initialisation", 0.0);
        var init = Measure(trainer.Model, ev, 0, scale.Probes, unit.Seed);
        string runDir = Path.Combine(unitDir, "run");
        var result = trainer.Run(runDir, tp => progress?.Invoke($"training step {tp.Step}/{tp.TotalSteps}", 0.1 + 0.6 * tp.Step / Math.Max(1, tp.TotalSteps)), ct);
        progress?.Invoke("measuring after training", 0.7);
        var trained = Measure(trainer.Model, ev, result.Steps, scale.Probes, unit.Seed);
        var trajectory = new List<TrajectoryPoint>();
        var ckpts = Checkpoints.List(runDir);
        foreach (var (step, path) in ckpts)
        {
            ct.ThrowIfCancellationRequested();
            progress?.Invoke($"checkpoint {step}", 0.9);
            var m = ModelFile.Load(path).Model;
            var (loss, cos) = LossAndMisdirection(m, ev);
            trajectory.Add(new TrajectoryPoint(step, loss, cos));
        }
        return new UnitResult(unit, folder, null, init, trained, trajectory, result.EvalAccuracy);
    }

    /// <summary>Every quantity of <see cref="Snapshot"/> for <paramref name="model"/> on <paramref name="batch"/>.</summary>
    public static Snapshot Measure(IChainModel model, TaskBatch batch, int step, int probes, int seed)
    {
        var lin = model.Linearize(batch.Inputs);
        var ops = new NtkOperators(lin);
        var shape = lin.StateShape;
        var (loss, yhat, e) = ErrorOnState(model, lin, batch);
        double cos = Misdirection(ops, e);
        var key = RngKey.FromSeed(seed).Fold("study measurement");
        var prN = EffectiveRank.ParticipationRatio(ops.NtkS, probes, key.Fold("PR(NTK_S)").Seed);
        var prK = EffectiveRank.ParticipationRatio(ops.KKronecker, probes, key.Fold("PR(K)").Seed);
        var core = ops.KroneckerCore;
        double bound = core.Sites.Sum(s => (double)s.OutDim * s.ParticipationRatio);
        var capture = Enumerable.Range(1, StudyScale.MaxRank).Select(core.ModeCapture).ToArray();
        double[] srb = [];
        if (Numerics.Norm(e) > 0)
        {
            var ranks = SelfReferentialBias.DefaultRanks(shape.Sizes[^1], StudyScale.MaxRank);
            srb = SelfReferentialBias.Compute(ops.NtkS, lin.States.Span, e, ranks, NtkAnalyzer.TargetErrorSource).Index;
        }
        var modes = TaskModes.Of(batch.Targets.Span, model.Readout.OutputSize);
        var rho = modes.Learnability(ops.OutputNtk(model.Readout));
        var learned = modes.LearnedFractions(yhat.Span);
        return new Snapshot(step, loss, shape.Size, prN.Value, prN.StandardError, prK.Value, prK.StandardError, bound,
            srb, capture, cos, rho, learned);
    }

    /// <summary>Evaluation loss and cos(Δz, −e) of a model on a batch (one NTK_S application).</summary>
    public static (double Loss, double Misdirection) LossAndMisdirection(IChainModel model, TaskBatch batch)
    {
        var lin = model.Linearize(batch.Inputs);
        var (loss, _, e) = ErrorOnState(model, lin, batch);
        return (loss, Misdirection(new NtkOperators(lin), e));
    }

    /// <summary>cos(Δz, −e) = ⟨NTK_S e, e⟩ / (‖NTK_S e‖ ‖e‖) (docs/math.md §6); NaN when e or NTK_S e vanishes.</summary>
    public static double Misdirection(NtkOperators ops, ReadOnlySpan<double> e)
    {
        var ke = ops.NtkS.Apply(e);
        double den = Numerics.Norm(ke) * Numerics.Norm(e);
        return den > 0 ? Numerics.Dot(ke, e) / den : double.NaN;
    }

    private static (double Loss, Tensor Outputs, double[] Error) ErrorOnState(IChainModel model, ChainLinearization lin, TaskBatch batch)
    {
        var (loss, e, _) = MseLoss.StateError(model.Readout, lin.States.Span, lin.StateShape, batch.Targets.Span);
        return (loss, model.Readout.Forward(lin.States.Span, lin.StateShape), e);
    }
}
