namespace GlobalNtk.Analysis;

/// <summary>Named sets of analysis budgets (see <see cref="AnalysisOptions.ForBudget"/>).</summary>
public enum AnalysisBudget
{
    /// <summary>A first look: ~¼ of the default cost, standard errors about twice as large.</summary>
    Quick,
    /// <summary>The default: spectra to 1e-3 relative, effective ranks to a few per cent.</summary>
    Default,
    /// <summary>~4× the default cost for tighter spectra and standard errors about half as large.</summary>
    Thorough,
}

/// <summary>
/// Budgets and seeds of one analysis (every estimator takes a budget of operator applications and
/// a seed). <see cref="ForBudget"/> is the one place where the presets are defined.
/// </summary>
public sealed record AnalysisOptions
{
    /// <summary>Name of the preset these options started from (reported with the results).</summary>
    public string Budget { get; init; } = "default";
    /// <summary>Number of top eigenvalues of NTK_S, K and P P* (lowered when the Krylov memory cap or the spectrum budget cannot hold them).</summary>
    public int TopK { get; init; } = 10;
    /// <summary>Most operator applications per spectrum; never exceeded.</summary>
    public int SpectrumBudget { get; init; } = 60;
    /// <summary>Relative eigenvalue tolerance: a spectrum stops when every eigenvalue's error bound is below this times λ₁.</summary>
    public double SpectrumTolerance { get; init; } = 1e-3;
    /// <summary>Probes (one application each) for tr A, tr A² and PR of NTK_S and K (deflated by their top eigenvectors), and for the alignment.</summary>
    public int Probes { get; init; } = 30;
    /// <summary>Operator applications per partial effective rank (the method is chosen to fit; see PartialRankPlan).</summary>
    public int PartialBudget { get; init; } = 24;
    /// <summary>
    /// Relative standard-error target of every effective rank (tr A, tr A², PR and the partial
    /// ranks): probing stops once PR's SE is at most this fraction of PR, after a pilot; the
    /// probe budgets stay the cap. 0 spends every budget.
    /// </summary>
    public double RelativeTarget { get; init; } = 0.05;
    /// <summary>
    /// Memory a spectrum may hold, in bytes: its Krylov basis, block, and the top eigenvectors with
    /// their images (kept to deflate the effective rank). A full basis is thick-restarted (no
    /// application is repeated); top-k is lowered for states too large to hold 4·top-k vectors.
    /// </summary>
    public long KrylovMemoryBytes { get; init; } = Dense.MemoryBudget.KrylovSpectrumBytes;
    /// <summary>
    /// Kronecker core: a site that is not row-local (attention's in_proj) gets exact traces only when
    /// they cost at most this many applications of D_s (d̂·m_s); above it, Hutchinson estimates with
    /// <see cref="KroneckerProbes"/> probes and standard errors (a 64-wide attention site costs 65·192 = 12 480
    /// applications exactly, minutes on a 614k state, against 64 for the estimate).
    /// </summary>
    public long KroneckerExactLimit { get; init; } = 1024;
    /// <summary>Hutchinson probes (one application of D_s* each) per Kronecker-core site above <see cref="KroneckerExactLimit"/>, and for the rest term above <see cref="KroneckerRestExactLimit"/>.</summary>
    public int KroneckerProbes { get; init; } = 32;
    /// <summary>
    /// Kronecker core: tr(J_rest J_rest*) of the θ scalars outside every site (a transformer's
    /// LayerNorm gains and biases) is exact when it costs at most this many JVPs, about one per
    /// scalar of a layer; above it, a Hutchinson estimate with <see cref="KroneckerProbes"/> probes
    /// and a standard error (four times the probes: exact only while it costs ≤ 4× the estimate).
    /// </summary>
    public long KroneckerRestExactLimit { get; init; } = 128;
    /// <summary>Seed of every random draw (same seed → same numbers).</summary>
    public int Seed { get; init; } = 1;
    /// <summary>
    /// Compute precision of the linearisation the operators run on (docs/math.md#numerics):
    /// <see cref="Dense.Precision.F32"/> where the model family has a float32 path; the estimators'
    /// reductions stay float64 either way.
    /// </summary>
    public Dense.Precision Precision { get; init; } = Dense.Precision.F64;
    /// <summary>Largest r of SRB(r) (r = 1..min(this, state vector length)).</summary>
    public int MaxSrbRank { get; init; } = 64;
    /// <summary>Largest r of the mode-capture curve c(r) per site.</summary>
    public int MaxCaptureRank { get; init; } = 64;

    /// <summary>
    /// The options of a preset (cost in operator applications per checkpoint, for a state with a
    /// axes of size > 1: 3·SpectrumBudget + 2·(Probes + a·PartialBudget) + 2·Probes for the alignment).
    /// </summary>
    public static AnalysisOptions ForBudget(AnalysisBudget budget) => budget switch
    {
        AnalysisBudget.Quick => new AnalysisOptions
        {
            Budget = "quick", TopK = 8, SpectrumBudget = 32, SpectrumTolerance = 1e-2, Probes = 12, PartialBudget = 24,
            RelativeTarget = 0.1, KroneckerProbes = 16, KroneckerRestExactLimit = 64,
        },
        AnalysisBudget.Default => new AnalysisOptions(),
        AnalysisBudget.Thorough => new AnalysisOptions
        {
            Budget = "thorough", TopK = 20, SpectrumBudget = 600, SpectrumTolerance = 1e-5, Probes = 160, PartialBudget = 240,
            RelativeTarget = 0, KroneckerExactLimit = 16_384, KroneckerProbes = 256, KroneckerRestExactLimit = long.MaxValue,
        },
        _ => throw new ArgumentOutOfRangeException(nameof(budget), budget, "unknown analysis budget"),
    };

    /// <summary>Operator applications planned per checkpoint for a state with <paramref name="partialAxes"/> axes of size > 1 (an upper bound).</summary>
    public long PlannedApplications(int partialAxes) => 3L * SpectrumBudget + 2L * (Probes + (long)partialAxes * PartialBudget) + 2L * Probes;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (TopK < 1) throw new ArgumentException($"analysis option TopK must be ≥ 1, got {TopK}.");
        if (SpectrumBudget < 2) throw new ArgumentException($"analysis option SpectrumBudget must be ≥ 2, got {SpectrumBudget}.");
        if (!(SpectrumTolerance > 0 && SpectrumTolerance < 1)) throw new ArgumentException($"analysis option SpectrumTolerance must be in (0, 1), got {SpectrumTolerance}.");
        if (Probes < 3) throw new ArgumentException($"analysis option Probes must be ≥ 3, got {Probes}.");
        if (PartialBudget < 6) throw new ArgumentException($"analysis option PartialBudget must be ≥ 6, got {PartialBudget}.");
        if (!(RelativeTarget >= 0 && RelativeTarget < 1)) throw new ArgumentException($"analysis option RelativeTarget must be in [0, 1), got {RelativeTarget}.");
        if (KrylovMemoryBytes < 1 << 20) throw new ArgumentException($"analysis option KrylovMemoryBytes must be ≥ 1 MiB, got {KrylovMemoryBytes}.");
        if (KroneckerExactLimit < 0) throw new ArgumentException($"analysis option KroneckerExactLimit must be ≥ 0, got {KroneckerExactLimit}.");
        if (KroneckerRestExactLimit < 0) throw new ArgumentException($"analysis option KroneckerRestExactLimit must be ≥ 0, got {KroneckerRestExactLimit}.");
        if (KroneckerProbes < 2) throw new ArgumentException($"analysis option KroneckerProbes must be ≥ 2, got {KroneckerProbes}.");
        if (MaxSrbRank < 1) throw new ArgumentException($"analysis option MaxSrbRank must be ≥ 1, got {MaxSrbRank}.");
        if (MaxCaptureRank < 1) throw new ArgumentException($"analysis option MaxCaptureRank must be ≥ 1, got {MaxCaptureRank}.");
    }
}
