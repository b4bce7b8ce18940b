using GlobalNtk.Dense;

namespace GlobalNtk.Models;

/// <summary>
/// A model that is a chain of steps (docs/math.md#models-as-chains): recurrent cells (step = time, shared weights)
/// and depth chains (MLP, transformer: step = layer), plus a linear readout. P, K and NTK_S are
/// built from the <see cref="ChainLinearization"/> it returns, so they serve every model family
/// unchanged; training, checkpoint IO and the CLI use only the members here.
/// </summary>
/// <remarks>
/// A model is an immutable value: its parameters never change after it is built. Training makes
/// new values and a new model from them (<see cref="WithParameters"/>), so a model, a
/// linearisation or a checkpoint taken earlier stays exactly what it was.
/// </remarks>
public interface IChainModel
{
    /// <summary>Architecture name, e.g. <c>gru</c>, <c>mlp</c>, <c>transformer</c>.</summary>
    string Arch { get; }
    /// <summary>The chain's parameters θ (PyTorch names; the readout's are separate).</summary>
    ParameterSet Parameters { get; }
    /// <summary>The readout y = W_out z + b_out on the states.</summary>
    Readout Readout { get; }
    /// <summary>
    /// Every trainable tensor, chain first then readout, in PyTorch names (the same
    /// <see cref="Parameter"/> values as <see cref="Parameters"/> and <see cref="Readout"/>).
    /// </summary>
    ParameterSet AllParameters { get; }
    /// <summary>
    /// The same architecture with new values for every trainable tensor:
    /// <paramref name="allParameters"/> has <see cref="AllParameters"/>' names and shapes, in that
    /// order (e.g. what <see cref="ParameterSet.WithValues"/> or an optimizer step returns). This
    /// model is unchanged. Throws naming a tensor that does not fit.
    /// </summary>
    IChainModel WithParameters(ParameterSet allParameters);
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

/// <summary>New models from flat value vectors (finite differences, first-order checks, training).</summary>
public static class ChainModelValues
{
    /// <summary>
    /// The model with the chain's parameters set to the flat vector <paramref name="chainTheta"/>
    /// (<see cref="IChainModel.Parameters"/> order) and the readout unchanged; the model is unchanged.
    /// </summary>
    public static IChainModel WithChainValues(this IChainModel model, ReadOnlySpan<double> chainTheta)
    {
        var chain = model.Parameters.WithValues(chainTheta);
        return model.WithParameters(new ParameterSet(model.AllParameters.Select(p => chain.Contains(p.Name) ? chain[p.Name] : p)));
    }

    /// <summary>The model with every trainable tensor set to the flat vector <paramref name="theta"/> (<see cref="IChainModel.AllParameters"/> order).</summary>
    public static IChainModel WithAllValues(this IChainModel model, ReadOnlySpan<double> theta) =>
        model.WithParameters(model.AllParameters.WithValues(theta));
}
