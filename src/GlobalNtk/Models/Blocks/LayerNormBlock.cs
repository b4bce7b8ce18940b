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
        Run(parameters, input, rows, output, Precision.F64);

    /// <inheritdoc/>
    public override bool Supports(Precision precision) => precision is Precision.F64 or Precision.F32;

    /// <summary>
    /// Float32: x̂ kept in float32. Mean, variance and the two row reductions of the Jacobian
    /// (mean v, mean x̂ ⊙ v) stay in float64: they subtract nearly equal numbers.
    /// </summary>
    protected override BlockTrace ForwardF32(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output) =>
        Run(parameters, input, rows, output, Precision.F32);

    private BlockTrace Run(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output, Precision precision)
    {
        int d = Width;
        double[]? g = null, b = null;
        if (ParameterSpecs.Count > 0) { g = Read(parameters, ParameterSpecs[0]); b = Read(parameters, ParameterSpecs[1]); }
        var xhat = new double[checked(rows * d)];
        var rstd = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            var u = input.Slice(r * d, d);
            double mean = TensorPrimitives.Sum(u) / d, var = 0;
            for (int i = 0; i < d; i++) { double c = u[i] - mean; var += c * c; }
            rstd[r] = 1.0 / Math.Sqrt(var / d + Epsilon);
            var xr = xhat.AsSpan(r * d, d);
            for (int i = 0; i < d; i++) xr[i] = (u[i] - mean) * rstd[r];
            var y = output.Slice(r * d, d);
            if (g == null) xr.CopyTo(y);
            else { TensorPrimitives.Multiply(xr, g, y); TensorPrimitives.Add(y, b!, y); }
        }
        return precision == Precision.F32
            ? new Trace(this, rows, g, null, Float32.ToSingle(xhat), rstd)
            : new Trace(this, rows, g, xhat, null, rstd);
    }

    /// <summary>The trace; x̂ is stored in float64 (<paramref name="xhat"/>) or float32 (<paramref name="xhat32"/>), all arithmetic is float64.</summary>
    private sealed class Trace(LayerNormBlock blk, int rows, double[]? g, double[]? xhat, float[]? xhat32, double[] rstd) : BlockTrace(blk, rows)
    {
        /// <summary>x̂ of row r: a view of the float64 cache, or the float32 one widened into <paramref name="scratch"/>.</summary>
        private ReadOnlySpan<double> XHat(int r, Span<double> scratch)
        {
            int d = blk.Width;
            if (xhat != null) return xhat.AsSpan(r * d, d);
            Float32.Widen(xhat32.AsSpan(r * d, d), scratch);
            return scratch[..d];
        }

        /// <summary>dx̂ = (v − mean v − x̂ mean(x̂ ⊙ v)) / σ for one row: the Jacobian of x̂, which is symmetric.</summary>
        private void Normalize(int r, ReadOnlySpan<double> v, Span<double> dst, Span<double> scratch)
        {
            int d = blk.Width;
            var xr = XHat(r, scratch);
            double mv = TensorPrimitives.Sum(v) / d, mxv = TensorPrimitives.Dot(xr, v) / d;
            for (int i = 0; i < d; i++) dst[i] = (v[i] - mv - xr[i] * mxv) * rstd[r];
        }

        public override void Jvp(ReadOnlySpan<double> dIn, Span<double> dOut, int count)
        {
            int d = blk.Width;
            Span<double> scratch = xhat != null ? default : d <= 512 ? stackalloc double[d] : new double[d];
            for (int jr = 0; jr < count * Rows; jr++)
            {
                var o = dOut.Slice(jr * d, d);
                Normalize(jr % Rows, dIn.Slice(jr * d, d), o, scratch);
                if (g != null) TensorPrimitives.Multiply(o, g, o);
            }
        }

        public override void Vjp(ReadOnlySpan<double> dOut, Span<double> dIn, int count)
        {
            int d = blk.Width;
            Span<double> t = d <= 512 ? stackalloc double[d] : new double[d];
            Span<double> scratch = xhat != null ? default : d <= 512 ? stackalloc double[d] : new double[d];
            for (int jr = 0; jr < count * Rows; jr++)
            {
                var q = dOut.Slice(jr * d, d);
                if (g != null) { TensorPrimitives.Multiply(q, g, t); Normalize(jr % Rows, t, dIn.Slice(jr * d, d), scratch); }
                else Normalize(jr % Rows, q, dIn.Slice(jr * d, d), scratch);
            }
        }

        public override void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> dOut, int count)
        {
            int d = blk.Width;
            if (g == null) { dOut[..(count * Rows * d)].Clear(); return; }
            for (int jr = 0; jr < count * Rows; jr++)
            {
                int j = jr / Rows, r = jr % Rows;
                var o = dOut.Slice(jr * d, d);
                // δy = δγ ⊙ x̂ + δβ (x̂ widened into o first when it is float32)
                TensorPrimitives.Multiply(XHat(r, o), dTheta.Slice(j * 2 * d, d), o);
                TensorPrimitives.Add(o, dTheta.Slice(j * 2 * d + d, d), o);
            }
        }

        public override void ParamVjp(ReadOnlySpan<double> dOut, Span<double> dTheta, int count)
        {
            int d = blk.Width;
            if (g == null) return;
            Span<double> scratch = xhat != null ? default : d <= 512 ? stackalloc double[d] : new double[d];
            for (int j = 0; j < count; j++)
            {
                var dg = dTheta.Slice(j * 2 * d, d); var db = dTheta.Slice(j * 2 * d + d, d);
                dg.Clear(); db.Clear();
                for (int r = 0; r < Rows; r++)
                {
                    var q = dOut.Slice((j * Rows + r) * d, d);
                    TensorPrimitives.MultiplyAdd(q, XHat(r, scratch), dg, dg);
                    TensorPrimitives.Add(db, q, db);
                }
            }
        }
    }
}
