using System.Collections.Concurrent;
using GlobalNtk.Dense;

namespace GlobalNtk.Models.Transformer;

/// <summary>
/// A <see cref="TransformerModel"/> linearised on one batch (docs/math.md#transformers). State
/// [S, L+1, N, d]: step 0 is the embedding, step l+1 block l. Every derivative map runs through
/// <see cref="BlockTangent"/> on chunks of whole sequences of one vector.
/// </summary>
internal sealed class TransformerLinearization : ChainLinearization
{
    private readonly TransformerModel _model;
    private readonly ParameterSet _params; // snapshot: later training does not change this linearisation
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
        var ps = _params = model.Parameters.Clone();
        int rows = _s * _n, d = _d;

        // Step 0: z₀ = c·input_proj(x) + PE, or c·embedding[x] + PE.
        var z0 = new double[rows * d];
        double c = _c.EmbeddingScale;
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
        if (c != 1.0) Numerics.Scale(z0, c);
        double[]? pe = _c.Positional switch
        {
            TransformerPositional.Sinusoidal => TransformerModel.PositionalEncoding(_n, d),
            TransformerPositional.Learned => ps[TransformerModel.PositionalWeight].Data,
            _ => null,
        };
        if (pe is not null) for (int r = 0; r < rows; r++) Numerics.Axpy(1.0, pe.AsSpan((r % _n) * d, d), z0.AsSpan(r * d, d));
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
            sites.Add(new BlockSite(this, l, BlockStage.Qkv, $"layers.{l}.self_attn.in_proj", nm.InProjWeight, nm.InProjBias, d, 3 * d, b.QkvIn));
            sites.Add(new BlockSite(this, l, BlockStage.Attn, $"layers.{l}.self_attn.out_proj", nm.OutProjWeight, nm.OutProjBias, d, d, b.O));
            sites.Add(new BlockSite(this, l, BlockStage.Hidden, $"layers.{l}.linear1", nm.Linear1Weight, nm.Linear1Bias, d, _c.FeedForward, b.FfIn));
            sites.Add(new BlockSite(this, l, BlockStage.Out, $"layers.{l}.linear2", nm.Linear2Weight, nm.Linear2Bias, _c.FeedForward, d, b.M));
        }
        _sites = sites.ToArray();
    }

    public override AxisShape StateShape { get; }
    public override ParameterSet Parameters => _params;
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

    private BlockTangent Rent() => _pool.TryTake(out var ws) ? ws : new BlockTangent(_blocks[0], _chunkSeq, _c.FinalNorm);
    private void Return(BlockTangent ws) => _pool.Add(ws);

    public override void StateJvpAdd(int step, ReadOnlySpan<double> src, Span<double> dst, int count, double alpha = 1.0) =>
        StateMapAdd(adjoint: false, step, src, dst, count, alpha);

    public override void StateVjpAdd(int step, ReadOnlySpan<double> src, Span<double> dst, int count, double alpha = 1.0) =>
        StateMapAdd(adjoint: true, step, src, dst, count, alpha);

    /// <summary>
    /// dst += alpha · A_step src: layer step − 1 through the block's tangent from its input stage to its
    /// output, into layer step; or (<paramref name="adjoint"/>) dst += alpha · A_stepᵀ src: layer step
    /// back from the output stage to the input, into layer step − 1. Chunk by chunk of sequences.
    /// </summary>
    private void StateMapAdd(bool adjoint, int step, ReadOnlySpan<double> src, Span<double> dst, int count, double alpha)
    {
        CheckStep(step, adjoint ? "StateVjpAdd" : "StateJvpAdd");
        var blk = _blocks[step - 1];
        var (inStage, outStage) = adjoint ? (blk.OutputStage, BlockStage.Input) : (BlockStage.Input, blk.OutputStage);
        int from = adjoint ? step : step - 1, to = adjoint ? step - 1 : step;
        var ws = Rent();
        for (int j = 0; j < count; j++)
            for (int s0 = 0; s0 < _s; s0 += _chunkSeq)
            {
                int ns = Math.Min(_chunkSeq, _s - s0);
                ws.Begin(blk, s0, ns, inStage);
                GatherLayer(src, j, s0, ns, from, ws.Buffer(inStage));
                if (adjoint) ws.Backward(BlockStage.Input);
                else ws.Forward(BlockStage.Input);
                ScatterLayer(ws.Buffer(outStage), dst, j, s0, ns, to, alpha);
            }
        Return(ws);
    }

    public override void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> result, int count) =>
        ParamJvpCore(FullLayout(), Parameters.TotalSize, dTheta, result, count);

    public override void ParamVjp(ReadOnlySpan<double> q, Span<double> dTheta, int count) =>
        ParamVjpCore(FullLayout(), Parameters.TotalSize, q, dTheta, count);

    /// <summary>
    /// Only the listed tensors' immediate effects are injected (e.g. just γ ⊙ x̂ + β for the
    /// LayerNorm rest term of the Kronecker core): the weight-site GEMMs δW û are skipped and blocks
    /// without a listed tensor are not propagated at all.
    /// </summary>
    public override void ParamJvpSubset(IReadOnlyList<int> parameterIndices, ReadOnlySpan<double> dThetaSubset, Span<double> result, int count) =>
        ParamJvpCore(SubsetLayout(parameterIndices, out int k), k, dThetaSubset, result, count);

    /// <inheritdoc/>
    public override void ParamVjpSubset(IReadOnlyList<int> parameterIndices, ReadOnlySpan<double> q, Span<double> dThetaSubset, int count) =>
        ParamVjpCore(SubsetLayout(parameterIndices, out int k), k, q, dThetaSubset, count);

    /// <summary>The slice of one δθ vector (laid out by <paramref name="layout"/>) holding parameter <paramref name="name"/>; empty when not in the layout.</summary>
    private ReadOnlySpan<double> Part(ReadOnlySpan<double> dt, int[] layout, string name)
    {
        int i = Parameters.IndexOf(name), off = layout[i];
        return off < 0 ? default : dt.Slice(off, Parameters[i].Size);
    }

    private Span<double> Part(Span<double> dt, int[] layout, string name)
    {
        int i = Parameters.IndexOf(name), off = layout[i];
        return off < 0 ? default : dt.Slice(off, Parameters[i].Size);
    }

    /// <summary>Whether any tensor of block <paramref name="nm"/> is in the layout (else its J_θ part is zero).</summary>
    private bool Touches(int[] layout, BlockNames nm)
    {
        foreach (var name in (ReadOnlySpan<string>)[nm.Norm1Weight, nm.Norm1Bias, nm.InProjWeight, nm.InProjBias, nm.OutProjWeight, nm.OutProjBias,
                                                     nm.Norm2Weight, nm.Norm2Bias, nm.Linear1Weight, nm.Linear1Bias, nm.Linear2Weight, nm.Linear2Bias])
            if (layout[Parameters.IndexOf(name)] >= 0) return true;
        return _blocks[nm.Layer].HasFinal
            && (layout[Parameters.IndexOf(TransformerModel.FinalNormWeight)] >= 0 || layout[Parameters.IndexOf(TransformerModel.FinalNormBias)] >= 0);
    }

    /// <summary>J_θ over a δθ laid out by <paramref name="layout"/> (tensor offsets, −1 = absent; <paramref name="m"/> scalars per vector).</summary>
    private void ParamJvpCore(int[] layout, int m, ReadOnlySpan<double> dTheta, Span<double> result, int count)
    {
        int size = StateShape.Size, d = _d, f = _c.FeedForward, rows = _s * _n;
        result.Slice(0, count * size).Clear();
        var ws = Rent();
        var tmp = new double[rows * d];
        for (int j = 0; j < count; j++)
        {
            var dt = dTheta.Slice(j * m, m);
            // Step 0: δz₀ = c(δW_in x + δb_in) + δP[t], or c·δE[id] + δP[t].
            if (_c.Input == TransformerInput.Linear)
            {
                int nin = _c.Inputs;
                Array.Clear(tmp);
                SiteJvp(_xAug!, 0, nin, rows, d, Part(dt, layout, TransformerModel.InputWeight), Part(dt, layout, TransformerModel.InputBias), tmp);
            }
            else
            {
                var dE = Part(dt, layout, TransformerModel.EmbeddingWeight);
                if (dE.IsEmpty) Array.Clear(tmp);
                else for (int r = 0; r < rows; r++) dE.Slice(_ids![r] * d, d).CopyTo(tmp.AsSpan(r * d, d));
            }
            if (_c.EmbeddingScale != 1.0) Numerics.Scale(tmp, _c.EmbeddingScale);
            if (_c.Positional == TransformerPositional.Learned)
            {
                var dP = Part(dt, layout, TransformerModel.PositionalWeight);
                if (!dP.IsEmpty) for (int r = 0; r < rows; r++) Numerics.Axpy(1.0, dP.Slice((r % _n) * d, d), tmp.AsSpan(r * d, d));
            }
            ScatterLayer(tmp, result, j, 0, _s, 0, 1.0, overwrite: true);

            for (int l = 0; l < _blocks.Length; l++)
            {
                var b = _blocks[l]; var nm = b.Names;
                if (!Touches(layout, nm)) continue; // result is already zero at this layer
                for (int s0 = 0; s0 < _s; s0 += _chunkSeq)
                {
                    int ns = Math.Min(_chunkSeq, _s - s0);
                    ws.Begin(b, s0, ns, b.FirstStage);
                    int rr = ws.Rows, c0 = ws.CacheRow0;
                    // Inject every listed parameter's immediate effect at its stage (docs/math.md#kronecker-core: δW û + δb at each site).
                    LayerNormParamJvp(b.Xhat1, c0, rr, Part(dt, layout, nm.Norm1Weight), Part(dt, layout, nm.Norm1Bias), ws.Buffer(BlockStage.Norm1));
                    SiteJvp(b.QkvIn, c0, d, rr, 3 * d, Part(dt, layout, nm.InProjWeight), Part(dt, layout, nm.InProjBias), ws.Buffer(BlockStage.Qkv));
                    SiteJvp(b.O, c0, d, rr, d, Part(dt, layout, nm.OutProjWeight), Part(dt, layout, nm.OutProjBias), ws.Buffer(BlockStage.Attn));
                    LayerNormParamJvp(b.Xhat2, c0, rr, Part(dt, layout, nm.Norm2Weight), Part(dt, layout, nm.Norm2Bias), ws.Buffer(BlockStage.Norm2));
                    SiteJvp(b.FfIn, c0, d, rr, f, Part(dt, layout, nm.Linear1Weight), Part(dt, layout, nm.Linear1Bias), ws.Buffer(BlockStage.Hidden));
                    SiteJvp(b.M, c0, f, rr, d, Part(dt, layout, nm.Linear2Weight), Part(dt, layout, nm.Linear2Bias), ws.Buffer(BlockStage.Out));
                    if (b.HasFinal)
                        LayerNormParamJvp(b.Xhat3, c0, rr, Part(dt, layout, TransformerModel.FinalNormWeight), Part(dt, layout, TransformerModel.FinalNormBias), ws.Buffer(BlockStage.Final));
                    ws.Forward(b.FirstStage);
                    ScatterLayer(ws.Buffer(b.OutputStage), result, j, s0, ns, l + 1, 1.0, overwrite: true);
                }
            }
        }
        Return(ws);
    }

    /// <summary>J_θ* into a δθ laid out by <paramref name="layout"/> (the exact adjoint of <see cref="ParamJvpCore"/>).</summary>
    private void ParamVjpCore(int[] layout, int m, ReadOnlySpan<double> q, Span<double> dTheta, int count)
    {
        int d = _d, f = _c.FeedForward, rows = _s * _n;
        dTheta.Slice(0, count * m).Clear();
        var ws = Rent();
        var tmp = new double[rows * d];
        for (int j = 0; j < count; j++)
        {
            var dt = dTheta.Slice(j * m, m);
            GatherLayer(q, j, 0, _s, 0, tmp);
            if (_c.Positional == TransformerPositional.Learned)
            {
                var dP = Part(dt, layout, TransformerModel.PositionalWeight);
                if (!dP.IsEmpty) for (int r = 0; r < rows; r++) Numerics.Axpy(1.0, tmp.AsSpan(r * d, d), dP.Slice((r % _n) * d, d));
            }
            if (_c.EmbeddingScale != 1.0) Numerics.Scale(tmp, _c.EmbeddingScale);
            if (_c.Input == TransformerInput.Linear)
                SiteVjp(tmp, rows, d, _xAug!, 0, _c.Inputs, Part(dt, layout, TransformerModel.InputWeight), Part(dt, layout, TransformerModel.InputBias));
            else
            {
                var dE = Part(dt, layout, TransformerModel.EmbeddingWeight);
                if (!dE.IsEmpty)
                    for (int r = 0; r < rows; r++) Numerics.Axpy(1.0, tmp.AsSpan(r * d, d), dE.Slice(_ids![r] * d, d));
            }

            for (int l = 0; l < _blocks.Length; l++)
            {
                var b = _blocks[l]; var nm = b.Names;
                if (!Touches(layout, nm)) continue;
                for (int s0 = 0; s0 < _s; s0 += _chunkSeq)
                {
                    int ns = Math.Min(_chunkSeq, _s - s0);
                    ws.Begin(b, s0, ns, b.OutputStage);
                    GatherLayer(q, j, s0, ns, l + 1, ws.Buffer(b.OutputStage));
                    ws.Backward(b.FirstStage);
                    int rr = ws.Rows, c0 = ws.CacheRow0;
                    // J_θ* q = Σ D_sᵀ q ûᵀ per site (docs/math.md#kronecker-core), and Σ ḡ ⊙ x̂ for the LayerNorm gains.
                    SiteVjp(ws.Buffer(BlockStage.Qkv), rr, 3 * d, b.QkvIn, c0, d, Part(dt, layout, nm.InProjWeight), Part(dt, layout, nm.InProjBias));
                    SiteVjp(ws.Buffer(BlockStage.Attn), rr, d, b.O, c0, d, Part(dt, layout, nm.OutProjWeight), Part(dt, layout, nm.OutProjBias));
                    SiteVjp(ws.Buffer(BlockStage.Hidden), rr, f, b.FfIn, c0, d, Part(dt, layout, nm.Linear1Weight), Part(dt, layout, nm.Linear1Bias));
                    SiteVjp(ws.Buffer(BlockStage.Out), rr, d, b.M, c0, f, Part(dt, layout, nm.Linear2Weight), Part(dt, layout, nm.Linear2Bias));
                    LayerNormParamVjp(ws.Buffer(BlockStage.Norm1), b.Xhat1, c0, rr, Part(dt, layout, nm.Norm1Weight), Part(dt, layout, nm.Norm1Bias));
                    LayerNormParamVjp(ws.Buffer(BlockStage.Norm2), b.Xhat2, c0, rr, Part(dt, layout, nm.Norm2Weight), Part(dt, layout, nm.Norm2Bias));
                    if (b.HasFinal)
                        LayerNormParamVjp(ws.Buffer(BlockStage.Final), b.Xhat3, c0, rr, Part(dt, layout, TransformerModel.FinalNormWeight), Part(dt, layout, TransformerModel.FinalNormBias));
                }
            }
        }
        Return(ws);
    }

    /// <summary>dst[r] += Û[c0 + r] [δW, δb]ᵀ for rows r &lt; rows (Û augmented with width + 1 columns); an empty δW or δb is absent.</summary>
    private static void SiteJvp(double[] uAug, int c0, int width, int rows, int outDim, ReadOnlySpan<double> dW, ReadOnlySpan<double> db, Span<double> dst)
    {
        if (!dW.IsEmpty) Gemm.Multiply(Trans.No, Trans.Yes, rows, outDim, width, 1.0, uAug.AsSpan(c0 * (width + 1)), width + 1, dW, width, 1.0, dst, outDim);
        if (!db.IsEmpty) AddRows(dst, db, rows);
    }

    /// <summary>δW += gᵀ U, δb += Σ_r g[r] for rows r (g is [rows, outDim]); an empty δW or δb is skipped.</summary>
    private static void SiteVjp(ReadOnlySpan<double> g, int rows, int outDim, double[] uAug, int c0, int width, Span<double> dW, Span<double> db)
    {
        if (!dW.IsEmpty) Gemm.Multiply(Trans.Yes, Trans.No, outDim, width, rows, 1.0, g, outDim, uAug.AsSpan(c0 * (width + 1)), width + 1, 1.0, dW, width);
        if (!db.IsEmpty) for (int r = 0; r < rows; r++) Numerics.Axpy(1.0, g.Slice(r * outDim, outDim), db);
    }

    /// <summary>dst[r] += x̂[c0 + r] ⊙ δγ + δβ (LayerNorm output h = x̂ ⊙ γ + β); an empty δγ or δβ is absent.</summary>
    private void LayerNormParamJvp(double[] xhat, int c0, int rows, ReadOnlySpan<double> dGain, ReadOnlySpan<double> dBias, Span<double> dst)
    {
        int d = _d;
        for (int r = 0; r < rows; r++)
        {
            var x = xhat.AsSpan((c0 + r) * d, d); var o = dst.Slice(r * d, d);
            if (!dGain.IsEmpty) for (int i = 0; i < d; i++) o[i] += x[i] * dGain[i];
            if (!dBias.IsEmpty) Numerics.Axpy(1.0, dBias, o);
        }
    }

    /// <summary>δγ += Σ_r g[r] ⊙ x̂[c0 + r], δβ += Σ_r g[r]; an empty δγ or δβ is skipped.</summary>
    private void LayerNormParamVjp(ReadOnlySpan<double> g, double[] xhat, int c0, int rows, Span<double> dGain, Span<double> dBias)
    {
        int d = _d;
        for (int r = 0; r < rows; r++)
        {
            var x = xhat.AsSpan((c0 + r) * d, d); var gr = g.Slice(r * d, d);
            if (!dGain.IsEmpty) for (int i = 0; i < d; i++) dGain[i] += gr[i] * x[i];
            if (!dBias.IsEmpty) Numerics.Axpy(1.0, gr, dBias);
        }
    }

    private static void AddRows(Span<double> a, ReadOnlySpan<double> v, int rows)
    {
        int w = v.Length;
        for (int r = 0; r < rows; r++) Numerics.Axpy(1.0, v, a.Slice(r * w, w));
    }

    /// <summary>The input projection's site: a = W_in x + b_in at every (sequence, token), D = c·identity onto step 0 (c the embedding scale).</summary>
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
            for (int j = 0; j < count; j++) lin.ScatterLayer(a.Slice(j * blk, blk), dst, j, 0, lin._s, 0, lin._c.EmbeddingScale);
        }

        public override void ApplyDAdjoint(ReadOnlySpan<double> q, Span<double> a, int count)
        {
            int blk = Rows * OutDim;
            for (int j = 0; j < count; j++) lin.GatherLayer(q, j, 0, lin._s, 0, a.Slice(j * blk, blk));
            if (lin._c.EmbeddingScale != 1.0) Numerics.Scale(a.Slice(0, count * blk), lin._c.EmbeddingScale);
        }

        public override bool TryGetRowSlice(int row, out int offset, out int length) => lin.TokenSlice(row, 0, out offset, out length);
        public override int? StateStep => 0;
    }

    /// <summary>
    /// A site inside block l (docs/math.md#transformers): the pre-activation at <paramref name="stage"/>; D_s
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
                    lin.ScatterLayer(ws.Buffer(blk.OutputStage), dst, j, s0, ns, layer + 1, 1.0);
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
                    ws.Begin(blk, s0, ns, blk.OutputStage);
                    lin.GatherLayer(q, j, s0, ns, layer + 1, ws.Buffer(blk.OutputStage));
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
