using GlobalNtk.Dense;

namespace GlobalNtk.Operators;

/// <summary>
/// A dense matrix as an operator: row-major <see cref="Matrix"/> with <see cref="Rows"/> =
/// Range.Size and <see cref="Columns"/> = Domain.Size. Block applies are single GEMMs.
/// </summary>
public sealed class DenseOperator : LinearOperator
{
    /// <summary>Default limit (per side) for <see cref="Materialize"/>.</summary>
    public const int DefaultMaxSize = 4096;

    private readonly bool _symmetric;

    /// <summary>Wraps a row-major Range.Size × Domain.Size matrix (no copy); rejects NaN/Inf.</summary>
    public DenseOperator(double[] matrix, AxisShape domain, AxisShape range) : base(domain, range)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        if ((long)domain.Size * range.Size != matrix.Length)
            throw new ShapeMismatchException($"Dense operator: matrix has {matrix.Length} entries, expected {range} × {domain} = {(long)range.Size * domain.Size}.");
        Numerics.EnsureFinite(matrix, "Dense operator matrix");
        Matrix = matrix;
        _symmetric = domain.Equals(range) && IsSymmetric(matrix, domain.Size);
    }

    /// <summary>Wraps a row-major rows × columns matrix between one-axis shapes named "i" (no copy).</summary>
    public DenseOperator(double[] matrix, int rows, int columns)
        : this(matrix, AxisShape.Vector(columns), AxisShape.Vector(rows)) { }

    /// <summary>The row-major matrix (shared, not copied).</summary>
    public double[] Matrix { get; }
    /// <summary>Number of rows (Range.Size).</summary>
    public int Rows => Range.Size;
    /// <summary>Number of columns (Domain.Size).</summary>
    public int Columns => Domain.Size;
    /// <summary>Entry (i, j).</summary>
    public double this[int i, int j] => Matrix[(long)i * Columns + j];
    /// <inheritdoc/>
    public override string Name => $"Dense[{Rows}×{Columns}]";
    /// <summary>True when square with an exactly symmetric matrix.</summary>
    public override bool IsSelfAdjoint => _symmetric;

    /// <summary>Trace of a square matrix.</summary>
    public double Trace()
    {
        if (Rows != Columns) throw new ShapeMismatchException($"Trace of {Name}: not square ({Range} -> {Domain}).");
        double t = 0;
        for (int i = 0; i < Rows; i++) t += Matrix[(long)i * Columns + i];
        return t;
    }

    private static bool IsSymmetric(double[] m, int n)
    {
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i; j++)
                if (m[i * n + j] != m[j * n + i]) return false;
        return true;
    }

    // Block X is [count, Columns]; Y = X·Aᵀ is [count, Rows].
    /// <inheritdoc/>
    protected override void ApplyBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) =>
        Gemm.Multiply(Trans.No, Trans.Yes, count, Rows, Columns, 1.0, x, Columns, Matrix, Columns, 0.0, y, Rows);

    // Block X is [count, Rows]; Y = X·A is [count, Columns].
    /// <inheritdoc/>
    protected override void ApplyAdjointBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) =>
        Gemm.Multiply(Trans.No, Trans.No, count, Columns, Rows, 1.0, x, Rows, Matrix, Columns, 0.0, y, Columns);

    /// <summary>
    /// The dense matrix of <paramref name="op"/> (column j = A e_j, computed in blocks of unit
    /// vectors). Refuses operators with more than <paramref name="maxSize"/> rows or columns.
    /// </summary>
    public static DenseOperator Materialize(LinearOperator op, int maxSize = DefaultMaxSize)
    {
        ArgumentNullException.ThrowIfNull(op);
        if (op is DenseOperator d) return d;
        int rows = op.Range.Size, cols = op.Domain.Size;
        if (rows > maxSize || cols > maxSize)
            throw new OperatorTooLargeException(
                $"Materialize: {op.Name} is {rows} × {cols} ({op.Range} <- {op.Domain}), over the limit {maxSize} × {maxSize} for dense matrices.");
        var m = new double[(long)rows * cols];
        int chunk = BlockBuffer.VectorsPerBlock(Math.Max(rows, cols), cols);
        using var e = new BlockBuffer((long)chunk * cols);
        using var ae = new BlockBuffer((long)chunk * rows);
        for (int j0 = 0; j0 < cols; j0 += chunk)
        {
            int c = Math.Min(chunk, cols - j0);
            var eb = e.Span.Slice(0, c * cols);
            eb.Clear();
            for (int j = 0; j < c; j++) eb[j * cols + j0 + j] = 1.0;
            var ab = ae.Span.Slice(0, c * rows);
            op.ApplyBlock(eb, ab, c);
            for (int j = 0; j < c; j++)
                for (int i = 0; i < rows; i++) m[(long)i * cols + j0 + j] = ab[j * rows + i];
        }
        Numerics.EnsureFinite(m, $"Materialize({op.Name})");
        return new DenseOperator(m, op.Domain, op.Range);
    }
}

/// <summary>An operator too large to turn into a dense matrix; the message names its size and the limit.</summary>
public sealed class OperatorTooLargeException(string message) : InvalidOperationException(message);
