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

    /// <summary>Number of progress stages reported by <see cref="Analyze"/>.</summary>
    private const int Stages = 10;

    /// <summary>
    /// Analyses <paramref name="model"/>; <paramref name="progress"/> receives (stage, fraction of this model).
    /// </summary>
    public ModelAnalysis Analyze(IChainModel model, string label, int? step = null, Action<string, double>? progress = null)
    {
        var o = Options;
        var key = RngKey.FromSeed(o.Seed);
        int stage = 0;
        var timings = new Dictionary<string, double>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        string? current = null;
        void Report(string what)
        {
            if (current is not null) timings[current] = clock.Elapsed.TotalSeconds;
            clock.Restart();
            current = what;
            progress?.Invoke(what, (double)stage++ / Stages);
        }

        Report("forward pass");
        var lin = model.Linearize(_inputs);
        var ops = new NtkOperators(lin, key.Fold("Kronecker core").Seed);
        var shape = lin.StateShape;
        var readout = model.Readout;
        var outShape = readout.OutputShape(shape);
        if (_targets is not null && _targets.Length != outShape.Size)
            throw new ShapeMismatchException($"targets have shape {_targets.Shape} ({_targets.Length} values) but the model's outputs are {outShape}.");

        Report("NTK_S spectrum");
        var ntkSpec = Spectrum(ops.NtkS, "NTK_S", key.Fold("NTK_S spectrum"));
        Report("K spectrum");
        var kSpec = Spectrum(ops.KKronecker, "K", key.Fold("K spectrum"));
        Report("P P* spectrum");
        var pSpec = Spectrum(ops.P.Gram(), "P P*", key.Fold("P P* spectrum"));
        Report("effective rank of NTK_S");
        var ntkRank = Rank(ops.NtkS, "NTK_S", key.Fold("NTK_S rank"));
        Report("effective rank of K");
        var kRank = Rank(ops.KKronecker, "K", key.Fold("K rank"));
        Report("Kronecker core");
        var kron = Kronecker(ops.KroneckerCore);
        var layerRanks = LayerRanks(model, ops.NtkS, o.Seed + 50);

        Report("SRB and task modes");
        var states = lin.States.Span;
        double? loss = null;
        double[] e;
        string source;
        var yhat = readout.Forward(states, shape);
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
        var srb = SelfReferentialBias.Compute(ops.NtkS, states, e,
            SelfReferentialBias.DefaultRanks(shape.Sizes[^1], o.MaxSrbRank), source);

        LearnabilityResult? tm = null;
        if (_targets is not null)
        {
            var modes = TaskModes.Of(_targets.Span, readout.OutputSize);
            var theta = ops.OutputNtk(readout); // Θ_y = C NTK_S C* + (Z Zᵀ + 1 1ᵀ) ⊗ I (docs/math.md#output-ntk)
            tm = new LearnabilityResult(modes.SingularValues,
                Enumerable.Range(0, modes.Count).Select(i => modes.Right(i).ToArray()).ToArray(),
                modes.Learnability(theta), modes.LearnedFractions(yhat.Span));
        }

        Report("alignment with the previous checkpoint");
        AlignmentResult? align = null;
        if (_previous is { } prev)
        {
            var a = OperatorComparison.Alignment(prev.Ops.NtkS, ops.NtkS, o.Probes, key.Fold("alignment").Seed);
            align = new AlignmentResult(prev.Label, a.Value, a.StandardError, a.Probes);
        }
        _previous = (label, ops);
        Report("done");

        return new ModelAnalysis(label, step, model.Arch,
            shape.Names.Zip(shape.Sizes, (n, s) => new AxisSize(n, s)).ToArray(), lin.Parameters.TotalSize, loss,
            ntkSpec, kSpec, pSpec, ntkRank, kRank, kron, srb, tm, align, timings) { LayerRanks = layerRanks };
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

    private SpectrumResult Spectrum(LinearOperator op, string name, RngKey key)
    {
        int k = Math.Min(Options.TopK, op.Domain.Size);
        var r = Spectral.TopEigenpairs(op, k, key.Seed, tolerance: 1e-6); // residual 1e-6·λ₁ ⇒ eigenvalue error ~1e-12·λ₁²/gap
        return new SpectrumResult(name, op.Domain.Size, r.Values, r.Residuals);
    }

    private RankResult Rank(LinearOperator op, string name, RngKey key)
    {
        var o = Options;
        var trace = TraceEstimators.HutchPlusPlus(op, o.Probes, key.Fold("trace").Seed);
        var pr = EffectiveRank.ParticipationRatio(op, o.Probes, key.Fold("participation ratio").Seed);
        var partial = new List<PartialRankResult>();
        foreach (var (axis, size) in op.Domain.Names.Zip(op.Domain.Sizes))
        {
            if (size <= 1) continue;
            var p = EffectiveRank.Partial(op, [axis], o.PartialProbes, key.Fold("partial").Fold(axis).Seed);

            partial.Add(new PartialRankResult(axis, size, p.Value, p.StandardError, p.Probes));
        }
        return new RankResult(name, op.Domain.Size, trace.Value, trace.StandardError, pr.Value, pr.StandardError, pr.Probes, partial);
    }

    private KroneckerResult Kronecker(KroneckerCore core)
    {
        int rMax = Math.Min(Options.MaxCaptureRank, Math.Max(1, core.MaxRank));
        var sites = core.Sites.Select(s =>
        {
            var contrib = s.ModeContributions;
            int rs = Math.Min(Options.MaxCaptureRank, contrib.Count);
            var capture = new double[rs];
            double acc = 0;
            for (int i = 0; i < rs; i++) { acc += contrib[i]; capture[i] = s.TraceK > 0 ? acc / s.TraceK : 0; }
            return new SiteResult(s.Name, s.Rows, s.Site.Width, s.OutDim, s.NumericalRank, s.RankBound,
                s.ParticipationRatio, s.SingularValues(), capture)
            { TraceMethod = s.Method.ToString(), TraceStandardError = s.TraceStandardError };
        }).ToArray();
        return new KroneckerResult(core.RankBound, core.StateDimension, core.TraceK, core.ModeCaptureCurve(rMax), sites)
            { TraceKStandardError = core.TraceKStandardError };
    }
}
