using System.Numerics.Tensors;
using GlobalNtk.Dense;
using GlobalNtk.Operators;

namespace GlobalNtk.Models.Blocks;

/// <summary>
/// Blocks applied one after another, y = f_n(… f_1(u)). Every derivative map is derived from the
/// children's: J_u = J_n ⋯ J_1; J_θ δθ = Σ_i J_n ⋯ J_{i+1} J_θ,i δθ_i; a child's site keeps its
/// Û and gets D = J_n ⋯ J_{i+1} D_i.
/// </summary>
public sealed class SequentialBlock : StepBlock
{
    private readonly StepBlock[] _children;

    /// <summary>Composes <paramref name="children"/> (each one's output width is the next one's input width).</summary>
    public SequentialBlock(params StepBlock[] children)
    {
        if (children.Length == 0) throw new ArgumentException("A sequential block needs at least one child.");
        for (int i = 1; i < children.Length; i++)
            if (children[i].InputWidth != children[i - 1].OutputWidth)
                throw new ArgumentException($"Sequential block: child {i} takes width {children[i].InputWidth}, but child {i - 1} gives {children[i - 1].OutputWidth}.");
        _children = children;
        ParameterSpecs = children.SelectMany(c => c.ParameterSpecs).ToArray();
    }

    /// <summary>The children in order.</summary>
    public IReadOnlyList<StepBlock> Children => _children;
    /// <inheritdoc/>
    public override int InputWidth => _children[0].InputWidth;
    /// <inheritdoc/>
    public override int OutputWidth => _children[^1].OutputWidth;
    /// <inheritdoc/>
    public override IReadOnlyList<ParameterSpec> ParameterSpecs { get; }
    /// <inheritdoc/>
    public override bool RowLocal => _children.All(c => c.RowLocal);

    /// <inheritdoc/>
    public override BlockTrace Forward(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output) =>
        Run(parameters, input, rows, output, Precision.F64);

    /// <summary>A precision every child supports.</summary>
    public override bool Supports(Precision precision) => _children.All(c => c.Supports(precision));

    /// <summary>Every child in float32 (rows between children stay float64).</summary>
    protected override BlockTrace ForwardF32(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output) =>
        Run(parameters, input, rows, output, Precision.F32);

    private BlockTrace Run(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output, Precision precision)
    {
        var traces = new BlockTrace[_children.Length];
        double[]? cur = null;
        for (int i = 0; i < _children.Length; i++)
        {
            var c = _children[i];
            bool last = i == _children.Length - 1;
            var next = last ? null : new double[checked(rows * c.OutputWidth)];
            traces[i] = c.Forward(parameters, i == 0 ? input : cur, rows, last ? output : next, precision);
            cur = next;
        }
        return new Trace(this, rows, traces);
    }

    private sealed class Trace(SequentialBlock blk, int rows, BlockTrace[] traces) : BlockTrace(blk, rows)
    {
        private int MaxWidth => blk._children.Max(c => Math.Max(c.InputWidth, c.OutputWidth));

        /// <summary>dst = J_to ⋯ J_from src (children from..to, inclusive); src has child from's input width.</summary>
        private void JvpRange(int from, int to, ReadOnlySpan<double> src, Span<double> dst, int count)
        {
            if (from == to) { traces[from].Jvp(src, dst, count); return; }
            long n = (long)count * Rows * MaxWidth;
            using var a = new BlockBuffer(n); using var b = new BlockBuffer(n);
            traces[from].Jvp(src, a.Span, count);
            var (x, y) = (a, b);
            for (int i = from + 1; i < to; i++) { traces[i].Jvp(x.Span, y.Span, count); (x, y) = (y, x); }
            traces[to].Jvp(x.Span, dst, count);
        }

        /// <summary>dst = J_fromᵀ ⋯ J_toᵀ src.</summary>
        private void VjpRange(int from, int to, ReadOnlySpan<double> src, Span<double> dst, int count)
        {
            if (from == to) { traces[from].Vjp(src, dst, count); return; }
            long n = (long)count * Rows * MaxWidth;
            using var a = new BlockBuffer(n); using var b = new BlockBuffer(n);
            traces[to].Vjp(src, a.Span, count);
            var (x, y) = (a, b);
            for (int i = to - 1; i > from; i--) { traces[i].Vjp(x.Span, y.Span, count); (x, y) = (y, x); }
            traces[from].Vjp(x.Span, dst, count);
        }

        public override void Jvp(ReadOnlySpan<double> dIn, Span<double> dOut, int count) => JvpRange(0, traces.Length - 1, dIn, dOut, count);

        public override void Vjp(ReadOnlySpan<double> dOut, Span<double> dIn, int count) => VjpRange(0, traces.Length - 1, dOut, dIn, count);

        public override void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> dOut, int count)
        {
            int size = blk.ParameterSize;
            long n = (long)count * Rows * MaxWidth;
            using var cur = new BlockBuffer(n); using var nxt = new BlockBuffer(n); using var tmp = new BlockBuffer(n);
            var (x, y) = (cur, nxt);
            bool any = false;
            int off = 0;
            for (int i = 0; i < traces.Length; i++)
            {
                var c = blk._children[i];
                int rowsOut = count * Rows * c.OutputWidth, mi = c.ParameterSize;
                if (any) traces[i].Jvp(x.Span, y.Span, count);
                if (mi > 0)
                {
                    using var dti = new BlockBuffer((long)count * mi);
                    for (int j = 0; j < count; j++) dTheta.Slice(j * size + off, mi).CopyTo(dti.Span.Slice(j * mi, mi));
                    if (any)
                    {
                        traces[i].ParamJvp(dti.Span, tmp.Span, count);
                        TensorPrimitives.Add(y.Span[..rowsOut], tmp.Span[..rowsOut], y.Span[..rowsOut]);
                    }
                    else traces[i].ParamJvp(dti.Span, y.Span, count);
                    any = true;
                }
                off += mi;
                if (any) (x, y) = (y, x);
            }
            int outLen = count * Rows * blk.OutputWidth;
            if (any) x.Span[..outLen].CopyTo(dOut); else dOut[..outLen].Clear();
        }

        public override void ParamVjp(ReadOnlySpan<double> dOut, Span<double> dTheta, int count)
        {
            int size = blk.ParameterSize;
            long n = (long)count * Rows * MaxWidth;
            using var cur = new BlockBuffer(n); using var nxt = new BlockBuffer(n);
            var (g, h) = (cur, nxt);
            dOut[..(count * Rows * blk.OutputWidth)].CopyTo(g.Span);
            int off = size;
            for (int i = traces.Length - 1; i >= 0; i--)
            {
                var c = blk._children[i];
                int mi = c.ParameterSize;
                off -= mi;
                if (mi > 0)
                {
                    using var dti = new BlockBuffer((long)count * mi);
                    traces[i].ParamVjp(g.Span, dti.Span, count);
                    for (int j = 0; j < count; j++) dti.Span.Slice(j * mi, mi).CopyTo(dTheta.Slice(j * size + off, mi));
                }
                if (i > 0 && off > 0) { traces[i].Vjp(g.Span, h.Span, count); (g, h) = (h, g); }
                if (off == 0) break;
            }
        }

        public override IReadOnlyList<LocalSite> Sites
        {
            get
            {
                var sites = new List<LocalSite>();
                for (int i = 0; i < traces.Length; i++)
                {
                    int ii = i;
                    bool downstreamLocal = blk._children.Skip(i + 1).All(c => c.RowLocal);
                    foreach (var s in traces[i].Sites)
                    {
                        if (ii == traces.Length - 1) { sites.Add(s); continue; }
                        int wi = blk._children[ii].OutputWidth;
                        sites.Add(s with
                        {
                            RowLocal = s.RowLocal && downstreamLocal,
                            ApplyD = (a, dst, count) =>
                            {
                                using var t = new BlockBuffer((long)count * Rows * wi);
                                s.ApplyD(a, t.Span, count);
                                JvpRange(ii + 1, traces.Length - 1, t.Span, dst, count);
                            },
                            ApplyDAdjoint = (q, a, count) =>
                            {
                                using var t = new BlockBuffer((long)count * Rows * wi);
                                VjpRange(ii + 1, traces.Length - 1, q, t.Span, count);
                                s.ApplyDAdjoint(t.Span, a, count);
                            },
                        });
                    }
                }
                return sites;
            }
        }
    }
}

/// <summary>
/// A residual connection y = u + f(u) around an inner block of equal input and output width.
/// The inner block's sites keep their D (the skip path does not depend on them).
/// </summary>
public sealed class ResidualBlock : StepBlock
{
    /// <summary>Wraps <paramref name="inner"/> (input width = output width).</summary>
    public ResidualBlock(StepBlock inner)
    {
        if (inner.InputWidth != inner.OutputWidth)
            throw new ArgumentException($"Residual block: the inner block maps {inner.InputWidth} → {inner.OutputWidth}; the widths must agree.");
        Inner = inner;
    }

    /// <summary>f.</summary>
    public StepBlock Inner { get; }
    /// <inheritdoc/>
    public override int InputWidth => Inner.InputWidth;
    /// <inheritdoc/>
    public override int OutputWidth => Inner.OutputWidth;
    /// <inheritdoc/>
    public override IReadOnlyList<ParameterSpec> ParameterSpecs => Inner.ParameterSpecs;
    /// <inheritdoc/>
    public override bool RowLocal => Inner.RowLocal;

    /// <inheritdoc/>
    public override BlockTrace Forward(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output) =>
        Run(parameters, input, rows, output, Precision.F64);

    /// <summary>A precision the inner block supports.</summary>
    public override bool Supports(Precision precision) => Inner.Supports(precision);

    /// <summary>The inner block in float32; the skip path adds float64 rows.</summary>
    protected override BlockTrace ForwardF32(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output) =>
        Run(parameters, input, rows, output, Precision.F32);

    private BlockTrace Run(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output, Precision precision)
    {
        int n = rows * InputWidth;
        var t = Inner.Forward(parameters, input, rows, output, precision);
        TensorPrimitives.Add(output[..n], input[..n], output[..n]);
        return new Trace(this, rows, t);
    }

    private sealed class Trace(ResidualBlock blk, int rows, BlockTrace inner) : BlockTrace(blk, rows)
    {
        public override void Jvp(ReadOnlySpan<double> dIn, Span<double> dOut, int count)
        {
            int n = count * Rows * blk.InputWidth;
            inner.Jvp(dIn, dOut, count);
            TensorPrimitives.Add(dOut[..n], dIn[..n], dOut[..n]);
        }

        public override void Vjp(ReadOnlySpan<double> dOut, Span<double> dIn, int count)
        {
            int n = count * Rows * blk.InputWidth;
            inner.Vjp(dOut, dIn, count);
            TensorPrimitives.Add(dIn[..n], dOut[..n], dIn[..n]);
        }

        public override void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> dOut, int count) => inner.ParamJvp(dTheta, dOut, count);
        public override void ParamVjp(ReadOnlySpan<double> dOut, Span<double> dTheta, int count) => inner.ParamVjp(dOut, dTheta, count);
        public override IReadOnlyList<LocalSite> Sites => inner.Sites;
    }
}
