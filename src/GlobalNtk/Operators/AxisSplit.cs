using GlobalNtk.Dense;

namespace GlobalNtk.Operators;

/// <summary>
/// Splits a shape's flat index into (kept, reduced) multi-indices: <see cref="Full"/>[k·Reduced + r]
/// is the flat index of kept index k and reduced index r (each row-major in the shape's axis order).
/// </summary>
internal sealed class AxisSplit
{
    public AxisSplit(AxisShape shape, IEnumerable<string> reducedAxes, string what)
    {
        var reduced = reducedAxes?.ToArray() ?? throw new ArgumentNullException(nameof(reducedAxes));
        if (reduced.Length == 0) throw new ArgumentException($"{what}: no axes given (shape {shape}).");
        foreach (var a in reduced)
            if (!shape.Contains(a)) throw new ShapeMismatchException($"{what}: axis '{a}' is not in shape {shape}.");
        if (reduced.Distinct().Count() != reduced.Length) throw new ArgumentException($"{what}: repeated axis in ({string.Join(", ", reduced)}).");
        KeptShape = shape.Drop(reduced);
        ReducedShape = shape.Keep(reduced);
        Kept = KeptShape.Size;
        Reduced = ReducedShape.Size;

        var strides = shape.Strides();
        var isReduced = shape.Names.Select(n => reduced.Contains(n)).ToArray();
        Full = new int[shape.Size];
        // Walk kept indices and reduced indices in row-major order of their own sub-shapes.
        var keptAxes = Enumerable.Range(0, shape.Rank).Where(i => !isReduced[i]).ToArray();
        var redAxes = Enumerable.Range(0, shape.Rank).Where(i => isReduced[i]).ToArray();
        var keptOffset = Offsets(keptAxes, shape, strides);
        var redOffset = Offsets(redAxes, shape, strides);
        for (int k = 0; k < Kept; k++)
            for (int r = 0; r < Reduced; r++) Full[k * Reduced + r] = keptOffset[k] + redOffset[r];
    }

    private static int[] Offsets(int[] axes, AxisShape shape, int[] strides)
    {
        int n = 1;
        foreach (var a in axes) n *= shape.Sizes[a];
        var off = new int[n];
        var idx = new int[axes.Length];
        for (int f = 0; f < n; f++)
        {
            int o = 0;
            for (int i = 0; i < axes.Length; i++) o += idx[i] * strides[axes[i]];
            off[f] = o;
            for (int i = axes.Length - 1; i >= 0; i--)
            {
                if (++idx[i] < shape.Sizes[axes[i]]) break;
                idx[i] = 0;
            }
        }
        return off;
    }

    public AxisShape KeptShape { get; }
    public AxisShape ReducedShape { get; }
    public int Kept { get; }
    public int Reduced { get; }
    public int[] Full { get; }
}
