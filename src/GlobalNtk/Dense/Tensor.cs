namespace GlobalNtk.Dense;

/// <summary>
/// A float64 array with named axes over a contiguous slice of a <c>double[]</c>.
/// Reshapes and leading-axis slices are views (no copy).
/// </summary>
public sealed class Tensor
{
    /// <summary>Backing storage (shared between views).</summary>
    public double[] Data { get; }
    /// <summary>Offset of element 0 in <see cref="Data"/>.</summary>
    public int Offset { get; }
    /// <summary>Named axes.</summary>
    public AxisShape Shape { get; }

    /// <summary>A zero tensor of the given shape.</summary>
    public Tensor(AxisShape shape) : this(new double[shape.Size], 0, shape) { }

    /// <summary>Wraps existing storage; no copy.</summary>
    public Tensor(double[] data, AxisShape shape) : this(data, 0, shape) { }

    /// <summary>Wraps a slice of existing storage; no copy.</summary>
    public Tensor(double[] data, int offset, AxisShape shape)
    {
        if (offset < 0 || offset + shape.Size > data.Length)
            throw new ArgumentException($"Tensor: storage of length {data.Length} cannot hold shape {shape} at offset {offset}.");
        Data = data; Offset = offset; Shape = shape;
    }

    /// <summary>Number of elements.</summary>
    public int Length => Shape.Size;
    /// <summary>The elements as a span.</summary>
    public Span<double> Span => Data.AsSpan(Offset, Shape.Size);

    /// <summary>Element access by full multi-index.</summary>
    public ref double this[params int[] index] => ref Data[Offset + FlatIndex(index)];

    private int FlatIndex(int[] index)
    {
        if (index.Length != Shape.Rank) throw new ArgumentException($"Tensor: {index.Length} indices for shape {Shape}.");
        int flat = 0;
        for (int i = 0; i < index.Length; i++)
        {
            if ((uint)index[i] >= (uint)Shape.Sizes[i])
                throw new ArgumentOutOfRangeException(nameof(index), $"Tensor: index {index[i]} out of range for axis '{Shape.Names[i]}' of {Shape}.");
            flat = flat * Shape.Sizes[i] + index[i];
        }
        return flat;
    }

    /// <summary>A view with another shape of the same size.</summary>
    public Tensor Reshape(AxisShape shape)
    {
        if (shape.Size != Shape.Size) throw new ArgumentException($"Tensor.Reshape: cannot view {Shape} as {shape} (sizes {Shape.Size} and {shape.Size}).");
        return new Tensor(Data, Offset, shape);
    }

    /// <summary>A view of index <paramref name="i"/> along the leading axis.</summary>
    public Tensor Slice(int i)
    {
        if (Shape.Rank == 0) throw new InvalidOperationException("Tensor.Slice on a scalar.");
        if ((uint)i >= (uint)Shape.Sizes[0]) throw new ArgumentOutOfRangeException(nameof(i), $"Tensor.Slice: {i} out of range for axis '{Shape.Names[0]}' of {Shape}.");
        var rest = new AxisShape(Shape.Names.Skip(1).ToArray(), Shape.Sizes.Skip(1).ToArray());
        return new Tensor(Data, Offset + i * rest.Size, rest);
    }

    /// <summary>A deep copy.</summary>
    public Tensor Clone() => new(Span.ToArray(), Shape);

    /// <summary>Throws if any element is NaN or infinite, naming <paramref name="what"/>.</summary>
    public void EnsureFinite(string what) => Numerics.EnsureFinite(Span, what);
}
