using GlobalNtk.Dense;

namespace GlobalNtk.Analysis;

/// <summary>
/// Principal directions of a set of row vectors (the model's own hidden activity): eigenvectors
/// of the centred scatter matrix (Z − z̄)ᵀ(Z − z̄), sorted by decreasing variance.
/// </summary>
public sealed class PrincipalDirections
{
    private readonly double[] _vectors; // [dim, dim] row-major: row i = i-th direction

    private PrincipalDirections(int dim, double[] variances, double[] vectors)
    {
        Dimension = dim; Variances = variances; _vectors = vectors;
    }

    /// <summary>Length of each row vector.</summary>
    public int Dimension { get; }
    /// <summary>Variance captured by each direction (eigenvalues of the scatter matrix / rows), decreasing.</summary>
    public double[] Variances { get; }

    /// <summary>Direction <paramref name="i"/> (unit norm).</summary>
    public ReadOnlySpan<double> Direction(int i) => _vectors.AsSpan(i * Dimension, Dimension);

    /// <summary>PCA of <paramref name="rows"/> (row-major [count, dim]).</summary>
    public static PrincipalDirections Of(ReadOnlySpan<double> rows, int dim)
    {
        if (dim <= 0 || rows.Length % dim != 0)
            throw new ArgumentException($"PrincipalDirections: {rows.Length} values are not rows of width {dim}.");
        int n = rows.Length / dim;
        if (n == 0) throw new ArgumentException("PrincipalDirections: no rows.");
        var mean = new double[dim];
        for (int i = 0; i < n; i++) Numerics.Axpy(1.0, rows.Slice(i * dim, dim), mean);
        Numerics.Scale(mean, 1.0 / n);
        var centred = rows.ToArray();
        for (int i = 0; i < n; i++) Numerics.Axpy(-1.0, mean, centred.AsSpan(i * dim, dim));
        var scatter = new double[dim * dim];
        Gemm.Multiply(Trans.Yes, Trans.No, dim, dim, n, 1.0, centred, dim, centred, dim, 0.0, scatter, dim);
        return FromScatter(dim, n, scatter);
    }

    /// <summary>
    /// PCA of float32 <paramref name="rows"/> (a float32 linearisation's states): the mean and the
    /// centred scatter are summed in float64 (the scatter is a Gram matrix and cancels) from rows
    /// widened a chunk at a time, so no float64 copy of the rows is made.
    /// </summary>
    public static PrincipalDirections Of(ReadOnlySpan<float> rows, int dim)
    {
        if (dim <= 0 || rows.Length % dim != 0)
            throw new ArgumentException($"PrincipalDirections: {rows.Length} values are not rows of width {dim}.");
        int n = rows.Length / dim;
        if (n == 0) throw new ArgumentException("PrincipalDirections: no rows.");
        var mean = new double[dim];
        for (int i = 0; i < n; i++) Float32.AddWidened(rows.Slice(i * dim, dim), 1.0, mean);
        Numerics.Scale(mean, 1.0 / n);
        var scatter = new double[dim * dim];
        int chunk = Math.Max(1, Math.Min(n, WidenedValues / dim));
        var centred = new double[(long)chunk * dim];
        for (int row = 0; row < n; row += chunk)
        {
            int count = Math.Min(chunk, n - row);
            var cs = centred.AsSpan(0, count * dim);
            Float32.Widen(rows.Slice(row * dim, count * dim), cs);
            for (int i = 0; i < count; i++) Numerics.Axpy(-1.0, mean, cs.Slice(i * dim, dim));
            Gemm.Multiply(Trans.Yes, Trans.No, dim, dim, count, 1.0, cs, dim, cs, dim, row == 0 ? 0.0 : 1.0, scatter, dim);
        }
        return FromScatter(dim, n, scatter);
    }

    // Eigen-decomposition of the (symmetrised) scatter of n rows: directions by decreasing variance.
    private static PrincipalDirections FromScatter(int dim, int n, double[] scatter)
    {
        var m = MathNet.Numerics.LinearAlgebra.Matrix<double>.Build.Dense(dim, dim, (i, j) => 0.5 * (scatter[i * dim + j] + scatter[j * dim + i]));
        var evd = m.Evd(MathNet.Numerics.LinearAlgebra.Symmetricity.Symmetric);
        var order = Enumerable.Range(0, dim).OrderByDescending(i => evd.EigenValues[i].Real).ToArray();
        var variances = order.Select(i => Math.Max(0, evd.EigenValues[i].Real) / n).ToArray();
        var vectors = new double[dim * dim];
        for (int r = 0; r < dim; r++)
            for (int j = 0; j < dim; j++) vectors[r * dim + j] = evd.EigenVectors[j, order[r]];
        return new PrincipalDirections(dim, variances, vectors);
    }

    /// <summary>
    /// For each rank r in <paramref name="ranks"/>: ‖Π_r X‖² / ‖X‖², where Π_r projects every row of
    /// X (row-major [count, dim]) onto the top-r directions. Returns NaN when X = 0.
    /// </summary>
    public double[] CapturedFractions(ReadOnlySpan<double> x, IReadOnlyList<int> ranks)
    {
        var (n, rMax) = CheckFractions(x.Length, ranks);
        // coefficients C = X V_rᵀ ([n, rMax]); energy in the top-r directions is the sum of the first r squared columns
        var coef = new double[Math.Max(1, n * rMax)];
        if (rMax > 0) Gemm.Multiply(Trans.No, Trans.Yes, n, rMax, Dimension, 1.0, x, Dimension, _vectors, Dimension, 0.0, coef, rMax);
        var perDirection = new double[rMax];
        for (int i = 0; i < n; i++)
            for (int r = 0; r < rMax; r++) { double c = coef[i * rMax + r]; perDirection[r] += c * c; }
        double total = Numerics.Dot(x, x);
        var cumulative = new double[rMax + 1];
        for (int r = 0; r < rMax; r++) cumulative[r + 1] = cumulative[r] + perDirection[r];
        return ranks.Select(r => total > 0 ? cumulative[r] / total : double.NaN).ToArray();
    }

    /// <summary>
    /// <see cref="CapturedFractions(ReadOnlySpan{double}, IReadOnlyList{int})"/> for float32 rows
    /// (e.g. a float32 NTK_S image): rows are widened (exactly) a chunk at a time, so the
    /// coefficients and every sum of squares are float64, without a float64 copy of X.
    /// </summary>
    public double[] CapturedFractions(ReadOnlySpan<float> x, IReadOnlyList<int> ranks)
    {
        var (n, rMax) = CheckFractions(x.Length, ranks);
        var perDirection = new double[rMax];
        double total = 0;
        int chunk = Math.Max(1, Math.Min(n, WidenedValues / Dimension));
        var wide = new double[(long)Math.Min(n, chunk) * Dimension];
        var coef = new double[Math.Max(1, chunk * rMax)];
        for (int row = 0; row < n; row += chunk)
        {
            int rows = Math.Min(chunk, n - row);
            var xs = wide.AsSpan(0, rows * Dimension);
            Float32.Widen(x.Slice(row * Dimension, rows * Dimension), xs);
            total += Numerics.Dot(xs, xs);
            if (rMax == 0) continue;
            Gemm.Multiply(Trans.No, Trans.Yes, rows, rMax, Dimension, 1.0, xs, Dimension, _vectors, Dimension, 0.0, coef, rMax);
            for (int i = 0; i < rows; i++)
                for (int r = 0; r < rMax; r++) { double c = coef[i * rMax + r]; perDirection[r] += c * c; }
        }
        var cumulative = new double[rMax + 1];
        for (int r = 0; r < rMax; r++) cumulative[r + 1] = cumulative[r] + perDirection[r];
        return ranks.Select(r => total > 0 ? cumulative[r] / total : double.NaN).ToArray();
    }

    // Values of float32 rows widened at a time (a few hundred KB of scratch).
    private const int WidenedValues = 1 << 15;

    private (int Rows, int MaxRank) CheckFractions(int length, IReadOnlyList<int> ranks)
    {
        if (length % Dimension != 0)
            throw new ArgumentException($"PrincipalDirections: {length} values are not rows of width {Dimension}.");
        int rMax = ranks.Count == 0 ? 0 : ranks.Max();
        if (rMax > Dimension || (ranks.Count > 0 && ranks.Min() < 0))
            throw new ArgumentOutOfRangeException(nameof(ranks), $"ranks must lie in [0, {Dimension}], got up to {rMax}.");
        return (length / Dimension, rMax);
    }
}
