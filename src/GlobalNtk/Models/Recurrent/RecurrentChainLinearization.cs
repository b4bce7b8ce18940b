using GlobalNtk.Dense;

namespace GlobalNtk.Models.Recurrent;

/// <summary>
/// A recurrent net linearised on one batch: <see cref="RecurrentLinearization"/> (one layer) or
/// <see cref="StackedRecurrentLinearization"/> (L layers). What both are: a state [trial, time, unit]
/// whose trajectory is stored once, in the compute <see cref="Precision"/>, and step and parameter
/// maps that check their blocks here and run in that precision, on float64 blocks and, for a
/// float32 linearisation, on float32 blocks natively.
/// </summary>
public abstract class RecurrentChainLinearization : ChainLinearization
{
    private protected RecurrentChainLinearization(AxisShape stateShape, Precision precision)
    {
        StateShape = stateShape;
        Precision = precision;
    }

    /// <inheritdoc/>
    public sealed override AxisShape StateShape { get; }
    /// <inheritdoc/>
    public sealed override Precision Precision { get; }
    /// <inheritdoc/>
    public sealed override ReadOnlyMemory<double> States => Maps.States.Wide;
    /// <inheritdoc/>
    public sealed override ReadOnlyMemory<float> StatesSingle => Maps.States.Single;

    /// <summary>The stored trajectory (what <see cref="States"/> and <see cref="StatesSingle"/> read).</summary>
    internal Trajectory Trajectory => Maps.States;

    /// <summary>The engine in the compute type that the checked members below forward to.</summary>
    private protected abstract IRecurrentMaps Maps { get; }

    /// <summary>A float32 linearisation applies float32 state blocks natively (P, P*, P⁻¹, the sites' D/D*, so K and NTK_S).</summary>
    internal sealed override bool HasSingleStateMaps => Precision == Precision.F32;

    /// <summary>A float32 linearisation's J_θ and J_θ* read and write float32 blocks natively.</summary>
    internal sealed override bool HasSingleParamMaps => HasSingleStateMaps;

    private protected void CheckStep(int step, int srcLength, int dstLength, int count, string what)
    {
        CheckStep(step, what);
        CheckStateBlocks(srcLength, dstLength, count, what);
    }

    /// <inheritdoc/>
    public sealed override void StateJvpAdd(int step, ReadOnlySpan<double> src, Span<double> dst, int count, double alpha = 1.0)
    {
        CheckStep(step, src.Length, dst.Length, count, "StateJvpAdd");
        if (count > 0) Maps.StateJvpAdd(step, src, dst, count, alpha);
    }

    /// <inheritdoc/>
    public sealed override void StateVjpAdd(int step, ReadOnlySpan<double> src, Span<double> dst, int count, double alpha = 1.0)
    {
        CheckStep(step, src.Length, dst.Length, count, "StateVjpAdd");
        if (count > 0) Maps.StateVjpAdd(step, src, dst, count, alpha);
    }

    /// <inheritdoc/>
    public sealed override void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> result, int count)
    {
        CheckParamJvp(dTheta.Length, result.Length, count);
        Maps.ParamJvp(dTheta, result, count);
    }

    /// <inheritdoc/>
    internal sealed override void StateJvpAdd(int step, ReadOnlySpan<float> src, Span<float> dst, int count, double alpha = 1.0)
    {
        if (!HasSingleStateMaps) { base.StateJvpAdd(step, src, dst, count, alpha); return; }
        CheckStep(step, src.Length, dst.Length, count, "StateJvpAdd");
        if (count > 0) Maps.StateJvpAdd(step, src, dst, count, alpha);
    }

    /// <inheritdoc/>
    internal sealed override void StateVjpAdd(int step, ReadOnlySpan<float> src, Span<float> dst, int count, double alpha = 1.0)
    {
        if (!HasSingleStateMaps) { base.StateVjpAdd(step, src, dst, count, alpha); return; }
        CheckStep(step, src.Length, dst.Length, count, "StateVjpAdd");
        if (count > 0) Maps.StateVjpAdd(step, src, dst, count, alpha);
    }

    /// <inheritdoc/>
    internal sealed override bool TryParamJvp(ReadOnlySpan<float> dTheta, Span<float> result, int count)
    {
        if (!HasSingleStateMaps) return false;
        CheckParamJvp(dTheta.Length, result.Length, count);
        Maps.ParamJvp(dTheta, result, count);
        return true;
    }
}

/// <summary>
/// The maps both recurrent engines run in their compute type T; a block's element type TV is double
/// (rounded on entry and widened on exit on a float32 engine) or T itself (read and written in place).
/// </summary>
internal interface IRecurrentMaps
{
    /// <summary>The forward trajectory, stored in the compute type.</summary>
    Trajectory States { get; }
    /// <summary>dst[j, b, k] += alpha · A_k src[j, b, k−1].</summary>
    void StateJvpAdd<TV>(int k, ReadOnlySpan<TV> src, Span<TV> dst, int count, double alpha) where TV : unmanaged;
    /// <summary>dst[j, b, k−1] += alpha · A_kᵀ src[j, b, k].</summary>
    void StateVjpAdd<TV>(int k, ReadOnlySpan<TV> src, Span<TV> dst, int count, double alpha) where TV : unmanaged;
    /// <summary>result[j] = J_θ dθ[j].</summary>
    void ParamJvp<TV>(ReadOnlySpan<TV> dTheta, Span<TV> result, int count) where TV : unmanaged;
}
