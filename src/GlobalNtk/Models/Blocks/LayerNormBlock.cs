using System.Numerics;
using System.Numerics.Tensors;
using GlobalNtk.Dense;

namespace GlobalNtk.Models.Blocks;

/// <summary>
/// nn.LayerNorm over each row: y = γ ⊙ x̂ + β with x̂ = (u − mean u)/√(var u + ε) (biased
/// variance, as PyTorch), γ = <c>{prefix}.weight</c>, β = <c>{prefix}.bias</c> (elementwise
/// affine; not weight sites — they reach the Kronecker core through J_rest).
/// </summary>
public sealed class LayerNormBlock : StepBlock
{
    /// <summary>A LayerNorm over <paramref name="width"/> features with parameters under <paramref name="prefix"/>.</summary>
    public LayerNormBlock(string prefix, int width, double epsilon = 1e-5, bool elementwiseAffine = true)
    {
        if (width < 1) throw new ArgumentException($"LayerNorm '{prefix}': width {width} must be ≥ 1.");
        if (!(epsilon >= 0) || !double.IsFinite(epsilon)) throw new ArgumentException($"LayerNorm '{prefix}': eps {epsilon} must be finite and ≥ 0.");
        Width = width; Epsilon = epsilon;
        ParameterSpecs = elementwiseAffine ? [new(prefix + ".weight", [width]), new(prefix + ".bias", [width])] : [];
    }

    /// <summary>Features per row.</summary>
    public int Width { get; }
    /// <summary>ε.</summary>
    public double Epsilon { get; }
    /// <inheritdoc/>
    public override int InputWidth => Width;
    /// <inheritdoc/>
    public override int OutputWidth => Width;
    /// <inheritdoc/>
    public override IReadOnlyList<ParameterSpec> ParameterSpecs { get; }

    /// <inheritdoc/>
    public override BlockTrace Forward(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output) =>
        Run<double>(parameters, input, rows, output, Precision.F64);

    /// <inheritdoc/>
    public override bool Supports(Precision precision) => precision is Precision.F64 or Precision.F32;

    /// <summary>
    /// Float32: float32 rows in and out, x̂ kept in float32. Mean, variance and the two row
    /// reductions of the Jacobian (mean v, mean x̂ ⊙ v) stay in float64: they subtract nearly equal
    /// numbers.
    /// </summary>
    protected override BlockTrace ForwardF32(ParameterSet parameters, ReadOnlySpan<float> input, int rows, Span<float> output) =>
        Run<float>(parameters, input, rows, output, Precision.F32);

    /// <summary>
    /// The forward pass on rows of T (double for float64; float for float32, each row formed in
    /// float64 from its float32 input and rounded once into x̂ and y).
    /// </summary>
    private unsafe BlockTrace Run<T>(ParameterSet parameters, ReadOnlySpan<T> input, int rows, Span<T> output, Precision precision)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int d = Width;
        double[]? g = null, b = null;
        if (ParameterSpecs.Count > 0) { g = Read(parameters, ParameterSpecs[0]); b = Read(parameters, ParameterSpecs[1]); }
        // Float32 keeps x̂ in float32 only: each row is formed in float64 and narrowed (no float64 copy of x̂ as garbage).
        bool single = precision == Precision.F32;
        var xhat = new double[single ? 0 : checked(rows * d)];
        var xhat32 = new float[single ? checked(rows * d) : 0];
        var rstd = new double[rows];
        double eps = Epsilon;
        fixed (T* pi = input, po = output)
        {
            nint ip = (nint)pi, op = (nint)po;
            // Rows are independent: in parallel (the fused transformer path did this too).
            ForRows(rows, d, (r0, r1) =>
            {
                var row = single ? new double[d] : null;
                var wide = single ? new double[d] : null;
                var ywide = single ? new double[d] : null;
                for (int r = r0; r < r1; r++)
                {
                    ReadOnlySpan<double> u;
                    if (single) { Float32.Widen(new ReadOnlySpan<float>((float*)ip + (long)r * d, d), wide); u = wide; }
                    else u = new ReadOnlySpan<double>((double*)ip + (long)r * d, d);
                    double mean = TensorPrimitives.Sum(u) / d, var = 0;
                    for (int i = 0; i < d; i++) { double c = u[i] - mean; var += c * c; }
                    rstd[r] = 1.0 / Math.Sqrt(var / d + eps);
                    var xr = single ? row.AsSpan() : xhat.AsSpan(r * d, d);
                    for (int i = 0; i < d; i++) xr[i] = (u[i] - mean) * rstd[r];
                    var y = single ? ywide.AsSpan() : new Span<double>((double*)op + (long)r * d, d);
                    if (g == null) xr.CopyTo(y);
                    else { TensorPrimitives.Multiply(xr, g, y); TensorPrimitives.Add(y, b!, y); }
                    if (single)
                    {
                        Float32.Narrow(xr, xhat32.AsSpan(r * d, d));
                        Float32.Narrow(y, new Span<float>((float*)op + (long)r * d, d));
                    }
                }
            });
        }
        return precision == Precision.F32
            ? new Trace32(this, rows, g, xhat32, rstd)
            : new Trace(this, rows, g, xhat, rstd);
    }

    /// <summary>
    /// Runs <paramref name="range"/>(r0, r1) over row ranges covering 0..rows−1: in parallel chunks
    /// when the rows hold enough work to pay for the threads, else in one call.
    /// </summary>
    internal static void ForRows(int rows, int width, Action<int, int> range)
    {
        int chunks = (long)rows * width < ParallelElements ? 1 : Math.Min(rows, 4 * Environment.ProcessorCount);
        if (chunks <= 1) { range(0, rows); return; }
        Parallel.For(0, chunks, c => range((int)((long)rows * c / chunks), (int)((long)rows * (c + 1) / chunks)));
    }

    /// <summary>Row elements below which a LayerNorm loop stays on one thread.</summary>
    private const long ParallelElements = 1 << 15;

    /// <summary>dst = dx̂ of row r for the row v (the Jacobian of x̂, symmetric), one per precision.</summary>
    private delegate void RowNormalize<T>(int r, ReadOnlySpan<T> v, Span<T> dst);

    /// <summary>
    /// The input maps, rows in parallel: J_u v = γ ⊙ dx̂(v) and J_uᵀ q = dx̂(γ ⊙ q) (J_u without γ when
    /// there is no affine part) over count·rows rows of width d; row jr uses the statistics of row jr % rows.
    /// </summary>
    private static unsafe void MapRows<T>(bool transpose, int total, int rows, int d, ReadOnlySpan<T> src, Span<T> dst, T[]? gain, RowNormalize<T> normalize)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        fixed (T* pi = src, po = dst)
        {
            nint ip = (nint)pi, op = (nint)po;
            ForRows(total, d, (r0, r1) =>
            {
                Span<T> t = !transpose || gain == null ? default : d <= 512 ? stackalloc T[d] : new T[d];
                for (int jr = r0; jr < r1; jr++)
                {
                    var v = new ReadOnlySpan<T>((T*)ip + (long)jr * d, d);
                    var o = new Span<T>((T*)op + (long)jr * d, d);
                    if (gain == null) normalize(jr % rows, v, o);
                    else if (transpose) { TensorPrimitives.Multiply(v, gain, t); normalize(jr % rows, t, o); }
                    else { normalize(jr % rows, v, o); TensorPrimitives.Multiply(o, gain, o); }
                }
            });
        }
    }

    /// <summary>J_θ: δy = δγ ⊙ x̂ + δβ per row, δθ [count, 2d] = [δγ, δβ] per vector.</summary>
    private static unsafe void GainJvp<T>(T[] xhat, int rows, int d, ReadOnlySpan<T> dTheta, Span<T> dOut, int count) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (dTheta.Length < count * 2 * d || dOut.Length < count * rows * d)
            throw new ArgumentException($"LayerNorm J_θ: spans of {dTheta.Length} and {dOut.Length} do not hold {count} vectors.");
        fixed (T* pt = dTheta, po = dOut)
        {
            nint it = (nint)pt, io = (nint)po;
            // Rows are independent: in parallel, like the input maps.
            ForRows(count * rows, d, (r0, r1) =>
            {
                for (int jr = r0; jr < r1; jr++)
                {
                    int j = jr / rows, r = jr % rows;
                    var o = new Span<T>((T*)io + (long)jr * d, d);
                    TensorPrimitives.Multiply(xhat.AsSpan(r * d, d), new ReadOnlySpan<T>((T*)it + (long)j * 2 * d, d), o);
                    TensorPrimitives.Add(o, new ReadOnlySpan<T>((T*)it + (long)j * 2 * d + d, d), o);
                }
            });
        }
    }

    /// <summary>J_θᵀ: δγ = Σ_rows q ⊙ x̂, δβ = Σ_rows q per vector (sums in T).</summary>
    private static void GainVjp<T>(T[] xhat, int rows, int d, ReadOnlySpan<T> dOut, Span<T> dTheta, int count) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int j = 0; j < count; j++)
        {
            var dg = dTheta.Slice(j * 2 * d, d); var db = dTheta.Slice(j * 2 * d + d, d);
            dg.Clear(); db.Clear();
            for (int r = 0; r < rows; r++)
            {
                var q = dOut.Slice((j * rows + r) * d, d);
                TensorPrimitives.MultiplyAdd(q, xhat.AsSpan(r * d, d), dg, dg);
                TensorPrimitives.Add(db, q, db);
            }
        }
    }

    /// <summary>The float64 trace (x̂ in float64), rows in parallel.</summary>
    private sealed class Trace(LayerNormBlock blk, int rows, double[]? g, double[] xhat, double[] rstd) : BlockTrace(blk, rows)
    {
        /// <summary>dx̂ = (v − mean v − x̂ mean(x̂ ⊙ v)) / σ for one row: the Jacobian of x̂, which is symmetric.</summary>
        private void Normalize(int r, ReadOnlySpan<double> v, Span<double> dst)
        {
            int d = blk.Width;
            var xr = xhat.AsSpan(r * d, d);
            double mv = TensorPrimitives.Sum(v) / d, mxv = TensorPrimitives.Dot(xr, v) / d;
            for (int i = 0; i < d; i++) dst[i] = (v[i] - mv - xr[i] * mxv) * rstd[r];
        }

        public override void Jvp(ReadOnlySpan<double> dIn, Span<double> dOut, int count) =>
            MapRows(false, count * Rows, Rows, blk.Width, dIn, dOut, g, Normalize);

        public override void Vjp(ReadOnlySpan<double> dOut, Span<double> dIn, int count) =>
            MapRows(true, count * Rows, Rows, blk.Width, dOut, dIn, g, Normalize);

        public override void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> dOut, int count)
        {
            if (g == null) dOut[..(count * Rows * blk.Width)].Clear();
            else GainJvp(xhat, Rows, blk.Width, dTheta, dOut, count);
        }

        public override void ParamVjp(ReadOnlySpan<double> dOut, Span<double> dTheta, int count)
        {
            if (g != null) GainVjp(xhat, Rows, blk.Width, dOut, dTheta, count);
        }
    }

    /// <summary>
    /// The float32 trace: x̂ in float32 and the maps on float32 rows. Each row's two reductions
    /// (mean v, mean x̂ ⊙ v) and the subtraction v − mean v − x̂·mean(x̂ ⊙ v) are formed in float64,
    /// because they cancel; the result is rounded to float32 once. The parameter maps are float64.
    /// </summary>
    private sealed class Trace32(LayerNormBlock blk, int rows, double[]? g, float[] xhat, double[] rstd) : BlockTrace(blk, rows)
    {
        private readonly float[]? _g32 = g == null ? null : Float32.ToSingle(g);

        internal override bool IsSingle => true;

        public override void Jvp(ReadOnlySpan<double> dIn, Span<double> dOut, int count) => ViaSingle(dIn, blk.Width, dOut, blk.Width, count, Jvp32);

        public override void Vjp(ReadOnlySpan<double> dOut, Span<double> dIn, int count) => ViaSingle(dOut, blk.Width, dIn, blk.Width, count, Vjp32);

        /// <summary>dx̂ of one row in float32 (reductions and the difference in float64).</summary>
        private void Normalize(int r, ReadOnlySpan<float> v, Span<float> dst)
        {
            int d = blk.Width;
            var xr = xhat.AsSpan(r * d, d);
            double mv = Float32.SumWide(v) / d, mxv = Float32.DotWide(xr, v) / d, s = rstd[r];
            int i = 0, w = System.Numerics.Vector<float>.Count;
            var vmv = new System.Numerics.Vector<double>(mv); var vmx = new System.Numerics.Vector<double>(mxv); var vs = new System.Numerics.Vector<double>(s);
            for (; i <= d - w; i += w)
            {
                System.Numerics.Vector.Widen(new System.Numerics.Vector<float>(v[i..]), out var v0, out var v1);
                System.Numerics.Vector.Widen(new System.Numerics.Vector<float>(xr[i..]), out var x0, out var x1);
                System.Numerics.Vector.Narrow((v0 - vmv - x0 * vmx) * vs, (v1 - vmv - x1 * vmx) * vs).CopyTo(dst[i..]);
            }
            for (; i < d; i++) dst[i] = (float)((v[i] - mv - xr[i] * mxv) * s);
        }

        internal override void Jvp32(ReadOnlySpan<float> dIn, Span<float> dOut, int count) =>
            MapRows(false, count * Rows, Rows, blk.Width, dIn, dOut, _g32, Normalize);

        internal override void Vjp32(ReadOnlySpan<float> dOut, Span<float> dIn, int count) =>
            MapRows(true, count * Rows, Rows, blk.Width, dOut, dIn, _g32, Normalize);

        /// <summary>δy = δγ ⊙ x̂ + δβ on float32 rows.</summary>
        internal override void ParamJvpActive32(ReadOnlySpan<float> dTheta, Span<float> dOut, int count, ReadOnlySpan<bool> active)
        {
            if (g == null) dOut[..(count * Rows * blk.Width)].Clear();
            else GainJvp(xhat, Rows, blk.Width, dTheta, dOut, count);
        }

        /// <summary>
        /// δγ = Σ_rows q ⊙ x̂, δβ = Σ_rows q on float32 rows (float32 sums, as the sgemm products of
        /// the weight sites: this feeds applications, not traces).
        /// </summary>
        internal override void ParamVjpActive32(ReadOnlySpan<float> dOut, Span<float> dTheta, int count, ReadOnlySpan<bool> active)
        {
            if (g != null) GainVjp(xhat, Rows, blk.Width, dOut, dTheta, count);
        }

        public override void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> dOut, int count)
        {
            int d = blk.Width;
            if (g == null) { dOut[..(count * Rows * d)].Clear(); return; }
            for (int jr = 0; jr < count * Rows; jr++)
            {
                int j = jr / Rows, r = jr % Rows;
                var o = dOut.Slice(jr * d, d);
                // δy = δγ ⊙ x̂ + δβ, x̂ widened into o first
                Float32.Widen(xhat.AsSpan(r * d, d), o);
                TensorPrimitives.Multiply(o, dTheta.Slice(j * 2 * d, d), o);
                TensorPrimitives.Add(o, dTheta.Slice(j * 2 * d + d, d), o);
            }
        }

        public override void ParamVjp(ReadOnlySpan<double> dOut, Span<double> dTheta, int count)
        {
            int d = blk.Width;
            if (g == null) return;
            Span<double> x = d <= 512 ? stackalloc double[d] : new double[d];
            for (int j = 0; j < count; j++)
            {
                var dg = dTheta.Slice(j * 2 * d, d); var db = dTheta.Slice(j * 2 * d + d, d);
                dg.Clear(); db.Clear();
                for (int r = 0; r < Rows; r++)
                {
                    var q = dOut.Slice((j * Rows + r) * d, d);
                    Float32.Widen(xhat.AsSpan(r * d, d), x);
                    TensorPrimitives.MultiplyAdd(q, x, dg, dg);
                    TensorPrimitives.Add(db, q, db);
                }
            }
        }
    }
}
