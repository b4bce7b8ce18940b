using System.Diagnostics;

namespace GlobalNtk.Operators;

/// <summary>
/// A view of an operator that counts the vectors it is applied to (forward and adjoint) and
/// reports after every chunk, so long estimator stages can show progress. Blocks are split into
/// chunks sized from the measured time per vector so that one chunk takes about
/// <see cref="TargetChunkSeconds"/>: a progress report at least that often, while blocks stay
/// as large as that allows (matrix-matrix work), and at most <see cref="Dense.MemoryBudget.ScratchBlockElements"/>
/// values (the operators' scratch grows with the chunk). Results are identical to the inner operator's.
/// </summary>
public sealed class MeteredOperator : LinearOperator
{
    private readonly Action<long>? _onApplied;
    private double _secondsPerVector;

    /// <summary>Wraps <paramref name="inner"/>; <paramref name="onApplied"/> receives the running total of vectors applied.</summary>
    public MeteredOperator(LinearOperator inner, Action<long>? onApplied) : this(inner, onApplied, Dense.MemoryBudget.ScratchBlockElements) { }

    /// <summary>As the public constructor, with chunks of at most <paramref name="maxChunkElements"/> values.</summary>
    internal MeteredOperator(LinearOperator inner, Action<long>? onApplied, long maxChunkElements) : base(inner.Domain, inner.Range)
    {
        Inner = inner ?? throw new ArgumentNullException(nameof(inner));
        _onApplied = onApplied;
        MaxChunkElements = maxChunkElements > 0 ? maxChunkElements : throw new ArgumentOutOfRangeException(nameof(maxChunkElements));
    }

    /// <summary>Seconds one chunk should take at most (when a single vector is not slower).</summary>
    public const double TargetChunkSeconds = 2.5;

    /// <summary>The metered operator.</summary>
    public LinearOperator Inner { get; }

    /// <summary>Vectors applied so far (forward plus adjoint).</summary>
    public long Applications { get; private set; }

    /// <inheritdoc/>
    public override string Name => Inner.Name;
    /// <inheritdoc/>
    public override bool IsSelfAdjoint => Inner.IsSelfAdjoint;

    /// <inheritdoc/>
    protected override void ApplyBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) =>
        Chunked<double>(x, y, count, Domain.Size, Range.Size, Inner.ApplyBlock);

    /// <inheritdoc/>
    protected override void ApplyAdjointBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) =>
        Chunked<double>(x, y, count, Range.Size, Domain.Size, Inner.ApplyAdjointBlock);

    /// <inheritdoc/>
    internal override bool AppliesFloat32Natively => Inner.AppliesFloat32Natively;

    /// <inheritdoc/>
    protected override void ApplyBlockCore(ReadOnlySpan<float> x, Span<float> y, int count) =>
        Chunked<float>(x, y, count, Domain.Size, Range.Size, Inner.ApplyBlock);

    /// <inheritdoc/>
    protected override void ApplyAdjointBlockCore(ReadOnlySpan<float> x, Span<float> y, int count) =>
        Chunked<float>(x, y, count, Range.Size, Domain.Size, Inner.ApplyAdjointBlock);

    /// <summary>
    /// The most vectors of <paramref name="length"/> values in one chunk: <see cref="MaxChunkElements"/>
    /// values (at least one vector). The cap counts values, not bytes, so that a float32 chunk, whose
    /// vectors apply faster, holds no more vectors than a float64 one: the operators' scratch grows
    /// with the chunk, and time alone would give float32 as much scratch in bytes as float64.
    /// </summary>
    internal int MaxChunkVectors(int length) => (int)Math.Clamp(MaxChunkElements / Math.Max(1, length), 1, int.MaxValue);

    /// <summary>Values in one chunk at most (by default <see cref="Dense.MemoryBudget.ScratchBlockElements"/>).</summary>
    internal long MaxChunkElements { get; }

    private delegate void BlockApply<T>(ReadOnlySpan<T> x, Span<T> y, int count);

    // Either precision: the inner operator's own map of that precision (float32 blocks stay float32).
    private void Chunked<T>(ReadOnlySpan<T> x, Span<T> y, int count, int nIn, int nOut, BlockApply<T> apply)
    {
        int done = 0;
        while (done < count)
        {
            int c = count - done;
            if (_secondsPerVector > 0) c = Math.Clamp((int)(TargetChunkSeconds / _secondsPerVector), 1, c);
            else c = Math.Min(c, 4); // first call: measure on a small chunk
            c = Math.Min(c, MaxChunkVectors(Math.Max(nIn, nOut)));
            var clock = Stopwatch.StartNew();
            apply(x.Slice(done * nIn, c * nIn), y.Slice(done * nOut, c * nOut), c);
            double perVector = clock.Elapsed.TotalSeconds / c;
            _secondsPerVector = _secondsPerVector > 0 ? 0.5 * (_secondsPerVector + perVector) : perVector;
            done += c;
            Applications += c;
            _onApplied?.Invoke(Applications);
        }
    }
}
