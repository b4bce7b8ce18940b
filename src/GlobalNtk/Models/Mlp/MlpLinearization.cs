using GlobalNtk.Dense;

namespace GlobalNtk.Models.Mlp;

/// <summary>
/// An <see cref="MlpModel"/> linearised on one batch. Caches only state-sized arrays: the layer
/// activities z, φ'(a) per layer, and each layer's site matrix Û = [z_{l−1}, 1] (docs/math.md#kronecker-core).
/// </summary>
internal sealed class MlpLinearization : ChainLinearization
{
    private readonly MlpModel _model;
    private readonly ParameterSet _params; // snapshot: later training does not change this linearisation
    private readonly int _b, _l, _h;
    private readonly double[] _z, _dphi;
    private readonly double[][] _u;      // per layer [B, in_k + 1]
    private readonly int[] _in;          // in_k
    private readonly double[][] _w;      // per layer weight data [H, in_k]
    private readonly int[] _wOff, _bOff; // offsets in θ
    private readonly MlpSite[] _sites;

    public MlpLinearization(MlpModel model, Tensor inputs)
    {
        _model = model;
        _b = inputs.Shape.Sizes[0]; _l = model.Layers; _h = model.Hidden;
        StateShape = new AxisShape(("sample", _b), ("layer", _l), ("unit", _h));
        int stride = _l * _h;
        _z = new double[_b * stride];
        _dphi = new double[_b * stride];
        _u = new double[_l][]; _in = new int[_l]; _w = new double[_l][];
        _wOff = new int[_l]; _bOff = new int[_l];
        var ps = _params = model.Parameters.Clone();
        var pre = new double[_b * _h];
        for (int k = 0; k < _l; k++)
        {
            int n = k == 0 ? model.Inputs : _h;
            _in[k] = n;
            _w[k] = ps[MlpModel.WeightName(k)].Data;
            _wOff[k] = ps.OffsetOf(MlpModel.WeightName(k));
            _bOff[k] = ps.OffsetOf(MlpModel.BiasName(k));
            var u = new double[_b * (n + 1)];
            var x = inputs.Span;
            for (int b = 0; b < _b; b++)
            {
                var src = k == 0 ? x.Slice(b * n, n) : _z.AsSpan(b * stride + (k - 1) * _h, _h);
                src.CopyTo(u.AsSpan(b * (n + 1), n));
                u[b * (n + 1) + n] = 1.0;
            }
            _u[k] = u;
            // a = Û [W, b]ᵀ: the bias enters through Û's ones column.
            Gemm.Multiply(Trans.No, Trans.Yes, _b, _h, n, 1.0, u, n + 1, _w[k], n, 0.0, pre, _h);
            var bias = ps[MlpModel.BiasName(k)].Data;
            for (int b = 0; b < _b; b++)
            {
                var row = pre.AsSpan(b * _h, _h);
                Numerics.Axpy(1.0, bias, row);
                model.Activation.Evaluate(row, _z.AsSpan(b * stride + k * _h, _h), _dphi.AsSpan(b * stride + k * _h, _h));
            }
        }
        Numerics.EnsureFinite(_z, "MLP states");
        _sites = Enumerable.Range(0, _l).Select(k => new MlpSite(this, k)).ToArray();
    }

    public override AxisShape StateShape { get; }
    public override ParameterSet Parameters => _params;
    public override ReadOnlyMemory<double> States => _z;
    public override IReadOnlyList<WeightSite> Sites => _sites;

    private int LayerStride => _l * _h;

    /// <summary>dst[r, k] += alpha·φ'_k ⊙ src[r] for the count·B rows r of a full-state block.</summary>
    private void ScaleAddRows(int k, ReadOnlySpan<double> src, int srcLd, Span<double> dst, int count, double alpha)
    {
        for (int r = 0; r < count * _b; r++)
        {
            int b = r % _b;
            var d = _dphi.AsSpan(b * LayerStride + k * _h, _h);
            var s = src.Slice(r * srcLd, _h);
            var o = dst.Slice(r * LayerStride + k * _h, _h);
            for (int i = 0; i < _h; i++) o[i] += alpha * d[i] * s[i];
        }
    }

    /// <summary>dst[r] = φ'_k ⊙ src[r, k] for the count·B rows of a full-state block.</summary>
    private void GatherScaled(int k, ReadOnlySpan<double> src, Span<double> dst, int count)
    {
        for (int r = 0; r < count * _b; r++)
        {
            int b = r % _b;
            var d = _dphi.AsSpan(b * LayerStride + k * _h, _h);
            var s = src.Slice(r * LayerStride + k * _h, _h);
            var o = dst.Slice(r * _h, _h);
            for (int i = 0; i < _h; i++) o[i] = d[i] * s[i];
        }
    }

    public override void StateJvpAdd(int step, ReadOnlySpan<double> src, Span<double> dst, int count, double alpha = 1.0)
    {
        CheckStep(step, "StateJvpAdd");
        int m = count * _b;
        var tmp = new double[m * _h];
        // All (vector, sample) rows of layer step−1 are equally strided: one GEMM.
        Gemm.Multiply(Trans.No, Trans.Yes, m, _h, _h, 1.0, src.Slice((step - 1) * _h), LayerStride, _w[step], _h, 0.0, tmp, _h);
        ScaleAddRows(step, tmp, _h, dst, count, alpha);
    }

    public override void StateVjpAdd(int step, ReadOnlySpan<double> src, Span<double> dst, int count, double alpha = 1.0)
    {
        CheckStep(step, "StateVjpAdd");
        int m = count * _b;
        var tmp = new double[m * _h];
        GatherScaled(step, src, tmp, count);
        Gemm.Multiply(Trans.No, Trans.No, m, _h, _h, alpha, tmp, _h, _w[step], _h, 1.0, dst.Slice((step - 1) * _h), LayerStride);
    }

    public override void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> result, int count)
    {
        int mParams = Parameters.TotalSize, size = StateShape.Size;
        result.Slice(0, count * size).Clear();
        var tmp = new double[_b * _h];
        for (int j = 0; j < count; j++)
        {
            var dt = dTheta.Slice(j * mParams, mParams);
            var res = result.Slice(j * size, size);
            for (int k = 0; k < _l; k++)
            {
                int n = _in[k];
                // δa = Û [δW, δb]ᵀ (docs/math.md#kronecker-core), then D = diag(φ').
                Gemm.Multiply(Trans.No, Trans.Yes, _b, _h, n, 1.0, _u[k], n + 1, dt.Slice(_wOff[k], _h * n), n, 0.0, tmp, _h);
                var db = dt.Slice(_bOff[k], _h);
                for (int b = 0; b < _b; b++) Numerics.Axpy(1.0, db, tmp.AsSpan(b * _h, _h));
                ScaleAddRows(k, tmp, _h, res, 1, 1.0);
            }
        }
    }

    public override void ParamVjp(ReadOnlySpan<double> q, Span<double> dTheta, int count)
    {
        int mParams = Parameters.TotalSize, size = StateShape.Size;
        dTheta.Slice(0, count * mParams).Clear();
        var g = new double[_b * _h];
        for (int j = 0; j < count; j++)
        {
            var qj = q.Slice(j * size, size);
            var dt = dTheta.Slice(j * mParams, mParams);
            for (int k = 0; k < _l; k++)
            {
                int n = _in[k];
                GatherScaled(k, qj, g, 1);
                // [δW, δb] = gᵀ Û: the ones column of Û yields δb = Σ_b g_b.
                Gemm.Multiply(Trans.Yes, Trans.No, _h, n, _b, 1.0, g, _h, _u[k], n + 1, 0.0, dt.Slice(_wOff[k], _h * n), n);
                var db = dt.Slice(_bOff[k], _h);
                for (int b = 0; b < _b; b++) Numerics.Axpy(1.0, g.AsSpan(b * _h, _h), db);
            }
        }
    }

    /// <summary>Layer k's site: a = W_k z_{k−1} + b_k with D = diag(φ'(a)) (docs/math.md#kronecker-core).</summary>
    private sealed class MlpSite(MlpLinearization lin, int k) : WeightSite
    {
        public override string Name => $"layers.{k}";
        public override IReadOnlyList<string> WeightParameters { get; } = [MlpModel.WeightName(k)];
        public override IReadOnlyList<string> BiasParameters { get; } = [MlpModel.BiasName(k)];
        public override int Rows => lin._b;
        public override int Width => lin._in[k];
        public override int OutDim => lin._h;
        public override ReadOnlyMemory<double> Variables => lin._u[k];
        public override AxisShape RowShape { get; } = new(("sample", lin._b));

        public override void ApplyDAdd(ReadOnlySpan<double> a, Span<double> dst, int count)
        {
            // a is [count, B, H]: its rows (j, b) line up with the state block's rows.
            lin.ScaleAddRows(k, a, lin._h, dst, count, 1.0);
        }

        public override void ApplyDAdjoint(ReadOnlySpan<double> q, Span<double> a, int count) => lin.GatherScaled(k, q, a, count);

        /// <summary>D = diag(φ'(a)) is per sample: row b lands in state (b, k, :) only.</summary>
        public override bool TryGetRowSlice(int row, out int offset, out int length)
        {
            offset = (row * lin._l + k) * lin._h; length = lin._h;
            return true;
        }

        public override int? StateStep => k;
    }
}
