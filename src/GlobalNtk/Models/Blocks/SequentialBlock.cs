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
    internal override int ScratchWidth => _children.Max(c => c.ScratchWidth);

    /// <inheritdoc/>
    public override BlockTrace Forward(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output) =>
        Run(parameters, input, rows, output, Precision.F64);

    /// <summary>A precision every child supports.</summary>
    public override bool Supports(Precision precision) => _children.All(c => c.Supports(precision));

    /// <summary>Every child in float32, the rows between children float32.</summary>
    protected override BlockTrace ForwardF32(ParameterSet parameters, ReadOnlySpan<float> input, int rows, Span<float> output) =>
        Run32(parameters, [], input, rows, output);

    /// <summary>The first child reads the float64 rows (e.g. an embedding its token ids), the rest as above.</summary>
    private protected override BlockTrace ForwardF32(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<float> output) =>
        Run32(parameters, input, [], rows, output);

    private BlockTrace Run(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output, Precision precision)
    {
        var traces = new BlockTrace[_children.Length];
        // Intermediate rows live in two pooled buffers, used in turn: a trace cannot hold on to the
        // span it was given (it copies what its derivatives need).
        long n = (long)rows * _children.Max(c => c.OutputWidth);
        using var a = new BlockBuffer(_children.Length > 1 ? n : 0); using var b = new BlockBuffer(_children.Length > 2 ? n : 0);
        ReadOnlySpan<double> cur = input;
        for (int i = 0; i < _children.Length; i++)
        {
            var c = _children[i];
            var next = i == _children.Length - 1 ? output : (i % 2 == 0 ? a : b).Span[..(rows * c.OutputWidth)];
            traces[i] = c.Forward(parameters, cur, rows, next, precision);
            cur = next;
        }
        return new Trace(this, rows, traces, precision == Precision.F32);
    }

    /// <summary>
    /// The float32 forward pass: the first child reads <paramref name="input64"/> when it is not
    /// empty (else <paramref name="input"/>); the intermediate rows live in two pooled float32
    /// buffers, used in turn.
    /// </summary>
    private BlockTrace Run32(ParameterSet parameters, ReadOnlySpan<double> input64, ReadOnlySpan<float> input, int rows, Span<float> output)
    {
        var traces = new BlockTrace[_children.Length];
        long n = (long)rows * _children.Max(c => c.OutputWidth);
        using var a = new Float32Buffer(_children.Length > 1 ? n : 0); using var b = new Float32Buffer(_children.Length > 2 ? n : 0);
        ReadOnlySpan<float> cur = input;
        for (int i = 0; i < _children.Length; i++)
        {
            var c = _children[i];
            var next = i == _children.Length - 1 ? output : (i % 2 == 0 ? a : b).Span[..(rows * c.OutputWidth)];
            traces[i] = i == 0 && !input64.IsEmpty ? c.Forward32(parameters, input64, rows, next) : c.Forward32(parameters, cur, rows, next);
            cur = next;
        }
        return new Trace(this, rows, traces, true);
    }

    /// <summary>
    /// The composed trace. A float32 one (<paramref name="single"/>) runs its input maps on float32
    /// rows from child to child (each child natively in float32 or through its converting default),
    /// so that a block of vectors is narrowed once on the way in and widened once on the way out.
    /// </summary>
    private sealed class Trace(SequentialBlock blk, int rows, BlockTrace[] traces, bool single) : BlockTrace(blk, rows)
    {
        private int MaxWidth => blk._children.Max(c => Math.Max(c.InputWidth, c.OutputWidth));

        internal override bool IsSingle => single;

        /// <summary>float32 <see cref="JvpRange"/>.</summary>
        private void JvpRange32(int from, int to, ReadOnlySpan<float> src, Span<float> dst, int count)
        {
            if (from == to) { traces[from].Jvp32(src, dst, count); return; }
            long n = (long)count * Rows * MaxWidth;
            using var a = new Float32Buffer(n); using var b = new Float32Buffer(n);
            traces[from].Jvp32(src, a.Span, count);
            var (x, y) = (a, b);
            for (int i = from + 1; i < to; i++) { traces[i].Jvp32(x.Span, y.Span, count); (x, y) = (y, x); }
            traces[to].Jvp32(x.Span, dst, count);
        }

        /// <summary>float32 <see cref="VjpRange"/>.</summary>
        private void VjpRange32(int from, int to, ReadOnlySpan<float> src, Span<float> dst, int count)
        {
            if (from == to) { traces[from].Vjp32(src, dst, count); return; }
            long n = (long)count * Rows * MaxWidth;
            using var a = new Float32Buffer(n); using var b = new Float32Buffer(n);
            traces[to].Vjp32(src, a.Span, count);
            var (x, y) = (a, b);
            for (int i = to - 1; i > from; i--) { traces[i].Vjp32(x.Span, y.Span, count); (x, y) = (y, x); }
            traces[from].Vjp32(x.Span, dst, count);
        }

        internal override void Jvp32(ReadOnlySpan<float> dIn, Span<float> dOut, int count) => JvpRange32(0, traces.Length - 1, dIn, dOut, count);

        internal override void Vjp32(ReadOnlySpan<float> dOut, Span<float> dIn, int count) => VjpRange32(0, traces.Length - 1, dOut, dIn, count);

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

        public override void Jvp(ReadOnlySpan<double> dIn, Span<double> dOut, int count)
        {
            if (single) ViaSingle(dIn, blk.InputWidth, dOut, blk.OutputWidth, count, Jvp32);
            else JvpRange(0, traces.Length - 1, dIn, dOut, count);
        }

        public override void Vjp(ReadOnlySpan<double> dOut, Span<double> dIn, int count)
        {
            if (single) ViaSingle(dOut, blk.OutputWidth, dIn, blk.InputWidth, count, Vjp32);
            else VjpRange(0, traces.Length - 1, dOut, dIn, count);
        }

        public override void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> dOut, int count) => ParamJvpActive(dTheta, dOut, count, default);

        public override void ParamVjp(ReadOnlySpan<double> dOut, Span<double> dTheta, int count) => ParamVjpActive(dOut, dTheta, count, default);

        /// <summary>Child i's flags within the block's <paramref name="active"/> flags (empty = all), and whether any is set.</summary>
        private ReadOnlySpan<bool> ChildFlags(ReadOnlySpan<bool> active, int i, out bool any)
        {
            int mi = blk._children[i].ParameterSpecs.Count;
            if (active.IsEmpty) { any = mi > 0; return default; }
            int o = 0;
            for (int c = 0; c < i; c++) o += blk._children[c].ParameterSpecs.Count;
            var f = active.Slice(o, mi);
            any = f.Contains(true);
            return f;
        }

        internal override void ParamJvpActive(ReadOnlySpan<double> dTheta, Span<double> dOut, int count, ReadOnlySpan<bool> active) =>
            TangentActive(default, dTheta, dOut, count, active);

        internal override void ParamVjpActive(ReadOnlySpan<double> dOut, Span<double> dTheta, int count, ReadOnlySpan<bool> active) =>
            CotangentActive(dOut, default, dTheta, count, active);

        internal override void ParamJvpActive32(ReadOnlySpan<float> dTheta, Span<float> dOut, int count, ReadOnlySpan<bool> active) =>
            TangentActive32(default, dTheta, dOut, count, active);

        internal override void ParamVjpActive32(ReadOnlySpan<float> dOut, Span<float> dTheta, int count, ReadOnlySpan<bool> active) =>
            CotangentActive32(dOut, default, dTheta, count, active);

        /// <summary>Child i's δθ gathered into <paramref name="dst"/> [count, m_i] from the block's dθ [count, ParameterSize] at offset <paramref name="off"/>.</summary>
        private void ChildTheta<T>(ReadOnlySpan<T> dTheta, int off, int mi, int count, Span<T> dst)
        {
            int size = blk.ParameterSize;
            for (int j = 0; j < count; j++) dTheta.Slice(j * size + off, mi).CopyTo(dst.Slice(j * mi, mi));
        }

        /// <summary>
        /// The float64 sweeps of a float32 trace narrow the vectors (and δθ) once, sweep the children
        /// in float32 and widen once, instead of converting at every child.
        /// </summary>
        internal override void TangentActive(ReadOnlySpan<double> dIn, ReadOnlySpan<double> dTheta, Span<double> dOut, int count, ReadOnlySpan<bool> active)
        {
            if (!single) { Tangent(dIn, dTheta, dOut, count, active); return; }
            using var i32 = new Float32Buffer(dIn.Length); using var t32 = new Float32Buffer(dTheta.Length);
            using var o32 = new Float32Buffer((long)count * Rows * blk.OutputWidth);
            Float32.Narrow(dIn, i32.Span); Float32.Narrow(dTheta, t32.Span);
            Tangent<float>(dIn.IsEmpty ? default : i32.Span, t32.Span, o32.Span, count, active);
            Float32.Widen(o32.Span, dOut);
        }

        internal override void CotangentActive(ReadOnlySpan<double> g, Span<double> dIn, Span<double> dTheta, int count, ReadOnlySpan<bool> active)
        {
            if (!single) { Cotangent(g, dIn, dTheta, count, active); return; }
            using var g32 = new Float32Buffer(g.Length); using var i32 = new Float32Buffer(dIn.Length);
            using var t32 = new Float32Buffer(dTheta.Length);
            Float32.Narrow(g, g32.Span);
            t32.Span.Clear(); // entries of inactive parameters are unspecified; keep them finite
            Cotangent<float>(g32.Span, dIn.IsEmpty ? default : i32.Span, t32.Span, count, active);
            if (!dIn.IsEmpty) Float32.Widen(i32.Span, dIn);
            Float32.Widen(t32.Span, dTheta);
        }

        internal override void TangentActive32(ReadOnlySpan<float> dIn, ReadOnlySpan<float> dTheta, Span<float> dOut, int count, ReadOnlySpan<bool> active) =>
            Tangent(dIn, dTheta, dOut, count, active);

        internal override void CotangentActive32(ReadOnlySpan<float> g, Span<float> dIn, Span<float> dTheta, int count, ReadOnlySpan<bool> active) =>
            Cotangent(g, dIn, dTheta, count, active);

        /// <summary>The tangent runs through the children once; each child adds its own J_θ part on the way (T: float or double).</summary>
        private void Tangent<T>(ReadOnlySpan<T> dIn, ReadOnlySpan<T> dTheta, Span<T> dOut, int count, ReadOnlySpan<bool> active) where T : unmanaged
        {
            long n = (long)count * Rows * MaxWidth;
            using var cur = new ScratchBlock<T>(n); using var nxt = new ScratchBlock<T>(n);
            var (x, y) = (cur, nxt);
            bool have = !dIn.IsEmpty; // whether the running tangent is non-zero
            int off = 0, last = traces.Length - 1;
            for (int i = 0; i <= last; i++)
            {
                int mi = blk._children[i].ParameterSize;
                var flags = ChildFlags(active, i, out bool on);
                if (have || on)
                {
                    using var dti = new ScratchBlock<T>(on ? (long)count * mi : 0);
                    if (on) ChildTheta(dTheta, off, mi, count, dti.Span);
                    var src = !have ? default : i == 0 ? dIn : (ReadOnlySpan<T>)x.Span;
                    traces[i].TangentActive(src, on ? dti.Span : default, i == last ? dOut : y.Span, count, flags);
                    have = true;
                    (x, y) = (y, x);
                }
                off += mi;
            }
            if (!have) dOut[..(count * Rows * blk.OutputWidth)].Clear();
        }

        /// <summary>The cotangent runs back through the children once; it stops at the first child that has an active parameter unless dIn is wanted.</summary>
        private void Cotangent<T>(ReadOnlySpan<T> g, Span<T> dIn, Span<T> dTheta, int count, ReadOnlySpan<bool> active) where T : unmanaged
        {
            int size = blk.ParameterSize;
            long n = (long)count * Rows * MaxWidth;
            using var cur = new ScratchBlock<T>(n); using var nxt = new ScratchBlock<T>(n);
            var (x, y) = (cur, nxt);
            int first = traces.Length;
            if (!dIn.IsEmpty) first = 0;
            else for (int i = 0; i < traces.Length; i++) { ChildFlags(active, i, out bool on); if (on) { first = i; break; } }
            int off = size, last = traces.Length - 1;
            for (int i = last; i >= first; i--)
            {
                int mi = blk._children[i].ParameterSize;
                off -= mi;
                var flags = ChildFlags(active, i, out bool on);
                using var dti = new ScratchBlock<T>(on ? (long)count * mi : 0);
                var src = i == last ? g : (ReadOnlySpan<T>)x.Span;
                var dst = i > first ? y.Span : i == 0 && !dIn.IsEmpty ? dIn : default;
                traces[i].CotangentActive(src, dst, on ? dti.Span : default, count, flags);
                if (on)
                    for (int j = 0; j < count; j++) dti.Span.Slice(j * mi, mi).CopyTo(dTheta.Slice(j * size + off, mi));
                (x, y) = (y, x);
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
                        if (single && s.ApplyD32 is { } d32 && s.ApplyDAdjoint32 is { } da32)
                        {
                            // float32 all the way: D = J_n ⋯ J_{i+1} D_i on float32 rows; the float64 maps convert once.
                            SpanMap32 apply = (a, dst, count) =>
                            {
                                using var t = new Float32Buffer((long)count * Rows * wi);
                                d32(a, t.Span, count);
                                JvpRange32(ii + 1, traces.Length - 1, t.Span, dst, count);
                            };
                            SpanMap32 adjoint = (q, a, count) =>
                            {
                                using var t = new Float32Buffer((long)count * Rows * wi);
                                VjpRange32(ii + 1, traces.Length - 1, q, t.Span, count);
                                da32(t.Span, a, count);
                            };
                            int m = s.OutDim, w = blk.OutputWidth;
                            sites.Add(s with
                            {
                                RowLocal = s.RowLocal && downstreamLocal,
                                ApplyD32 = apply,
                                ApplyDAdjoint32 = adjoint,
                                ApplyD = (a, dst, count) => ViaSingle(a, m, dst, w, count, apply),
                                ApplyDAdjoint = (q, a, count) => ViaSingle(q, w, a, m, count, adjoint),
                            });
                            continue;
                        }
                        sites.Add(s with
                        {
                            RowLocal = s.RowLocal && downstreamLocal,
                            ApplyD32 = null,
                            ApplyDAdjoint32 = null,
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
    internal override int ScratchWidth => Inner.ScratchWidth;

    /// <inheritdoc/>
    public override BlockTrace Forward(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output) =>
        Run(parameters, input, rows, output, Precision.F64);

    /// <summary>A precision the inner block supports.</summary>
    public override bool Supports(Precision precision) => Inner.Supports(precision);

    /// <summary>The inner block in float32; the skip path adds the float32 rows (as a float32 model adds them).</summary>
    protected override BlockTrace ForwardF32(ParameterSet parameters, ReadOnlySpan<float> input, int rows, Span<float> output)
    {
        int n = rows * InputWidth;
        var t = Inner.Forward32(parameters, input, rows, output);
        Elementwise.Add(output[..n], input[..n], output[..n]);
        return new Trace(this, rows, t);
    }

    private BlockTrace Run(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output, Precision precision)
    {
        int n = rows * InputWidth;
        var t = Inner.Forward(parameters, input, rows, output, precision);
        Elementwise.Add(output[..n], input[..n], output[..n]);
        return new Trace(this, rows, t);
    }

    private sealed class Trace(ResidualBlock blk, int rows, BlockTrace inner) : BlockTrace(blk, rows)
    {
        public override void Jvp(ReadOnlySpan<double> dIn, Span<double> dOut, int count)
        {
            int n = count * Rows * blk.InputWidth;
            inner.Jvp(dIn, dOut, count);
            Elementwise.Add(dOut[..n], dIn[..n], dOut[..n]);
        }

        public override void Vjp(ReadOnlySpan<double> dOut, Span<double> dIn, int count)
        {
            int n = count * Rows * blk.InputWidth;
            inner.Vjp(dOut, dIn, count);
            Elementwise.Add(dIn[..n], dOut[..n], dIn[..n]);
        }

        internal override bool IsSingle => inner.IsSingle;

        internal override void Jvp32(ReadOnlySpan<float> dIn, Span<float> dOut, int count)
        {
            int n = count * Rows * blk.InputWidth;
            inner.Jvp32(dIn, dOut, count);
            Elementwise.Add(dOut[..n], dIn[..n], dOut[..n]);
        }

        internal override void Vjp32(ReadOnlySpan<float> dOut, Span<float> dIn, int count)
        {
            int n = count * Rows * blk.InputWidth;
            inner.Vjp32(dOut, dIn, count);
            Elementwise.Add(dIn[..n], dOut[..n], dIn[..n]);
        }

        public override void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> dOut, int count) => inner.ParamJvp(dTheta, dOut, count);
        public override void ParamVjp(ReadOnlySpan<double> dOut, Span<double> dTheta, int count) => inner.ParamVjp(dOut, dTheta, count);
        internal override void ParamJvpActive(ReadOnlySpan<double> dTheta, Span<double> dOut, int count, ReadOnlySpan<bool> active) =>
            inner.ParamJvpActive(dTheta, dOut, count, active);
        internal override void ParamVjpActive(ReadOnlySpan<double> dOut, Span<double> dTheta, int count, ReadOnlySpan<bool> active) =>
            inner.ParamVjpActive(dOut, dTheta, count, active);

        internal override void TangentActive(ReadOnlySpan<double> dIn, ReadOnlySpan<double> dTheta, Span<double> dOut, int count, ReadOnlySpan<bool> active)
        {
            inner.TangentActive(dIn, dTheta, dOut, count, active);
            int n = count * Rows * blk.InputWidth;
            if (!dIn.IsEmpty) Elementwise.Add(dOut[..n], dIn[..n], dOut[..n]);
        }

        internal override void CotangentActive(ReadOnlySpan<double> g, Span<double> dIn, Span<double> dTheta, int count, ReadOnlySpan<bool> active)
        {
            inner.CotangentActive(g, dIn, dTheta, count, active);
            int n = count * Rows * blk.InputWidth;
            if (!dIn.IsEmpty) Elementwise.Add(dIn[..n], g[..n], dIn[..n]);
        }

        internal override void ParamJvpActive32(ReadOnlySpan<float> dTheta, Span<float> dOut, int count, ReadOnlySpan<bool> active) =>
            inner.ParamJvpActive32(dTheta, dOut, count, active);
        internal override void ParamVjpActive32(ReadOnlySpan<float> dOut, Span<float> dTheta, int count, ReadOnlySpan<bool> active) =>
            inner.ParamVjpActive32(dOut, dTheta, count, active);

        internal override void TangentActive32(ReadOnlySpan<float> dIn, ReadOnlySpan<float> dTheta, Span<float> dOut, int count, ReadOnlySpan<bool> active)
        {
            inner.TangentActive32(dIn, dTheta, dOut, count, active);
            int n = count * Rows * blk.InputWidth;
            if (!dIn.IsEmpty) Elementwise.Add(dOut[..n], dIn[..n], dOut[..n]);
        }

        internal override void CotangentActive32(ReadOnlySpan<float> g, Span<float> dIn, Span<float> dTheta, int count, ReadOnlySpan<bool> active)
        {
            inner.CotangentActive32(g, dIn, dTheta, count, active);
            int n = count * Rows * blk.InputWidth;
            if (!dIn.IsEmpty) Elementwise.Add(dIn[..n], g[..n], dIn[..n]);
        }

        public override IReadOnlyList<LocalSite> Sites => inner.Sites;
    }
}
