using GlobalNtk.Dense;

namespace GlobalNtk.Models;

/// <summary>
/// A model that is a chain of steps (MATH.md §1): recurrent cells (step = time, shared weights)
/// and depth chains (MLP, transformer: step = layer). P, K and NTK_S are built from the
/// <see cref="ChainLinearization"/> it returns, so they serve every model family unchanged.
/// </summary>
public interface IChainModel
{
    /// <summary>Architecture name, e.g. <c>gru</c>, <c>mlp</c>, <c>transformer</c>.</summary>
    string Arch { get; }
    /// <summary>The chain's parameters θ (the readout's are separate).</summary>
    ParameterSet Parameters { get; }
    /// <summary>Runs the forward pass on a batch of inputs and returns its linearisation.</summary>
    ChainLinearization Linearize(Tensor inputs);
}
