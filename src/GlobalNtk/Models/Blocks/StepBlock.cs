using GlobalNtk.Dense;

namespace GlobalNtk.Models.Blocks;

/// <summary>Name and shape of one parameter tensor a block reads (PyTorch name, row-major).</summary>
/// <param name="Name">PyTorch-style name, e.g. <c>layers.0.weight</c>.</param>
/// <param name="Shape">Shape as PyTorch reports it.</param>
public sealed record ParameterSpec(string Name, int[] Shape)
{
    /// <summary>Number of scalars.</summary>
    public int Size => Shape.Aggregate(1, (a, b) => checked(a * b));
}

/// <summary>
/// One small piece of a chain step (docs/math.md#models-as-chains, #kronecker-core): a map y = f(u; θ_block) applied to a batch of
/// <c>rows</c> rows of width <see cref="InputWidth"/> (e.g. every sample of an MLP layer, or every
/// (sequence, token) of a transformer layer), giving rows of width <see cref="OutputWidth"/>.
/// Blocks compose (<see cref="SequentialBlock"/>, <see cref="ResidualBlock"/>) into a chain step;
/// a <see cref="BlockChainLinearization"/> derives every derivative map of the chain from them.
/// </summary>
/// <remarks>
/// A block is a description (sizes, parameter names); it holds no values. <see cref="Forward(ParameterSet, ReadOnlySpan{double}, int, Span{double})"/>
/// reads the parameter values from the set it is given (a snapshot) and returns a
/// <see cref="BlockTrace"/> with the caches its derivatives need. Rows in and out are float64 in
/// every precision. A block that also has a float32 path says so through <see cref="Supports"/>
/// and overrides <see cref="ForwardF32"/>: its trace then keeps its caches in float32 and runs its
/// products in float32, narrowing each incoming block of rows once and widening its result once.
/// </remarks>
public abstract class StepBlock
{
    /// <summary>Width of each input row.</summary>
    public abstract int InputWidth { get; }
    /// <summary>Width of each output row.</summary>
    public abstract int OutputWidth { get; }
    /// <summary>The parameters this block reads, in its compact δθ order.</summary>
    public virtual IReadOnlyList<ParameterSpec> ParameterSpecs => [];
    /// <summary>Total scalars of <see cref="ParameterSpecs"/>.</summary>
    public int ParameterSize => ParameterSpecs.Sum(p => p.Size);
    /// <summary>
    /// Whether row n of the output depends on row n of the input only (affine, activation,
    /// LayerNorm: yes; attention: no). Declares the row-locality of the weight sites downstream.
    /// </summary>
    public virtual bool RowLocal => true;

    /// <summary>
    /// Runs the block on <paramref name="input"/> [rows, InputWidth] with parameter values from
    /// <paramref name="parameters"/>, writes <paramref name="output"/> [rows, OutputWidth] and
    /// returns the trace of this evaluation.
    /// </summary>
    public abstract BlockTrace Forward(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output);

    /// <summary>Whether <see cref="Forward(ParameterSet, ReadOnlySpan{double}, int, Span{double}, Precision)"/> runs in <paramref name="precision"/> (float64 always).</summary>
    public virtual bool Supports(Precision precision) => precision == Precision.F64;

    /// <summary>
    /// <see cref="Forward(ParameterSet, ReadOnlySpan{double}, int, Span{double})"/> in a given precision:
    /// <see cref="Precision.F32"/> returns a trace with float32 caches and float32 products.
    /// </summary>
    /// <exception cref="NotSupportedException">The block has no path in <paramref name="precision"/>.</exception>
    public BlockTrace Forward(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output, Precision precision)
    {
        if (precision == Precision.F64) return Forward(parameters, input, rows, output);
        if (!Supports(precision)) throw Unsupported(precision);
        return ForwardF32(parameters, input, rows, output);
    }

    /// <summary>The float32 forward pass; blocks that override it also override <see cref="Supports"/>.</summary>
    protected virtual BlockTrace ForwardF32(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output) =>
        throw Unsupported(Precision.F32);

    /// <summary>The refusal of a precision this block has no path for, naming the block.</summary>
    public NotSupportedException Unsupported(Precision precision) =>
        new($"{Describe()} has no {precision.Name()} path; use f64.");

    /// <summary>How errors name this block (its type and widths).</summary>
    protected virtual string Describe() => $"block {GetType().Name} ({InputWidth} → {OutputWidth})";

    /// <summary>Throws naming the parameter when it is missing or has another shape.</summary>
    protected static double[] Read(ParameterSet parameters, ParameterSpec spec)
    {
        if (!parameters.Contains(spec.Name))
            throw new ArgumentException($"Missing parameter '{spec.Name}' of shape [{string.Join(", ", spec.Shape)}].");
        var p = parameters[spec.Name];
        if (!p.Shape.SequenceEqual(spec.Shape))
            throw new ArgumentException($"Parameter '{spec.Name}' has shape {p.ShapeText}, expected [{string.Join(", ", spec.Shape)}].");
        return p.Data;
    }
}

/// <summary>
/// A block evaluated on one batch of rows: its input Jacobian J_u and parameter Jacobian J_θ
/// (JVP and VJP) on blocks of <c>count</c> vectors, each [count·Rows, width] row-major
/// (vector-major: rows j·Rows … (j+1)·Rows − 1 belong to vector j), and its weight sites.
/// </summary>
public abstract class BlockTrace
{
    /// <summary>Creates the trace of <paramref name="block"/> on <paramref name="rows"/> rows.</summary>
    protected BlockTrace(StepBlock block, int rows) { Block = block; Rows = rows; }

    /// <summary>The block this trace evaluates.</summary>
    public StepBlock Block { get; }
    /// <summary>Number of rows N.</summary>
    public int Rows { get; }

    /// <summary>dOut = J_u dIn (overwrite); dIn [count·Rows, In], dOut [count·Rows, Out].</summary>
    public abstract void Jvp(ReadOnlySpan<double> dIn, Span<double> dOut, int count);
    /// <summary>dIn = J_uᵀ dOut (overwrite).</summary>
    public abstract void Vjp(ReadOnlySpan<double> dOut, Span<double> dIn, int count);

    /// <summary>
    /// dOut = J_θ dθ (overwrite) with dθ [count, ParameterSize] in the block's compact order.
    /// Default: the block has no parameters, dOut = 0.
    /// </summary>
    public virtual void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> dOut, int count) =>
        dOut[..(count * Rows * Block.OutputWidth)].Clear();
    /// <summary>dθ = J_θᵀ dOut summed over rows (overwrite), dθ [count, ParameterSize].</summary>
    public virtual void ParamVjp(ReadOnlySpan<double> dOut, Span<double> dTheta, int count) { }

    /// <summary>The affine weight sites inside this block, with D mapping into this block's output.</summary>
    public virtual IReadOnlyList<LocalSite> Sites => [];
}

/// <summary>
/// An affine weight site a = W u + b (docs/math.md#kronecker-core) as seen from the output of the block that holds
/// it: the site variables Û = [U, 1] and the map D from a to that block's output rows.
/// </summary>
/// <param name="Name">Display name (the weight's module path).</param>
/// <param name="Weight">Name of W [OutDim, Width].</param>
/// <param name="Bias">Name of b [OutDim], or null.</param>
/// <param name="Width">d: columns of U.</param>
/// <param name="OutDim">m: rows of W.</param>
/// <param name="Variables">Û [Rows, Width (+1 with a bias)], row-major.</param>
/// <param name="RowLocal">Whether D maps row n of a into row n of the output only.</param>
/// <param name="ApplyD">out = D a (overwrite): a [count·Rows, OutDim] → [count·Rows, Out]; the last argument is count.</param>
/// <param name="ApplyDAdjoint">a = D* q (overwrite).</param>
public sealed record LocalSite(string Name, string Weight, string? Bias, int Width, int OutDim, double[] Variables, bool RowLocal,
    SpanMap ApplyD, SpanMap ApplyDAdjoint);

/// <summary>A linear map between two row blocks of <c>count</c> vectors.</summary>
public delegate void SpanMap(ReadOnlySpan<double> src, Span<double> dst, int count);
