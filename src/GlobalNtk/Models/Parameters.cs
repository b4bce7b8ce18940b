using GlobalNtk.Dense;

namespace GlobalNtk.Models;

/// <summary>
/// A named parameter tensor (PyTorch name and shape, row-major float64 values). A parameter is an
/// immutable value: its values are fixed when it is created, so a model, a linearisation or a
/// checkpoint that holds it can never change afterwards. New values make a new parameter
/// (<see cref="WithValues"/>).
/// </summary>
public sealed class Parameter
{
    /// <summary>
    /// Creates a parameter holding a copy of <paramref name="data"/> (zeros when null): what the
    /// caller does with its array afterwards does not reach the parameter.
    /// </summary>
    public Parameter(string name, int[] shape, double[]? data = null)
        : this(name, shape, data == null ? null : (double[])data.Clone(), owned: true) { }

    private Parameter(string name, int[] shape, double[]? data, bool owned)
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

    /// <summary>
    /// A parameter over <paramref name="data"/> without copying it: the caller hands the array over
    /// and never writes it again (a freshly filled or freshly read array, or another parameter's values); null gives zeros.
    /// </summary>
    internal static Parameter Own(string name, int[] shape, double[]? data) => new(name, shape, data, owned: true);

    /// <summary>PyTorch-style name, e.g. <c>rnn.weight_hh_l0</c>.</summary>
    public string Name { get; }
    /// <summary>Shape as PyTorch reports it.</summary>
    public int[] Shape { get; }
    /// <summary>The row-major values, read-only.</summary>
    public ReadOnlySpan<double> Values => Data;
    /// <summary>
    /// The row-major values as the library's kernels take them. Never written: every array here
    /// is owned by this parameter alone (see <see cref="Own"/>), which is what makes it a value.
    /// </summary>
    internal double[] Data { get; }
    /// <summary>Number of scalars.</summary>
    public int Size => Data.Length;
    /// <summary>Shape formatted as <c>[3, 4]</c>.</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
    /// <summary>The values as a new array (the caller's own copy).</summary>
    public double[] ToArray() => (double[])Data.Clone();
    /// <summary>A parameter with this name and shape and the values <paramref name="values"/> (copied).</summary>
    public Parameter WithValues(ReadOnlySpan<double> values)
    {
        if (values.Length != Size)
            throw new ArgumentException($"Parameter '{Name}' {ShapeText}: {values.Length} values given, expected {Size}.");
        return Own(Name, Shape, values.ToArray());
    }
    /// <summary>A parameter with another name and the same shape and values (shares the immutable values).</summary>
    public Parameter Renamed(string name) => new(name, Shape, Data, owned: true);
    /// <summary>A deep copy (never needed for a snapshot: the values are immutable).</summary>
    public Parameter Clone() => new(Name, Shape, Data);
}

/// <summary>
/// An ordered, immutable set of parameters; the flat parameter vector θ (and every δθ) is their
/// concatenation in this order. New values make a new set (<see cref="WithValues"/>).
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

    /// <summary>A set with the same names and shapes and the values θ (copied); this set is unchanged.</summary>
    public ParameterSet WithValues(ReadOnlySpan<double> theta)
    {
        if (theta.Length != TotalSize) throw new ArgumentException($"ParameterSet.WithValues: θ has length {theta.Length}, expected {TotalSize}.");
        var items = new Parameter[_items.Length];
        for (int i = 0; i < _items.Length; i++) items[i] = _items[i].WithValues(theta.Slice(_offsets[i], _items[i].Size));
        return new ParameterSet(items);
    }

    /// <summary>
    /// The parameters named in <paramref name="layout"/>, in its order, taken from this set: how a
    /// model picks its chain and readout tensors out of new values for all of them. Throws naming
    /// a missing tensor or one whose shape differs from the layout's.
    /// </summary>
    public ParameterSet Take(ParameterSet layout)
    {
        var items = new Parameter[layout.Count];
        for (int i = 0; i < items.Length; i++)
        {
            var want = layout[i];
            if (!Contains(want.Name)) throw new ArgumentException($"Missing parameter '{want.Name}' {want.ShapeText}.");
            var p = this[want.Name];
            if (!p.Shape.SequenceEqual(want.Shape))
                throw new ArgumentException($"Parameter '{want.Name}' has shape {p.ShapeText}, expected {want.ShapeText}.");
            items[i] = p;
        }
        return new ParameterSet(items);
    }

    /// <summary>
    /// Throws unless <paramref name="other"/> has exactly this set's names and shapes in this
    /// order (what a model requires of new values for its parameters).
    /// </summary>
    public void RequireSameLayout(ParameterSet other)
    {
        if (other.Count != Count)
            throw new ArgumentException($"Expected {Count} parameter tensors ({string.Join(", ", _items.Select(p => p.Name))}), got {other.Count} ({string.Join(", ", other.Select(p => p.Name))}).");
        for (int i = 0; i < Count; i++)
            if (other[i].Name != _items[i].Name || !other[i].Shape.SequenceEqual(_items[i].Shape))
                throw new ArgumentException($"Parameter {i} is '{other[i].Name}' {other[i].ShapeText}, expected '{_items[i].Name}' {_items[i].ShapeText}.");
    }

    /// <summary>A deep copy (never needed for a snapshot: the values are immutable).</summary>
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
