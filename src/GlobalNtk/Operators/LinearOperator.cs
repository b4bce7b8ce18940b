using GlobalNtk.Dense;

namespace GlobalNtk.Operators;

/// <summary>
/// A linear map from <see cref="Domain"/> to <see cref="Range"/> (named-axis shapes), applied
/// matrix-free. Blocks of vectors are stored vector-major: a block of <c>k</c> domain vectors is
/// a span of length <c>k·Domain.Size</c> whose vector <c>j</c> is the contiguous slice
/// <c>[j·Domain.Size, (j+1)·Domain.Size)</c>. Implementations override the block methods, which
/// are what estimators call (matrix-matrix, not matrix-vector).
/// </summary>
public abstract class LinearOperator
{
    /// <summary>Creates an operator between two shapes.</summary>
    protected LinearOperator(AxisShape domain, AxisShape range)
    {
        Domain = domain ?? throw new ArgumentNullException(nameof(domain));
        Range = range ?? throw new ArgumentNullException(nameof(range));
    }

    /// <summary>Input shape.</summary>
    public AxisShape Domain { get; }
    /// <summary>Output shape.</summary>
    public AxisShape Range { get; }

    /// <summary>Short description used in error messages.</summary>
    public virtual string Name => GetType().Name;

    /// <summary>Y = A·X for a block of <paramref name="count"/> vectors (Y is overwritten).</summary>
    protected abstract void ApplyBlockCore(ReadOnlySpan<double> x, Span<double> y, int count);

    /// <summary>Y = A*·X for a block of <paramref name="count"/> vectors (Y is overwritten).</summary>
    protected abstract void ApplyAdjointBlockCore(ReadOnlySpan<double> x, Span<double> y, int count);

    /// <summary>Y = A·X for a block of <paramref name="count"/> vector-major vectors; checks lengths.</summary>
    public void ApplyBlock(ReadOnlySpan<double> x, Span<double> y, int count)
    {
        CheckBlock(x.Length, Domain, count, "input");
        CheckBlock(y.Length, Range, count, "output");
        ApplyBlockCore(x, y, count);
    }

    /// <summary>Y = A*·X for a block of <paramref name="count"/> vector-major vectors; checks lengths.</summary>
    public void ApplyAdjointBlock(ReadOnlySpan<double> x, Span<double> y, int count)
    {
        CheckBlock(x.Length, Range, count, "adjoint input");
        CheckBlock(y.Length, Domain, count, "adjoint output");
        ApplyAdjointBlockCore(x, y, count);
    }

    /// <summary>
    /// Y = A·X for a block of float32 vectors (vector-major, as the float64 overload); checks lengths.
    /// Operators with a float32 path (the NTK operators of a float32 linearisation) keep the block in
    /// float32 end to end, at half the memory; every other operator widens X, applies its float64 map
    /// and rounds Y.
    /// </summary>
    public void ApplyBlock(ReadOnlySpan<float> x, Span<float> y, int count)
    {
        CheckBlock(x.Length, Domain, count, "input");
        CheckBlock(y.Length, Range, count, "output");
        ApplyBlockCore(x, y, count);
    }

    /// <summary>Y = A*·X for a block of float32 vectors; checks lengths (see the float32 <see cref="ApplyBlock(ReadOnlySpan{float}, Span{float}, int)"/>).</summary>
    public void ApplyAdjointBlock(ReadOnlySpan<float> x, Span<float> y, int count)
    {
        CheckBlock(x.Length, Range, count, "adjoint input");
        CheckBlock(y.Length, Domain, count, "adjoint output");
        ApplyAdjointBlockCore(x, y, count);
    }

    /// <summary>Y = A·X on float32 vectors (Y overwritten). Default: through the float64 map.</summary>
    protected virtual void ApplyBlockCore(ReadOnlySpan<float> x, Span<float> y, int count) =>
        Widened(x, Domain.Size, y, Range.Size, count, ApplyBlockCore);

    /// <summary>Y = A*·X on float32 vectors (Y overwritten). Default: through the float64 map.</summary>
    protected virtual void ApplyAdjointBlockCore(ReadOnlySpan<float> x, Span<float> y, int count) =>
        Widened(x, Range.Size, y, Domain.Size, count, ApplyAdjointBlockCore);

    /// <summary>
    /// Whether the float32 block overloads run the operator's own float32 computation (float32 blocks
    /// in and out, no float64 block), rather than the default: X widened, the float64 map, Y rounded
    /// once. A composite (<see cref="GramOperator"/>) keeps its intermediate block in float32 only
    /// when its factor does this, since rounding the intermediate is then what the factor's float32
    /// maps do anyway; otherwise it widens once for the whole composite.
    /// </summary>
    internal virtual bool AppliesFloat32Natively => false;

    /// <summary>A float64 block map applied to float32 vectors: X widened, Y rounded once.</summary>
    private protected delegate void DoubleBlockMap(ReadOnlySpan<double> x, Span<double> y, int count);

    /// <summary>Runs <paramref name="map"/> on <paramref name="x"/> widened to float64 and rounds its result into <paramref name="y"/>.</summary>
    private protected static void Widened(ReadOnlySpan<float> x, int xSize, Span<float> y, int ySize, int count, DoubleBlockMap map)
    {
        using var wx = new BlockBuffer((long)xSize * count);
        using var wy = new BlockBuffer((long)ySize * count);
        Float32.Widen(x, wx.Span);
        map(wx.Span, wy.Span, count);
        Float32.Narrow(wy.Span, y);
    }

    /// <summary>A·x as a new array.</summary>
    public double[] Apply(ReadOnlySpan<double> x)
    {
        var y = new double[Range.Size];
        ApplyBlock(x, y, 1);
        return y;
    }

    /// <summary>A*·x as a new array.</summary>
    public double[] ApplyAdjoint(ReadOnlySpan<double> x)
    {
        var y = new double[Domain.Size];
        ApplyAdjointBlock(x, y, 1);
        return y;
    }

    /// <summary>A·X for a block, as a new array.</summary>
    public double[] ApplyBlock(ReadOnlySpan<double> x, int count)
    {
        var y = new double[checked(Range.Size * count)];
        ApplyBlock(x, y, count);
        return y;
    }

    /// <summary>A*·X for a block, as a new array.</summary>
    public double[] ApplyAdjointBlock(ReadOnlySpan<double> x, int count)
    {
        var y = new double[checked(Domain.Size * count)];
        ApplyAdjointBlock(x, y, count);
        return y;
    }

    // ---- Algebra (fluent helpers; the concrete operators live in their own files) ----

    /// <summary>
    /// Whether the operator is self-adjoint by construction (identity, Gram, symmetric part,
    /// real diagonal, symmetric dense…). Estimators may use it to save applications; <c>false</c>
    /// means "not known", not "not symmetric".
    /// </summary>
    public virtual bool IsSelfAdjoint => false;

    /// <summary>Whether <see cref="Domain"/> equals <see cref="Range"/> (names and sizes).</summary>
    public bool IsSquare => Domain.Equals(Range);

    /// <summary>The adjoint A* as a view (no copy); the adjoint of the adjoint is the original.</summary>
    public virtual LinearOperator Adjoint => IsSelfAdjoint ? this : new AdjointOperator(this);

    /// <summary><paramref name="next"/> ∘ this: apply this operator, then <paramref name="next"/>.</summary>
    public LinearOperator Then(LinearOperator next) => ComposedOperator.Of(next, this);

    /// <summary>The Gram operator A A* on <see cref="Range"/> (self-adjoint, PSD).</summary>
    public LinearOperator Gram() => new GramOperator(this);

    /// <summary>The symmetric part (A + A*)/2 of a square operator.</summary>
    public LinearOperator SymmetricPart()
    {
        RequireSquare("SymmetricPart");
        if (IsSelfAdjoint) return this;
        return new SumOperator([(0.5, this), (0.5, Adjoint)], selfAdjoint: true);
    }

    /// <summary>The Kronecker product this ⊗ <paramref name="other"/> on concatenated axes.</summary>
    public LinearOperator Kron(LinearOperator other) => new KroneckerOperator(this, other);

    /// <summary>The same operator seen between two other shapes of the same sizes (no copy).</summary>
    public LinearOperator View(AxisShape domain, AxisShape range) => new ViewOperator(this, domain, range);

    /// <summary>The dense matrix (rows = Range, columns = Domain) of a small operator.</summary>
    /// <exception cref="OperatorTooLargeException">Either side exceeds <paramref name="maxSize"/>.</exception>
    public DenseOperator Materialize(int maxSize = DenseOperator.DefaultMaxSize) => DenseOperator.Materialize(this, maxSize);

    /// <summary>a ∘ b: apply <paramref name="b"/> first (matrix-product order).</summary>
    public static LinearOperator operator *(LinearOperator a, LinearOperator b) => ComposedOperator.Of(a, b);
    /// <summary>a + b.</summary>
    public static LinearOperator operator +(LinearOperator a, LinearOperator b) => SumOperator.Of((1.0, a), (1.0, b));
    /// <summary>a − b.</summary>
    public static LinearOperator operator -(LinearOperator a, LinearOperator b) => SumOperator.Of((1.0, a), (-1.0, b));
    /// <summary>−a.</summary>
    public static LinearOperator operator -(LinearOperator a) => ScaledOperator.Of(a, -1.0);
    /// <summary>alpha·a.</summary>
    public static LinearOperator operator *(LinearOperator a, double alpha) => ScaledOperator.Of(a, alpha);
    /// <summary>alpha·a.</summary>
    public static LinearOperator operator *(double alpha, LinearOperator a) => ScaledOperator.Of(a, alpha);

    /// <summary>The identity on <paramref name="shape"/>.</summary>
    public static LinearOperator Identity(AxisShape shape) => new IdentityOperator(shape);

    /// <summary>The relabelling x ↦ x from <paramref name="from"/> to <paramref name="to"/> (same size, other axes).</summary>
    public static LinearOperator Reshape(AxisShape from, AxisShape to) => new IdentityOperator(from).View(from, to);

    /// <summary>Σᵢ coefficientᵢ·operatorᵢ (all with the same Domain and Range).</summary>
    public static LinearOperator Sum(params (double Coefficient, LinearOperator Operator)[] terms) => SumOperator.Of(terms);

    /// <summary>Throws <see cref="ShapeMismatchException"/> unless Domain equals Range.</summary>
    public void RequireSquare(string what)
    {
        if (!IsSquare)
            throw new ShapeMismatchException($"{what}: {Name} must map a shape to itself, but its domain is {Domain} and its range is {Range}.");
    }

    /// <summary>Throws <see cref="ShapeMismatchException"/> naming both shapes unless they are equal.</summary>
    public static void RequireSameShape(AxisShape expected, AxisShape actual, string what)
    {
        if (!expected.Equals(actual))
            throw new ShapeMismatchException($"{what}: shape {actual} does not match {expected}.");
    }

    private void CheckBlock(int length, AxisShape shape, int count, string what)
    {
        if (count < 0 || (long)shape.Size * count != length)
            throw new ShapeMismatchException(
                $"{Name}: {what} block has length {length}, expected {count} × {shape} = {(long)shape.Size * count}.");
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Name}: {Domain} -> {Range}";
}

/// <summary>Operands whose shapes do not fit together; the message names both shapes.</summary>
public sealed class ShapeMismatchException(string message) : ArgumentException(message);
