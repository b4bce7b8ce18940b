using GlobalNtk.Dense;
using GlobalNtk.Models;

namespace GlobalNtk.Tests;

/// <summary>
/// A tiny leaky tanh RNN with an extra per-unit gain (a parameter outside every site, like a
/// LayerNorm gain): h_k = (1−α) h_{k−1} + γ ⊙ tanh(W_hh h_{k−1} + b_hh + W_ih x_k + b_ih).
/// Written with explicit loops so the NTK operators can be tested on the contract alone.
/// Sites: one joint site [h; x; 1; 1] or two ("hh" on h, "ih" on x); the row axes can be renamed
/// to force the Kronecker core's general (non-row-local) path.
/// </summary>
internal sealed class NtkTinyRnn : IChainModel
{
    public NtkTinyRnn(int hidden, int inputs, double leak, int seed, bool jointSite, string[]? rowNames = null, bool withGain = true)
    {
        H = hidden; N = inputs; Alpha = leak; JointSite = jointSite; RowNames = rowNames ?? ["trial", "time"];
        var rng = new Random(seed);
        double s = 1.0 / Math.Sqrt(hidden);
        Parameter P(string name, params int[] shape)
        {
            var data = new double[shape.Aggregate(1, (a, b) => a * b)];
            for (int i = 0; i < data.Length; i++) data[i] = s * (2 * rng.NextDouble() - 1) * 1.5;
            return new Parameter(name, shape, data);
        }
        var list = new List<Parameter> { P("weight_ih", H, N), P("weight_hh", H, H), P("bias_ih", H), P("bias_hh", H) };
        if (withGain)
            list.Add(new Parameter("gain", [H], Enumerable.Range(0, H).Select(_ => 0.8 + 0.4 * rng.NextDouble()).ToArray()));
        Parameters = new ParameterSet(list);
        Readout = Readout.Initialize(hidden, 2, rng);
        AllParameters = new ParameterSet(list.Concat(Readout.Parameters));
        H0 = Enumerable.Range(0, H).Select(_ => 0.3 * (2 * rng.NextDouble() - 1)).ToArray();
    }

    public int H { get; }
    public int N { get; }
    public double Alpha { get; }
    public bool JointSite { get; }
    public string[] RowNames { get; }
    public double[] H0 { get; }
    public string Arch => "tiny-rnn";
    public ParameterSet Parameters { get; }
    public Readout Readout { get; }
    public ParameterSet AllParameters { get; }
    public IReadOnlyDictionary<string, string> Metadata => new Dictionary<string, string> { ["family"] = "test", ["arch"] = Arch };
    public double Gain(int i) => Parameters.Contains("gain") ? Parameters["gain"].Data[i] : 1.0;

    public ChainLinearization Linearize(Tensor inputs) => new Lin(this, inputs);

    private NtkTinyRnn(NtkTinyRnn m, ParameterSet all)
    {
        H = m.H; N = m.N; Alpha = m.Alpha; JointSite = m.JointSite; RowNames = m.RowNames; H0 = m.H0;
        m.AllParameters.RequireSameLayout(all);
        Parameters = all.Take(m.Parameters); Readout = m.Readout.WithParameters(all); AllParameters = all;
    }

    public IChainModel WithParameters(ParameterSet allParameters) => new NtkTinyRnn(this, allParameters);

    public static Tensor RandomInputs(int b, int t, int n, int seed)
    {
        return TestMath.Uniform(new Random(seed), new AxisShape(("trial", b), ("time", t), ("input", n)));
    }

    private sealed class Lin : ChainLinearization
    {
        private readonly NtkTinyRnn _m;
        private readonly double[] _x, _z, _tanh, _slope;   // slope = γ ⊙ (1 − tanh²(a))
        private readonly int _b, _t;

        public Lin(NtkTinyRnn m, Tensor inputs)
        {
            _m = m; _b = inputs.Shape.Sizes[0]; _t = inputs.Shape.Sizes[1];
            _x = inputs.Span.ToArray();
            StateShape = new AxisShape(("trial", _b), ("time", _t), ("unit", m.H));
            int H = m.H, N = m.N;
            _z = new double[StateShape.Size]; _tanh = new double[StateShape.Size]; _slope = new double[StateShape.Size];
            var whh = m.Parameters["weight_hh"].Data; var wih = m.Parameters["weight_ih"].Data;
            var bhh = m.Parameters["bias_hh"].Data; var bih = m.Parameters["bias_ih"].Data;
            for (int b = 0; b < _b; b++)
                for (int k = 0; k < _t; k++)
                    for (int i = 0; i < H; i++)
                    {
                        double a = bhh[i] + bih[i], hp = Prev(b, k, i);
                        for (int j = 0; j < H; j++) a += whh[i * H + j] * Prev(b, k, j);
                        for (int j = 0; j < N; j++) a += wih[i * N + j] * _x[(b * _t + k) * N + j];
                        double th = Math.Tanh(a);
                        int o = (b * _t + k) * H + i;
                        _tanh[o] = th; _slope[o] = m.Gain(i) * (1 - th * th);
                        _z[o] = (1 - m.Alpha) * hp + m.Gain(i) * th;
                    }
            var sites = new List<WeightSite>();
            if (m.JointSite) sites.Add(new Site(this, "rnn", ["weight_hh", "weight_ih"], ["bias_hh", "bias_ih"], true, true));
            else
            {
                sites.Add(new Site(this, "hh", ["weight_hh"], ["bias_hh"], true, false));
                sites.Add(new Site(this, "ih", ["weight_ih"], ["bias_ih"], false, true));
            }
            Sites = sites;
        }

        private double Prev(int b, int k, int i) => k == 0 ? _m.H0[i] : _z[(b * _t + k - 1) * _m.H + i];

        public override AxisShape StateShape { get; }
        public override ParameterSet Parameters => _m.Parameters;
        public override ReadOnlyMemory<double> States => _z;
        public override IReadOnlyList<WeightSite> Sites { get; }

        public override void StateJvpAdd(int step, ReadOnlySpan<double> src, Span<double> dst, int count, double alpha = 1)
        {
            int H = _m.H, S = StateShape.Size;
            var whh = _m.Parameters["weight_hh"].Data;
            var tmp = new double[H];
            for (int j = 0; j < count; j++)
                for (int b = 0; b < _b; b++)
                {
                    int prev = j * S + (b * _t + step - 1) * H, cur = j * S + (b * _t + step) * H;
                    for (int i = 0; i < H; i++)
                    {
                        double w = 0;
                        for (int l = 0; l < H; l++) w += whh[i * H + l] * src[prev + l];
                        tmp[i] = (1 - _m.Alpha) * src[prev + i] + _slope[(b * _t + step) * H + i] * w;
                    }
                    for (int i = 0; i < H; i++) dst[cur + i] += alpha * tmp[i];
                }
        }

        public override void StateVjpAdd(int step, ReadOnlySpan<double> src, Span<double> dst, int count, double alpha = 1)
        {
            int H = _m.H, S = StateShape.Size;
            var whh = _m.Parameters["weight_hh"].Data;
            var tmp = new double[H];
            for (int j = 0; j < count; j++)
                for (int b = 0; b < _b; b++)
                {
                    int prev = j * S + (b * _t + step - 1) * H, cur = j * S + (b * _t + step) * H;
                    for (int l = 0; l < H; l++)
                    {
                        double w = (1 - _m.Alpha) * src[cur + l];
                        for (int i = 0; i < H; i++) w += whh[i * H + l] * _slope[(b * _t + step) * H + i] * src[cur + i];
                        tmp[l] = w;
                    }
                    for (int l = 0; l < H; l++) dst[prev + l] += alpha * tmp[l];
                }
        }

        public override void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> result, int count)
        {
            int H = _m.H, N = _m.N, S = StateShape.Size, M = Parameters.TotalSize;
            var ps = Parameters;
            for (int j = 0; j < count; j++)
            {
                var d = dTheta.Slice(j * M, M);
                int oih = ps.OffsetOf("weight_ih"), ohh = ps.OffsetOf("weight_hh"), obi = ps.OffsetOf("bias_ih"), obh = ps.OffsetOf("bias_hh");
                for (int b = 0; b < _b; b++)
                    for (int k = 0; k < _t; k++)
                        for (int i = 0; i < H; i++)
                        {
                            double a = d[obi + i] + d[obh + i];
                            for (int l = 0; l < H; l++) a += d[ohh + i * H + l] * Prev(b, k, l);
                            for (int l = 0; l < N; l++) a += d[oih + i * N + l] * _x[(b * _t + k) * N + l];
                            int o = (b * _t + k) * H + i;
                            double r = _slope[o] * a;
                            if (ps.Contains("gain")) r += d[ps.OffsetOf("gain") + i] * _tanh[o];
                            result[j * S + o] = r;
                        }
            }
        }

        public override void ParamVjp(ReadOnlySpan<double> q, Span<double> dTheta, int count)
        {
            int H = _m.H, N = _m.N, S = StateShape.Size, M = Parameters.TotalSize;
            var ps = Parameters;
            dTheta[..(count * M)].Clear();
            for (int j = 0; j < count; j++)
            {
                var d = dTheta.Slice(j * M, M);
                int oih = ps.OffsetOf("weight_ih"), ohh = ps.OffsetOf("weight_hh"), obi = ps.OffsetOf("bias_ih"), obh = ps.OffsetOf("bias_hh");
                for (int b = 0; b < _b; b++)
                    for (int k = 0; k < _t; k++)
                        for (int i = 0; i < H; i++)
                        {
                            int o = (b * _t + k) * H + i;
                            double g = q[j * S + o], da = _slope[o] * g;
                            d[obi + i] += da; d[obh + i] += da;
                            for (int l = 0; l < H; l++) d[ohh + i * H + l] += da * Prev(b, k, l);
                            for (int l = 0; l < N; l++) d[oih + i * N + l] += da * _x[(b * _t + k) * N + l];
                            if (ps.Contains("gain")) d[ps.OffsetOf("gain") + i] += g * _tanh[o];
                        }
            }
        }

        private sealed class Site : WeightSite
        {
            private readonly Lin _l;
            private readonly double[] _u;
            public Site(Lin l, string name, string[] weights, string[] biases, bool useH, bool useX)
            {
                _l = l; Name = name; WeightParameters = weights; BiasParameters = biases;
                int H = l._m.H, N = l._m.N;
                Width = (useH ? H : 0) + (useX ? N : 0);
                Rows = l._b * l._t;
                RowShape = new AxisShape((l._m.RowNames[0], l._b), (l._m.RowNames[1], l._t));
                int d = AugmentedWidth;
                _u = new double[Rows * d];
                for (int b = 0; b < l._b; b++)
                    for (int k = 0; k < l._t; k++)
                    {
                        int r = b * l._t + k, c = 0;
                        if (useH) for (int i = 0; i < H; i++) _u[r * d + c++] = l.Prev(b, k, i);
                        if (useX) for (int i = 0; i < N; i++) _u[r * d + c++] = l._x[r * N + i];
                        for (int i = 0; i < biases.Length; i++) _u[r * d + c++] = 1.0;
                    }
            }
            public override string Name { get; }
            public override IReadOnlyList<string> WeightParameters { get; }
            public override IReadOnlyList<string> BiasParameters { get; }
            public override int Rows { get; }
            public override int Width { get; }
            public override int OutDim => _l._m.H;
            public override ReadOnlyMemory<double> Variables => _u;
            public override AxisShape RowShape { get; }

            public override void ApplyDAdd(ReadOnlySpan<double> a, Span<double> dst, int count)
            {
                int S = _l.StateShape.Size, len = Rows * OutDim;
                for (int j = 0; j < count; j++)
                    for (int o = 0; o < len; o++) dst[j * S + o] += _l._slope[o] * a[j * len + o];
            }

            public override void ApplyDAdjoint(ReadOnlySpan<double> q, Span<double> a, int count)
            {
                int S = _l.StateShape.Size, len = Rows * OutDim;
                for (int j = 0; j < count; j++)
                    for (int o = 0; o < len; o++) a[j * len + o] = _l._slope[o] * q[j * S + o];
            }
        }
    }

    /// <summary>
    /// Dense dz/dθ [state, m] by forward-mode dual numbers through the unrolled forward pass
    /// (independent of A_k, J_θ and P): one tangent run per parameter direction.
    /// </summary>
    public double[] DenseWholeJacobian(Tensor inputs)
    {
        int b0 = inputs.Shape.Sizes[0], t0 = inputs.Shape.Sizes[1];
        int S = b0 * t0 * H, M = Parameters.TotalSize;
        var x = inputs.Span.ToArray();
        var jac = new double[S * M];
        var theta = Parameters.Flatten();
        int oih = Parameters.OffsetOf("weight_ih"), ohh = Parameters.OffsetOf("weight_hh"), obi = Parameters.OffsetOf("bias_ih"), obh = Parameters.OffsetOf("bias_hh");
        int og = Parameters.Contains("gain") ? Parameters.OffsetOf("gain") : -1;
        for (int p = 0; p < M; p++)
        {
            double Dt(int idx) => idx == p ? 1.0 : 0.0;   // tangent of θ_idx
            for (int b = 0; b < b0; b++)
            {
                var h = (double[])H0.Clone(); var dh = new double[H];
                for (int k = 0; k < t0; k++)
                {
                    var hn = new double[H]; var dhn = new double[H];
                    for (int i = 0; i < H; i++)
                    {
                        double a = theta[obh + i] + theta[obi + i], da = Dt(obh + i) + Dt(obi + i);
                        for (int l = 0; l < H; l++) { a += theta[ohh + i * H + l] * h[l]; da += Dt(ohh + i * H + l) * h[l] + theta[ohh + i * H + l] * dh[l]; }
                        for (int l = 0; l < N; l++) { double xv = x[(b * t0 + k) * N + l]; a += theta[oih + i * N + l] * xv; da += Dt(oih + i * N + l) * xv; }
                        double th = Math.Tanh(a), dth = (1 - th * th) * da;
                        double g = og >= 0 ? theta[og + i] : 1.0, dg = og >= 0 ? Dt(og + i) : 0.0;
                        hn[i] = (1 - Alpha) * h[i] + g * th;
                        dhn[i] = (1 - Alpha) * dh[i] + dg * th + g * dth;
                    }
                    h = hn; dh = dhn;
                    for (int i = 0; i < H; i++) jac[((b * t0 + k) * H + i) * M + p] = dh[i];
                }
            }
        }
        return jac;
    }
}
