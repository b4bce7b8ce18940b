using GlobalNtk.Dense;

namespace GlobalNtk.Models.Transformer;

/// <summary>
/// Intermediate quantities of an encoder block, in pre-LN evaluation order (a post-LN block
/// evaluates Input, Qkv, Attn, Norm1, Hidden, Out, Norm2; see <see cref="EncoderBlock.Rank"/>).
/// </summary>
internal enum BlockStage
{
    /// <summary>The block input z (width d).</summary>
    Input = 0,
    /// <summary>LN₁'s output (width d): LN₁(z) pre-LN, LN₁(z + attn) post-LN.</summary>
    Norm1 = 1,
    /// <summary>qkv = W_in u + b_in (width 3d): the in_proj site's pre-activation.</summary>
    Qkv = 2,
    /// <summary>W_O o + b_O (width d): the out_proj site's pre-activation.</summary>
    Attn = 3,
    /// <summary>LN₂'s output (width d): LN₂(z') pre-LN, the block output LN₂(z' + ff) post-LN.</summary>
    Norm2 = 4,
    /// <summary>a₁ = W₁ h + b₁ (width d_ff): the linear1 site's pre-activation.</summary>
    Hidden = 5,
    /// <summary>W₂ m + b₂ (width d): the linear2 site's pre-activation.</summary>
    Out = 6,
    /// <summary>The encoder's final norm of the last block's output (width d; only in a block that has it).</summary>
    Final = 7,
}

/// <summary>
/// Tangent (forward-mode) and cotangent (reverse-mode) propagation through one linearised
/// encoder block, for a chunk of (vector, sequence) rows. Every derivative map of the block —
/// A_k, J_θ and each site's D_s — is this one propagation started (or stopped) at a different
/// <see cref="BlockStage"/>, with the perturbation injected there (docs/math.md#transformers).
/// </summary>
/// <remarks>
/// Buffers hold one row per (sequence, token) of the chunk: row r ↔ cache row s₀·N + r, where the
/// chunk covers sequences [s₀, s₀ + ns) of one vector. Linear maps are one GEMM over all rows;
/// attention is per (sequence, head).
/// </remarks>
internal sealed class BlockTangent
{
    private EncoderBlock _b;
    private readonly int _capacity;
    private readonly double[][] _buf;
    private readonly double[] _scratchD, _scratchF;
    private int _s0, _ns;

    /// <summary>A workspace for chunks of up to <paramref name="maxSequences"/> sequences of blocks shaped like <paramref name="block"/> (<paramref name="finalNorm"/>: one of them carries the final norm).</summary>
    public BlockTangent(EncoderBlock block, int maxSequences, bool finalNorm)
    {
        _b = block;
        _capacity = maxSequences;
        int rows = maxSequences * block.N;
        _buf = new double[Stages][];
        // The Final buffer exists only where the encoder has a final norm.
        for (int i = 0; i < Stages; i++) _buf[i] = new double[(BlockStage)i == BlockStage.Final && !finalNorm ? 0 : rows * Width((BlockStage)i)];
        _scratchD = new double[rows * block.D];
        _scratchF = new double[rows * block.F];
    }

    private const int Stages = 8;

    /// <summary>Row width of a stage's buffer.</summary>
    public int Width(BlockStage s) => s switch { BlockStage.Qkv => 3 * _b.D, BlockStage.Hidden => _b.F, _ => _b.D };

    /// <summary>Rows in the current chunk.</summary>
    public int Rows => _ns * _b.N;
    /// <summary>First cache row of the chunk.</summary>
    public int CacheRow0 => _s0 * _b.N;

    /// <summary>The buffer of a stage, [Rows, Width(stage)].</summary>
    public Span<double> Buffer(BlockStage s) => _buf[(int)s].AsSpan(0, Rows * Width(s));

    /// <summary>
    /// Selects the block (same sizes as the one the workspace was made for) and its sequences
    /// [s0, s0 + ns), and zeroes the buffers of stages that come at or after
    /// <paramref name="clearFrom"/> in the block's evaluation order.
    /// </summary>
    public void Begin(EncoderBlock block, int s0, int ns, BlockStage clearFrom)
    {
        if (ns < 1 || ns > _capacity) throw new ArgumentOutOfRangeException(nameof(ns));
        _b = block; _s0 = s0; _ns = ns;
        int from = block.Rank(clearFrom);
        for (int i = 0; i < Stages; i++)
            if (block.Rank((BlockStage)i) >= from && ((BlockStage)i != BlockStage.Final || block.HasFinal)) Buffer((BlockStage)i).Clear();
    }

    /// <summary>
    /// Forward-mode: with perturbations written into the buffers of stages at or after
    /// <paramref name="start"/> (all others zero), propagates them to the block output; the result
    /// is left in the buffer of <see cref="EncoderBlock.OutputStage"/>.
    /// </summary>
    public void Forward(BlockStage start)
    {
        if (!_b.NormFirst) { ForwardPostNorm(start); return; }
        var b = _b; int rows = Rows, d = b.D, f = b.F, c0 = CacheRow0;
        var dz = _buf[0]; var dh1 = _buf[1]; var dqkv = _buf[2]; var dattn = _buf[3];
        var dh2 = _buf[4]; var da1 = _buf[5]; var dout = _buf[6];
        if (start <= BlockStage.Input)
            ForRows(r => EncoderBlock.LayerNormJvpAdd(b.Xhat1.AsSpan((c0 + r) * d, d), b.Rstd1[c0 + r], b.G1, dz.AsSpan(r * d, d), dh1.AsSpan(r * d, d)));
        if (start <= BlockStage.Norm1)
            Gemm.Multiply(Trans.No, Trans.Yes, rows, 3 * d, d, 1.0, dh1, d, b.Win, d, 1.0, dqkv, 3 * d);
        if (start <= BlockStage.Qkv)
        {
            var dO = _scratchD;
            Parallel.For(0, _ns * b.Heads, sh => AttentionJvp(sh / b.Heads, sh % b.Heads, dqkv, dO));
            Gemm.Multiply(Trans.No, Trans.Yes, rows, d, d, 1.0, dO, d, b.Wo, d, 1.0, dattn, d);
        }
        // δz' = δz + δattn (residual), kept in the Attn buffer
        if (start <= BlockStage.Input) Numerics.Axpy(1.0, dz.AsSpan(0, rows * d), dattn.AsSpan(0, rows * d));
        if (start <= BlockStage.Attn)
            ForRows(r => EncoderBlock.LayerNormJvpAdd(b.Xhat2.AsSpan((c0 + r) * d, d), b.Rstd2[c0 + r], b.G2, dattn.AsSpan(r * d, d), dh2.AsSpan(r * d, d)));
        if (start <= BlockStage.Norm2)
            Gemm.Multiply(Trans.No, Trans.Yes, rows, f, d, 1.0, dh2, d, b.W1, d, 1.0, da1, f);
        if (start <= BlockStage.Hidden)
        {
            var dm = _scratchF;
            System.Numerics.Tensors.TensorPrimitives.Multiply(da1.AsSpan(0, rows * f), b.Dphi.AsSpan(c0 * f, rows * f), dm.AsSpan(0, rows * f));
            Gemm.Multiply(Trans.No, Trans.Yes, rows, d, f, 1.0, dm, f, b.W2, f, 1.0, dout, d);
        }
        if (start <= BlockStage.Attn) Numerics.Axpy(1.0, dattn.AsSpan(0, rows * d), dout.AsSpan(0, rows * d));
        if (b.HasFinal && start < BlockStage.Final) FinalNormJvp(dout);
    }

    /// <summary>The post-LN order of <see cref="Forward"/>: z → qkv → attn → LN₁(z + attn) = z' → a₁ → out → LN₂(z' + out).</summary>
    private void ForwardPostNorm(BlockStage start)
    {
        var b = _b; int rows = Rows, d = b.D, f = b.F, c0 = CacheRow0, r0 = b.Rank(start);
        var dz = _buf[0]; var dh1 = _buf[1]; var dqkv = _buf[2]; var dattn = _buf[3];
        var dh2 = _buf[4]; var da1 = _buf[5]; var dout = _buf[6];
        if (r0 <= 0) Gemm.Multiply(Trans.No, Trans.Yes, rows, 3 * d, d, 1.0, dz, d, b.Win, d, 1.0, dqkv, 3 * d);
        if (r0 <= 1)
        {
            var dO = _scratchD;
            Parallel.For(0, _ns * b.Heads, sh => AttentionJvp(sh / b.Heads, sh % b.Heads, dqkv, dO));
            Gemm.Multiply(Trans.No, Trans.Yes, rows, d, d, 1.0, dO, d, b.Wo, d, 1.0, dattn, d);
        }
        // δr₁ = δz + δattn (residual), kept in the Attn buffer; z' = LN₁(r₁)
        if (r0 <= 0) Numerics.Axpy(1.0, dz.AsSpan(0, rows * d), dattn.AsSpan(0, rows * d));
        if (r0 <= 2)
            ForRows(r => EncoderBlock.LayerNormJvpAdd(b.Xhat1.AsSpan((c0 + r) * d, d), b.Rstd1[c0 + r], b.G1, dattn.AsSpan(r * d, d), dh1.AsSpan(r * d, d)));
        if (r0 <= 3) Gemm.Multiply(Trans.No, Trans.Yes, rows, f, d, 1.0, dh1, d, b.W1, d, 1.0, da1, f);
        if (r0 <= 4)
        {
            var dm = _scratchF;
            System.Numerics.Tensors.TensorPrimitives.Multiply(da1.AsSpan(0, rows * f), b.Dphi.AsSpan(c0 * f, rows * f), dm.AsSpan(0, rows * f));
            Gemm.Multiply(Trans.No, Trans.Yes, rows, d, f, 1.0, dm, f, b.W2, f, 1.0, dout, d);
        }
        // δr₂ = δz' + δout (residual), kept in the Out buffer; the output is LN₂(r₂)
        if (r0 <= 3) Numerics.Axpy(1.0, dh1.AsSpan(0, rows * d), dout.AsSpan(0, rows * d));
        if (r0 <= 5)
            ForRows(r => EncoderBlock.LayerNormJvpAdd(b.Xhat2.AsSpan((c0 + r) * d, d), b.Rstd2[c0 + r], b.G2, dout.AsSpan(r * d, d), dh2.AsSpan(r * d, d)));
        if (b.HasFinal && start != BlockStage.Final) FinalNormJvp(dh2);
    }

    /// <summary>Final += LN₃'(y) for the block output y.</summary>
    private void FinalNormJvp(double[] y)
    {
        var b = _b; int d = b.D, c0 = CacheRow0; var dfin = _buf[7];
        ForRows(r => EncoderBlock.LayerNormJvpAdd(b.Xhat3.AsSpan((c0 + r) * d, d), b.Rstd3[c0 + r], b.G3, y.AsSpan(r * d, d), dfin.AsSpan(r * d, d)));
    }

    /// <summary>y = LN₃'ᵀ(ḡ) from the cotangent ḡ in the Final buffer (overwrites y).</summary>
    private void FinalNormVjp(double[] y)
    {
        var b = _b; int d = b.D, c0 = CacheRow0; var gfin = _buf[7];
        Array.Clear(y, 0, Rows * d);
        ForRows(r => EncoderBlock.LayerNormVjpAdd(b.Xhat3.AsSpan((c0 + r) * d, d), b.Rstd3[c0 + r], b.G3, gfin.AsSpan(r * d, d), y.AsSpan(r * d, d)));
    }

    /// <summary>
    /// Reverse-mode: with the cotangent ḡ of the block output in the buffer of
    /// <see cref="EncoderBlock.OutputStage"/>, fills the buffers of the stages at or after
    /// <paramref name="stop"/> with the cotangents of those quantities (pre-LN Out: the cotangent of
    /// linear2's output, Attn: that of z'; post-LN Attn: that of z + attn, Out: that of z' + out).
    /// </summary>
    public void Backward(BlockStage stop)
    {
        if (!_b.NormFirst) { BackwardPostNorm(stop); return; }
        var b = _b; int rows = Rows, d = b.D, f = b.F, c0 = CacheRow0;
        var gz = _buf[0]; var gh1 = _buf[1]; var gqkv = _buf[2]; var gattn = _buf[3];
        var gh2 = _buf[4]; var ga1 = _buf[5]; var gout = _buf[6];
        if (b.HasFinal) FinalNormVjp(gout);
        if (stop <= BlockStage.Hidden)
        {
            Gemm.Multiply(Trans.No, Trans.No, rows, f, d, 1.0, gout, d, b.W2, f, 0.0, ga1, f);
            System.Numerics.Tensors.TensorPrimitives.Multiply(ga1.AsSpan(0, rows * f), b.Dphi.AsSpan(c0 * f, rows * f), ga1.AsSpan(0, rows * f));
        }
        if (stop <= BlockStage.Norm2)
            Gemm.Multiply(Trans.No, Trans.No, rows, d, f, 1.0, ga1, f, b.W1, d, 0.0, gh2, d);
        if (stop <= BlockStage.Attn)
        {
            gout.AsSpan(0, rows * d).CopyTo(gattn);
            ForRows(r => EncoderBlock.LayerNormVjpAdd(b.Xhat2.AsSpan((c0 + r) * d, d), b.Rstd2[c0 + r], b.G2, gh2.AsSpan(r * d, d), gattn.AsSpan(r * d, d)));
        }
        if (stop <= BlockStage.Qkv)
        {
            var gO = _scratchD;
            Gemm.Multiply(Trans.No, Trans.No, rows, d, d, 1.0, gattn, d, b.Wo, d, 0.0, gO, d);
            Parallel.For(0, _ns * b.Heads, sh => AttentionVjp(sh / b.Heads, sh % b.Heads, gO, gqkv));
        }
        if (stop <= BlockStage.Norm1)
            Gemm.Multiply(Trans.No, Trans.No, rows, d, 3 * d, 1.0, gqkv, 3 * d, b.Win, d, 0.0, gh1, d);
        if (stop <= BlockStage.Input)
        {
            gattn.AsSpan(0, rows * d).CopyTo(gz);
            ForRows(r => EncoderBlock.LayerNormVjpAdd(b.Xhat1.AsSpan((c0 + r) * d, d), b.Rstd1[c0 + r], b.G1, gh1.AsSpan(r * d, d), gz.AsSpan(r * d, d)));
        }
    }

    /// <summary>The post-LN order of <see cref="Backward"/>.</summary>
    private void BackwardPostNorm(BlockStage stop)
    {
        var b = _b; int rows = Rows, d = b.D, f = b.F, c0 = CacheRow0, r0 = b.Rank(stop);
        var gz = _buf[0]; var gh1 = _buf[1]; var gqkv = _buf[2]; var gattn = _buf[3];
        var gh2 = _buf[4]; var ga1 = _buf[5]; var gout = _buf[6];
        if (b.HasFinal) FinalNormVjp(gh2);
        // ḡr₂ = LN₂'ᵀ ḡ (the cotangent of linear2's output too)
        Array.Clear(gout, 0, rows * d);
        ForRows(r => EncoderBlock.LayerNormVjpAdd(b.Xhat2.AsSpan((c0 + r) * d, d), b.Rstd2[c0 + r], b.G2, gh2.AsSpan(r * d, d), gout.AsSpan(r * d, d)));
        if (r0 <= 4)
        {
            Gemm.Multiply(Trans.No, Trans.No, rows, f, d, 1.0, gout, d, b.W2, f, 0.0, ga1, f);
            System.Numerics.Tensors.TensorPrimitives.Multiply(ga1.AsSpan(0, rows * f), b.Dphi.AsSpan(c0 * f, rows * f), ga1.AsSpan(0, rows * f));
        }
        if (r0 <= 3)
        {
            // ḡz' = ḡr₂ (residual) + W₁ᵀ ḡa₁
            gout.AsSpan(0, rows * d).CopyTo(gh1);
            Gemm.Multiply(Trans.No, Trans.No, rows, d, f, 1.0, ga1, f, b.W1, d, 1.0, gh1, d);
        }
        if (r0 <= 2)
        {
            Array.Clear(gattn, 0, rows * d);
            ForRows(r => EncoderBlock.LayerNormVjpAdd(b.Xhat1.AsSpan((c0 + r) * d, d), b.Rstd1[c0 + r], b.G1, gh1.AsSpan(r * d, d), gattn.AsSpan(r * d, d)));
        }
        if (r0 <= 1)
        {
            var gO = _scratchD;
            Gemm.Multiply(Trans.No, Trans.No, rows, d, d, 1.0, gattn, d, b.Wo, d, 0.0, gO, d);
            Parallel.For(0, _ns * b.Heads, sh => AttentionVjp(sh / b.Heads, sh % b.Heads, gO, gqkv));
        }
        if (r0 <= 0)
        {
            // ḡz = ḡr₁ (residual) + W_inᵀ ḡqkv
            gattn.AsSpan(0, rows * d).CopyTo(gz);
            Gemm.Multiply(Trans.No, Trans.No, rows, d, 3 * d, 1.0, gqkv, 3 * d, b.Win, d, 1.0, gz, d);
        }
    }

    private void ForRows(Action<int> body)
    {
        int rows = Rows, n = _b.N;
        Parallel.For(0, _ns, s => { for (int t = 0; t < n; t++) body(s * n + t); });
    }

    /// <summary>
    /// δo_h = δP V + P δV with δP = P ⊙ (δS − rowsum(P ⊙ δS)), δS = c(δQ Kᵀ + Q δKᵀ): the softmax
    /// JVP; masked entries have P = 0 and so drop out.
    /// </summary>
    private void AttentionJvp(int sl, int h, double[] dqkv, double[] dO)
    {
        var b = _b; int n = b.N, d = b.D, ld = 3 * d, s = _s0 + sl;
        var q = b.Qkv.AsSpan(s * n * ld + h * b.Dh); var k = b.Qkv.AsSpan(s * n * ld + d + h * b.Dh); var v = b.Qkv.AsSpan(s * n * ld + 2 * d + h * b.Dh);
        var dq = dqkv.AsSpan(sl * n * ld + h * b.Dh); var dk = dqkv.AsSpan(sl * n * ld + d + h * b.Dh); var dv = dqkv.AsSpan(sl * n * ld + 2 * d + h * b.Dh);
        var p = b.Prob.AsSpan((s * b.Heads + h) * n * n, n * n);
        var ds = new double[n * n];
        Gemm.Multiply(Trans.No, Trans.Yes, n, n, b.Dh, b.Scale, dq, ld, k, ld, 0.0, ds, n);
        Gemm.Multiply(Trans.No, Trans.Yes, n, n, b.Dh, b.Scale, q, ld, dk, ld, 1.0, ds, n);
        SoftmaxBackRows(p, ds, n);
        var o = dO.AsSpan(sl * n * d + h * b.Dh);
        Gemm.Multiply(Trans.No, Trans.No, n, b.Dh, n, 1.0, ds, n, v, ld, 0.0, o, d);
        Gemm.Multiply(Trans.No, Trans.No, n, b.Dh, n, 1.0, p, n, dv, ld, 1.0, o, d);
    }

    /// <summary>ḡV = Pᵀ ḡO, ḡS = P ⊙ (ḡO Vᵀ − rowsum(P ⊙ ḡO Vᵀ)), ḡQ = c ḡS K, ḡK = c ḡSᵀ Q.</summary>
    private void AttentionVjp(int sl, int h, double[] gO, double[] gqkv)
    {
        var b = _b; int n = b.N, d = b.D, ld = 3 * d, s = _s0 + sl;
        var q = b.Qkv.AsSpan(s * n * ld + h * b.Dh); var k = b.Qkv.AsSpan(s * n * ld + d + h * b.Dh); var v = b.Qkv.AsSpan(s * n * ld + 2 * d + h * b.Dh);
        var go = gO.AsSpan(sl * n * d + h * b.Dh);
        var p = b.Prob.AsSpan((s * b.Heads + h) * n * n, n * n);
        var gs = new double[n * n];
        Gemm.Multiply(Trans.Yes, Trans.No, n, b.Dh, n, 1.0, p, n, go, d, 0.0, gqkv.AsSpan(sl * n * ld + 2 * d + h * b.Dh), ld);
        Gemm.Multiply(Trans.No, Trans.Yes, n, n, b.Dh, 1.0, go, d, v, ld, 0.0, gs, n);
        SoftmaxBackRows(p, gs, n);
        Gemm.Multiply(Trans.No, Trans.No, n, b.Dh, n, b.Scale, gs, n, k, ld, 0.0, gqkv.AsSpan(sl * n * ld + h * b.Dh), ld);
        Gemm.Multiply(Trans.Yes, Trans.No, n, b.Dh, n, b.Scale, gs, n, q, ld, 0.0, gqkv.AsSpan(sl * n * ld + d + h * b.Dh), ld);
    }

    /// <summary>x ← P ⊙ (x − rowsum(P ⊙ x)) row by row (the softmax Jacobian, symmetric per row).</summary>
    private static void SoftmaxBackRows(ReadOnlySpan<double> p, Span<double> x, int n)
    {
        for (int t = 0; t < n; t++)
        {
            var pr = p.Slice(t * n, n); var xr = x.Slice(t * n, n);
            double dot = 0;
            for (int u = 0; u < n; u++) dot += pr[u] * xr[u];
            for (int u = 0; u < n; u++) xr[u] = pr[u] * (xr[u] - dot);
        }
    }
}
