using System.Numerics;
using GlobalNtk.Dense;
using System.Numerics.Tensors;

namespace GlobalNtk.Models.Blocks;

/// <summary>
/// nn.Embedding: each input row is one integer token id i ∈ [0, V) (input width 1) and the output
/// row is row i of the table <c>{weight}</c> [V, d]. The ids are discrete, so the input Jacobian is
/// zero; the table is not a weight site (it reaches the Kronecker core through J_rest,
/// docs/math.md#kronecker-core).
/// </summary>
public sealed class EmbeddingBlock : StepBlock
{
    /// <summary>A table named <paramref name="weight"/> of <paramref name="vocabulary"/> rows of <paramref name="width"/> features.</summary>
    public EmbeddingBlock(string weight, int vocabulary, int width)
    {
        if (vocabulary < 1 || width < 1) throw new ArgumentException($"Embedding '{weight}': vocabulary ({vocabulary}) and width ({width}) must be ≥ 1.");
        Vocabulary = vocabulary; OutputWidth = width;
        ParameterSpecs = [new ParameterSpec(weight, [vocabulary, width])];
    }

    /// <summary>V.</summary>
    public int Vocabulary { get; }
    /// <summary>1: the token id.</summary>
    public override int InputWidth => 1;
    /// <inheritdoc/>
    public override int OutputWidth { get; }
    /// <inheritdoc/>
    public override IReadOnlyList<ParameterSpec> ParameterSpecs { get; }

    /// <inheritdoc/>
    public override BlockTrace Forward(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output)
    {
        var table = Read(parameters, ParameterSpecs[0]);
        int d = OutputWidth;
        var ids = TokenIds(input, rows);
        for (int r = 0; r < rows; r++) table.AsSpan(ids[r] * d, d).CopyTo(output.Slice(r * d, d));
        return new Trace(this, rows, ids);
    }

    /// <summary>The token id of every row, each checked to be an integer in [0, V).</summary>
    private int[] TokenIds<T>(ReadOnlySpan<T> input, int rows) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var ids = new int[rows];
        for (int r = 0; r < rows; r++)
        {
            double x = double.CreateTruncating(input[r]);
            if (x != Math.Floor(x) || x < 0 || x >= Vocabulary)
                throw new ArgumentException($"Embedding '{ParameterSpecs[0].Name}': token id {x} at row {r} is not an integer in [0, {Vocabulary}).");
            ids[r] = (int)x;
        }
        return ids;
    }

    /// <inheritdoc/>
    public override bool Supports(Precision precision) => precision is Precision.F64 or Precision.F32;

    /// <summary>
    /// Float32: the table rows rounded to float32; the trace is the float64 one (it caches only the
    /// token ids, and its maps copy table rows (J_θ) or add rows of g into them (J_θ*, a sum kept in
    /// float64): there is no product to run in float32 and no cache to halve).
    /// </summary>
    protected override BlockTrace ForwardF32(ParameterSet parameters, ReadOnlySpan<float> input, int rows, Span<float> output) =>
        Lookup32(parameters, TokenIds(input, rows), output);

    /// <summary>The token ids checked before any rounding (an id above 2²⁴ or a near-integer would round in float32).</summary>
    private protected override BlockTrace ForwardF32(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<float> output) =>
        Lookup32(parameters, TokenIds(input, rows), output);

    private Trace Lookup32(ParameterSet parameters, int[] ids, Span<float> output)
    {
        var table = Read(parameters, ParameterSpecs[0]);
        int d = OutputWidth;
        for (int r = 0; r < ids.Length; r++) Float32.Narrow(table.AsSpan(ids[r] * d, d), output.Slice(r * d, d));
        return new Trace(this, ids.Length, ids);
    }

    /// <inheritdoc/>
    protected override string Describe() => $"embedding '{ParameterSpecs[0].Name}' ({Vocabulary} × {OutputWidth})";

    private sealed class Trace(EmbeddingBlock blk, int rows, int[] ids) : BlockTrace(blk, rows)
    {
        public override void Jvp(ReadOnlySpan<double> dIn, Span<double> dOut, int count) => dOut[..(count * Rows * blk.OutputWidth)].Clear();
        public override void Vjp(ReadOnlySpan<double> dOut, Span<double> dIn, int count) => dIn[..(count * Rows)].Clear();

        // δy[r] = δE[id_r]
        public override void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> dOut, int count)
        {
            int d = blk.OutputWidth, size = blk.ParameterSize;
            for (int j = 0; j < count; j++)
                for (int r = 0; r < Rows; r++) dTheta.Slice(j * size + ids[r] * d, d).CopyTo(dOut.Slice((j * Rows + r) * d, d));
        }

        // δE[i] = Σ_{r: id_r = i} g[r]
        public override void ParamVjp(ReadOnlySpan<double> dOut, Span<double> dTheta, int count)
        {
            int d = blk.OutputWidth, size = blk.ParameterSize;
            dTheta[..(count * size)].Clear();
            for (int j = 0; j < count; j++)
                for (int r = 0; r < Rows; r++)
                {
                    var e = dTheta.Slice(j * size + ids[r] * d, d);
                    TensorPrimitives.Add(e, dOut.Slice((j * Rows + r) * d, d), e);
                }
        }
    }
}

/// <summary>
/// The embedding's scale and positional encoding: y[t] = c·u[t] + PE[t] for the token t of each
/// row (rows are grouped by sequence, <see cref="Tokens"/> rows per sequence). c = √d or 1; PE is
/// none, the fixed sinusoid (<see cref="Sinusoid"/>) or a learned table, a parameter
/// [max_positions, d] (not a weight site: it reaches the Kronecker core through J_rest).
/// The input Jacobian is c·I, so a weight site before it keeps a row-local D.
/// </summary>
public sealed class PositionalEncodingBlock : StepBlock
{
    private readonly double[]? _fixed;

    private PositionalEncodingBlock(int width, int tokens, double scale, double[]? fixedTable, ParameterSpec? learned)
    {
        if (width < 1 || tokens < 1) throw new ArgumentException($"Positional encoding: width ({width}) and tokens ({tokens}) must be ≥ 1.");
        if (!double.IsFinite(scale)) throw new ArgumentException($"Positional encoding: scale {scale} must be finite.");
        Width = width; Tokens = tokens; Scale = scale; _fixed = fixedTable;
        ParameterSpecs = learned == null ? [] : [learned];
    }

    /// <summary>y = c·u (no positional encoding).</summary>
    public static PositionalEncodingBlock None(int width, int tokens, double scale = 1.0) => new(width, tokens, scale, null, null);

    /// <summary>y = c·u + PE with the fixed sinusoid of <see cref="Sinusoid"/>.</summary>
    public static PositionalEncodingBlock Sinusoidal(int width, int tokens, double scale = 1.0) =>
        new(width, tokens, scale, Sinusoid(tokens, width), null);

    /// <summary>y = c·u + P[t] with a learned table <paramref name="name"/> [<paramref name="maxPositions"/>, d] (maxPositions ≥ tokens).</summary>
    public static PositionalEncodingBlock Learned(string name, int width, int tokens, int maxPositions, double scale = 1.0)
    {
        if (maxPositions < tokens)
            throw new ArgumentException($"Positional encoding: {tokens} tokens per sequence but the learned table '{name}' has {maxPositions} rows.");
        return new(width, tokens, scale, null, new ParameterSpec(name, [maxPositions, width]));
    }

    /// <summary>The fixed sinusoid PE[t, 2i] = sin(t/10000^{2i/d}), PE[t, 2i+1] = cos(t/10000^{2i/d}) (Vaswani et al.), as [tokens, d].</summary>
    public static double[] Sinusoid(int tokens, int d)
    {
        var pe = new double[tokens * d];
        for (int t = 0; t < tokens; t++)
            for (int i = 0; i < d; i++)
            {
                double freq = Math.Pow(10000.0, -(i - i % 2) / (double)d);
                pe[t * d + i] = i % 2 == 0 ? Math.Sin(t * freq) : Math.Cos(t * freq);
            }
        return pe;
    }

    /// <summary>d.</summary>
    public int Width { get; }
    /// <summary>Tokens N per sequence.</summary>
    public int Tokens { get; }
    /// <summary>c.</summary>
    public double Scale { get; }
    /// <inheritdoc/>
    public override int InputWidth => Width;
    /// <inheritdoc/>
    public override int OutputWidth => Width;
    /// <inheritdoc/>
    public override IReadOnlyList<ParameterSpec> ParameterSpecs { get; }

    /// <inheritdoc/>
    public override BlockTrace Forward(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output)
    {
        if (rows % Tokens != 0) throw new ArgumentException($"Positional encoding: {rows} rows are not whole sequences of {Tokens} tokens.");
        int d = Width;
        var pe = ParameterSpecs.Count > 0 ? Read(parameters, ParameterSpecs[0]) : _fixed;
        TensorPrimitives.Multiply(input[..(rows * d)], Scale, output[..(rows * d)]);
        if (pe != null)
            for (int r = 0; r < rows; r++) TensorPrimitives.Add(output.Slice(r * d, d), pe.AsSpan((r % Tokens) * d, d), output.Slice(r * d, d));
        return new Trace(this, rows);
    }

    /// <inheritdoc/>
    public override bool Supports(Precision precision) => precision is Precision.F64 or Precision.F32;

    /// <summary>
    /// Float32: each row formed in float64 from its float32 input and rounded once; the trace is the
    /// float64 one (it caches nothing, and its maps scale rows by c (J_u) or copy and sum rows of the
    /// learned table (J_θ, J_θ*); there is no product to run in float32).
    /// </summary>
    protected override BlockTrace ForwardF32(ParameterSet parameters, ReadOnlySpan<float> input, int rows, Span<float> output)
    {
        if (rows % Tokens != 0) throw new ArgumentException($"Positional encoding: {rows} rows are not whole sequences of {Tokens} tokens.");
        int d = Width;
        var pe = ParameterSpecs.Count > 0 ? Read(parameters, ParameterSpecs[0]) : _fixed;
        var row = new double[d];
        for (int r = 0; r < rows; r++)
        {
            Float32.Widen(input.Slice(r * d, d), row);
            TensorPrimitives.Multiply(row, Scale, row);
            if (pe != null) TensorPrimitives.Add(row, pe.AsSpan((r % Tokens) * d, d), row);
            Float32.Narrow(row, output.Slice(r * d, d));
        }
        return new Trace(this, rows);
    }

    private sealed class Trace(PositionalEncodingBlock blk, int rows) : BlockTrace(blk, rows)
    {
        public override void Jvp(ReadOnlySpan<double> dIn, Span<double> dOut, int count)
        {
            int n = count * Rows * blk.Width;
            TensorPrimitives.Multiply(dIn[..n], blk.Scale, dOut[..n]);
        }

        public override void Vjp(ReadOnlySpan<double> dOut, Span<double> dIn, int count) => Jvp(dOut, dIn, count);

        // δy[r] = δP[t(r)]
        public override void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> dOut, int count)
        {
            int d = blk.Width, size = blk.ParameterSize;
            if (size == 0) { base.ParamJvp(dTheta, dOut, count); return; }
            for (int j = 0; j < count; j++)
                for (int r = 0; r < Rows; r++) dTheta.Slice(j * size + (r % blk.Tokens) * d, d).CopyTo(dOut.Slice((j * Rows + r) * d, d));
        }

        // δP[t] = Σ_{r at token t} g[r]
        public override void ParamVjp(ReadOnlySpan<double> dOut, Span<double> dTheta, int count)
        {
            int d = blk.Width, size = blk.ParameterSize;
            if (size == 0) return;
            dTheta[..(count * size)].Clear();
            for (int j = 0; j < count; j++)
                for (int r = 0; r < Rows; r++)
                {
                    var e = dTheta.Slice(j * size + (r % blk.Tokens) * d, d);
                    TensorPrimitives.Add(e, dOut.Slice((j * Rows + r) * d, d), e);
                }
        }
    }
}
