namespace GlobalNtk.Analysis;

// Plain result records (docs/math.md#reported-quantities), serialisable to JSON as they are.

/// <summary>Everything the analysis reports for one model on one batch (one checkpoint).</summary>
/// <param name="Label">Checkpoint label, e.g. <c>init</c> or <c>ckpt-000500</c>.</param>
/// <param name="Step">Training step of the checkpoint, when known.</param>
/// <param name="Arch">Model architecture.</param>
/// <param name="StateAxes">Named state axes and sizes, e.g. trial=32, time=100, unit=64.</param>
/// <param name="ParameterCount">Number of chain parameters m (readout excluded).</param>
/// <param name="Loss">The loss L = (1/N) Σ (ŷ − y*)² on the batch, the mean over all N output entries (<see cref="Models.MseLoss"/>, docs/math.md#loss), when targets were given.</param>
/// <param name="NtkSpectrum">Top eigenvalues of NTK_S = P K P*.</param>
/// <param name="KSpectrum">Top eigenvalues of K = J_θ J_θ*.</param>
/// <param name="PropagationSpectrum">Top eigenvalues of P P*.</param>
/// <param name="NtkRank">Effective rank of NTK_S with its partial ranks.</param>
/// <param name="KRank">Effective rank of K with its partial ranks.</param>
/// <param name="Kronecker">Per-site Kronecker-core quantities.</param>
/// <param name="Srb">Self-referential bias index SRB(r).</param>
/// <param name="TaskModes">Task-mode learnability (null without targets).</param>
/// <param name="AlignmentWithPrevious">NTK_S alignment with the previous checkpoint (null for the first).</param>
/// <param name="StageSeconds">Wall-clock seconds of each analysis stage.</param>
public sealed record ModelAnalysis(
    string Label, int? Step, string Arch, IReadOnlyList<AxisSize> StateAxes, int ParameterCount, double? Loss,
    SpectrumResult NtkSpectrum, SpectrumResult KSpectrum, SpectrumResult PropagationSpectrum,
    RankResult NtkRank, RankResult KRank, KroneckerResult Kronecker, SrbResult Srb,
    LearnabilityResult? TaskModes, AlignmentResult? AlignmentWithPrevious, IReadOnlyDictionary<string, double>? StageSeconds = null)
{
    /// <summary>Effective rank of NTK_S restricted to each layer's units (stacked recurrent nets, L &gt; 1); null otherwise.</summary>
    public IReadOnlyList<LayerRankResult>? LayerRanks { get; init; }
}

/// <summary>PR of NTK_S restricted to layer <paramref name="Layer"/>'s <paramref name="Units"/> state units (every trial and step).</summary>
public sealed record LayerRankResult(int Layer, int Units, double Value, double StandardError, int Probes);

/// <summary>One named axis and its size.</summary>
public sealed record AxisSize(string Name, int Size);

/// <summary>Top eigenvalues of a symmetric PSD operator with their residual norms ‖A v − λ v‖.</summary>
public sealed record SpectrumResult(string Operator, int Dimension, double[] Eigenvalues, double[] Residuals)
{
    /// <summary>How the spectrum was computed.</summary>
    public string Method { get; init; } = "block Krylov";
    /// <summary>Why the solve stopped: converged, invariant subspace (exact) or budget exhausted.</summary>
    public string Status { get; init; } = "converged";
    /// <summary>Operator applications used.</summary>
    public int Applications { get; init; }
    /// <summary>The budget of applications (never exceeded; 0 when none was set).</summary>
    public int Budget { get; init; }
    /// <summary>Relative eigenvalue tolerance the solve aimed at.</summary>
    public double Tolerance { get; init; }
    /// <summary>Eigenvalue error bounds min(r, r²/gap) at the last convergence check.</summary>
    public double[] ErrorBounds { get; init; } = [];
}

/// <summary>
/// Participation-ratio effective rank PR = (tr A)² / tr(A²) (docs/math.md#effective-rank) with its standard error,
/// the trace, and partial effective ranks along every non-trivial state axis.
/// </summary>
public sealed record RankResult(string Operator, int Dimension, double Trace, double TraceStandardError,
    double Value, double StandardError, int Probes, IReadOnlyList<PartialRankResult> Partial)
{
    /// <summary>How tr A, tr A² and PR were estimated.</summary>
    public string Method { get; init; } = "Rademacher probes";
    /// <summary>tr A² = ‖A‖_F².</summary>
    public double TraceOfSquare { get; init; }
    /// <summary>Standard error of <see cref="TraceOfSquare"/>.</summary>
    public double TraceOfSquareStandardError { get; init; }
    /// <summary>Top eigenvectors whose exact contribution was added (reused from the spectrum).</summary>
    public int Deflated { get; init; }
    /// <summary>Operator applications used by tr A, tr A² and PR (partial ranks count their own).</summary>
    public int Applications { get; init; }
    /// <summary>Most applications allowed for tr A, tr A² and PR.</summary>
    public int Budget { get; init; }
    /// <summary>"target reached" (PR's SE within the preset's relative target; probing stopped there), "budget used" or "exact".</summary>
    public string Status { get; init; } = "";
}

/// <summary>PR of the partial trace that keeps only <paramref name="Axis"/> (docs/math.md#partial-effective-rank).</summary>
public sealed record PartialRankResult(string Axis, int Size, double Value, double StandardError, int Probes)
{
    /// <summary>Exact, PerIndex or Kronecker (see PartialRankPlan).</summary>
    public string Method { get; init; } = "PerIndex";
    /// <summary>Operator applications used.</summary>
    public long Applications { get; init; }
    /// <summary>tr M of the partial trace M.</summary>
    public double Trace { get; init; }
    /// <summary>Standard error of <see cref="Trace"/>.</summary>
    public double TraceStandardError { get; init; }
    /// <summary>‖M‖_F² (unbiased estimate).</summary>
    public double FrobeniusSquared { get; init; }
    /// <summary>Standard error of <see cref="FrobeniusSquared"/>.</summary>
    public double FrobeniusSquaredStandardError { get; init; }
    /// <summary>Most applications allowed.</summary>
    public long Budget { get; init; }
    /// <summary>Kronecker path: the kept-axis factor drawn, "rademacher" or "index" (see KeptProbe); null otherwise.</summary>
    public string? KeptProbe { get; init; }
    /// <summary>Kronecker path: the traced axes drawn with an index factor (coherent axes, from the partial ranks estimated before this one), comma-separated; null when none.</summary>
    public string? TracedIndexAxes { get; init; }
    /// <summary>"target reached", "budget used" or "exact" (see <see cref="RankResult.Status"/>).</summary>
    public string Status { get; init; } = "";
}

/// <summary>
/// Kronecker-core summary (docs/math.md#kronecker-core): the rank bound Σ_s rank(Ĝ_s)·m_s (plus one per θ
/// scalar outside every site), exact tr K, the model-level mode capture c(r) = tr K_r / tr K
/// (every Ĝ_s truncated to its top r modes; r = 1..ModeCapture.Length) and every site.
/// </summary>
public sealed record KroneckerResult(long RankBound, int StateDimension, double TraceK, double[] ModeCapture,
    IReadOnlyList<SiteResult> Sites)
{
    /// <summary>Standard error of <see cref="TraceK"/>: 0 when every trace is exact, else from the Hutchinson-estimated sites and rest term.</summary>
    public double TraceKStandardError { get; init; }
    /// <summary>θ scalars outside every site (their J_rest J_rest* term is part of tr K).</summary>
    public int RestParameterCount { get; init; }
    /// <summary>tr(J_rest J_rest*), the part of tr K from the θ scalars outside every site.</summary>
    public double RestTrace { get; init; }
    /// <summary>How <see cref="RestTrace"/> was computed: "Exact" or "Hutchinson".</summary>
    public string RestTraceMethod { get; init; } = "Exact";
    /// <summary>Standard error of <see cref="RestTrace"/> (0 when exact).</summary>
    public double RestTraceStandardError { get; init; }
}

/// <summary>
/// One weight site: Û's singular values σ_i (Ĝ_s's spectrum is σ_i²), numerical rank, PR(Ĝ_s),
/// the site's rank bound rank(Ĝ_s)·m_s, and the site's own mode capture c_s(r) = tr K_{s,r} / tr K_s
/// for r = 1..ModeCapture.Length.
/// </summary>
public sealed record SiteResult(string Name, int Rows, int Width, int OutDim, int GramRank, long RankBound,
    double GramParticipationRatio, double[] SingularValues, double[] ModeCapture)
{
    /// <summary>How tr K_s and its mode contributions were computed: RowLocal or Exact (exact), or Hutchinson (estimated).</summary>
    public string TraceMethod { get; init; } = "Exact";
    /// <summary>Standard error of the site's tr K_s (0 when exact).</summary>
    public double TraceStandardError { get; init; }
}

/// <summary>Alignment ⟨A,B⟩_F/(‖A‖_F‖B‖_F) of two operators, with its standard error.</summary>
public sealed record AlignmentResult(string With, double Value, double StandardError, int Probes)
{
    /// <summary>How it was estimated.</summary>
    public string Method { get; init; } = "shared Rademacher probes, jackknife";
    /// <summary>Operator applications used (both operators).</summary>
    public int Applications { get; init; }
}
