namespace GlobalNtk.Analysis;

/// <summary>Budgets and seeds of one analysis (docs/math.md#estimators: every estimator takes a probe budget and a seed).</summary>
public sealed record AnalysisOptions
{
    /// <summary>Number of top eigenvalues of NTK_S, K and P P*.</summary>
    public int TopK { get; init; } = 20;
    /// <summary>Probes for traces, effective ranks and alignment (Hutch++ splits them into sketch and rest).</summary>
    public int Probes { get; init; } = 60;
    /// <summary>Probes for each partial effective rank.</summary>
    public int PartialProbes { get; init; } = 30;
    /// <summary>Lanczos iterations are TopK + this many extra (more converges the top eigenvalues further).</summary>
    public int LanczosExtra { get; init; } = 20;
    /// <summary>Seed of every random draw (same seed → same numbers).</summary>
    public int Seed { get; init; } = 1;
    /// <summary>Largest r of SRB(r) (r = 1..min(this, state vector length)).</summary>
    public int MaxSrbRank { get; init; } = 64;
    /// <summary>Largest r of the mode-capture curve c(r) per site.</summary>
    public int MaxCaptureRank { get; init; } = 64;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (TopK < 1) throw new ArgumentException($"analysis option TopK must be ≥ 1, got {TopK}.");
        if (Probes < 3) throw new ArgumentException($"analysis option Probes must be ≥ 3, got {Probes}.");
        if (PartialProbes < 2) throw new ArgumentException($"analysis option PartialProbes must be ≥ 2, got {PartialProbes}.");
        if (LanczosExtra < 0) throw new ArgumentException($"analysis option LanczosExtra must be ≥ 0, got {LanczosExtra}.");
        if (MaxSrbRank < 1) throw new ArgumentException($"analysis option MaxSrbRank must be ≥ 1, got {MaxSrbRank}.");
        if (MaxCaptureRank < 1) throw new ArgumentException($"analysis option MaxCaptureRank must be ≥ 1, got {MaxCaptureRank}.");
    }
}
