using GlobalNtk.Dense;
using GlobalNtk.IO;
using GlobalNtk.Tasks;

namespace GlobalNtk.Training;

/// <summary>What a training run holds in memory, estimated before the model is created.</summary>
public static class TrainingMemory
{
    /// <summary>
    /// A lower bound on the memory of training <paramref name="spec"/> on batches of
    /// <paramref name="options"/>.BatchSize trials of <paramref name="task"/>: the parameters, their
    /// gradient, the optimizer's per-parameter state (Adam: two moments) and one batch's states
    /// and their adjoints. Null when the model's size cannot be told (see <see cref="ModelSize"/>).
    /// </summary>
    public static MemoryEstimate? Estimate(ModelSpec spec, ITask task, TrainingOptions options)
    {
        if (ModelSize.ParameterCount(spec) is not double parameters) return null;
        int optimizerSlots = string.Equals(options.Optimizer?.Trim(), "adam", StringComparison.OrdinalIgnoreCase) ? 2 : 0;
        double batchStates = (double)options.BatchSize * task.Steps * spec.HiddenSize;
        return new MemoryEstimate()
            .AddDoubles("parameters", parameters)
            .AddDoubles("gradient", parameters)
            .AddDoubles("optimizer state", optimizerSlots * parameters)
            .AddDoubles("batch states and adjoints", 2 * batchStates);
    }
}
