using GlobalNtk.Dense;

namespace GlobalNtk.Models.Recurrent;

/// <summary>
/// A weight site of a recurrent linearisation (single-layer or stacked): D and D* with their block
/// checks, on float64 blocks always and on float32 blocks only when the linearisation is float32.
/// A subclass supplies the maps themselves.
/// </summary>
internal abstract class RecurrentSite : WeightSite
{
    /// <summary>The linearisation the site belongs to (its precision and state shape).</summary>
    private protected abstract ChainLinearization Linearization { get; }

    /// <summary>dst[j] += D a[j], the blocks already checked (a: [count, Rows, OutDim], dst: count states; count ≥ 1).</summary>
    private protected abstract void SiteDAdd<TA, TV>(ReadOnlySpan<TA> a, Span<TV> dst, int count) where TA : unmanaged where TV : unmanaged;

    /// <summary>a[j] = D* q[j], the blocks already checked (count ≥ 1).</summary>
    private protected abstract void SiteDAdjoint<TV, TA>(ReadOnlySpan<TV> q, Span<TA> a, int count) where TV : unmanaged where TA : unmanaged;

    private bool Single => Linearization.Precision == Precision.F32;

    // Float32 blocks (a or the state block) only on a float32 linearisation; float64 always.
    internal sealed override bool TryApplyDAddSingle(ReadOnlySpan<float> a, Span<double> dst, int count) => Single && AddD(a, dst, count);
    internal sealed override bool TryApplyDAdjointSingle(ReadOnlySpan<double> q, Span<float> a, int count) => Single && DAdjoint(q, a, count);
    internal sealed override bool TryApplyDAddSingle(ReadOnlySpan<float> a, Span<float> dst, int count) => Single && AddD(a, dst, count);
    internal sealed override bool TryApplyDAdjointSingle(ReadOnlySpan<float> q, Span<float> a, int count) => Single && DAdjoint(q, a, count);
    /// <inheritdoc/>
    public sealed override void ApplyDAdd(ReadOnlySpan<double> a, Span<double> dst, int count) => AddD(a, dst, count);
    /// <inheritdoc/>
    public sealed override void ApplyDAdjoint(ReadOnlySpan<double> q, Span<double> a, int count) => DAdjoint(q, a, count);

    private bool AddD<TA, TV>(ReadOnlySpan<TA> a, Span<TV> dst, int count) where TA : unmanaged where TV : unmanaged
    {
        Check(a.Length, dst.Length, count, "ApplyDAdd");
        if (count > 0) SiteDAdd(a, dst, count);
        return true;
    }

    private bool DAdjoint<TV, TA>(ReadOnlySpan<TV> q, Span<TA> a, int count) where TV : unmanaged where TA : unmanaged
    {
        Check(a.Length, q.Length, count, "ApplyDAdjoint");
        if (count > 0) SiteDAdjoint(q, a, count);
        return true;
    }

    private void Check(int aLength, int qLength, int count, string what)
    {
        var state = Linearization.StateShape;
        if (count < 0 || aLength < (long)count * Rows * OutDim || qLength < (long)count * state.Size)
            throw new ArgumentException($"Site '{Name}' {what}: blocks of length {aLength}/{qLength} cannot hold {count} × [{Rows}, {OutDim}] / {count} × {state}.");
    }
}

/// <summary>
/// A weight site of a recurrent cell (docs/math.md#kronecker-core): the weight tensors feeding one pre-activation
/// block of width G·H, evaluated at every (trial, time) row b·T + k. Û = [v(h_{k−1}) and/or x_k, 1…].
/// D_s is the cell's ∂g/∂a restricted to the site's block; the linearisation applies it (in its precision).
/// </summary>
internal sealed class RecurrentWeightSite : RecurrentSite
{
    private readonly RecurrentLinearization _lin;
    private readonly int _index;
    private readonly string[] _weights, _biases;

    public RecurrentWeightSite(RecurrentLinearization lin, int index, string name, AxisShape rowShape,
        (string Name, bool Recurrent)[] weights, string[] biases, int width, int outDim)
    {
        _lin = lin; _index = index; Name = name; RowShape = rowShape;
        _weights = weights.Select(w => w.Name).ToArray(); _biases = biases;
        Width = width; OutDim = outDim;
    }

    public override string Name { get; }
    public override IReadOnlyList<string> WeightParameters => _weights;
    public override IReadOnlyList<string> BiasParameters => _biases;
    public override int Rows => RowShape.Size;
    public override int Width { get; }
    public override int OutDim { get; }
    public override AxisShape RowShape { get; }
    public override ReadOnlyMemory<double> Variables => _lin.SiteVariables(_index);
    /// <summary>Û in float32 on a float32 linearisation (K's site terms then run on it in float32), else empty.</summary>
    public override ReadOnlyMemory<float> VariablesSingle => _lin.SiteVariablesSingle(_index) ?? default(ReadOnlyMemory<float>);

    private protected override ChainLinearization Linearization => _lin;

    private protected override void SiteDAdd<TA, TV>(ReadOnlySpan<TA> a, Span<TV> dst, int count) => _lin.SiteDAdd(_index, a, dst, count);

    private protected override void SiteDAdjoint<TV, TA>(ReadOnlySpan<TV> q, Span<TA> a, int count) => _lin.SiteDAdjoint(_index, q, a, count);

    /// <summary>Colour t / H of state position t when the cell acts unit by unit (<see cref="RecurrentCell.UnitLocal"/>).</summary>
    internal override int SliceColouring(Span<int> colour)
    {
        var cell = _lin.CellInternal;
        int h = cell.HiddenSize, s = cell.StateSize;
        if (!cell.UnitLocal || colour.Length != s || s % h != 0) return 0;
        for (int t = 0; t < s; t++) colour[t] = t / h;
        return s / h;
    }
}
