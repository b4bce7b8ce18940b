using GlobalNtk.Dense;

namespace GlobalNtk.Models.Recurrent;

/// <summary>
/// A weight site of a recurrent cell (docs/math.md#kronecker-core): the weight tensors feeding one pre-activation
/// block of width G·H, evaluated at every (trial, time) row b·T + k. Û = [v(h_{k−1}) and/or x_k, 1…].
/// D_s is the cell's ∂g/∂a restricted to the site's block; the linearisation applies it (in its precision).
/// </summary>
internal sealed class RecurrentWeightSite : WeightSite
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

    private bool Single => _lin.Precision == Precision.F32;

    // Float32 blocks (a or the state block) only on a float32 linearisation; float64 always.
    internal override bool TryApplyDAddSingle(ReadOnlySpan<float> a, Span<double> dst, int count) => Single && AddD(a, dst, count);
    internal override bool TryApplyDAdjointSingle(ReadOnlySpan<double> q, Span<float> a, int count) => Single && DAdjoint(q, a, count);
    internal override bool TryApplyDAddSingle(ReadOnlySpan<float> a, Span<float> dst, int count) => Single && AddD(a, dst, count);
    internal override bool TryApplyDAdjointSingle(ReadOnlySpan<float> q, Span<float> a, int count) => Single && DAdjoint(q, a, count);
    public override void ApplyDAdd(ReadOnlySpan<double> a, Span<double> dst, int count) => AddD(a, dst, count);
    public override void ApplyDAdjoint(ReadOnlySpan<double> q, Span<double> a, int count) => DAdjoint(q, a, count);

    /// <summary>dst[j] += D a[j] after checking the blocks (a: [count, Rows, OutDim], dst: count states); true.</summary>
    private bool AddD<TA, TV>(ReadOnlySpan<TA> a, Span<TV> dst, int count) where TA : unmanaged where TV : unmanaged
    {
        Check(a.Length, dst.Length, count, "ApplyDAdd");
        if (count > 0) _lin.SiteDAdd(_index, a, dst, count);
        return true;
    }

    /// <summary>a[j] = D* q[j] after checking the blocks; true.</summary>
    private bool DAdjoint<TV, TA>(ReadOnlySpan<TV> q, Span<TA> a, int count) where TV : unmanaged where TA : unmanaged
    {
        Check(a.Length, q.Length, count, "ApplyDAdjoint");
        if (count > 0) _lin.SiteDAdjoint(_index, q, a, count);
        return true;
    }

    private void Check(int aLength, int qLength, int count, string what)
    {
        int size = _lin.StateShape.Size;
        if (count < 0 || aLength < (long)count * Rows * OutDim || qLength < (long)count * size)
            throw new ArgumentException($"Site '{Name}' {what}: blocks of length {aLength}/{qLength} cannot hold {count} × [{Rows}, {OutDim}] / {count} × {_lin.StateShape}.");
    }

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
