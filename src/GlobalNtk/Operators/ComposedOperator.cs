namespace GlobalNtk.Operators;

/// <summary>
/// A composition Aₙ ∘ … ∘ A₁ (A₁ applied first). Each factor's Range must equal the next factor's
/// Domain (names and sizes); use <see cref="LinearOperator.View"/> to relabel axes explicitly.
/// </summary>
public sealed class ComposedOperator : LinearOperator
{
    private readonly LinearOperator[] _factors; // in application order

    private ComposedOperator(LinearOperator[] factors) : base(factors[0].Domain, factors[^1].Range)
    {
        _factors = factors;
        _float32 = factors.All(f => f.AppliesFloat32Natively);
    }

    // Whether every factor maps float32 blocks natively: then the intermediates are float32 blocks
    // too (rounding them is what each factor's float32 map does anyway); otherwise the composition
    // widens once and runs its float64 map (the default).
    private readonly bool _float32;

    /// <summary>The factors in application order (first applied first).</summary>
    public IReadOnlyList<LinearOperator> Factors => _factors;

    /// <summary>outer ∘ inner (inner applied first); nested compositions are flattened.</summary>
    public static LinearOperator Of(LinearOperator outer, LinearOperator inner)
    {
        ArgumentNullException.ThrowIfNull(outer);
        ArgumentNullException.ThrowIfNull(inner);
        if (!inner.Range.Equals(outer.Domain))
            throw new ShapeMismatchException(
                $"Cannot compose {outer.Name} after {inner.Name}: {inner.Name} maps to {inner.Range} but {outer.Name} expects {outer.Domain}.");
        var list = new List<LinearOperator>();
        Flatten(inner, list);
        Flatten(outer, list);
        return new ComposedOperator(list.ToArray());
    }

    private static void Flatten(LinearOperator op, List<LinearOperator> list)
    {
        if (op is ComposedOperator c) list.AddRange(c._factors); else list.Add(op);
    }

    /// <inheritdoc/>
    public override string Name => string.Join(" ∘ ", _factors.Reverse().Select(f => f.Name));

    /// <inheritdoc/>
    protected override void ApplyBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) => Run(x, y, count, adjoint: false);
    /// <inheritdoc/>
    protected override void ApplyAdjointBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) => Run(x, y, count, adjoint: true);

    /// <inheritdoc/>
    internal override bool AppliesFloat32Natively => _float32;

    /// <inheritdoc/>
    protected override void ApplyBlockCore(ReadOnlySpan<float> x, Span<float> y, int count)
    {
        if (_float32) Run(x, y, count, adjoint: false); else base.ApplyBlockCore(x, y, count);
    }

    /// <inheritdoc/>
    protected override void ApplyAdjointBlockCore(ReadOnlySpan<float> x, Span<float> y, int count)
    {
        if (_float32) Run(x, y, count, adjoint: true); else base.ApplyAdjointBlockCore(x, y, count);
    }

    // Ping-pong between two pooled scratch blocks; the last factor writes straight into y.
    private void Run<T>(ReadOnlySpan<T> x, Span<T> y, int count, bool adjoint) where T : unmanaged
    {
        int n = _factors.Length;
        long maxMid = 0;
        for (int i = 0; i < n - 1; i++) maxMid = Math.Max(maxMid, (long)_factors[i].Range.Size * count);
        using var a = new ScratchBlock<T>(maxMid);
        using var b = new ScratchBlock<T>(n > 2 ? maxMid : 0);
        ReadOnlySpan<T> src = x;
        for (int step = 0; step < n; step++)
        {
            var f = adjoint ? _factors[n - 1 - step] : _factors[step];
            int outSize = adjoint ? f.Domain.Size : f.Range.Size;
            Span<T> dst = step == n - 1 ? y : (step % 2 == 0 ? a.Span : b.Span).Slice(0, outSize * count);
            if (adjoint) ProbeBlock.ApplyAdjoint<T>(f, src, dst, count); else ProbeBlock.Apply<T>(f, src, dst, count);
            src = dst;
        }
    }
}
