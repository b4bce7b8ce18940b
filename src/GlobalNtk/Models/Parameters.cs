using GlobalNtk.Dense;

namespace GlobalNtk.Models;

/// <summary>A named parameter tensor (PyTorch name and shape, row-major float64 data).</summary>
public sealed class Parameter
{
    /// <summary>Creates a parameter; <paramref name="data"/> is owned (not copied).</summary>
    public Parameter(string name, int[] shape, double[]? data = null)
    {
        Name = name;
        Shape = shape.ToArray();
        long size = 1;
        foreach (var s in shape) size *= s;
        data ??= new double[size];
        if (data.Length != size)
            throw new ArgumentException($"Parameter '{name}': data length {data.Length} does not match shape [{string.Join(", ", shape)}].");
        Data = data;
    }

    /// <summary>PyTorch-style name, e.g. <c>rnn.weight_hh_l0</c>.</summary>
    public string Name { get; }
    /// <summary>Shape as PyTorch reports it.</summary>
    public int[] Shape { get; }
    /// <summary>Row-major values.</summary>
    public double[] Data { get; }
    /// <summary>Number of scalars.</summary>
    public int Size => Data.Length;
    /// <summary>Shape formatted as <c>[3, 4]</c>.</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
    /// <summary>A deep copy.</summary>
    public Parameter Clone() => new(Name, Shape, (double[])Data.Clone());
}

/// <summary>
/// An ordered set of parameters; the flat parameter vector θ (and every δθ) is their
/// concatenation in this order.
/// </summary>
public sealed class ParameterSet : IReadOnlyList<Parameter>
{
    private readonly Parameter[] _items;
    private readonly int[] _offsets;
    private readonly Dictionary<string, int> _index;

    /// <summary>Creates a set; names must be unique.</summary>
    public ParameterSet(IEnumerable<Parameter> parameters)
    {
        _items = parameters.ToArray();
        _offsets = new int[_items.Length + 1];
        _index = new Dictionary<string, int>();
        for (int i = 0; i < _items.Length; i++)
        {
            if (!_index.TryAdd(_items[i].Name, i)) throw new ArgumentException($"Duplicate parameter name '{_items[i].Name}'.");
            _offsets[i + 1] = checked(_offsets[i] + _items[i].Size);
        }
    }

    /// <summary>Number of parameter tensors.</summary>
    public int Count => _items.Length;
    /// <summary>Total number of scalars m (length of θ).</summary>
    public int TotalSize => _offsets[^1];
    /// <inheritdoc/>
    public Parameter this[int index] => _items[index];
    /// <summary>The parameter with this name; throws naming the missing name.</summary>
    public Parameter this[string name] => _items[IndexOf(name)];
    /// <summary>Index of the named parameter.</summary>
    public int IndexOf(string name) =>
        _index.TryGetValue(name, out int i) ? i : throw new KeyNotFoundException($"No parameter named '{name}' (have: {string.Join(", ", _index.Keys)}).");
    /// <summary>Whether a parameter has this name.</summary>
    public bool Contains(string name) => _index.ContainsKey(name);
    /// <summary>Offset of parameter <paramref name="index"/> in θ.</summary>
    public int OffsetOf(int index) => _offsets[index];
    /// <summary>Offset of the named parameter in θ.</summary>
    public int OffsetOf(string name) => _offsets[IndexOf(name)];

    /// <summary>θ as one new vector.</summary>
    public double[] Flatten()
    {
        var theta = new double[TotalSize];
        for (int i = 0; i < _items.Length; i++) _items[i].Data.CopyTo(theta, _offsets[i]);
        return theta;
    }

    /// <summary>Overwrites every parameter from θ.</summary>
    public void Assign(ReadOnlySpan<double> theta)
    {
        if (theta.Length != TotalSize) throw new ArgumentException($"ParameterSet.Assign: θ has length {theta.Length}, expected {TotalSize}.");
        for (int i = 0; i < _items.Length; i++) theta.Slice(_offsets[i], _items[i].Size).CopyTo(_items[i].Data);
    }

    /// <summary>A deep copy.</summary>
    public ParameterSet Clone() => new(_items.Select(p => p.Clone()));

    /// <summary>Throws <see cref="NonFiniteException"/> naming the first parameter with NaN/Inf.</summary>
    public void EnsureFinite()
    {
        foreach (var p in _items) Numerics.EnsureFinite(p.Data, $"parameter '{p.Name}' {p.ShapeText}");
    }

    /// <inheritdoc/>
    public IEnumerator<Parameter> GetEnumerator() => ((IEnumerable<Parameter>)_items).GetEnumerator();
    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => _items.GetEnumerator();
}
