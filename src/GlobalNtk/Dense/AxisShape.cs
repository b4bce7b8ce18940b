namespace GlobalNtk.Dense;

/// <summary>
/// A shape with named axes (e.g. <c>trial, time, unit</c>) over contiguous row-major memory:
/// the last axis varies fastest. Operators map between two <see cref="AxisShape"/>s.
/// </summary>
public sealed class AxisShape : IEquatable<AxisShape>
{
    private readonly string[] _names;
    private readonly int[] _sizes;

    /// <summary>Creates a shape from parallel arrays of axis names and sizes.</summary>
    public AxisShape(IReadOnlyList<string> names, IReadOnlyList<int> sizes)
    {
        if (names.Count != sizes.Count)
            throw new ArgumentException($"AxisShape: {names.Count} names but {sizes.Count} sizes.");
        _names = names.ToArray();
        _sizes = sizes.ToArray();
        long size = 1;
        for (int i = 0; i < _sizes.Length; i++)
        {
            if (_sizes[i] < 0) throw new ArgumentException($"AxisShape: axis '{_names[i]}' has negative size {_sizes[i]}.");
            if (string.IsNullOrWhiteSpace(_names[i])) throw new ArgumentException("AxisShape: empty axis name.");
            size *= _sizes[i];
        }
        if (_names.Distinct().Count() != _names.Length)
            throw new ArgumentException($"AxisShape: duplicate axis names in ({string.Join(", ", _names)}).");
        if (size > int.MaxValue) throw new ArgumentException($"AxisShape: size {size} exceeds int.MaxValue.");
        Size = (int)size;
    }

    /// <summary>Creates a shape from (name, size) pairs.</summary>
    public AxisShape(params (string Name, int Size)[] axes) : this(axes.Select(a => a.Name).ToArray(), axes.Select(a => a.Size).ToArray()) { }

    /// <summary>A one-axis shape of length <paramref name="n"/>.</summary>
    public static AxisShape Vector(int n, string name = "i") => new((name, n));

    /// <summary>Number of axes.</summary>
    public int Rank => _names.Length;
    /// <summary>Total number of elements.</summary>
    public int Size { get; }
    /// <summary>Axis names, outermost first.</summary>
    public IReadOnlyList<string> Names => _names;
    /// <summary>Axis sizes, outermost first.</summary>
    public IReadOnlyList<int> Sizes => _sizes;

    /// <summary>Size of the named axis.</summary>
    public int this[string name] => _sizes[IndexOf(name)];

    /// <summary>Index of the named axis; throws naming the shape if absent.</summary>
    public int IndexOf(string name)
    {
        int i = Array.IndexOf(_names, name);
        if (i < 0) throw new ArgumentException($"Axis '{name}' is not in shape {this}.");
        return i;
    }

    /// <summary>Whether the shape has the named axis.</summary>
    public bool Contains(string name) => Array.IndexOf(_names, name) >= 0;

    /// <summary>Row-major stride (in elements) of each axis.</summary>
    public int[] Strides()
    {
        var s = new int[Rank];
        int acc = 1;
        for (int i = Rank - 1; i >= 0; i--) { s[i] = acc; acc *= _sizes[i]; }
        return s;
    }

    /// <summary>The shape keeping only the given axes, in this shape's order.</summary>
    public AxisShape Keep(IEnumerable<string> axes)
    {
        var set = new HashSet<string>(axes);
        foreach (var a in set) IndexOf(a);
        var idx = Enumerable.Range(0, Rank).Where(i => set.Contains(_names[i])).ToArray();
        return new AxisShape(idx.Select(i => _names[i]).ToArray(), idx.Select(i => _sizes[i]).ToArray());
    }

    /// <summary>The shape without the given axes.</summary>
    public AxisShape Drop(IEnumerable<string> axes)
    {
        var set = new HashSet<string>(axes);
        foreach (var a in set) IndexOf(a);
        return Keep(_names.Where(n => !set.Contains(n)));
    }

    /// <summary>Same sizes in the same order (names may differ): the data layouts agree.</summary>
    public bool SameLayout(AxisShape other) => Size == other.Size;

    /// <inheritdoc/>
    public bool Equals(AxisShape? other) =>
        other is not null && _names.SequenceEqual(other._names) && _sizes.SequenceEqual(other._sizes);
    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as AxisShape);
    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var h = new HashCode();
        for (int i = 0; i < Rank; i++) { h.Add(_names[i]); h.Add(_sizes[i]); }
        return h.ToHashCode();
    }
    /// <summary>Formats as <c>(trial=4, time=10, unit=8)</c>.</summary>
    public override string ToString() => "(" + string.Join(", ", _names.Zip(_sizes, (n, s) => $"{n}={s}")) + ")";
}
