using System.Numerics.Tensors;
using GlobalNtk.Dense;

namespace GlobalNtk.Operators;

/// <summary>
/// The rank-one map x ↦ scale·u⟨v, x⟩ (u on Range, v on Domain); <see cref="Projector"/> gives the
/// orthogonal projector u uᵀ/‖u‖².
/// </summary>
public sealed class RankOneOperator : LinearOperator
{
    private readonly double[] _u, _v;
    private readonly bool _selfAdjoint;

    /// <summary>scale·u vᵀ from <paramref name="domain"/> (v) to <paramref name="range"/> (u); vectors are copied.</summary>
    public RankOneOperator(ReadOnlySpan<double> u, AxisShape range, ReadOnlySpan<double> v, AxisShape domain, double scale = 1.0)
        : base(domain, range)
    {
        if (u.Length != range.Size) throw new ShapeMismatchException($"Rank-one operator: u has length {u.Length}, range {range} has size {range.Size}.");
        if (v.Length != domain.Size) throw new ShapeMismatchException($"Rank-one operator: v has length {v.Length}, domain {domain} has size {domain.Size}.");
        Numerics.EnsureFinite(u, "Rank-one operator u");
        Numerics.EnsureFinite(v, "Rank-one operator v");
        if (!double.IsFinite(scale)) throw new NonFiniteException($"Rank-one operator scale is {scale}.");
        _u = u.ToArray(); _v = v.ToArray(); Scale = scale;
        _selfAdjoint = domain.Equals(range) && u.SequenceEqual(v);
    }

    /// <summary>The orthogonal projector u uᵀ/‖u‖² onto span(u) on <paramref name="shape"/>.</summary>
    public static RankOneOperator Projector(ReadOnlySpan<double> u, AxisShape shape)
    {
        double n2 = Numerics.Dot(u, u);
        if (!(n2 > 0)) throw new ArgumentException($"Projector: the vector on {shape} has norm² {n2}; it must be non-zero and finite.");
        return new RankOneOperator(u, shape, u, shape, 1.0 / n2);
    }

    /// <summary>The scale factor.</summary>
    public double Scale { get; }
    /// <inheritdoc/>
    public override string Name => "RankOne";
    /// <inheritdoc/>
    public override bool IsSelfAdjoint => _selfAdjoint;
    /// <inheritdoc/>
    public override LinearOperator Adjoint => _selfAdjoint ? this : new RankOneOperator(_v, Domain, _u, Range, Scale);

    /// <inheritdoc/>
    protected override void ApplyBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) => Run(_u, _v, x, y, count);
    /// <inheritdoc/>
    protected override void ApplyAdjointBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) => Run(_v, _u, x, y, count);

    // Per vector: y_c = (scale·⟨in, x_c⟩)·out. Memory-bound, so SIMD dot/scale beat a degenerate
    // (count×1×n) GEMM, which would pack panels for a single column.
    private void Run(double[] outVec, double[] inVec, ReadOnlySpan<double> x, Span<double> y, int count)
    {
        int n = inVec.Length, m = outVec.Length;
        for (int c = 0; c < count; c++)
        {
            double coef = Scale * TensorPrimitives.Dot(x.Slice(c * n, n), inVec);
            TensorPrimitives.Multiply(outVec, coef, y.Slice(c * m, m));
        }
    }
}
