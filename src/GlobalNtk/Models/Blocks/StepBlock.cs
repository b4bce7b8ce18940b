using System.Runtime.InteropServices;
using GlobalNtk.Operators;
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
/// <see cref="BlockTrace"/> with the caches its derivatives need. A block that also has a float32
/// path says so through <see cref="Supports"/> and overrides <see cref="ForwardF32(ParameterSet, ReadOnlySpan{float}, int, Span{float})"/>: its forward
/// pass then takes and gives float32 rows, its trace keeps its caches in float32 and runs its maps
/// on float32 rows (<see cref="BlockTrace"/>'s float32 maps). A chain of such blocks keeps its rows
/// float32 from block to block in the forward pass as in the derivative maps (no float64 row
/// scratch in a float32 linearisation), and a float64 caller's rows are narrowed once on the way
/// in and widened once on the way out.
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
    /// <summary>The widest row anywhere inside the block (sizes scratch blocks of vectors).</summary>
    internal virtual int ScratchWidth => Math.Max(InputWidth, OutputWidth);

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
        // float32 rows throughout: the float32 output widened once.
        int nOut = checked(rows * OutputWidth);
        using var y = new Float32Buffer(nOut);
        var trace = ForwardF32(parameters, input, rows, y.Span);
        Float32.Widen(y.Span, output[..nOut]);
        return trace;
    }

    /// <summary>
    /// The float32 forward pass on float64 input rows (a chain's inputs): by default the rows are
    /// rounded once to float32 and <see cref="ForwardF32(ParameterSet, ReadOnlySpan{float}, int, Span{float})"/>
    /// runs; a block that reads its input as data rather than values (an embedding's token ids)
    /// overrides it to see them unrounded.
    /// </summary>
    private protected virtual BlockTrace ForwardF32(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<float> output)
    {
        int nIn = checked(rows * InputWidth);
        using var x = new Float32Buffer(nIn);
        Float32.Narrow(input[..nIn], x.Span);
        return ForwardF32(parameters, x.Span, rows, output);
    }

    /// <summary>
    /// The float32 forward pass from float64 input rows to float32 output rows (the first step of a
    /// float32 chain).
    /// </summary>
    /// <exception cref="NotSupportedException">The block has no float32 path.</exception>
    internal BlockTrace Forward32(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<float> output) =>
        Supports(Precision.F32) ? ForwardF32(parameters, input, rows, output) : throw Unsupported(Precision.F32);

    /// <summary>
    /// The float32 forward pass on float32 rows (what a float32 composite or chain calls for each
    /// child): <paramref name="input"/> [rows, InputWidth], <paramref name="output"/> [rows, OutputWidth].
    /// </summary>
    /// <exception cref="NotSupportedException">The block has no float32 path.</exception>
    internal BlockTrace Forward32(ParameterSet parameters, ReadOnlySpan<float> input, int rows, Span<float> output) =>
        Supports(Precision.F32) ? ForwardF32(parameters, input, rows, output) : throw Unsupported(Precision.F32);

    /// <summary>
    /// The float32 forward pass on float32 rows (input [rows, InputWidth], output [rows,
    /// OutputWidth]); blocks that override it also override <see cref="Supports"/>.
    /// </summary>
    protected virtual BlockTrace ForwardF32(ParameterSet parameters, ReadOnlySpan<float> input, int rows, Span<float> output) =>
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
    /// Whether <see cref="Jvp32"/> and <see cref="Vjp32"/> run natively in float32 (the trace of a
    /// float32 forward pass), so that a float32 pipeline keeps float32 rows through this block.
    /// </summary>
    internal virtual bool IsSingle => false;

    /// <summary>
    /// <see cref="Jvp"/> on float32 rows. Default: widens the block, runs the float64 map and
    /// narrows the result; float32 traces override it with their own float32 products.
    /// </summary>
    internal virtual void Jvp32(ReadOnlySpan<float> dIn, Span<float> dOut, int count) =>
        Converted(dIn, Block.InputWidth, dOut, Block.OutputWidth, count, Jvp);

    /// <summary><see cref="Vjp"/> on float32 rows (default: through the float64 map, as <see cref="Jvp32"/>).</summary>
    internal virtual void Vjp32(ReadOnlySpan<float> dOut, Span<float> dIn, int count) =>
        Converted(dOut, Block.OutputWidth, dIn, Block.InputWidth, count, Vjp);

    private void Converted(ReadOnlySpan<float> src, int srcWidth, Span<float> dst, int dstWidth, int count, SpanMap map)
    {
        long rows = (long)count * Rows;
        using var x = new Operators.BlockBuffer(rows * srcWidth);
        using var y = new Operators.BlockBuffer(rows * dstWidth);
        Float32.Widen(src[..x.Span.Length], x.Span);
        map(x.Span, y.Span, count);
        Float32.Narrow(y.Span, dst);
    }

    /// <summary>
    /// The float64 map of a float32 trace: narrows the block once, runs <paramref name="map"/> in
    /// float32, widens the result once.
    /// </summary>
    private protected void ViaSingle(ReadOnlySpan<double> src, int srcWidth, Span<double> dst, int dstWidth, int count, SpanMap32 map)
    {
        long rows = (long)count * Rows;
        using var x = new Float32Buffer(rows * srcWidth);
        using var y = new Float32Buffer(rows * dstWidth);
        Float32.Narrow(src[..x.Span.Length], x.Span);
        map(x.Span, y.Span, count);
        Float32.Widen(y.Span, dst);
    }

    /// <summary>
    /// dOut = J_u E dIn (overwrite), where E places dIn [count·Rows, width] at the input columns
    /// [offset, offset + width) with zeros elsewhere: the JVP of a part of the input row, e.g. only
    /// the x of a recurrent cell's [z_prev, x]. Default: embeds and calls <see cref="Jvp"/>; a
    /// block overrides it where the part is cheaper.
    /// </summary>
    public virtual void JvpPart(int offset, int width, ReadOnlySpan<double> dIn, Span<double> dOut, int count)
    {
        int n = Block.InputWidth, rows = count * Rows;
        using var full = new Operators.BlockBuffer((long)rows * n);
        var f = full.Span;
        f.Clear();
        for (int r = 0; r < rows; r++) dIn.Slice(r * width, width).CopyTo(f.Slice(r * n + offset, width));
        Jvp(f, dOut, count);
    }

    /// <summary>dIn = Eᵀ J_uᵀ dOut (overwrite): input columns [offset, offset + width) of the VJP, [count·Rows, width]; the adjoint of <see cref="JvpPart"/>.</summary>
    public virtual void VjpPart(int offset, int width, ReadOnlySpan<double> dOut, Span<double> dIn, int count)
    {
        int n = Block.InputWidth, rows = count * Rows;
        using var full = new Operators.BlockBuffer((long)rows * n);
        var f = full.Span;
        Vjp(dOut, f, count);
        for (int r = 0; r < rows; r++) f.Slice(r * n + offset, width).CopyTo(dIn.Slice(r * width, width));
    }

    /// <summary>
    /// dOut = J_θ dθ (overwrite) with dθ [count, ParameterSize] in the block's compact order.
    /// Default: the block has no parameters, dOut = 0.
    /// </summary>
    public virtual void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> dOut, int count) =>
        dOut[..(count * Rows * Block.OutputWidth)].Clear();
    /// <summary>dθ = J_θᵀ dOut summed over rows (overwrite), dθ [count, ParameterSize].</summary>
    public virtual void ParamVjp(ReadOnlySpan<double> dOut, Span<double> dTheta, int count) { }

    /// <summary>
    /// <see cref="ParamJvp"/> for a δθ that is zero outside the parameters flagged in
    /// <paramref name="active"/> (one flag per entry of the block's ParameterSpecs; empty = all):
    /// composite blocks skip the children without an active parameter. The default is the full
    /// <see cref="ParamJvp"/> (correct, since the other entries of dθ are zero).
    /// </summary>
    internal virtual void ParamJvpActive(ReadOnlySpan<double> dTheta, Span<double> dOut, int count, ReadOnlySpan<bool> active) =>
        ParamJvp(dTheta, dOut, count);
    /// <summary>
    /// <see cref="ParamVjp"/> where only the entries of the parameters flagged in
    /// <paramref name="active"/> (empty = all) are wanted; the others are unspecified.
    /// </summary>
    internal virtual void ParamVjpActive(ReadOnlySpan<double> dOut, Span<double> dTheta, int count, ReadOnlySpan<bool> active) =>
        ParamVjp(dOut, dTheta, count);

    /// <summary>Whether the block has a parameter flagged in <paramref name="active"/> (empty = all).</summary>
    private protected bool AnyActive(ReadOnlySpan<bool> active) => Block.ParameterSize > 0 && (active.IsEmpty || active.Contains(true));

    /// <summary>
    /// dOut = J_u dIn + J_θ dθ (overwrite) in one sweep through the block, dθ restricted as in
    /// <see cref="ParamJvpActive"/>; an empty <paramref name="dIn"/> is a zero input tangent.
    /// Composite blocks override it so that each child is traversed once (not once for J_u and
    /// once for J_θ).
    /// </summary>
    internal virtual void TangentActive(ReadOnlySpan<double> dIn, ReadOnlySpan<double> dTheta, Span<double> dOut, int count, ReadOnlySpan<bool> active)
    {
        int n = count * Rows * Block.OutputWidth;
        bool any = AnyActive(active);
        if (dIn.IsEmpty)
        {
            if (any) ParamJvpActive(dTheta, dOut, count, active); else dOut[..n].Clear();
            return;
        }
        Jvp(dIn, dOut, count);
        if (!any) return;
        using var t = new Operators.BlockBuffer(n);
        ParamJvpActive(dTheta, t.Span, count, active);
        Operators.Elementwise.Add(dOut[..n], t.Span, dOut[..n]);
    }

    /// <summary>
    /// dθ = J_θᵀ g (the entries flagged in <paramref name="active"/>; nothing is written when none
    /// is) and, unless <paramref name="dIn"/> is empty, dIn = J_uᵀ g (overwrite), in one sweep.
    /// </summary>
    internal virtual void CotangentActive(ReadOnlySpan<double> g, Span<double> dIn, Span<double> dTheta, int count, ReadOnlySpan<bool> active)
    {
        if (AnyActive(active)) ParamVjpActive(g, dTheta, count, active);
        if (!dIn.IsEmpty) Vjp(g, dIn, count);
    }

    /// <summary>
    /// <see cref="ParamJvpActive"/> on float32 blocks (dθ [count, ParameterSize], dOut [count·Rows, Out]).
    /// Default: widens dθ, runs the float64 map and narrows the result; float32 traces with
    /// parameters override it with their own float32 products.
    /// </summary>
    internal virtual void ParamJvpActive32(ReadOnlySpan<float> dTheta, Span<float> dOut, int count, ReadOnlySpan<bool> active)
    {
        long m = (long)count * Block.ParameterSize, n = (long)count * Rows * Block.OutputWidth;
        using var t = new Operators.BlockBuffer(m); using var y = new Operators.BlockBuffer(n);
        Float32.Widen(dTheta[..(int)m], t.Span);
        ParamJvpActive(t.Span, y.Span, count, active);
        Float32.Narrow(y.Span, dOut);
    }

    /// <summary><see cref="ParamVjpActive"/> on float32 blocks (default: through the float64 map, as <see cref="ParamJvpActive32"/>).</summary>
    internal virtual void ParamVjpActive32(ReadOnlySpan<float> dOut, Span<float> dTheta, int count, ReadOnlySpan<bool> active)
    {
        long m = (long)count * Block.ParameterSize, n = (long)count * Rows * Block.OutputWidth;
        using var g = new Operators.BlockBuffer(n); using var t = new Operators.BlockBuffer(m);
        Float32.Widen(dOut[..(int)n], g.Span);
        t.Span.Clear(); // entries outside active stay unspecified but finite
        ParamVjpActive(g.Span, t.Span, count, active);
        Float32.Narrow(t.Span, dTheta);
    }

    /// <summary><see cref="TangentActive"/> on float32 blocks (composite blocks override it to sweep their children once).</summary>
    internal virtual void TangentActive32(ReadOnlySpan<float> dIn, ReadOnlySpan<float> dTheta, Span<float> dOut, int count, ReadOnlySpan<bool> active)
    {
        int n = count * Rows * Block.OutputWidth;
        bool any = AnyActive(active);
        if (dIn.IsEmpty)
        {
            if (any) ParamJvpActive32(dTheta, dOut, count, active); else dOut[..n].Clear();
            return;
        }
        Jvp32(dIn, dOut, count);
        if (!any) return;
        using var t = new Float32Buffer(n);
        ParamJvpActive32(dTheta, t.Span, count, active);
        Operators.Elementwise.Add(dOut[..n], t.Span, dOut[..n]);
    }

    /// <summary><see cref="CotangentActive"/> on float32 blocks.</summary>
    internal virtual void CotangentActive32(ReadOnlySpan<float> g, Span<float> dIn, Span<float> dTheta, int count, ReadOnlySpan<bool> active)
    {
        if (AnyActive(active)) ParamVjpActive32(g, dTheta, count, active);
        if (!dIn.IsEmpty) Vjp32(g, dIn, count);
    }

    /// <summary><see cref="TangentActive"/> or <see cref="TangentActive32"/> by element type (T is float or double).</summary>
    internal void TangentActive<T>(ReadOnlySpan<T> dIn, ReadOnlySpan<T> dTheta, Span<T> dOut, int count, ReadOnlySpan<bool> active) where T : unmanaged
    {
        if (typeof(T) == typeof(double))
            TangentActive(MemoryMarshal.Cast<T, double>(dIn), MemoryMarshal.Cast<T, double>(dTheta), MemoryMarshal.Cast<T, double>(dOut), count, active);
        else
            TangentActive32(MemoryMarshal.Cast<T, float>(dIn), MemoryMarshal.Cast<T, float>(dTheta), MemoryMarshal.Cast<T, float>(dOut), count, active);
    }

    /// <summary><see cref="CotangentActive"/> or <see cref="CotangentActive32"/> by element type (T is float or double).</summary>
    internal void CotangentActive<T>(ReadOnlySpan<T> g, Span<T> dIn, Span<T> dTheta, int count, ReadOnlySpan<bool> active) where T : unmanaged
    {
        if (typeof(T) == typeof(double))
            CotangentActive(MemoryMarshal.Cast<T, double>(g), MemoryMarshal.Cast<T, double>(dIn), MemoryMarshal.Cast<T, double>(dTheta), count, active);
        else
            CotangentActive32(MemoryMarshal.Cast<T, float>(g), MemoryMarshal.Cast<T, float>(dIn), MemoryMarshal.Cast<T, float>(dTheta), count, active);
    }

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
/// <param name="Variables">Û [Rows, Width + one column per bias], row-major.</param>
/// <param name="RowLocal">Whether D maps row n of a into row n of the output only.</param>
/// <param name="ApplyD">out = D a (overwrite): a [count·Rows, OutDim] → [count·Rows, Out]; the last argument is count.</param>
/// <param name="ApplyDAdjoint">a = D* q (overwrite).</param>
public sealed record LocalSite(string Name, string Weight, string? Bias, int Width, int OutDim, double[] Variables, bool RowLocal,
    SpanMap ApplyD, SpanMap ApplyDAdjoint)
{
    private double[]? _variables = Variables;

    /// <summary>
    /// Û [Rows, Width + biases] in float64. A float32 site built with <see cref="Variables"/> = null
    /// keeps only <see cref="Variables32"/> and widens it here on first use (then keeps the copy):
    /// the Kronecker core's Gram matrices accumulate in float64, K's applications do not need it.
    /// </summary>
    public double[] Variables
    {
        get => _variables ??= Float32.ToDouble(Variables32 ?? throw new InvalidOperationException($"Site '{Name}' has neither float64 nor float32 variables."));
        init => _variables = value;
    }

    /// <summary>Û in float32 when the block's trace keeps it so (float32 precision), else null.</summary>
    internal float[]? Variables32 { get; init; }
    /// <summary>D on float32 rows (float32 sites; null when the site has no float32 maps).</summary>
    internal SpanMap32? ApplyD32 { get; init; }
    /// <summary>D* on float32 rows (with <see cref="ApplyD32"/>).</summary>
    internal SpanMap32? ApplyDAdjoint32 { get; init; }

    /// <summary>
    /// Every weight tensor whose column blocks form W, in U's column order (default: just
    /// <see cref="Weight"/>). A recurrent cell's site has W = [W_hh, W_ih] with u = [v(h); x].
    /// </summary>
    public IReadOnlyList<string> Weights { get; init; } = [Weight];
    /// <summary>
    /// Every bias tensor adding to a, each one a ones column of Û in this order (default:
    /// <see cref="Bias"/> when not null). nn.RNN's b_ih and b_hh both add to a.
    /// </summary>
    public IReadOnlyList<string> Biases { get; init; } = Bias == null ? [] : [Bias];
}

/// <summary>A linear map between two row blocks of <c>count</c> vectors.</summary>
public delegate void SpanMap(ReadOnlySpan<double> src, Span<double> dst, int count);

/// <summary>A linear map between two float32 row blocks of <c>count</c> vectors.</summary>
internal delegate void SpanMap32(ReadOnlySpan<float> src, Span<float> dst, int count);
