using GlobalNtk.Dense;

namespace GlobalNtk.Operators;

/// <summary>A linear combination Σᵢ cᵢ·Aᵢ of operators with the same Domain and Range (sum, difference).</summary>
public sealed class SumOperator : LinearOperator
{
    private readonly (double Coefficient, LinearOperator Operator)[] _terms;
    private readonly bool _selfAdjoint;

    internal SumOperator((double Coefficient, LinearOperator Operator)[] terms, bool selfAdjoint = false)
        : base(terms[0].Operator.Domain, terms[0].Operator.Range)
    {
        foreach (var (c, op) in terms)
        {
            if (!double.IsFinite(c)) throw new NonFiniteException($"Sum: coefficient {c} on {op.Name}.");
            if (!op.Domain.Equals(Domain) || !op.Range.Equals(Range))
                throw new ShapeMismatchException(
                    $"Cannot add {op.Name} ({op.Domain} -> {op.Range}) to {terms[0].Operator.Name} ({Domain} -> {Range}).");
        }
        _terms = terms;
        _selfAdjoint = selfAdjoint || terms.All(t => t.Operator.IsSelfAdjoint);
    }

    /// <summary>Σᵢ cᵢ·Aᵢ; nested sums are flattened.</summary>
    public static LinearOperator Of(params (double Coefficient, LinearOperator Operator)[] terms)
    {
        if (terms is null || terms.Length == 0) throw new ArgumentException("Sum: no terms.");
        var flat = new List<(double, LinearOperator)>();
        foreach (var (c, op) in terms)
        {
            ArgumentNullException.ThrowIfNull(op);
            if (op is SumOperator s) flat.AddRange(s._terms.Select(t => (c * t.Coefficient, t.Operator)));
            else if (op is ScaledOperator sc) flat.Add((c * sc.Alpha, sc.Inner));
            else flat.Add((c, op));
        }
        return new SumOperator(flat.ToArray());
    }

    /// <summary>The terms (coefficient, operator).</summary>
    public IReadOnlyList<(double Coefficient, LinearOperator Operator)> Terms => _terms;
    /// <inheritdoc/>
    public override string Name => string.Join(" + ", _terms.Select(t => $"{t.Coefficient}·{t.Operator.Name}"));
    /// <inheritdoc/>
    public override bool IsSelfAdjoint => _selfAdjoint;
    /// <inheritdoc/>
    public override LinearOperator Adjoint =>
        _selfAdjoint ? this : new SumOperator(_terms.Select(t => (t.Coefficient, t.Operator.Adjoint)).ToArray());

    /// <inheritdoc/>
    protected override void ApplyBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) => Run(x, y, count, false);
    /// <inheritdoc/>
    protected override void ApplyAdjointBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) => Run(x, y, count, true);

    private void Run(ReadOnlySpan<double> x, Span<double> y, int count, bool adjoint)
    {
        void Apply(LinearOperator op, ReadOnlySpan<double> src, Span<double> dst)
        {
            if (adjoint) op.ApplyAdjointBlock(src, dst, count); else op.ApplyBlock(src, dst, count);
        }
        Apply(_terms[0].Operator, x, y);
        if (_terms[0].Coefficient != 1.0) Numerics.Scale(y, _terms[0].Coefficient);
        if (_terms.Length == 1) return;
        using var tmp = new BlockBuffer(y.Length);
        for (int i = 1; i < _terms.Length; i++)
        {
            Apply(_terms[i].Operator, x, tmp.Span);
            Numerics.Axpy(_terms[i].Coefficient, tmp.Span, y);
        }
    }
}
