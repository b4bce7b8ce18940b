using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
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
    protected override BlockTrace ForwardF32(ParameterSet parameters, ReadOnlySpan<float> input, int rows, Span<float> output) =>
        _inner.Forward32(parameters, input, rows, output);

    /// <inheritdoc/>
    protected override string Describe() => $"attention block '{Prefix}' ({Width} → {Width})";
}

/// <summary>
/// The parameter-free core of <see cref="AttentionBlock"/>: rows [q, k, v] (width 3d) → the
/// concatenated head outputs (width d), sequence by sequence. Its maps are per (sequence, head)
/// GEMMs (docs/math.md#transformers): δS = c(δQ Kᵀ + Q δKᵀ), δP = P ⊙ (δS − rowsum(P ⊙ δS)),
/// δO = δP V + P δV, and their adjoints. With a causal mask they run on the unmasked half
/// (<see cref="CausalProducts"/>) in row blocks of <paramref name="tile"/> tokens
/// (default <see cref="CausalProducts.TileFor"/>; a test or benchmark may choose another).
/// </summary>
internal sealed class AttentionCoreBlock(int width, int heads, int tokens, bool causal, int tile = 0) : StepBlock
{
    private readonly int _tile = !causal ? tokens : tile > 0 ? Math.Min(tile, tokens) : CausalProducts.TileFor(tokens);

    public override int InputWidth => 3 * width;
    public override int OutputWidth => width;
    public override bool RowLocal => false;

    public override BlockTrace Forward(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output) =>
        Run<double>(input, rows, output);

    /// <inheritdoc/>
    public override bool Supports(Precision precision) => precision is Precision.F64 or Precision.F32;

    /// <inheritdoc/>
    protected override string Describe() => $"attention core ({3 * width} → {width}, {heads} heads)";

    /// <summary>
    /// Float32: Q, K, V and the softmax probabilities P are cached in float32 and every product is
    /// an sgemm. The softmax's max and normaliser are float64 (a sum of up to N exponentials), and
    /// so is the row sum rowsum(P ⊙ x) of its Jacobian, which the Jacobian subtracts from x.
    /// </summary>
    protected override BlockTrace ForwardF32(ParameterSet parameters, ReadOnlySpan<float> input, int rows, Span<float> output) =>
        Run<float>(input, rows, output);

    /// <summary>The forward pass on rows of T, with Q, K, V, P and the products in T (double, or float for float32).</summary>
    private unsafe Trace<T> Run<T>(ReadOnlySpan<T> input, int rows, Span<T> output) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (rows % tokens != 0)
            throw new ArgumentException($"Attention: {rows} rows are not whole sequences of {tokens} tokens.");
        int groups = rows / tokens, n = tokens, dh = width / heads, ld = 3 * width;
        var qkv = new T[rows * ld];
        input[..(rows * ld)].CopyTo(qkv);
        var prob = new T[checked(groups * heads * n * n)];
        var kvT = new T[checked(groups * heads * 2 * dh * n)]; // per (sequence, head): Kᵀ then Vᵀ, each dh × n
        var scale = T.CreateTruncating(1.0 / Math.Sqrt(dh));
        fixed (T* po = output[..(rows * width)])
        {
            nint op = (nint)po;
            Parallel.For(0, groups * heads, gh => Head(gh, new Span<T>((T*)op, rows * width)));
        }
        return new Trace<T>(this, rows, qkv, prob, kvT, width, heads, tokens, scale, causal, _tile);

        void Head(int gh, Span<T> o)
        {
            int g = gh / heads, h = gh % heads;
            var q = qkv.AsSpan(g * n * ld + h * dh); var k = qkv.AsSpan(g * n * ld + width + h * dh); var v = qkv.AsSpan(g * n * ld + 2 * width + h * dh);
            var p = prob.AsSpan(gh * n * n, n * n);
            var kt = kvT.AsSpan(gh * 2 * dh * n, dh * n);
            CausalProducts.Transpose(n, dh, k, ld, kt);
            CausalProducts.Transpose(n, dh, v, ld, kvT.AsSpan((gh * 2 + 1) * dh * n, dh * n));
            // Scores on the causal region only; the softmax zeroes the rest of each row (the array is fresh).
            CausalProducts.ABt(n, dh, _tile, scale, q, ld, kt, n, T.Zero, p, n);
            Softmax.Rows(p, n, causal);
            // o_h = P V_h into the head's column block of O
            CausalProducts.LB(n, dh, _tile, T.One, p, n, v, ld, T.Zero, o[(g * n * width + h * dh)..], width);
        }
    }

    /// <summary>
    /// The trace with Q, K, V and P in T: float64, or float32 (sgemm products; its float64 maps
    /// narrow the incoming block once and widen the result once). With a causal mask every n×n
    /// product (scores, P, their tangents and cotangents) runs on the causal region of
    /// <see cref="CausalProducts"/> with row blocks of <paramref name="tile"/> (= n without a mask).
    /// </summary>
    private sealed class Trace<T>(AttentionCoreBlock blk, int rows, T[] qkv, T[] prob, T[] kvT, int width, int heads, int n, T scale,
        bool causal, int tile)
        : BlockTrace(blk, rows) where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly int _groups = rows / n, _dh = width / heads;
        private static bool IsDouble => typeof(T) == typeof(double);

        internal override bool IsSingle => !IsDouble;

        public override void Jvp(ReadOnlySpan<double> dIn, Span<double> dOut, int count)
        {
            if (IsDouble) Map(true, MemoryMarshal.Cast<double, T>(dIn), MemoryMarshal.Cast<double, T>(dOut), count);
            else ViaSingle(dIn, 3 * width, dOut, width, count, Jvp32);
        }

        public override void Vjp(ReadOnlySpan<double> dOut, Span<double> dIn, int count)
        {
            if (IsDouble) Map(false, MemoryMarshal.Cast<double, T>(dOut), MemoryMarshal.Cast<double, T>(dIn), count);
            else ViaSingle(dOut, width, dIn, 3 * width, count, Vjp32);
        }

        internal override void Jvp32(ReadOnlySpan<float> dIn, Span<float> dOut, int count)
        {
            if (IsDouble) base.Jvp32(dIn, dOut, count);
            else Map(true, MemoryMarshal.Cast<float, T>(dIn), MemoryMarshal.Cast<float, T>(dOut), count);
        }

        internal override void Vjp32(ReadOnlySpan<float> dOut, Span<float> dIn, int count)
        {
            if (IsDouble) base.Vjp32(dOut, dIn, count);
            else Map(false, MemoryMarshal.Cast<float, T>(dOut), MemoryMarshal.Cast<float, T>(dIn), count);
        }

        /// <summary>
        /// J_u (<paramref name="forward"/>): δS = c(δQ Kᵀ + Q δKᵀ), δP = softmax'(δS), δO = δP V + P δV;
        /// or J_uᵀ: ḡV = Pᵀ ḡO, ḡS = P ⊙ (ḡO Vᵀ − rowsum(P ⊙ ḡO Vᵀ)), ḡQ = c ḡS K, ḡK = c ḡSᵀ Q.
        /// Vector-major row groups: group sg of the block of vectors reads cache group sg % groups.
        /// </summary>
        private unsafe void Map(bool forward, ReadOnlySpan<T> src, Span<T> dst, int count)
        {
            int ld = 3 * width, dh = _dh, groups = _groups;
            int srcWidth = forward ? ld : width, dstWidth = forward ? width : ld;
            fixed (T* ps = src, pd = dst)
            {
                nint sp = (nint)ps, dp = (nint)pd;
                Parallel.For(0, count * groups * heads, sgh =>
                {
                    int sg = sgh / heads, h = sgh % heads, g = sg % groups;
                    var x = new ReadOnlySpan<T>((T*)sp + sg * n * srcWidth, n * srcWidth);
                    var y = new Span<T>((T*)dp + sg * n * dstWidth, n * dstWidth);
                    var q = qkv.AsSpan(g * n * ld + h * dh); var k = qkv.AsSpan(g * n * ld + width + h * dh); var v = qkv.AsSpan(g * n * ld + 2 * width + h * dh);
                    int gh = g * heads + h;
                    var p = prob.AsSpan(gh * n * n, n * n);
                    var kt = kvT.AsSpan(gh * 2 * dh * n, dh * n); var vt = kvT.AsSpan((gh * 2 + 1) * dh * n, dh * n);
                    var scratch = System.Buffers.ArrayPool<T>.Shared.Rent(n * n + (forward ? dh * n : 0));
                    // t (n×n, pooled, stale outside the causal region) is written on that region first, then read only there.
                    var t = scratch.AsSpan(0, n * n);
                    if (forward)
                    {
                        var dkt = scratch.AsSpan(n * n, dh * n);
                        CausalProducts.Transpose(n, dh, x[(width + h * dh)..], ld, dkt);
                        CausalProducts.ABt(n, dh, tile, scale, x[(h * dh)..], ld, kt, n, T.Zero, t, n);
                        CausalProducts.ABt(n, dh, tile, scale, q, ld, dkt, n, T.One, t, n);
                        SoftmaxBackRows(p, t, n, causal, tile);
                        CausalProducts.LB(n, dh, tile, T.One, t, n, v, ld, T.Zero, y[(h * dh)..], width);
                        CausalProducts.LB(n, dh, tile, T.One, p, n, x[(2 * width + h * dh)..], ld, T.One, y[(h * dh)..], width);
                    }
                    else
                    {
                        var go = x[(h * dh)..];
                        CausalProducts.LtB(n, dh, tile, T.One, p, n, go, width, T.Zero, y[(2 * width + h * dh)..], ld);
                        CausalProducts.ABt(n, dh, tile, T.One, go, width, vt, n, T.Zero, t, n);
                        SoftmaxBackRows(p, t, n, causal, tile);
                        CausalProducts.LB(n, dh, tile, scale, t, n, k, ld, T.Zero, y[(h * dh)..], ld);
                        CausalProducts.LtB(n, dh, tile, scale, t, n, q, ld, T.Zero, y[(width + h * dh)..], ld);
                    }
                    System.Buffers.ArrayPool<T>.Shared.Return(scratch);
                });
            }
        }

        /// <summary>
        /// x ← P ⊙ (x − rowsum(P ⊙ x)) row by row (the softmax Jacobian, symmetric per row) on the
        /// unmasked entries u ≤ t only (masked entries have P = 0); the masked entries of the causal
        /// region (u &gt; t inside row t's tile) are set to 0, and x beyond the region is neither read
        /// nor written. In float32 the row sum is accumulated and subtracted in float64: x − rowsum
        /// cancels where P is concentrated on a few tokens.
        /// </summary>
        private static void SoftmaxBackRows(ReadOnlySpan<T> p, Span<T> x, int n, bool causal, int tile)
        {
            if (IsDouble)
            {
                var pd = MemoryMarshal.Cast<T, double>(p); var xd = MemoryMarshal.Cast<T, double>(x);
                for (int t = 0; t < n; t++)
                {
                    int allowed = causal ? t + 1 : n;
                    var pr = pd.Slice(t * n, allowed); var xr = xd.Slice(t * n, allowed);
                    double dot = System.Numerics.Tensors.TensorPrimitives.Dot(pr, xr);
                    // x ← p ⊙ (x − dot), each element as the scalar expression (no fused multiply-add).
                    System.Numerics.Tensors.TensorPrimitives.Subtract(xr, dot, xr);
                    System.Numerics.Tensors.TensorPrimitives.Multiply(pr, xr, xr);
                    xd[(t * n + allowed)..(t * n + CausalProducts.RowEnd(t, n, tile))].Clear();
                }
                return;
            }
            var pf = MemoryMarshal.Cast<T, float>(p); var xf = MemoryMarshal.Cast<T, float>(x);
            for (int t = 0; t < n; t++)
            {
                int allowed = causal ? t + 1 : n;
                SoftmaxBackRow(pf.Slice(t * n, allowed), xf.Slice(t * n, allowed));
                xf[(t * n + allowed)..(t * n + CausalProducts.RowEnd(t, n, tile))].Clear();
            }
        }

        /// <summary>
        /// One float32 row: x ← p ⊙ (x − Σ p x), the sum and the difference in float64. With AVX-512,
        /// 16 lanes at a time widened to two float64 vectors, the row's last partial vector under a
        /// lane mask (masked-off lanes are neither read nor written).
        /// </summary>
        private static unsafe void SoftmaxBackRow(ReadOnlySpan<float> p, Span<float> x)
        {
            int len = p.Length;
            if (Avx512F.IsSupported)
            {
                fixed (float* pp = p, px = x)
                {
                    Vector512<double> a0 = default, a1 = default;
                    for (int u = 0; u < len; u += 16)
                    {
                        var mask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(len - u)).AsSingle();
                        var pv = Avx512F.MaskLoad(pp + u, mask, Vector512<float>.Zero); var xv = Avx512F.MaskLoad(px + u, mask, Vector512<float>.Zero);
                        a0 = Vector512.FusedMultiplyAdd(Vector512.WidenLower(pv), Vector512.WidenLower(xv), a0);
                        a1 = Vector512.FusedMultiplyAdd(Vector512.WidenUpper(pv), Vector512.WidenUpper(xv), a1);
                    }
                    var vd = Vector512.Create(Vector512.Sum(a0 + a1));
                    for (int u = 0; u < len; u += 16)
                    {
                        var mask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(len - u)).AsSingle();
                        var pv = Avx512F.MaskLoad(pp + u, mask, Vector512<float>.Zero); var xv = Avx512F.MaskLoad(px + u, mask, Vector512<float>.Zero);
                        var r = Vector512.Narrow(Vector512.WidenLower(pv) * (Vector512.WidenLower(xv) - vd), Vector512.WidenUpper(pv) * (Vector512.WidenUpper(xv) - vd));
                        Avx512F.MaskStore(px + u, mask, r);
                    }
                }
                return;
            }
            double dot = Float32.DotWide(p, x);
            var vdot = new Vector<double>(dot);
            int i = 0;
            for (int w = Vector<float>.Count; i <= len - w; i += w)
            {
                Vector.Widen(new Vector<float>(p[i..]), out var p0, out var p1);
                Vector.Widen(new Vector<float>(x[i..]), out var x0, out var x1);
                Vector.Narrow(p0 * (x0 - vdot), p1 * (x1 - vdot)).CopyTo(x[i..]);
            }
            for (; i < len; i++) x[i] = (float)(p[i] * (x[i] - dot));
        }
    }
}
