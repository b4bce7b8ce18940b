using GlobalNtk.Operators;
using GlobalNtk.Dense;
using System.Numerics.Tensors;

namespace GlobalNtk.Models.Blocks;

/// <summary>
/// nn.Linear: y = W u + b with W [Out, In] and an optional bias b [Out]; a weight site
/// (docs/math.md#kronecker-core) with Û = [u, 1] (or [u] without bias) and D = identity.
/// </summary>
public sealed class AffineBlock : StepBlock
{
    /// <summary>An affine map named <paramref name="weight"/> (and <paramref name="bias"/> when not null).</summary>
    public AffineBlock(string name, int inputs, int outputs, string weight, string? bias)
    {
        if (inputs < 1 || outputs < 1) throw new ArgumentException($"Affine block '{name}': sizes {inputs} → {outputs} must be ≥ 1.");
        Name = name; InputWidth = inputs; OutputWidth = outputs;
        WeightSpec = new ParameterSpec(weight, [outputs, inputs]);
        BiasSpec = bias == null ? null : new ParameterSpec(bias, [outputs]);
        ParameterSpecs = BiasSpec == null ? [WeightSpec] : [WeightSpec, BiasSpec];
    }

    /// <summary>nn.Linear under a module prefix: <c>{prefix}.weight</c>, <c>{prefix}.bias</c>.</summary>
    public static AffineBlock Linear(string prefix, int inputs, int outputs, bool bias = true) =>
        new(prefix, inputs, outputs, prefix + ".weight", bias ? prefix + ".bias" : null);

    /// <summary>Display name of the site.</summary>
    public string Name { get; }
    /// <inheritdoc/>
    public override int InputWidth { get; }
    /// <inheritdoc/>
    public override int OutputWidth { get; }
    /// <summary>W [Out, In].</summary>
    public ParameterSpec WeightSpec { get; }
    /// <summary>b [Out], or null.</summary>
    public ParameterSpec? BiasSpec { get; }
    /// <inheritdoc/>
    public override IReadOnlyList<ParameterSpec> ParameterSpecs { get; }

    /// <inheritdoc/>
    public override BlockTrace Forward(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output)
    {
        var w = Read(parameters, WeightSpec);
        var b = BiasSpec == null ? null : Read(parameters, BiasSpec);
        int n = InputWidth, m = OutputWidth, aw = n + (b == null ? 0 : 1);
        // Û = [u, 1]: serves the forward product and the Kronecker core alike.
        var u = new double[checked(rows * aw)];
        for (int r = 0; r < rows; r++)
        {
            input.Slice(r * n, n).CopyTo(u.AsSpan(r * aw, n));
            if (b != null) u[r * aw + n] = 1.0;
        }
        Gemm.Multiply(Trans.No, Trans.Yes, rows, m, n, 1.0, u, aw, w, n, 0.0, output, m);
        if (b != null) for (int r = 0; r < rows; r++) TensorPrimitives.Add(output.Slice(r * m, m), b, output.Slice(r * m, m));
        return new Trace(this, rows, w, u, aw);
    }

    /// <inheritdoc/>
    public override bool Supports(Precision precision) => precision is Precision.F64 or Precision.F32;

    /// <inheritdoc/>
    protected override string Describe() => $"affine block '{Name}' ({InputWidth} → {OutputWidth})";

    /// <summary>Float32: Û and W kept in float32, every product an sgemm; the bias is added in float64.</summary>
    protected override BlockTrace ForwardF32(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output)
    {
        var w = Float32.ToSingle(Read(parameters, WeightSpec));
        var b = BiasSpec == null ? null : Read(parameters, BiasSpec);
        int n = InputWidth, m = OutputWidth, aw = n + (b == null ? 0 : 1);
        var u = new float[checked(rows * aw)];
        for (int r = 0; r < rows; r++)
        {
            Float32.Narrow(input.Slice(r * n, n), u.AsSpan(r * aw, n));
            if (b != null) u[r * aw + n] = 1f;
        }
        using (var y = new Float32Buffer((long)rows * m))
        {
            Gemm.Multiply(Trans.No, Trans.Yes, rows, m, n, 1f, u, aw, w, n, 0f, y.Span, m);
            Float32.Widen(y.Span, output[..(rows * m)]);
        }
        if (b != null) for (int r = 0; r < rows; r++) TensorPrimitives.Add(output.Slice(r * m, m), b, output.Slice(r * m, m));
        return new Trace32(this, rows, w, u, aw);
    }

    private sealed class Trace(AffineBlock blk, int rows, double[] w, double[] u, int aw) : BlockTrace(blk, rows)
    {
        private readonly int _n = blk.InputWidth, _m = blk.OutputWidth;
        private readonly bool _bias = blk.BiasSpec != null;

        // All count·Rows rows at once: one GEMM.
        public override void Jvp(ReadOnlySpan<double> dIn, Span<double> dOut, int count) =>
            Gemm.Multiply(Trans.No, Trans.Yes, count * Rows, _m, _n, 1.0, dIn, _n, w, _n, 0.0, dOut, _m);

        public override void Vjp(ReadOnlySpan<double> dOut, Span<double> dIn, int count) =>
            Gemm.Multiply(Trans.No, Trans.No, count * Rows, _n, _m, 1.0, dOut, _m, w, _n, 0.0, dIn, _n);

        public override void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> dOut, int count)
        {
            int size = blk.ParameterSize, wn = _m * _n;
            for (int j = 0; j < count; j++)
            {
                var dt = dTheta.Slice(j * size, size);
                var o = dOut.Slice(j * Rows * _m, Rows * _m);
                // δa = U δWᵀ + δb (docs/math.md#kronecker-core)
                Gemm.Multiply(Trans.No, Trans.Yes, Rows, _m, _n, 1.0, u, aw, dt[..wn], _n, 0.0, o, _m);
                if (_bias) for (int r = 0; r < Rows; r++) TensorPrimitives.Add(o.Slice(r * _m, _m), dt.Slice(wn, _m), o.Slice(r * _m, _m));
            }
        }

        public override void ParamVjp(ReadOnlySpan<double> dOut, Span<double> dTheta, int count)
        {
            int size = blk.ParameterSize, wn = _m * _n;
            for (int j = 0; j < count; j++)
            {
                var dt = dTheta.Slice(j * size, size);
                var g = dOut.Slice(j * Rows * _m, Rows * _m);
                // [δW, δb] = gᵀ Û: δW = gᵀ U, δb = Σ_rows g.
                Gemm.Multiply(Trans.Yes, Trans.No, _m, _n, Rows, 1.0, g, _m, u, aw, 0.0, dt[..wn], _n);
                if (_bias)
                {
                    var db = dt.Slice(wn, _m);
                    db.Clear();
                    for (int r = 0; r < Rows; r++) TensorPrimitives.Add(db, g.Slice(r * _m, _m), db);
                }
            }
        }

        public override IReadOnlyList<LocalSite> Sites =>
        [
            new LocalSite(blk.Name, blk.WeightSpec.Name, blk.BiasSpec?.Name, _n, _m, u, RowLocal: true,
                (src, dst, count) => src[..(count * Rows * _m)].CopyTo(dst),
                (src, dst, count) => src[..(count * Rows * _m)].CopyTo(dst)),
        ];
    }

    /// <summary>
    /// The float32 trace: the same maps as <see cref="Trace"/>, each narrowing its float64 input
    /// block once, running one sgemm against the float32 W or Û, and widening the result. Bias
    /// terms (δb, Σ_rows g) stay in float64, on the float64 vectors.
    /// </summary>
    private sealed class Trace32(AffineBlock blk, int rows, float[] w, float[] u, int aw) : BlockTrace(blk, rows)
    {
        private readonly int _n = blk.InputWidth, _m = blk.OutputWidth;
        private readonly bool _bias = blk.BiasSpec != null;

        internal override bool IsSingle => true;

        public override void Jvp(ReadOnlySpan<double> dIn, Span<double> dOut, int count) => ViaSingle(dIn, _n, dOut, _m, count, Jvp32);

        public override void Vjp(ReadOnlySpan<double> dOut, Span<double> dIn, int count) => ViaSingle(dOut, _m, dIn, _n, count, Vjp32);

        // All count·Rows rows at once: one sgemm against the float32 W.
        internal override void Jvp32(ReadOnlySpan<float> dIn, Span<float> dOut, int count) =>
            Gemm.Multiply(Trans.No, Trans.Yes, count * Rows, _m, _n, 1f, dIn, _n, w, _n, 0f, dOut, _m);

        internal override void Vjp32(ReadOnlySpan<float> dOut, Span<float> dIn, int count) =>
            Gemm.Multiply(Trans.No, Trans.No, count * Rows, _n, _m, 1f, dOut, _m, w, _n, 0f, dIn, _n);

        public override void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> dOut, int count)
        {
            int size = blk.ParameterSize, wn = _m * _n;
            using var dw = new Float32Buffer(wn);
            using var y = new Float32Buffer((long)Rows * _m);
            for (int j = 0; j < count; j++)
            {
                var dt = dTheta.Slice(j * size, size);
                var o = dOut.Slice(j * Rows * _m, Rows * _m);
                // δa = U δWᵀ + δb
                Float32.Narrow(dt[..wn], dw.Span);
                Gemm.Multiply(Trans.No, Trans.Yes, Rows, _m, _n, 1f, u, aw, dw.Span, _n, 0f, y.Span, _m);
                Float32.Widen(y.Span, o);
                if (_bias) for (int r = 0; r < Rows; r++) TensorPrimitives.Add(o.Slice(r * _m, _m), dt.Slice(wn, _m), o.Slice(r * _m, _m));
            }
        }

        public override void ParamVjp(ReadOnlySpan<double> dOut, Span<double> dTheta, int count)
        {
            int size = blk.ParameterSize, wn = _m * _n;
            using var g32 = new Float32Buffer((long)Rows * _m);
            using var dw = new Float32Buffer(wn);
            for (int j = 0; j < count; j++)
            {
                var dt = dTheta.Slice(j * size, size);
                var g = dOut.Slice(j * Rows * _m, Rows * _m);
                // δW = gᵀ U in float32; δb = Σ_rows g in float64.
                Float32.Narrow(g, g32.Span);
                Gemm.Multiply(Trans.Yes, Trans.No, _m, _n, Rows, 1f, g32.Span, _m, u, aw, 0f, dw.Span, _n);
                Float32.Widen(dw.Span, dt[..wn]);
                if (_bias)
                {
                    var db = dt.Slice(wn, _m);
                    db.Clear();
                    for (int r = 0; r < Rows; r++) TensorPrimitives.Add(db, g.Slice(r * _m, _m), db);
                }
            }
        }

        /// <summary>
        /// δa = Û [δW, δb]ᵀ for float32 δθ: one batched sgemm over the vectors (the bias rides on
        /// Û's ones column, so [δW, δb] is first laid out as [m, n+1] rows when there is a bias).
        /// </summary>
        internal override void ParamJvpActive32(ReadOnlySpan<float> dTheta, Span<float> dOut, int count, ReadOnlySpan<bool> active) =>
            ParamJvp32(dTheta, dOut, count, 0f);

        /// <summary>J_u δu + J_θ δθ: the parameter product accumulates onto the input product (β = 1), no temporary block.</summary>
        internal override void TangentActive32(ReadOnlySpan<float> dIn, ReadOnlySpan<float> dTheta, Span<float> dOut, int count, ReadOnlySpan<bool> active)
        {
            bool any = active.IsEmpty || active.Contains(true);
            if (dIn.IsEmpty) { if (any) ParamJvp32(dTheta, dOut, count, 0f); else dOut[..(count * Rows * _m)].Clear(); return; }
            Jvp32(dIn, dOut, count);
            if (any) ParamJvp32(dTheta, dOut, count, 1f);
        }

        /// <summary>dOut = β·dOut + Û [δW, δb]ᵀ per vector.</summary>
        private void ParamJvp32(ReadOnlySpan<float> dTheta, Span<float> dOut, int count, float beta)
        {
            int size = blk.ParameterSize, wn = _m * _n, block = _m * aw;
            using var t = new Float32Buffer(_bias ? (long)count * block : 0);
            ReadOnlySpan<float> wb = dTheta;
            if (_bias)
            {
                var ts = t.Span;
                for (int j = 0; j < count; j++)
                    for (int i = 0; i < _m; i++)
                    {
                        dTheta.Slice(j * size + i * _n, _n).CopyTo(ts.Slice(j * block + i * aw, _n));
                        ts[j * block + i * aw + _n] = dTheta[j * size + wn + i];
                    }
                wb = ts;
            }
            Gemm.MultiplyBatched(Trans.No, Trans.Yes, count, Rows, _m, aw, 1f, u, aw, 0, wb, aw, _bias ? block : size, beta, dOut, _m, Rows * _m);
        }

        /// <summary>[δW, δb] = gᵀ Û for float32 g: one batched sgemm over the vectors (the ones column of Û gives δb = Σ_rows g).</summary>
        internal override void ParamVjpActive32(ReadOnlySpan<float> dOut, Span<float> dTheta, int count, ReadOnlySpan<bool> active)
        {
            int size = blk.ParameterSize, wn = _m * _n, block = _m * aw;
            if (!_bias)
            {
                Gemm.MultiplyBatched(Trans.Yes, Trans.No, count, _m, _n, Rows, 1f, dOut, _m, Rows * _m, u, aw, 0, 0f, dTheta, _n, size);
                return;
            }
            using var t = new Float32Buffer((long)count * block);
            var ts = t.Span;
            Gemm.MultiplyBatched(Trans.Yes, Trans.No, count, _m, aw, Rows, 1f, dOut, _m, Rows * _m, u, aw, 0, 0f, ts, aw, block);
            for (int j = 0; j < count; j++)
                for (int i = 0; i < _m; i++)
                {
                    ts.Slice(j * block + i * aw, _n).CopyTo(dTheta.Slice(j * size + i * _n, _n));
                    dTheta[j * size + wn + i] = ts[j * block + i * aw + _n];
                }
        }

        /// <summary>
        /// The site keeps the float32 Û (K's applications run on it) and widens it to float64 only
        /// when asked (<see cref="LocalSite.Variables"/>: the Kronecker core's Gram matrices Ûᵀ Û accumulate in float64).
        /// </summary>
        public override IReadOnlyList<LocalSite> Sites =>
        [
            new LocalSite(blk.Name, blk.WeightSpec.Name, blk.BiasSpec?.Name, _n, _m, null!, RowLocal: true,
                (src, dst, count) => src[..(count * Rows * _m)].CopyTo(dst),
                (src, dst, count) => src[..(count * Rows * _m)].CopyTo(dst))
            {
                Variables32 = u,
                ApplyD32 = (src, dst, count) => src[..(count * Rows * _m)].CopyTo(dst),
                ApplyDAdjoint32 = (src, dst, count) => src[..(count * Rows * _m)].CopyTo(dst),
            },
        ];
    }
}
