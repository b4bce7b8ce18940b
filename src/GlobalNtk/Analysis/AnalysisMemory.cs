using GlobalNtk.Dense;

namespace GlobalNtk.Analysis;

/// <summary>What an analysis holds in memory beyond the model's linearisation.</summary>
public static class AnalysisMemory
{
    /// <summary>
    /// A lower bound for one checkpoint's analysis on states of <paramref name="stateLength"/>
    /// values: a spectrum (a Krylov basis of at least k + 1 vectors, the k eigenvectors and their
    /// images, capped at <see cref="AnalysisOptions.KrylovMemoryBytes"/>, where top-k is lowered
    /// instead) and a few state vectors for the probes and their images. With
    /// <see cref="Dense.Precision.F32"/> the basis, the eigenvectors with their images and the probe
    /// blocks are all float32 (4 bytes a value).
    /// </summary>
    public static MemoryEstimate Estimate(long stateLength, AnalysisOptions options)
    {
        double value = options.Precision == Dense.Precision.F32 ? 4.0 : 8.0;
        return new MemoryEstimate()
            .AddBytes("Krylov spectrum", Math.Min(value * (options.TopK + 1 + 2 * options.TopK) * stateLength, options.KrylovMemoryBytes))
            .AddBytes("probe vectors", value * 4 * stateLength);
    }
}
