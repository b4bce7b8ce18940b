using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Operators;

namespace GlobalNtk.Ntk;

/// <summary>
/// The output NTK (docs/math.md#output-ntk): Θ_y = C NTK_S Cᵀ + Θ_readout, Θ_readout = (Z Zᵀ + 1 1ᵀ) ⊗ I_out
/// (Z Zᵀ ⊗ I_out for a bias-free readout), with C the readout's linear part and Z [N, In] the state features it reads (rows in output
/// order). Z Zᵀ is applied as Z (Zᵀ Y), never formed. Self-adjoint, on the output shape.
/// </summary>
public sealed class OutputNtkOperator : CheckedOperator
{
    private readonly LinearOperator _c;
    private readonly LinearOperator _ntkS;
    private readonly double[] _z;
    private readonly int _rows, _in, _out;
    private readonly bool _bias;

    /// <summary>Θ_y for a state NTK <paramref name="ntkS"/> and a readout on states <paramref name="states"/> of <paramref name="stateShape"/>.</summary>
    public OutputNtkOperator(LinearOperator ntkS, Readout readout, ReadOnlySpan<double> states, AxisShape stateShape)
        : base(readout.OutputShape(stateShape), readout.OutputShape(stateShape))
    {
        LinearOperator.RequireSameShape(stateShape, ntkS.Domain, "output NTK: NTK_S domain");
        _ntkS = ntkS;
        _c = readout.AsOperator(stateShape);
        _z = readout.Features(states, stateShape);
        _rows = readout.Rows(stateShape);
        _in = readout.InputSize;
        _out = readout.OutputSize;
        _bias = readout.HasBias;
    }

    /// <inheritdoc/>
    public override string Name => "Θ_y (output NTK)";
    /// <inheritdoc/>
    public override bool IsSelfAdjoint => true;

    /// <inheritdoc/>
    protected override void ForwardBlock(ReadOnlySpan<double> x, Span<double> y, int count)
    {
        int s = _c.Domain.Size, o = Range.Size;
        using (var t = new BlockBuffer((long)count * s))
        using (var u = new BlockBuffer((long)count * s))
        {
            _c.ApplyAdjointBlock(x, t.Span, count);
            _ntkS.ApplyBlock(t.Span, u.Span, count);
            _c.ApplyBlock(u.Span, y, count);
        }
        // Θ_readout: Y_j [N, O] ↦ Z (Zᵀ Y_j) + 1 (1ᵀ Y_j), added; the 1 1ᵀ term is the bias's.
        using var zt = new BlockBuffer((long)count * _in * _out);
        Gemm.MultiplyBatched(Trans.Yes, Trans.No, count, _in, _out, _rows, 1.0, _z, _in, 0, x, _out, o, 0.0, zt.Span, _out, _in * _out);
        Gemm.MultiplyBatched(Trans.No, Trans.No, count, _rows, _out, _in, 1.0, _z, _in, 0, zt.Span, _out, _in * _out, 1.0, y, _out, o);
        if (!_bias) return;
        var colSum = new double[_out];
        for (int j = 0; j < count; j++)
        {
            Array.Clear(colSum);
            var xj = x.Slice(j * o, o);
            var yj = y.Slice(j * o, o);
            for (int r = 0; r < _rows; r++) Numerics.Axpy(1.0, xj.Slice(r * _out, _out), colSum);
            for (int r = 0; r < _rows; r++) Numerics.Axpy(1.0, colSum, yj.Slice(r * _out, _out));
        }
    }

    /// <inheritdoc/>
    protected override void AdjointBlock(ReadOnlySpan<double> x, Span<double> y, int count) => ForwardBlock(x, y, count);
}
