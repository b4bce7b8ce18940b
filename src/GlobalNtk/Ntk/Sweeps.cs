using GlobalNtk.Models;

namespace GlobalNtk.Ntk;

/// <summary>
/// The in-place recurrences behind P and P* (docs/math.md#global-ntk), on blocks of state vectors. They
/// touch only the block itself: no per-step buffers.
/// </summary>
internal static class Sweeps
{
    /// <summary>v ← P v: v_k = q_k + A_k v_{k−1} (forward in steps, in place).</summary>
    public static void Propagate(ChainLinearization lin, Span<double> v, int count)
    {
        for (int step = 1; step < lin.Steps; step++) lin.StateJvpAdd(step, v, v, count);
    }

    /// <summary>w ← P* w: w_k = q_k + A_{k+1}ᵀ w_{k+1} (back-propagation through time, in place).</summary>
    public static void PropagateAdjoint(ChainLinearization lin, Span<double> w, int count)
    {
        for (int step = lin.Steps - 1; step >= 1; step--) lin.StateVjpAdd(step, w, w, count);
    }

    /// <summary><see cref="Propagate(ChainLinearization, Span{double}, int)"/> on a float32 block (<see cref="ChainLinearization.HasSingleStateMaps"/>).</summary>
    public static void Propagate(ChainLinearization lin, Span<float> v, int count)
    {
        for (int step = 1; step < lin.Steps; step++) lin.StateJvpAdd(step, v, v, count);
    }

    /// <summary><see cref="PropagateAdjoint(ChainLinearization, Span{double}, int)"/> on a float32 block.</summary>
    public static void PropagateAdjoint(ChainLinearization lin, Span<float> w, int count)
    {
        for (int step = lin.Steps - 1; step >= 1; step--) lin.StateVjpAdd(step, w, w, count);
    }

    /// <summary><see cref="Inverse(ChainLinearization, ReadOnlySpan{double}, Span{double}, int)"/> on float32 blocks.</summary>
    public static void Inverse(ChainLinearization lin, ReadOnlySpan<float> q, Span<float> y, int count)
    {
        q.CopyTo(y);
        for (int step = 1; step < lin.Steps; step++) lin.StateJvpAdd(step, q, y, count, -1.0);
    }

    /// <summary><see cref="InverseAdjoint(ChainLinearization, ReadOnlySpan{double}, Span{double}, int)"/> on float32 blocks.</summary>
    public static void InverseAdjoint(ChainLinearization lin, ReadOnlySpan<float> q, Span<float> y, int count)
    {
        q.CopyTo(y);
        for (int step = 1; step < lin.Steps; step++) lin.StateVjpAdd(step, q, y, count, -1.0);
    }

    /// <summary>y = P⁻¹ q: y_k = q_k − A_k q_{k−1}.</summary>
    public static void Inverse(ChainLinearization lin, ReadOnlySpan<double> q, Span<double> y, int count)
    {
        q.CopyTo(y);
        for (int step = 1; step < lin.Steps; step++) lin.StateJvpAdd(step, q, y, count, -1.0);
    }

    /// <summary>y = P⁻* q: y_{k−1} = q_{k−1} − A_kᵀ q_k.</summary>
    public static void InverseAdjoint(ChainLinearization lin, ReadOnlySpan<double> q, Span<double> y, int count)
    {
        q.CopyTo(y);
        for (int step = 1; step < lin.Steps; step++) lin.StateVjpAdd(step, q, y, count, -1.0);
    }
}
