using GlobalNtk.Operators;
using GlobalNtk.Dense;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

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

    /// <summary>Float32: Û, W and b kept in float32, the product an sgemm, the bias added in float32 (as a float32 nn.Linear).</summary>
    protected override BlockTrace ForwardF32(ParameterSet parameters, ReadOnlySpan<float> input, int rows, Span<float> output)
    {
        var w = Float32.ToSingle(Read(parameters, WeightSpec));
        var b = BiasSpec == null ? null : Float32.ToSingle(Read(parameters, BiasSpec));
        int n = InputWidth, m = OutputWidth, aw = n + (b == null ? 0 : 1);
        var u = new float[checked(rows * aw)];
        for (int r = 0; r < rows; r++)
        {
            input.Slice(r * n, n).CopyTo(u.AsSpan(r * aw, n));
            if (b != null) u[r * aw + n] = 1f;
        }
        Gemm.Multiply(Trans.No, Trans.Yes, rows, m, n, 1f, u, aw, w, n, 0f, output, m);
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

        // δa = Û [δW, δb]ᵀ and [δW, δb] = gᵀ Û (docs/math.md#kronecker-core): one batched GEMM over the
        // vectors each, the bias riding on Û's ones column (no serial per-row bias loops).
        public override void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> dOut, int count) =>
            ParamJvpBatched(blk, Rows, u, aw, dTheta, dOut, count, 0.0);

        public override void ParamVjp(ReadOnlySpan<double> dOut, Span<double> dTheta, int count) =>
            ParamVjpBatched(blk, Rows, u, aw, dOut, dTheta, count);

        /// <summary>J_u δu + J_θ δθ: the parameter product accumulates onto the input product (β = 1), no temporary block.</summary>
        internal override void TangentActive(ReadOnlySpan<double> dIn, ReadOnlySpan<double> dTheta, Span<double> dOut, int count, ReadOnlySpan<bool> active)
        {
            bool any = active.IsEmpty || active.Contains(true);
            if (dIn.IsEmpty) { if (any) ParamJvp(dTheta, dOut, count); else dOut[..(count * Rows * _m)].Clear(); return; }
            Jvp(dIn, dOut, count);
            if (any) ParamJvpBatched(blk, Rows, u, aw, dTheta, dOut, count, 1.0);
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
        private void ParamJvp32(ReadOnlySpan<float> dTheta, Span<float> dOut, int count, float beta) =>
            ParamJvpBatched(blk, Rows, u, aw, dTheta, dOut, count, beta);

        /// <summary>[δW, δb] = gᵀ Û for float32 g: one batched sgemm over the vectors (the ones column of Û gives δb = Σ_rows g).</summary>
        internal override void ParamVjpActive32(ReadOnlySpan<float> dOut, Span<float> dTheta, int count, ReadOnlySpan<bool> active) =>
            ParamVjpBatched(blk, Rows, u, aw, dOut, dTheta, count);

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

    /// <summary>
    /// dOut = β·dOut + Û [δW, δb]ᵀ for each of <paramref name="count"/> vectors (T: float or double):
    /// one batched GEMM; with a bias, [δW, δb] is first laid out as [m, n+1] rows so that δb rides
    /// on Û's ones column.
    /// </summary>
    private static void ParamJvpBatched<T>(AffineBlock blk, int rows, T[] u, int aw, ReadOnlySpan<T> dTheta, Span<T> dOut, int count, T beta)
        where T : unmanaged
    {
        int n = blk.InputWidth, m = blk.OutputWidth, size = blk.ParameterSize, wn = m * n, block = m * aw;
        bool bias = blk.BiasSpec != null;
        using var t = new ScratchBlock<T>(bias ? (long)count * block : 0);
        ReadOnlySpan<T> wb = dTheta;
        if (bias)
        {
            var ts = t.Span;
            for (int j = 0; j < count; j++)
                for (int i = 0; i < m; i++)
                {
                    dTheta.Slice(j * size + i * n, n).CopyTo(ts.Slice(j * block + i * aw, n));
                    ts[j * block + i * aw + n] = dTheta[j * size + wn + i];
                }
            wb = ts;
        }
        Batched(Trans.No, Trans.Yes, count, rows, m, aw, u, aw, 0, wb, aw, bias ? block : size, beta, dOut, m, rows * m);
    }

    /// <summary>[δW, δb] = gᵀ Û for each of <paramref name="count"/> vectors (T: float or double): one batched GEMM (the ones column of Û gives δb = Σ_rows g).</summary>
    private static void ParamVjpBatched<T>(AffineBlock blk, int rows, T[] u, int aw, ReadOnlySpan<T> dOut, Span<T> dTheta, int count)
        where T : unmanaged
    {
        int n = blk.InputWidth, m = blk.OutputWidth, size = blk.ParameterSize, wn = m * n, block = m * aw;
        if (blk.BiasSpec == null)
        {
            Batched(Trans.Yes, Trans.No, count, m, n, rows, dOut, m, rows * m, u, aw, 0, default, dTheta, n, size);
            return;
        }
        using var t = new ScratchBlock<T>((long)count * block);
        var ts = t.Span;
        Batched(Trans.Yes, Trans.No, count, m, aw, rows, dOut, m, rows * m, u, aw, 0, default, ts, aw, block);
        for (int j = 0; j < count; j++)
            for (int i = 0; i < m; i++)
            {
                ts.Slice(j * block + i * aw, n).CopyTo(dTheta.Slice(j * size + i * n, n));
                dTheta[j * size + wn + i] = ts[j * block + i * aw + n];
            }
    }

    /// <summary><see cref="Gemm.MultiplyBatched(Trans, Trans, int, int, int, int, double, ReadOnlySpan{double}, int, int, ReadOnlySpan{double}, int, int, double, Span{double}, int, int)"/> with α = 1 for T = double or float.</summary>
    private static void Batched<T>(Trans ta, Trans tb, int batch, int m, int n, int k, ReadOnlySpan<T> a, int lda, int strideA,
        ReadOnlySpan<T> b, int ldb, int strideB, T beta, Span<T> c, int ldc, int strideC) where T : unmanaged
    {
        if (typeof(T) == typeof(double))
            Gemm.MultiplyBatched(ta, tb, batch, m, n, k, 1.0, MemoryMarshal.Cast<T, double>(a), lda, strideA, MemoryMarshal.Cast<T, double>(b), ldb, strideB,
                Unsafe.As<T, double>(ref beta), MemoryMarshal.Cast<T, double>(c), ldc, strideC);
        else
            Gemm.MultiplyBatched(ta, tb, batch, m, n, k, 1f, MemoryMarshal.Cast<T, float>(a), lda, strideA, MemoryMarshal.Cast<T, float>(b), ldb, strideB,
                Unsafe.As<T, float>(ref beta), MemoryMarshal.Cast<T, float>(c), ldc, strideC);
    }
}
