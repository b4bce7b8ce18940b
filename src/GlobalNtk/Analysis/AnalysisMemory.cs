using GlobalNtk.Dense;

namespace GlobalNtk.Analysis;

/// <summary>What an analysis holds in memory beyond the model's linearisation.</summary>
public static class AnalysisMemory
{
    /// <summary>
    /// A lower bound for one checkpoint's analysis on states of <paramref name="stateLength"/>
    /// values: a spectrum (a Krylov basis of at least k + 1 vectors, the k eigenvectors and their
    /// images, capped at <see cref="AnalysisOptions.KrylovMemoryBytes"/>, where top-k is lowered
    /// instead) and a few state vectors for the probes and their images.
    /// </summary>
    public static MemoryEstimate Estimate(long stateLength, AnalysisOptions options) => new MemoryEstimate()
        .AddBytes("Krylov spectrum", Math.Min(8.0 * (3 * options.TopK + 1) * stateLength, options.KrylovMemoryBytes))
        .AddDoubles("probe vectors", 4.0 * stateLength);
}
