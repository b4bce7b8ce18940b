using GlobalNtk.Dense;
using GlobalNtk.Models;

namespace GlobalNtk.Tests;

/// <summary>
/// A linearisation that forwards every float64 member to another, its sites seen through float64-only
/// views (the inner sites' float64 Û and float64-block D, D*; no float32 paths), so the Kronecker core
/// takes its float64-block path on any linearisation. With <paramref name="renameRows"/> the sites' rows
/// become one axis and they declare nothing about row-locality, which sends the core to its general path.
/// </summary>
internal sealed class Float64SiteView(ChainLinearization inner, bool renameRows = false) : ChainLinearization
{
    private readonly WeightSite[] _sites = inner.Sites.Select(s => (WeightSite)new Site(s, renameRows)).ToArray();
    public override AxisShape StateShape => inner.StateShape;
    public override ParameterSet Parameters => inner.Parameters;
    public override ReadOnlyMemory<double> States => inner.States;
    public override IReadOnlyList<WeightSite> Sites => _sites;
    public override void StateJvpAdd(int step, ReadOnlySpan<double> src, Span<double> dst, int count, double alpha = 1.0) => inner.StateJvpAdd(step, src, dst, count, alpha);
    public override void StateVjpAdd(int step, ReadOnlySpan<double> src, Span<double> dst, int count, double alpha = 1.0) => inner.StateVjpAdd(step, src, dst, count, alpha);
    public override void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> result, int count) => inner.ParamJvp(dTheta, result, count);
    public override void ParamVjp(ReadOnlySpan<double> q, Span<double> dTheta, int count) => inner.ParamVjp(q, dTheta, count);
    public override void ParamJvpSubset(IReadOnlyList<int> parameterIndices, ReadOnlySpan<double> dThetaSubset, Span<double> result, int count) =>
        inner.ParamJvpSubset(parameterIndices, dThetaSubset, result, count);

    private sealed class Site(WeightSite s, bool renameRows) : WeightSite
    {
        public override string Name => s.Name;
        public override IReadOnlyList<string> WeightParameters => s.WeightParameters;
        public override IReadOnlyList<string> BiasParameters => s.BiasParameters;
        public override int Rows => s.Rows;
        public override int Width => s.Width;
        public override int OutDim => s.OutDim;
        public override ReadOnlyMemory<double> Variables => s.Variables;
        public override AxisShape RowShape => renameRows ? new(("row", s.Rows)) : s.RowShape;
        public override int? StateStep => renameRows ? null : s.StateStep;
        public override void ApplyDAdd(ReadOnlySpan<double> a, Span<double> dst, int count) => s.ApplyDAdd(a, dst, count);
        public override void ApplyDAdjoint(ReadOnlySpan<double> q, Span<double> a, int count) => s.ApplyDAdjoint(q, a, count);

        public override bool TryGetRowSlice(int row, out int offset, out int length)
        {
            if (!renameRows) return s.TryGetRowSlice(row, out offset, out length);
            offset = 0; length = 0;
            return false;
        }

        internal override int SliceColouring(Span<int> colour) => renameRows ? 0 : s.SliceColouring(colour);
    }
}
