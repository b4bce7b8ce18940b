using GlobalNtk.Operators;
using GlobalNtk.Dense;

namespace GlobalNtk.Models.Blocks;

/// <summary>
/// Multi-head self-attention exactly as PyTorch's <c>nn.MultiheadAttention</c> inside
/// <c>nn.TransformerEncoderLayer</c> (batch_first, dropout 0; docs/math.md#transformers):
/// [q, k, v] = u W_inᵀ + b_in with the fused <c>{prefix}.in_proj_weight</c> [3d, d] and
/// <c>{prefix}.in_proj_bias</c> [3d]; per head h, o_h = softmax(q_h k_hᵀ/√d_h + mask) v_h; then
/// y = [o_1 … o_H] W_oᵀ + b_o with <c>{prefix}.out_proj.weight</c> [d, d], <c>.bias</c> [d].
/// The biases are optional together (PyTorch's <c>bias=False</c>); <c>causal</c> masks every
/// token u &gt; t out of token t's softmax.
/// </summary>
/// <remarks>
/// Rows are grouped by sequence: rows g·N … (g+1)·N − 1 are the N tokens of sequence g, so the
/// block needs the token count N and a row count that is a multiple of it (in a block of vectors
/// each vector's rows are whole sequences too). Attention mixes the tokens of a sequence, so the
/// block is not row-local. Internally it is <c>in_proj → attention core → out_proj</c>, composed
/// like a <see cref="SequentialBlock"/>: in_proj is a weight site whose D runs through the
/// attention core (not row-local), out_proj is an affine site with D = identity.
/// </remarks>
public sealed class AttentionBlock : StepBlock
{
    private readonly SequentialBlock _inner;

    /// <summary>
    /// Self-attention over <paramref name="width"/> = d features with <paramref name="heads"/>
    /// heads (dividing d), on sequences of <paramref name="tokens"/> rows, parameters under
    /// <paramref name="prefix"/> (e.g. <c>layers.0.self_attn</c>).
    /// </summary>
    public AttentionBlock(string prefix, int width, int heads, int tokens, bool causal, bool bias = true)
    {
        if (width < 1 || heads < 1 || tokens < 1)
            throw new ArgumentException($"Attention '{prefix}': width ({width}), heads ({heads}) and tokens ({tokens}) must be ≥ 1.");
        if (width % heads != 0) throw new ArgumentException($"Attention '{prefix}': width {width} is not divisible by heads {heads}.");
        Prefix = prefix; Width = width; Heads = heads; Tokens = tokens; Causal = causal;
        InProj = new AffineBlock(prefix + ".in_proj", width, 3 * width, prefix + ".in_proj_weight", bias ? prefix + ".in_proj_bias" : null);
        OutProj = AffineBlock.Linear(prefix + ".out_proj", width, width, bias);
        _inner = new SequentialBlock(InProj, new AttentionCoreBlock(width, heads, tokens, causal), OutProj);
    }

    /// <summary>Module prefix of the parameters.</summary>
    public string Prefix { get; }
    /// <summary>d.</summary>
    public int Width { get; }
    /// <summary>Number of heads H.</summary>
    public int Heads { get; }
    /// <summary>Tokens N per sequence (rows per group).</summary>
    public int Tokens { get; }
    /// <summary>Whether token t attends to tokens ≤ t only.</summary>
    public bool Causal { get; }
    /// <summary>The fused Q, K, V projection (a weight site).</summary>
    public AffineBlock InProj { get; }
    /// <summary>The output projection (a weight site).</summary>
    public AffineBlock OutProj { get; }
    /// <summary>in_proj, the attention core and out_proj, in order.</summary>
    public SequentialBlock Inner => _inner;
    /// <inheritdoc/>
    public override int InputWidth => Width;
    /// <inheritdoc/>
    public override int OutputWidth => Width;
    /// <inheritdoc/>
    public override IReadOnlyList<ParameterSpec> ParameterSpecs => _inner.ParameterSpecs;
    /// <inheritdoc/>
    public override bool RowLocal => false;
    internal override int ScratchWidth => 3 * Width;

    /// <summary>Runs in_proj, the attention core and out_proj; the trace is that of <see cref="Inner"/> (its sites: in_proj, out_proj).</summary>
    public override BlockTrace Forward(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output) =>
        _inner.Forward(parameters, input, rows, output);

    /// <inheritdoc/>
    public override bool Supports(Precision precision) => _inner.Supports(precision);

    /// <summary>Float32: in_proj, the attention core and out_proj each in float32 (see <see cref="AttentionCoreBlock"/>).</summary>
    protected override BlockTrace ForwardF32(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output) =>
        _inner.Forward(parameters, input, rows, output, Precision.F32);

    /// <inheritdoc/>
    protected override string Describe() => $"attention block '{Prefix}' ({Width} → {Width})";
}

/// <summary>
/// The parameter-free core of <see cref="AttentionBlock"/>: rows [q, k, v] (width 3d) → the
/// concatenated head outputs (width d), sequence by sequence. Its maps are per (sequence, head)
/// GEMMs (docs/math.md#transformers): δS = c(δQ Kᵀ + Q δKᵀ), δP = P ⊙ (δS − rowsum(P ⊙ δS)),
/// δO = δP V + P δV, and their adjoints.
/// </summary>
internal sealed class AttentionCoreBlock(int width, int heads, int tokens, bool causal) : StepBlock
{
    public override int InputWidth => 3 * width;
    public override int OutputWidth => width;
    public override bool RowLocal => false;

    public override BlockTrace Forward(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output)
    {
        if (rows % tokens != 0)
            throw new ArgumentException($"Attention: {rows} rows are not whole sequences of {tokens} tokens.");
        int groups = rows / tokens, n = tokens, dh = width / heads, ld = 3 * width;
        var qkv = input[..(rows * ld)].ToArray();
        var prob = new double[checked(groups * heads * n * n)];
        double scale = 1.0 / Math.Sqrt(dh);
        unsafe
        {
            fixed (double* po = output)
            {
                nint op = (nint)po;
                Parallel.For(0, groups * heads, gh => Head(gh, new Span<double>((double*)op, rows * width)));
            }
        }
        return new Trace(this, rows, qkv, prob, width, heads, tokens, scale);

        void Head(int gh, Span<double> o)
        {
            int g = gh / heads, h = gh % heads;
            var q = qkv.AsSpan(g * n * ld + h * dh); var k = qkv.AsSpan(g * n * ld + width + h * dh); var v = qkv.AsSpan(g * n * ld + 2 * width + h * dh);
            var p = prob.AsSpan(gh * n * n, n * n);
            Gemm.Multiply(Trans.No, Trans.Yes, n, n, dh, scale, q, ld, k, ld, 0.0, p, n);
            Softmax.Rows(p, n, causal);
            // o_h = P V_h into the head's column block of O
            Gemm.Multiply(Trans.No, Trans.No, n, dh, n, 1.0, p, n, v, ld, 0.0, o[(g * n * width + h * dh)..], width);
        }
    }

    /// <inheritdoc/>
    public override bool Supports(Precision precision) => precision is Precision.F64 or Precision.F32;

    /// <inheritdoc/>
    protected override string Describe() => $"attention core ({3 * width} → {width}, {heads} heads)";

    /// <summary>
    /// Float32: Q, K, V and the softmax probabilities P are cached in float32 and every product is
    /// an sgemm. The softmax's max and normaliser are float64 (a sum of up to N exponentials), and
    /// so is the row sum rowsum(P ⊙ x) of its Jacobian, which the Jacobian subtracts from x.
    /// </summary>
    protected override BlockTrace ForwardF32(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output)
    {
        if (rows % tokens != 0)
            throw new ArgumentException($"Attention: {rows} rows are not whole sequences of {tokens} tokens.");
        int groups = rows / tokens, n = tokens, dh = width / heads, ld = 3 * width;
        var qkv = Float32.ToSingle(input[..(rows * ld)]);
        var prob = new float[checked(groups * heads * n * n)];
        float scale = (float)(1.0 / Math.Sqrt(dh));
        using (var o32 = new Float32Buffer((long)rows * width))
        {
            unsafe
            {
                fixed (float* po = o32.Span)
                {
                    nint op = (nint)po;
                    Parallel.For(0, groups * heads, gh => Head(gh, new Span<float>((float*)op, rows * width)));
                }
            }
            Float32.Widen(o32.Span, output[..(rows * width)]);
        }
        return new Trace32(this, rows, qkv, prob, width, heads, tokens, scale);

        void Head(int gh, Span<float> o)
        {
            int g = gh / heads, h = gh % heads;
            var q = qkv.AsSpan(g * n * ld + h * dh); var k = qkv.AsSpan(g * n * ld + width + h * dh); var v = qkv.AsSpan(g * n * ld + 2 * width + h * dh);
            var p = prob.AsSpan(gh * n * n, n * n);
            Gemm.Multiply(Trans.No, Trans.Yes, n, n, dh, scale, q, ld, k, ld, 0f, p, n);
            Softmax.Rows(p, n, causal);
            Gemm.Multiply(Trans.No, Trans.No, n, dh, n, 1f, p, n, v, ld, 0f, o[(g * n * width + h * dh)..], width);
        }
    }

    private sealed class Trace(AttentionCoreBlock blk, int rows, double[] qkv, double[] prob, int width, int heads, int n, double scale)
        : BlockTrace(blk, rows)
    {
        private readonly int _groups = rows / n, _dh = width / heads;

        /// <summary>Vector-major row groups: group sg of the block of vectors reads cache group sg % groups.</summary>
        public override void Jvp(ReadOnlySpan<double> dIn, Span<double> dOut, int count)
        {
            int ld = 3 * width, dh = _dh, groups = _groups;
            var src = dIn; var dst = dOut;
            unsafe
            {
                fixed (double* ps = src, pd = dst)
                {
                    nint sp = (nint)ps, dp = (nint)pd;
                    Parallel.For(0, count * groups * heads, sgh =>
                    {
                        int sg = sgh / heads, h = sgh % heads, g = sg % groups;
                        var dqkv = new ReadOnlySpan<double>((double*)sp + sg * n * ld, n * ld);
                        var o = new Span<double>((double*)dp + sg * n * width, n * width);
                        var q = qkv.AsSpan(g * n * ld + h * dh); var k = qkv.AsSpan(g * n * ld + width + h * dh); var v = qkv.AsSpan(g * n * ld + 2 * width + h * dh);
                        var p = prob.AsSpan((g * heads + h) * n * n, n * n);
                        var ds = System.Buffers.ArrayPool<double>.Shared.Rent(n * n);
                        Gemm.Multiply(Trans.No, Trans.Yes, n, n, dh, scale, dqkv[(h * dh)..], ld, k, ld, 0.0, ds, n);
                        Gemm.Multiply(Trans.No, Trans.Yes, n, n, dh, scale, q, ld, dqkv[(width + h * dh)..], ld, 1.0, ds, n);
                        SoftmaxBackRows(p, ds, n);
                        Gemm.Multiply(Trans.No, Trans.No, n, dh, n, 1.0, ds, n, v, ld, 0.0, o[(h * dh)..], width);
                        Gemm.Multiply(Trans.No, Trans.No, n, dh, n, 1.0, p, n, dqkv[(2 * width + h * dh)..], ld, 1.0, o[(h * dh)..], width);
                        System.Buffers.ArrayPool<double>.Shared.Return(ds);
                    });
                }
            }
        }

        /// <summary>ḡV = Pᵀ ḡO, ḡS = P ⊙ (ḡO Vᵀ − rowsum(P ⊙ ḡO Vᵀ)), ḡQ = c ḡS K, ḡK = c ḡSᵀ Q.</summary>
        public override void Vjp(ReadOnlySpan<double> dOut, Span<double> dIn, int count)
        {
            int ld = 3 * width, dh = _dh, groups = _groups;
            unsafe
            {
                fixed (double* ps = dOut, pd = dIn)
                {
                    nint sp = (nint)ps, dp = (nint)pd;
                    Parallel.For(0, count * groups * heads, sgh =>
                    {
                        int sg = sgh / heads, h = sgh % heads, g = sg % groups;
                        var go = new ReadOnlySpan<double>((double*)sp + sg * n * width, n * width)[(h * dh)..];
                        var gqkv = new Span<double>((double*)dp + sg * n * ld, n * ld);
                        var q = qkv.AsSpan(g * n * ld + h * dh); var k = qkv.AsSpan(g * n * ld + width + h * dh); var v = qkv.AsSpan(g * n * ld + 2 * width + h * dh);
                        var p = prob.AsSpan((g * heads + h) * n * n, n * n);
                        var gs = System.Buffers.ArrayPool<double>.Shared.Rent(n * n);
                        Gemm.Multiply(Trans.Yes, Trans.No, n, dh, n, 1.0, p, n, go, width, 0.0, gqkv[(2 * width + h * dh)..], ld);
                        Gemm.Multiply(Trans.No, Trans.Yes, n, n, dh, 1.0, go, width, v, ld, 0.0, gs, n);
                        SoftmaxBackRows(p, gs, n);
                        Gemm.Multiply(Trans.No, Trans.No, n, dh, n, scale, gs, n, k, ld, 0.0, gqkv[(h * dh)..], ld);
                        Gemm.Multiply(Trans.Yes, Trans.No, n, dh, n, scale, gs, n, q, ld, 0.0, gqkv[(width + h * dh)..], ld);
                        System.Buffers.ArrayPool<double>.Shared.Return(gs);
                    });
                }
            }
        }

        /// <summary>x ← P ⊙ (x − rowsum(P ⊙ x)) row by row (the softmax Jacobian, symmetric per row); masked entries have P = 0.</summary>
        private static void SoftmaxBackRows(ReadOnlySpan<double> p, Span<double> x, int n)
        {
            for (int t = 0; t < n; t++)
            {
                var pr = p.Slice(t * n, n); var xr = x.Slice(t * n, n);
                double dot = System.Numerics.Tensors.TensorPrimitives.Dot(pr, xr);
                for (int u = 0; u < n; u++) xr[u] = pr[u] * (xr[u] - dot);
            }
        }
    }

    /// <summary>
    /// The float32 trace: the maps of <see cref="Trace"/> with float32 Q, K, V, P and sgemm
    /// products; each map narrows its incoming block once and widens its result once.
    /// </summary>
    private sealed class Trace32(AttentionCoreBlock blk, int rows, float[] qkv, float[] prob, int width, int heads, int n, float scale)
        : BlockTrace(blk, rows)
    {
        private readonly int _groups = rows / n, _dh = width / heads;

        internal override bool IsSingle => true;

        public override void Jvp(ReadOnlySpan<double> dIn, Span<double> dOut, int count) => ViaSingle(dIn, 3 * width, dOut, width, count, Jvp32);

        public override void Vjp(ReadOnlySpan<double> dOut, Span<double> dIn, int count) => ViaSingle(dOut, width, dIn, 3 * width, count, Vjp32);

        internal override void Jvp32(ReadOnlySpan<float> dIn, Span<float> dOut, int count)
        {
            int ld = 3 * width, dh = _dh, groups = _groups;
            unsafe
            {
                fixed (float* ps = dIn, pd = dOut)
                {
                    nint sp = (nint)ps, dp = (nint)pd;
                    Parallel.For(0, count * groups * heads, sgh =>
                    {
                        int sg = sgh / heads, h = sgh % heads, g = sg % groups;
                        var dqkv = new ReadOnlySpan<float>((float*)sp + sg * n * ld, n * ld);
                        var o = new Span<float>((float*)dp + sg * n * width, n * width);
                        var q = qkv.AsSpan(g * n * ld + h * dh); var k = qkv.AsSpan(g * n * ld + width + h * dh); var v = qkv.AsSpan(g * n * ld + 2 * width + h * dh);
                        var p = prob.AsSpan((g * heads + h) * n * n, n * n);
                        var ds = System.Buffers.ArrayPool<float>.Shared.Rent(n * n);
                        Gemm.Multiply(Trans.No, Trans.Yes, n, n, dh, scale, dqkv[(h * dh)..], ld, k, ld, 0f, ds, n);
                        Gemm.Multiply(Trans.No, Trans.Yes, n, n, dh, scale, q, ld, dqkv[(width + h * dh)..], ld, 1f, ds, n);
                        SoftmaxBackRows(p, ds, n);
                        Gemm.Multiply(Trans.No, Trans.No, n, dh, n, 1f, ds, n, v, ld, 0f, o[(h * dh)..], width);
                        Gemm.Multiply(Trans.No, Trans.No, n, dh, n, 1f, p, n, dqkv[(2 * width + h * dh)..], ld, 1f, o[(h * dh)..], width);
                        System.Buffers.ArrayPool<float>.Shared.Return(ds);
                    });
                }
            }
        }

        internal override void Vjp32(ReadOnlySpan<float> dOut, Span<float> dIn, int count)
        {
            int ld = 3 * width, dh = _dh, groups = _groups;
            unsafe
            {
                fixed (float* ps = dOut, pd = dIn)
                {
                    nint sp = (nint)ps, dp = (nint)pd;
                    Parallel.For(0, count * groups * heads, sgh =>
                    {
                        int sg = sgh / heads, h = sgh % heads, g = sg % groups;
                        var go = new ReadOnlySpan<float>((float*)sp + sg * n * width, n * width)[(h * dh)..];
                        var gqkv = new Span<float>((float*)dp + sg * n * ld, n * ld);
                        var q = qkv.AsSpan(g * n * ld + h * dh); var k = qkv.AsSpan(g * n * ld + width + h * dh); var v = qkv.AsSpan(g * n * ld + 2 * width + h * dh);
                        var p = prob.AsSpan((g * heads + h) * n * n, n * n);
                        var gs = System.Buffers.ArrayPool<float>.Shared.Rent(n * n);
                        Gemm.Multiply(Trans.Yes, Trans.No, n, dh, n, 1f, p, n, go, width, 0f, gqkv[(2 * width + h * dh)..], ld);
                        Gemm.Multiply(Trans.No, Trans.Yes, n, n, dh, 1f, go, width, v, ld, 0f, gs, n);
                        SoftmaxBackRows(p, gs, n);
                        Gemm.Multiply(Trans.No, Trans.No, n, dh, n, scale, gs, n, k, ld, 0f, gqkv[(h * dh)..], ld);
                        Gemm.Multiply(Trans.Yes, Trans.No, n, dh, n, scale, gs, n, q, ld, 0f, gqkv[(width + h * dh)..], ld);
                        System.Buffers.ArrayPool<float>.Shared.Return(gs);
                    });
                }
            }
        }

        /// <summary>
        /// x ← P ⊙ (x − rowsum(P ⊙ x)) row by row, with the row sum accumulated and subtracted in
        /// float64: x − rowsum cancels where P is concentrated on a few tokens.
        /// </summary>
        private static void SoftmaxBackRows(ReadOnlySpan<float> p, Span<float> x, int n)
        {
            for (int t = 0; t < n; t++)
            {
                var pr = p.Slice(t * n, n); var xr = x.Slice(t * n, n);
                double dot = Float32.DotWide(pr, xr);
                int u = 0, w = System.Numerics.Vector<float>.Count;
                var vd = new System.Numerics.Vector<double>(dot);
                for (; u <= n - w; u += w)
                {
                    System.Numerics.Vector.Widen(new System.Numerics.Vector<float>(pr[u..]), out var p0, out var p1);
                    System.Numerics.Vector.Widen(new System.Numerics.Vector<float>(xr[u..]), out var x0, out var x1);
                    System.Numerics.Vector.Narrow(p0 * (x0 - vd), p1 * (x1 - vd)).CopyTo(xr[u..]);
                }
                for (; u < n; u++) xr[u] = (float)(pr[u] * (xr[u] - dot));
            }
        }
    }
}
