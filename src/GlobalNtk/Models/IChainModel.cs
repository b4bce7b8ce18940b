using GlobalNtk.Dense;

namespace GlobalNtk.Models;

/// <summary>
/// A model that is a chain of steps (docs/math.md#models-as-chains): recurrent cells (step = time, shared weights)
/// and depth chains (MLP, transformer: step = layer), plus a linear readout. P, K and NTK_S are
/// built from the <see cref="ChainLinearization"/> it returns, so they serve every model family
/// unchanged; training, checkpoint IO and the CLI use only the members here.
/// </summary>
public interface IChainModel
{
    /// <summary>Architecture name, e.g. <c>gru</c>, <c>mlp</c>, <c>transformer</c>.</summary>
    string Arch { get; }
    /// <summary>The chain's parameters θ (live tensors, PyTorch names; the readout's are separate).</summary>
    ParameterSet Parameters { get; }
    /// <summary>The readout y = W_out z + b_out on the states (live tensors).</summary>
    Readout Readout { get; }
    /// <summary>
    /// Every trainable tensor, chain first then readout, in PyTorch names (the same live
    /// <see cref="Parameter"/> objects: <see cref="ParameterSet.Assign"/> updates the model).
    /// </summary>
    ParameterSet AllParameters { get; }
    /// <summary>
    /// Architecture and hyper-parameters as strings (safetensors metadata): at least
    /// <c>family</c> and <c>arch</c>, plus sizes and options enough to rebuild the model.
    /// </summary>
    IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>Runs the forward pass on a batch of inputs and returns its linearisation.</summary>
    ChainLinearization Linearize(Tensor inputs);
    /// <summary>
    /// Runs the forward pass and returns a linearisation that computes in
    /// <paramref name="precision"/>. Families without a float32 path refuse <see cref="Precision.F32"/>
    /// with a <see cref="NotSupportedException"/> naming the architecture.
    /// </summary>
    ChainLinearization Linearize(Tensor inputs, Precision precision) =>
        precision == Precision.F64 ? Linearize(inputs)
        : throw new NotSupportedException($"--precision {precision.Name()} is not available for the '{Arch}' architecture yet; use f64.");
}
