using GlobalNtk.Dense;
using GlobalNtk.Estimators;
using GlobalNtk.Models;
using GlobalNtk.Ntk;
using GlobalNtk.Operators;

namespace GlobalNtk.Analysis;

/// <summary>
/// The analysis of docs/math.md#reported-quantities on one batch, for one model or a sequence of checkpoints (same
/// batch): spectra of NTK_S, K and P P*; effective ranks with partial ranks along every
/// non-trivial state axis; the Kronecker core; SRB(r); task-mode learnability when targets are
/// given; and the NTK_S alignment with the previously analysed checkpoint.
/// </summary>
/// <remarks>
/// Keeps the previous checkpoint's linearisation (state-sized memory) for the alignment. Models
/// passed to <see cref="Analyze"/> must not be mutated afterwards (load each checkpoint afresh).
/// Every random draw derives from <see cref="AnalysisOptions.Seed"/> through one <see cref="RngKey"/>,
/// folded with the name of each consumer (e.g. "NTK_S spectrum"), so a rerun is identical and no
/// two estimates share probes.
/// </remarks>
public sealed class NtkAnalyzer
{
    /// <summary>How SRB's error is chosen when no targets are given (documented default).</summary>
    public const string DefaultErrorSource =
        "isotropic Gaussian e (no targets; seeded): SRB then measures NTK_S's own bias towards the activity modes";
    /// <summary>How SRB's error is chosen with targets.</summary>
    public const string TargetErrorSource = "e = ∂L/∂z = Cᵀ ∂L/∂y, the gradient of the loss " + MseLoss.Definition + " on the targets";

    private readonly Tensor _inputs;
    private readonly Tensor? _targets;
    private (string Label, NtkOperators Ops)? _previous;

    /// <summary>An analyser for one batch; <paramref name="targets"/> (outputs' shape) enables loss, SRB on the task error and task modes.</summary>
    public NtkAnalyzer(Tensor inputs, Tensor? targets, AnalysisOptions? options = null)
    {
        Options = options ?? new AnalysisOptions();
        Options.Validate();
        inputs.EnsureFinite("analysis inputs");
        targets?.EnsureFinite("analysis targets");
        _inputs = inputs; _targets = targets;
    }

    /// <summary>Budgets and seed.</summary>
    public AnalysisOptions Options { get; }

    /// <summary>
    /// Analyses <paramref name="model"/>; <paramref name="progress"/> receives (stage, fraction of
    /// this model). Inside each stage the stage text counts operator applications done / planned
    /// with an ETA, updated about every second.
    /// </summary>
    public ModelAnalysis Analyze(IChainModel model, string label, int? step = null, Action<string, double>? progress = null)
    {
        var o = Options;
        var key = RngKey.FromSeed(o.Seed);
        var meter = new StageMeter(progress);

        meter.Begin("forward pass", 0);
        var lin = model.Linearize(_inputs, o.Precision);
        meter.StateLength = lin.StateShape.Size;
        var ops = new NtkOperators(lin, key.Fold("Kronecker core").Seed, o.KroneckerExactLimit, o.KroneckerProbes, o.KroneckerRestExactLimit);
        var shape = lin.StateShape;
        var readout = model.Readout;
        var outShape = readout.OutputShape(shape);
        if (_targets is not null && _targets.Length != outShape.Size)
            throw new ShapeMismatchException($"targets have shape {_targets.Shape} ({_targets.Length} values) but the model's outputs are {outShape}.");
        int partialAxes = shape.Sizes.Count(size => size > 1);
        meter.Planned = o.PlannedApplications(partialAxes) + 1 + readout.OutputSize;

        // The cheaper exact form of K (and so of NTK_S) for this model: estimators only apply them.
        var ntkS = meter.Wrap(ops.NtkSApplied);
        var kOp = meter.Wrap(ops.KApplied);
        // Each operator's rank right after its spectrum, which it deflates: one set of top
        // eigenvectors alive at a time (they are state-sized; this bounds memory on large states).
        long rankPlan = o.Probes + (long)partialAxes * o.PartialBudget;
        meter.Begin("NTK_S spectrum", o.SpectrumBudget);
        var (ntkSpec, ntkEigResult) = Spectrum(ntkS, "NTK_S", "block Krylov on NTK_S = P K P*", key.Fold("NTK_S spectrum"));
        meter.Begin("effective rank of NTK_S", rankPlan);
        var ntkRank = Rank(ntkS, "NTK_S", key.Fold("NTK_S rank"), ntkEigResult, meter);
        ntkEigResult = null!;   // its 2·top-k state vectors are spent: not kept alive through the later stages
        meter.Begin("K spectrum", o.SpectrumBudget);
        var (kSpec, kEigResult) = Spectrum(kOp, "K", ReferenceEquals(ops.KApplied, ops.K) ? "block Krylov on K = J_θ J_θ*" : "block Krylov on the Kronecker-core K", key.Fold("K spectrum"));
        meter.Begin("effective rank of K", rankPlan);
        var kRank = Rank(kOp, "K", key.Fold("K rank"), kEigResult, meter);
        kEigResult = null!;
        meter.Begin("P P* spectrum", o.SpectrumBudget);
        // The top of P P* is the top of P's singular values squared: block Krylov on the Gram P P*
        // (one application = P* then P), the same cost as the singular-value route for a square P.
        var (pSpec, _) = Spectrum(meter.Wrap(ops.P.Gram()), "P P*", "block Krylov on the Gram P P* (σ² of P)", key.Fold("P P* spectrum"));
        meter.Begin("Kronecker core", 0);
        var kron = Kronecker(ops.KroneckerCore, meter);
        var layerRanks = LayerRanks(model, ops.NtkSApplied, o.Seed + 50);

        meter.Begin("SRB and task modes", 1 + readout.OutputSize);
        double? loss = null;
        Tensor yhat;
        SrbResult srb;
        var srbRanks = SelfReferentialBias.DefaultRanks(shape.Sizes[^1], o.MaxSrbRank);
        if (lin.StatesSingle.Length > 0)
        {
            // A float32 trajectory: outputs, e and SRB read it directly, without the widened float64 states.
            var states = lin.StatesSingle.Span;
            yhat = readout.Forward(states, shape);
            float[] e;
            string source;
            if (_targets is not null)
            {
                (loss, e, _) = MseLoss.StateError(readout, states, shape, _targets.Span);
                source = TargetErrorSource;
            }
            else
            {
                e = GaussianSingle(key.Fold("SRB error").CreateRandom(), shape.Size);
                source = DefaultErrorSource;
            }
            if (Float32.DotWide(e, e) == 0)
            {
                e = GaussianSingle(key.Fold("SRB error").CreateRandom(), shape.Size);
                source = DefaultErrorSource + " (the task error is exactly zero)";
            }
            srb = SelfReferentialBias.Compute(ntkS, states, e, srbRanks, source);
        }
        else
        {
            var states = lin.States.Span;
            double[] e;
            string source;
            yhat = readout.Forward(states, shape);
            if (_targets is not null)
            {
                (loss, e, _) = MseLoss.StateError(readout, states, shape, _targets.Span);
                source = TargetErrorSource;
            }
            else
            {
                e = RandomProbes.Gaussian(key.Fold("SRB error").CreateRandom(), shape.Size);
                source = DefaultErrorSource;
            }
            if (Numerics.Norm(e) == 0)
            {
                // Perfect fit: the task error vanishes, fall back to the documented default.
                e = RandomProbes.Gaussian(key.Fold("SRB error").CreateRandom(), shape.Size);
                source = DefaultErrorSource + " (the task error is exactly zero)";
            }
            srb = SelfReferentialBias.Compute(ntkS, states, e, srbRanks, source);
        }

        LearnabilityResult? tm = null;
        if (_targets is not null)
        {
            var modes = TaskModes.Of(_targets.Span, readout.OutputSize);
            var theta = meter.Wrap(ops.OutputNtk(readout)); // Θ_y = C NTK_S C* + (Z Zᵀ [+ 1 1ᵀ with a bias]) ⊗ I (docs/math.md#output-ntk)
            tm = new LearnabilityResult(modes.SingularValues,
                Enumerable.Range(0, modes.Count).Select(i => modes.Right(i).ToArray()).ToArray(),
                modes.Learnability(theta), modes.LearnedFractions(yhat.Span));
        }

        AlignmentResult? align = null;
        if (_previous is { } prev)
        {
            meter.Begin("alignment with the previous checkpoint", 2L * o.Probes);
            long before = meter.Applications;
            var a = OperatorComparison.Alignment(meter.Wrap(prev.Ops.NtkSApplied), ntkS, o.Probes, key.Fold("alignment").Seed);
            align = new AlignmentResult(prev.Label, a.Value, a.StandardError, a.Probes) { Applications = (int)(meter.Applications - before) };
        }
        _previous = (label, ops);
        var timings = meter.Finish();

        return new ModelAnalysis(label, step, model.Arch,
            shape.Names.Zip(shape.Sizes, (n, s) => new AxisSize(n, s)).ToArray(), lin.Parameters.TotalSize, loss,
            ntkSpec, kSpec, pSpec, ntkRank, kRank, kron, srb, tm, align, timings) { LayerRanks = layerRanks };
    }

    /// <summary>
    /// The float64 Gaussian draws of <see cref="RandomProbes.Gaussian(Random, int)"/> (the same values
    /// from the same generator), each rounded once to float32, drawn a slice at a time.
    /// </summary>
    private static float[] GaussianSingle(Random rng, int n)
    {
        var x = new float[n];
        var d = new double[Math.Min(n, 1 << 14)]; // even: Box–Muller pairs are not split across slices
        for (int i = 0; i < n; i += d.Length)
        {
            var part = d.AsSpan(0, Math.Min(d.Length, n - i));
            RandomProbes.Gaussian(rng, part);
            Float32.Narrow(part, x.AsSpan(i, part.Length));
        }
        return x;
    }

    /// <summary>
    /// For a stacked recurrent net (L &gt; 1): the effective rank of NTK_S restricted to each layer's
    /// units, M_k NTK_S M_k with M_k the 0/1 mask of layer k's state slice (all trials and steps);
    /// the zero rows and columns change neither tr A nor tr A². Null for other models.
    /// </summary>
    private IReadOnlyList<LayerRankResult>? LayerRanks(IChainModel model, LinearOperator ntk, int seed)
    {
        if (model is not Models.Recurrent.RecurrentModel { Layers: > 1 } rm) return null;
        var shape = ntk.Domain;
        int s = rm.StateSize, sc = rm.Config.LayerStateSize;
        var list = new List<LayerRankResult>();
        for (int k = 0; k < rm.Layers; k++)
        {
            var mask = new double[shape.Size];
            for (int row = 0; row < shape.Size / s; row++) Array.Fill(mask, 1.0, row * s + k * sc, sc);
            var m = new DiagonalOperator(shape, mask);
            var pr = EffectiveRank.ParticipationRatio(m.Then(ntk).Then(m), Options.Probes, seed + k);
            list.Add(new LayerRankResult(k, sc, pr.Value, pr.StandardError, pr.Probes));
        }
        return list;
    }

    private (SpectrumResult Result, EigenResult Eig) Spectrum(LinearOperator op, string name, string method, RngKey key)
    {
        var o = Options;
        int n = op.Domain.Size;
        // Memory cap: everything the solve holds (basis, block, eigenvectors and their images) fits
        // KrylovMemoryBytes; k shrinks for very large states, and a full basis is thick-restarted.
        var r = Spectral.TopEigenpairs(op, o.TopK, key.Seed, new SpectrumBudget(o.SpectrumBudget, o.SpectrumTolerance), SpectrumVectors(n, o));
        string status = r.Status switch
        {
            EigenStatus.Converged => "converged",
            EigenStatus.InvariantSubspace => "exact (invariant subspace)",
            _ => "budget exhausted",
        };
        return (new SpectrumResult(name, n, r.Values, r.Residuals)
        {
            Method = method, Status = status, Applications = r.Applications, Budget = r.Budget,
            Tolerance = o.SpectrumTolerance, ErrorBounds = r.ErrorBounds,
        }, r);
    }

    /// <summary>State vectors a spectrum may hold on states of <paramref name="stateLength"/> values (its memory cap).</summary>
    internal static int SpectrumVectors(long stateLength, AnalysisOptions options) =>
        (int)Math.Clamp(options.KrylovMemoryBytes / (8L * Math.Max(1, stateLength)), Spectral.MinVectors, int.MaxValue);

    private RankResult Rank(LinearOperator op, string name, RngKey key, EigenResult top, StageMeter meter)
    {
        var o = Options;
        // Deflate by the spectrum's top eigenvectors: their exact share of tr A and tr A² is reused.
        var deflation = Deflation.FromEigenpairs(top);
        var mo = EffectiveRank.Moments(op, o.Probes, key.Fold("moments").Seed, deflation, o.RelativeTarget);
        var partial = new List<PartialRankResult>();
        var hints = new Dictionary<string, TracedAxisHint>();
        foreach (var (axis, size) in op.Domain.Names.Zip(op.Domain.Sizes))
        {
            if (size <= 1) continue;
            MemoryBudget.CollectBetweenEstimators(meter.StateLength);
            long before = meter.Applications;
            var p = EffectiveRank.PartialWithin(op, [axis], o.PartialBudget, key.Fold("partial").Fold(axis).Seed, deflation, o.RelativeTarget, hints);
            // The axes done so far tell which traced axes are coherent and even (index factors in Kronecker probes).
            hints[axis] = TracedAxisHint.Of(p);
            partial.Add(new PartialRankResult(axis, size, p.ParticipationRatio.Value, p.ParticipationRatio.StandardError, p.ParticipationRatio.Probes)
            {
                Method = p.Plan.Method.ToString(), KeptProbe = p.KeptProbe?.ToString().ToLowerInvariant(),
                TracedIndexAxes = p.TracedIndexAxes.Count > 0 ? string.Join(",", p.TracedIndexAxes) : null,
                Applications = meter.Applications - before, Budget = o.PartialBudget,
                Status = RankStatus(p.ParticipationRatio, p.TargetReached),
                Trace = p.Trace.Value, TraceStandardError = p.Trace.StandardError,
                FrobeniusSquared = p.FrobeniusSquared.Value, FrobeniusSquaredStandardError = p.FrobeniusSquared.StandardError,
            });
        }
        string method = mo.ParticipationRatio.Exact ? "exact (unit vectors)"
            : $"Rademacher probes deflated by the top {mo.Deflated} eigenvectors; pair estimate of (tr A)², jackknife SE";
        return new RankResult(name, op.Domain.Size, mo.Trace.Value, mo.Trace.StandardError, mo.ParticipationRatio.Value,
            mo.ParticipationRatio.StandardError, mo.ParticipationRatio.Probes, partial)
        {
            Method = method, TraceOfSquare = mo.TraceOfSquare.Value, TraceOfSquareStandardError = mo.TraceOfSquare.StandardError,
            Deflated = mo.Deflated, Applications = mo.Applications, Budget = o.Probes,
            Status = RankStatus(mo.ParticipationRatio, mo.TargetReached),
        };
    }

    private string RankStatus(Estimate e, bool reached) =>
        e.Exact ? "exact" : reached ? $"target reached (SE ≤ {Options.RelativeTarget:0.###} × value)" : "budget used";

    private KroneckerResult Kronecker(KroneckerCore core, StageMeter meter)
    {
        int rMax = Math.Min(Options.MaxCaptureRank, Math.Max(1, core.MaxRank));
        int count = core.Sites.Count;
        var sites = core.Sites.Select((s, idx) =>
        {
            // Each site's traces are computed on first use: report which one is running.
            meter.Detail($"site {idx + 1}/{count} {s.Name} ({s.Method})", (double)idx / (count + 1));
            var contrib = s.ModeContributions;
            int rs = Math.Min(Options.MaxCaptureRank, contrib.Count);
            var capture = new double[rs];
            double acc = 0;
            for (int i = 0; i < rs; i++) { acc += contrib[i]; capture[i] = s.TraceK > 0 ? acc / s.TraceK : 0; }
            return new SiteResult(s.Name, s.Rows, s.Site.Width, s.OutDim, s.NumericalRank, s.RankBound,
                s.ParticipationRatio, s.SingularValues(), capture)
            { TraceMethod = s.Method.ToString(), TraceStandardError = s.TraceStandardError };
        }).ToArray();
        if (core.RestParameterCount > 0) meter.Detail($"parameters outside every site ({core.RestParameterCount})", count / (double)(count + 1));
        _ = core.RestTrace;
        return new KroneckerResult(core.RankBound, core.StateDimension, core.TraceK, core.ModeCaptureCurve(rMax), sites)
        {
            TraceKStandardError = core.TraceKStandardError,
            RestParameterCount = core.RestParameterCount, RestTrace = core.RestTrace,
            RestTraceMethod = core.RestTraceMethod.ToString(), RestTraceStandardError = core.RestTraceStandardError,
        };
    }

    /// <summary>
    /// Stage timings and progress: counts operator applications of the wrapped operators and
    /// reports "stage: done/planned applications, ETA" with the fraction of the checkpoint done.
    /// </summary>
    private sealed class StageMeter(Action<string, double>? progress)
    {
        private readonly Dictionary<string, double> _timings = [];
        private readonly System.Diagnostics.Stopwatch _clock = new();
        private string? _stage;
        private long _stagePlanned, _stageStart, _completedPlanned;

        public long Planned { get; set; } = 1;
        public long Applications { get; private set; }
        /// <summary>Values per state vector: large states collect garbage between stages (<see cref="MemoryBudget.CollectBetweenEstimators"/>).</summary>
        public long StateLength { get; set; }

        public LinearOperator Wrap(LinearOperator op)
        {
            long last = 0;
            return new MeteredOperator(op, total => { Applications += total - last; last = total; Report(); });
        }

        public void Begin(string stage, long planned)
        {
            Close();
            MemoryBudget.CollectBetweenEstimators(StateLength);
            _stage = stage; _stagePlanned = planned; _stageStart = Applications;
            _clock.Restart();
            Report();
        }

        /// <summary>Progress inside a stage that applies no metered operator: "stage: detail", at this fraction of the stage.</summary>
        public void Detail(string detail, double stageFraction)
        {
            if (progress is null || _stage is null) return;
            double fraction = (_completedPlanned + Math.Clamp(stageFraction, 0, 1) * _stagePlanned) / (double)Math.Max(1, Planned);
            progress($"{_stage}: {detail}", Math.Clamp(fraction, 0, 0.999));
        }

        public Dictionary<string, double> Finish()
        {
            Close();
            _stage = null;
            progress?.Invoke("done", 1.0);
            return _timings;
        }

        private void Close()
        {
            if (_stage is null) return;
            _timings[_stage] = _clock.Elapsed.TotalSeconds;
            _completedPlanned += Math.Max(_stagePlanned, Applications - _stageStart);
        }

        private void Report()
        {
            if (progress is null || _stage is null) return;
            long done = Applications - _stageStart;
            string text = _stage;
            if (_stagePlanned > 0)
            {
                text += $": {done}/{_stagePlanned} applications";
                if (done > 0 && done < _stagePlanned)
                {
                    double eta = _clock.Elapsed.TotalSeconds / done * (_stagePlanned - done);
                    text += $", ETA ≤ {FormatSeconds(eta)}";
                }
            }
            double fraction = (_completedPlanned + Math.Min(done, _stagePlanned)) / (double)Math.Max(1, Planned);
            progress(text, Math.Clamp(fraction, 0, 0.999));
        }

        private static string FormatSeconds(double s) =>
            s < 60 ? $"{Math.Ceiling(s):F0} s" : $"{(int)(s / 60)} min {(int)Math.Ceiling(s % 60):D2} s";
    }
}
