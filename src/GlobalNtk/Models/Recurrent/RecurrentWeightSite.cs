using GlobalNtk.Dense;

namespace GlobalNtk.Models.Recurrent;

/// <summary>
/// A weight site of a recurrent cell (docs/math.md#kronecker-core): the weight tensors feeding one pre-activation
/// block of width G·H, evaluated at every (trial, time) row b·T + k. Û = [v(h_{k−1}) and/or x_k, 1…].
/// D_s is the cell's ∂g/∂a restricted to the block at <c>preOffset</c>.
/// </summary>
internal sealed unsafe class RecurrentWeightSite : WeightSite
{
    private readonly RecurrentLinearization _lin;
    private readonly (string Name, bool Recurrent)[] _weights;
    private readonly string[] _biases;
    private readonly int _preOffset;
    private readonly Lazy<double[]> _variables;

    public RecurrentWeightSite(RecurrentLinearization lin, string name, AxisShape rowShape,
        (string Name, bool Recurrent)[] weights, string[] biases, int preOffset)
    {
        _lin = lin; Name = name; RowShape = rowShape; _weights = weights; _biases = biases; _preOffset = preOffset;
        var cell = lin.CellInternal;
        Width = weights.Sum(w => w.Recurrent ? cell.HiddenSize : cell.InputSize);
        OutDim = cell.GateWidth;
        _variables = new Lazy<double[]>(BuildVariables);
    }

    public override string Name { get; }
    public override IReadOnlyList<string> WeightParameters => _weights.Select(w => w.Name).ToArray();
    public override IReadOnlyList<string> BiasParameters => _biases;
    public override int Rows => RowShape.Size;
    public override int Width { get; }
    public override int OutDim { get; }
    public override AxisShape RowShape { get; }
    public override ReadOnlyMemory<double> Variables => _variables.Value;

    private double[] BuildVariables()
    {
        var cell = _lin.CellInternal;
        int w = AugmentedWidth, h = cell.HiddenSize, n = cell.InputSize;
        var u = new double[checked(Rows * w)];
        var v = _lin.RecurrentVariables;
        var x = _lin.Inputs.Span;
        for (int r = 0; r < Rows; r++)
        {
            var dst = u.AsSpan(r * w, w);
            int c = 0;
            foreach (var (_, recurrent) in _weights)
            {
                if (recurrent) { v.Slice(r * h, h).CopyTo(dst.Slice(c, h)); c += h; }
                else { x.Slice(r * n, n).CopyTo(dst.Slice(c, n)); c += n; }
            }
            dst[c..].Fill(1.0);
        }
        return u;
    }

    private int Check(int aLength, int qLength, int count, string what)
    {
        int size = _lin.StateShape.Size;
        if (count < 0 || aLength < (long)count * Rows * OutDim || qLength < (long)count * size)
            throw new ArgumentException($"Site '{Name}' {what}: blocks of length {aLength}/{qLength} cannot hold {count} × [{Rows}, {OutDim}] / {count} × {_lin.StateShape}.");
        return size;
    }

    public override void ApplyDAdd(ReadOnlySpan<double> a, Span<double> dst, int count)
    {
        int size = Check(a.Length, dst.Length, count, "ApplyDAdd");
        var cell = _lin.CellInternal;
        int p = cell.PreWidth, s = cell.StateSize, t = _lin.Steps, gh = OutDim, rows = Rows;
        bool whole = p == gh;
        fixed (double* pa = a, pd = dst)
        {
            nint ia = (nint)pa, id = (nint)pd;
            RowLoop.For(count * rows, 12L * p, s + cell.WorkWidth + (whole ? 0 : p), (jr, w) =>
            {
                int row = jr % rows;
                var tmp = w[..s];
                var work = w.Slice(s, cell.WorkWidth);
                var src = new ReadOnlySpan<double>((double*)ia + (long)jr * gh, gh);
                ReadOnlySpan<double> da = src;
                if (!whole)
                {
                    var full = w.Slice(s + cell.WorkWidth, p);
                    full.Clear();
                    src.CopyTo(full.Slice(_preOffset, gh));
                    da = full;
                }
                cell.ApplyD(_lin.Row(row / t, row % t), da, tmp, work);
                var d = new Span<double>((double*)id + (long)(jr / rows) * size + (long)row * s, s);
                System.Numerics.Tensors.TensorPrimitives.Add(d, tmp, d);
            });
        }
    }

    public override void ApplyDAdjoint(ReadOnlySpan<double> q, Span<double> a, int count)
    {
        int size = Check(a.Length, q.Length, count, "ApplyDAdjoint");
        var cell = _lin.CellInternal;
        int p = cell.PreWidth, s = cell.StateSize, t = _lin.Steps, gh = OutDim, rows = Rows;
        fixed (double* pq = q, pa = a)
        {
            nint iq = (nint)pq, ia = (nint)pa;
            RowLoop.For(count * rows, 12L * p, p + cell.WorkWidth, (jr, w) =>
            {
                int row = jr % rows;
                var g = w[..p];
                var src = new ReadOnlySpan<double>((double*)iq + (long)(jr / rows) * size + (long)row * s, s);
                cell.ApplyDTranspose(_lin.Row(row / t, row % t), src, g, w.Slice(p, cell.WorkWidth));
                g.Slice(_preOffset, gh).CopyTo(new Span<double>((double*)ia + (long)jr * gh, gh));
            });
        }
    }
}
