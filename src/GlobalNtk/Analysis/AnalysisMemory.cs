using GlobalNtk.Dense;

namespace GlobalNtk.Analysis;

/// <summary>What an analysis holds in memory beyond the model's linearisation.</summary>
public static class AnalysisMemory
{
    /// <summary>
    /// A lower bound for one checkpoint's analysis on states of <paramref name="stateLength"/>
    /// values: the block Krylov basis of the top eigenpairs (TopK + LanczosExtra state vectors)
    /// and one block of probes with its image (2 × Probes state vectors).
    /// </summary>
    public static MemoryEstimate Estimate(long stateLength, AnalysisOptions options) => new MemoryEstimate()
        .AddDoubles("Krylov basis", (double)(options.TopK + options.LanczosExtra) * stateLength)
        .AddDoubles("probe blocks", 2.0 * options.Probes * stateLength);
}
