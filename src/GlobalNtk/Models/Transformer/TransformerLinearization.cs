using System.Collections.Concurrent;
using GlobalNtk.Dense;

namespace GlobalNtk.Models.Transformer;

/// <summary>
/// A <see cref="TransformerModel"/> linearised on one batch (MATH.md §1–3, §8). State
/// [S, L+1, N, d]: step 0 is the embedding, step l+1 block l. Every derivative map runs through
/// <see cref="BlockTangent"/> on chunks of whole sequences of one vector.
/// </summary>
internal sealed class TransformerLinearization : ChainLinearization
{
    private readonly TransformerModel _model;
    private readonly TransformerConfig _c;
    private readonly int _s, _n, _d, _steps;
    private readonly double[] _z;
    private readonly EncoderBlock[] _blocks;
    private readonly double[]? _xAug;  // linear input: [S·N, N_in + 1]
    private readonly int[]? _ids;      // embedding input: [S·N]
    private readonly int _chunkSeq;
    private readonly ConcurrentBag<BlockTangent> _pool = new();
    private readonly WeightSite[] _sites;

    public TransformerLinearization(TransformerModel model, Tensor inputs)
    {
        _model = model; _c = model.Config;
        _s = inputs.Shape.Sizes[0]; _n = inputs.Shape.Sizes[1]; _d = _c.Model; _steps = _c.Layers + 1;
        StateShape = new AxisShape(("sequence", _s), ("layer", _steps), ("token", _n), ("feature", _d));
        _z = new double[StateShape.Size];
        _chunkSeq = Math.Clamp(model.ChunkRows / _n, 1, _s);
        var ps = model.Parameters;
        int rows = _s * _n, d = _d;

        // Step 0: z₀ = input_proj(x) + PE, or embedding[x] + PE.
        var z0 = new double[rows * d];
        var pe = TransformerModel.PositionalEncoding(_n, d);
        if (_c.Input == TransformerInput.Linear)
        {
            int nin = _c.Inputs;
            _xAug = new double[rows * (nin + 1)];
            var x = inputs.Span;
            for (int r = 0; r < rows; r++)
            {
                x.Slice(r * nin, nin).CopyTo(_xAug.AsSpan(r * (nin + 1), nin));
                _xAug[r * (nin + 1) + nin] = 1.0;
            }
            Gemm.Multiply(Trans.No, Trans.Yes, rows, d, nin, 1.0, _xAug, nin + 1, ps[TransformerModel.InputWeight].Data, nin, 0.0, z0, d);
            var bias = ps[TransformerModel.InputBias].Data;
            for (int r = 0; r < rows; r++) Numerics.Axpy(1.0, bias, z0.AsSpan(r * d, d));
        }
        else
        {
            _ids = new int[rows];
            var x = inputs.Span;
            var table = ps[TransformerModel.EmbeddingWeight].Data;
            for (int r = 0; r < rows; r++)
            {
                _ids[r] = (int)x[r];
                table.AsSpan(_ids[r] * d, d).CopyTo(z0.AsSpan(r * d, d));
            }
        }
        for (int r = 0; r < rows; r++) Numerics.Axpy(1.0, pe.AsSpan((r % _n) * d, d), z0.AsSpan(r * d, d));
        ScatterLayer(z0, _z, 0, 0, _s, 0, 1.0, overwrite: true);

        _blocks = new EncoderBlock[_c.Layers];
        var zin = z0; var zout = new double[rows * d];
        for (int l = 0; l < _c.Layers; l++)
        {
            _blocks[l] = new EncoderBlock(_c, ps, l, _s, _n);
            _blocks[l].Forward(zin, zout);
            ScatterLayer(zout, _z, 0, 0, _s, l + 1, 1.0, overwrite: true);
            (zin, zout) = (zout, zin);
        }
        Numerics.EnsureFinite(_z, "transformer states");

        var sites = new List<WeightSite>();
        if (_c.Input == TransformerInput.Linear) sites.Add(new InputSite(this));
        foreach (var b in _blocks)
        {
            var nm = b.Names; int l = Array.IndexOf(_blocks, b);
            sites.Add(new BlockSite(this, l, BlockStage.Qkv, $"layers.{l}.self_attn.in_proj", nm.InProjWeight, nm.InProjBias, d, 3 * d, b.H1));
            sites.Add(new BlockSite(this, l, BlockStage.Attn, $"layers.{l}.self_attn.out_proj", nm.OutProjWeight, nm.OutProjBias, d, d, b.O));
            sites.Add(new BlockSite(this, l, BlockStage.Hidden, $"layers.{l}.linear1", nm.Linear1Weight, nm.Linear1Bias, d, _c.FeedForward, b.H2));
            sites.Add(new BlockSite(this, l, BlockStage.Out, $"layers.{l}.linear2", nm.Linear2Weight, nm.Linear2Bias, _c.FeedForward, d, b.M));
        }
        _sites = sites.ToArray();
    }

    public override AxisShape StateShape { get; }
    public override ParameterSet Parameters => _model.Parameters;
    public override ReadOnlyMemory<double> States => _z;
    public override IReadOnlyList<WeightSite> Sites => _sites;

    /// <summary>Offset in a full-state block of (vector j, sequence s, layer k, token 0).</summary>
    private int Offset(int j, int s, int k) => ((j * _s + s) * _steps + k) * _n * _d;

    /// <summary>Copies layer k of sequences [s0, s0+ns) of vector j into rows [ns·N, d].</summary>
    private void GatherLayer(ReadOnlySpan<double> block, int j, int s0, int ns, int k, Span<double> rows)
    {
        int w = _n * _d;
        for (int s = 0; s < ns; s++) block.Slice(Offset(j, s0 + s, k), w).CopyTo(rows.Slice(s * w, w));
    }

    /// <summary>block[j, s0.., k] (+)= alpha·rows.</summary>
    private void ScatterLayer(ReadOnlySpan<double> rows, Span<double> block, int j, int s0, int ns, int k, double alpha, bool overwrite = false)
    {
        int w = _n * _d;
        for (int s = 0; s < ns; s++)
        {
            var dst = block.Slice(Offset(j, s0 + s, k), w);
            if (overwrite) rows.Slice(s * w, w).CopyTo(dst);
            else Numerics.Axpy(alpha, rows.Slice(s * w, w), dst);
        }
    }

    private BlockTangent Rent() => _pool.TryTake(out var ws) ? ws : new BlockTangent(_blocks[0], _chunkSeq);
    private void Return(BlockTangent ws) => _pool.Add(ws);

    private void CheckStep(int step)
    {
        if (step < 1 || step >= _steps) throw new ArgumentOutOfRangeException(nameof(step), $"Transformer: step {step} outside 1..{_steps - 1} (step 0, the embedding, depends on the input only).");
    }

    public override void StateJvpAdd(int step, ReadOnlySpan<double> src, Span<double> dst, int count, double alpha = 1.0)
    {
        CheckStep(step);
        var blk = _blocks[step - 1];
        var ws = Rent();
        for (int j = 0; j < count; j++)
            for (int s0 = 0; s0 < _s; s0 += _chunkSeq)
            {
                int ns = Math.Min(_chunkSeq, _s - s0);
                ws.Begin(blk, s0, ns, BlockStage.Input);
                GatherLayer(src, j, s0, ns, step - 1, ws.Buffer(BlockStage.Input));
                ws.Forward(BlockStage.Input);
                ScatterLayer(ws.Buffer(BlockStage.Out), dst, j, s0, ns, step, alpha);
            }
        Return(ws);
    }

    public override void StateVjpAdd(int step, ReadOnlySpan<double> src, Span<double> dst, int count, double alpha = 1.0)
    {
        CheckStep(step);
        var blk = _blocks[step - 1];
        var ws = Rent();
        for (int j = 0; j < count; j++)
            for (int s0 = 0; s0 < _s; s0 += _chunkSeq)
            {
                int ns = Math.Min(_chunkSeq, _s - s0);
                ws.Begin(blk, s0, ns, BlockStage.Out);
                GatherLayer(src, j, s0, ns, step, ws.Buffer(BlockStage.Out));
                ws.Backward(BlockStage.Input);
                ScatterLayer(ws.Buffer(BlockStage.Input), dst, j, s0, ns, step - 1, alpha);
            }
        Return(ws);
    }

    public override void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> result, int count)
    {
        var ps = Parameters; int m = ps.TotalSize, size = StateShape.Size, d = _d, f = _c.FeedForward, rows = _s * _n;
        result.Slice(0, count * size).Clear();
        var ws = Rent();
        var tmp = new double[rows * d];
        for (int j = 0; j < count; j++)
        {
            var dt = dTheta.Slice(j * m, m);
            // Step 0: δz₀ = δW_in x + δb_in, or δE[id].
            if (_c.Input == TransformerInput.Linear)
            {
                int nin = _c.Inputs;
                Gemm.Multiply(Trans.No, Trans.Yes, rows, d, nin, 1.0, _xAug, nin + 1, dt.Slice(ps.OffsetOf(TransformerModel.InputWeight), d * nin), nin, 0.0, tmp, d);
                AddRows(tmp, dt.Slice(ps.OffsetOf(TransformerModel.InputBias), d), rows);
            }
            else
            {
                var dE = dt.Slice(ps.OffsetOf(TransformerModel.EmbeddingWeight), _c.Inputs * d);
                for (int r = 0; r < rows; r++) dE.Slice(_ids![r] * d, d).CopyTo(tmp.AsSpan(r * d, d));
            }
            ScatterLayer(tmp, result, j, 0, _s, 0, 1.0, overwrite: true);

            for (int l = 0; l < _blocks.Length; l++)
            {
                var b = _blocks[l]; var nm = b.Names;
                for (int s0 = 0; s0 < _s; s0 += _chunkSeq)
                {
                    int ns = Math.Min(_chunkSeq, _s - s0);
                    ws.Begin(b, s0, ns, BlockStage.Norm1);
                    int rr = ws.Rows, c0 = ws.CacheRow0;
                    // Inject every parameter's immediate effect at its stage (MATH.md §3: δW û + δb at each site).
                    var dh1 = ws.Buffer(BlockStage.Norm1);
                    LayerNormParamJvp(b.Xhat1, c0, rr, dt.Slice(ps.OffsetOf(nm.Norm1Weight), d), dt.Slice(ps.OffsetOf(nm.Norm1Bias), d), dh1);
                    SiteJvp(b.H1, c0, d, rr, dt.Slice(ps.OffsetOf(nm.InProjWeight), 3 * d * d), dt.Slice(ps.OffsetOf(nm.InProjBias), 3 * d), ws.Buffer(BlockStage.Qkv));
                    SiteJvp(b.O, c0, d, rr, dt.Slice(ps.OffsetOf(nm.OutProjWeight), d * d), dt.Slice(ps.OffsetOf(nm.OutProjBias), d), ws.Buffer(BlockStage.Attn));
                    LayerNormParamJvp(b.Xhat2, c0, rr, dt.Slice(ps.OffsetOf(nm.Norm2Weight), d), dt.Slice(ps.OffsetOf(nm.Norm2Bias), d), ws.Buffer(BlockStage.Norm2));
                    SiteJvp(b.H2, c0, d, rr, dt.Slice(ps.OffsetOf(nm.Linear1Weight), f * d), dt.Slice(ps.OffsetOf(nm.Linear1Bias), f), ws.Buffer(BlockStage.Hidden));
                    SiteJvp(b.M, c0, f, rr, dt.Slice(ps.OffsetOf(nm.Linear2Weight), d * f), dt.Slice(ps.OffsetOf(nm.Linear2Bias), d), ws.Buffer(BlockStage.Out));
                    ws.Forward(BlockStage.Norm1);
                    ScatterLayer(ws.Buffer(BlockStage.Out), result, j, s0, ns, l + 1, 1.0, overwrite: true);
                }
            }
        }
        Return(ws);
    }

    public override void ParamVjp(ReadOnlySpan<double> q, Span<double> dTheta, int count)
    {
        var ps = Parameters; int m = ps.TotalSize, size = StateShape.Size, d = _d, f = _c.FeedForward, rows = _s * _n;
        dTheta.Slice(0, count * m).Clear();
        var ws = Rent();
        var tmp = new double[rows * d];
        for (int j = 0; j < count; j++)
        {
            var dt = dTheta.Slice(j * m, m);
            GatherLayer(q, j, 0, _s, 0, tmp);
            if (_c.Input == TransformerInput.Linear)
            {
                int nin = _c.Inputs;
                SiteVjp(tmp, rows, d, _xAug!, 0, nin, dt.Slice(ps.OffsetOf(TransformerModel.InputWeight), d * nin), dt.Slice(ps.OffsetOf(TransformerModel.InputBias), d));
            }
            else
            {
                var dE = dt.Slice(ps.OffsetOf(TransformerModel.EmbeddingWeight), _c.Inputs * d);
                for (int r = 0; r < rows; r++) Numerics.Axpy(1.0, tmp.AsSpan(r * d, d), dE.Slice(_ids![r] * d, d));
            }

            for (int l = 0; l < _blocks.Length; l++)
            {
                var b = _blocks[l]; var nm = b.Names;
                for (int s0 = 0; s0 < _s; s0 += _chunkSeq)
                {
                    int ns = Math.Min(_chunkSeq, _s - s0);
                    ws.Begin(b, s0, ns, BlockStage.Out);
                    GatherLayer(q, j, s0, ns, l + 1, ws.Buffer(BlockStage.Out));
                    ws.Backward(BlockStage.Norm1);
                    int rr = ws.Rows, c0 = ws.CacheRow0;
                    // J_θ* q = Σ D_sᵀ q ûᵀ per site (MATH.md §3), and Σ ḡ ⊙ x̂ for the LayerNorm gains.
                    SiteVjp(ws.Buffer(BlockStage.Qkv), rr, 3 * d, b.H1, c0, d, dt.Slice(ps.OffsetOf(nm.InProjWeight), 3 * d * d), dt.Slice(ps.OffsetOf(nm.InProjBias), 3 * d));
                    SiteVjp(ws.Buffer(BlockStage.Attn), rr, d, b.O, c0, d, dt.Slice(ps.OffsetOf(nm.OutProjWeight), d * d), dt.Slice(ps.OffsetOf(nm.OutProjBias), d));
                    SiteVjp(ws.Buffer(BlockStage.Hidden), rr, f, b.H2, c0, d, dt.Slice(ps.OffsetOf(nm.Linear1Weight), f * d), dt.Slice(ps.OffsetOf(nm.Linear1Bias), f));
                    SiteVjp(ws.Buffer(BlockStage.Out), rr, d, b.M, c0, f, dt.Slice(ps.OffsetOf(nm.Linear2Weight), d * f), dt.Slice(ps.OffsetOf(nm.Linear2Bias), d));
                    LayerNormParamVjp(ws.Buffer(BlockStage.Norm1), b.Xhat1, c0, rr, dt.Slice(ps.OffsetOf(nm.Norm1Weight), d), dt.Slice(ps.OffsetOf(nm.Norm1Bias), d));
                    LayerNormParamVjp(ws.Buffer(BlockStage.Norm2), b.Xhat2, c0, rr, dt.Slice(ps.OffsetOf(nm.Norm2Weight), d), dt.Slice(ps.OffsetOf(nm.Norm2Bias), d));
                }
            }
        }
        Return(ws);
    }

    /// <summary>dst[r] += Û[c0 + r] [δW, δb]ᵀ for rows r &lt; rows (Û augmented with width + 1 columns).</summary>
    private static void SiteJvp(double[] uAug, int c0, int width, int rows, ReadOnlySpan<double> dW, ReadOnlySpan<double> db, Span<double> dst)
    {
        int outDim = db.Length;
        Gemm.Multiply(Trans.No, Trans.Yes, rows, outDim, width, 1.0, uAug.AsSpan(c0 * (width + 1)), width + 1, dW, width, 1.0, dst, outDim);
        AddRows(dst, db, rows);
    }

    /// <summary>δW += gᵀ U, δb += Σ_r g[r] for rows r (g is [rows, outDim]).</summary>
    private static void SiteVjp(ReadOnlySpan<double> g, int rows, int outDim, double[] uAug, int c0, int width, Span<double> dW, Span<double> db)
    {
        Gemm.Multiply(Trans.Yes, Trans.No, outDim, width, rows, 1.0, g, outDim, uAug.AsSpan(c0 * (width + 1)), width + 1, 1.0, dW, width);
        for (int r = 0; r < rows; r++) Numerics.Axpy(1.0, g.Slice(r * outDim, outDim), db);
    }

    /// <summary>dst[r] += x̂[c0 + r] ⊙ δγ + δβ (LayerNorm output h = x̂ ⊙ γ + β).</summary>
    private void LayerNormParamJvp(double[] xhat, int c0, int rows, ReadOnlySpan<double> dGain, ReadOnlySpan<double> dBias, Span<double> dst)
    {
        int d = _d;
        for (int r = 0; r < rows; r++)
        {
            var x = xhat.AsSpan((c0 + r) * d, d); var o = dst.Slice(r * d, d);
            for (int i = 0; i < d; i++) o[i] += x[i] * dGain[i] + dBias[i];
        }
    }

    /// <summary>δγ += Σ_r g[r] ⊙ x̂[c0 + r], δβ += Σ_r g[r].</summary>
    private void LayerNormParamVjp(ReadOnlySpan<double> g, double[] xhat, int c0, int rows, Span<double> dGain, Span<double> dBias)
    {
        int d = _d;
        for (int r = 0; r < rows; r++)
        {
            var x = xhat.AsSpan((c0 + r) * d, d); var gr = g.Slice(r * d, d);
            for (int i = 0; i < d; i++) { dGain[i] += gr[i] * x[i]; dBias[i] += gr[i]; }
        }
    }

    private static void AddRows(Span<double> a, ReadOnlySpan<double> v, int rows)
    {
        int w = v.Length;
        for (int r = 0; r < rows; r++) Numerics.Axpy(1.0, v, a.Slice(r * w, w));
    }

    /// <summary>The input projection's site: a = W_in x + b_in at every (sequence, token), D = identity onto step 0.</summary>
    private sealed class InputSite(TransformerLinearization lin) : WeightSite
    {
        public override string Name => "input_proj";
        public override IReadOnlyList<string> WeightParameters { get; } = [TransformerModel.InputWeight];
        public override IReadOnlyList<string> BiasParameters { get; } = [TransformerModel.InputBias];
        public override int Rows => lin._s * lin._n;
        public override int Width => lin._c.Inputs;
        public override int OutDim => lin._d;
        public override ReadOnlyMemory<double> Variables => lin._xAug!;
        public override AxisShape RowShape { get; } = new(("sequence", lin._s), ("token", lin._n));

        public override void ApplyDAdd(ReadOnlySpan<double> a, Span<double> dst, int count)
        {
            int blk = Rows * OutDim;
            for (int j = 0; j < count; j++) lin.ScatterLayer(a.Slice(j * blk, blk), dst, j, 0, lin._s, 0, 1.0);
        }

        public override void ApplyDAdjoint(ReadOnlySpan<double> q, Span<double> a, int count)
        {
            int blk = Rows * OutDim;
            for (int j = 0; j < count; j++) lin.GatherLayer(q, j, 0, lin._s, 0, a.Slice(j * blk, blk));
        }

        public override bool TryGetRowSlice(int row, out int offset, out int length) => lin.TokenSlice(row, 0, out offset, out length);
        public override int? StateStep => 0;
    }

    /// <summary>
    /// A site inside block l (MATH.md §8): the pre-activation at <paramref name="stage"/>; D_s
    /// propagates a perturbation injected there to the block output, D_s* the reverse.
    /// </summary>
    private sealed class BlockSite(TransformerLinearization lin, int layer, BlockStage stage, string name,
        string weight, string bias, int width, int outDim, double[] variables) : WeightSite
    {
        public override string Name => name;
        public override IReadOnlyList<string> WeightParameters { get; } = [weight];
        public override IReadOnlyList<string> BiasParameters { get; } = [bias];
        public override int Rows => lin._s * lin._n;
        public override int Width => width;
        public override int OutDim => outDim;
        public override ReadOnlyMemory<double> Variables => variables;
        public override AxisShape RowShape { get; } = new(("sequence", lin._s), ("token", lin._n));

        public override void ApplyDAdd(ReadOnlySpan<double> a, Span<double> dst, int count)
        {
            var ws = lin.Rent(); var blk = lin._blocks[layer];
            for (int j = 0; j < count; j++)
                for (int s0 = 0; s0 < lin._s; s0 += lin._chunkSeq)
                {
                    int ns = Math.Min(lin._chunkSeq, lin._s - s0);
                    ws.Begin(blk, s0, ns, stage);
                    int len = ns * lin._n * outDim;
                    a.Slice((j * Rows + s0 * lin._n) * outDim, len).CopyTo(ws.Buffer(stage));
                    ws.Forward(stage);
                    lin.ScatterLayer(ws.Buffer(BlockStage.Out), dst, j, s0, ns, layer + 1, 1.0);
                }
            lin.Return(ws);
        }

        public override void ApplyDAdjoint(ReadOnlySpan<double> q, Span<double> a, int count)
        {
            var ws = lin.Rent(); var blk = lin._blocks[layer];
            for (int j = 0; j < count; j++)
                for (int s0 = 0; s0 < lin._s; s0 += lin._chunkSeq)
                {
                    int ns = Math.Min(lin._chunkSeq, lin._s - s0);
                    ws.Begin(blk, s0, ns, BlockStage.Out);
                    lin.GatherLayer(q, j, s0, ns, layer + 1, ws.Buffer(BlockStage.Out));
                    ws.Backward(stage);
                    ws.Buffer(stage).CopyTo(a.Slice((j * Rows + s0 * lin._n) * outDim, ns * lin._n * outDim));
                }
            lin.Return(ws);
        }

        /// <summary>
        /// Every stage after attention (out_proj, linear1, linear2) acts per token — residual,
        /// LayerNorm and MLP are token-wise — so row (sequence, token) reaches only that token's
        /// slice of layer l+1; Q, K, V reach every token of the sequence through attention.
        /// </summary>
        public override bool TryGetRowSlice(int row, out int offset, out int length)
        {
            if (stage == BlockStage.Qkv) { offset = 0; length = 0; return false; }
            return lin.TokenSlice(row, layer + 1, out offset, out length);
        }

        public override int? StateStep => layer + 1;
    }

    /// <summary>State slice (sequence, step, token, :) of site row = sequence·N + token.</summary>
    private bool TokenSlice(int row, int step, out int offset, out int length)
    {
        offset = Offset(0, row / _n, step) + (row % _n) * _d; length = _d;
        return true;
    }
}
