using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Operators;

namespace GlobalNtk.Ntk;

/// <summary>
/// The output NTK (docs/math.md#output-ntk): Θ_y = C NTK_S Cᵀ + Θ_readout, Θ_readout = (Z Zᵀ + 1 1ᵀ) ⊗ I_out
/// (Z Zᵀ ⊗ I_out for a bias-free readout), with C the readout's linear part and Z [N, In] the state features it reads (rows in output
/// order). Z Zᵀ is applied as Z (Zᵀ Y), never formed. Self-adjoint, on the output shape.
/// </summary>
/// <remarks>
/// Built on a float32 trajectory (a float32 linearisation), Z is kept in float32 and the operator
/// applies float32 blocks natively when NTK_S does: Cᵀ, NTK_S and C run on float32 state blocks,
/// and Θ_readout, whose Zᵀ Y sums run over every output row and can cancel, is summed in float64 on
/// output-sized float64 blocks with Z widened a slice of rows at a time (no float64 copy of Z or of a
/// state block); the result is rounded once.
/// </remarks>
public sealed class OutputNtkOperator : CheckedOperator
{
    private readonly LinearOperator _c;
    private readonly LinearOperator _ntkS;
    private readonly double[]? _z;
    private readonly float[]? _z32;
    private readonly int _rows, _in, _out;
    private readonly bool _bias;

    /// <summary>Θ_y for a state NTK <paramref name="ntkS"/> and a readout on states <paramref name="states"/> of <paramref name="stateShape"/>.</summary>
    public OutputNtkOperator(LinearOperator ntkS, Readout readout, ReadOnlySpan<double> states, AxisShape stateShape)
        : this(ntkS, readout, stateShape, Precision.F64)
    {
        _z = readout.Features(states, stateShape);
    }

    /// <summary>
    /// Θ_y on a float32 trajectory <paramref name="states"/> (e.g. <see cref="ChainLinearization.StatesSingle"/>):
    /// Z is read in float32, and float32 blocks stay float32 when <paramref name="ntkS"/> applies them natively.
    /// </summary>
    public OutputNtkOperator(LinearOperator ntkS, Readout readout, ReadOnlySpan<float> states, AxisShape stateShape)
        : this(ntkS, readout, stateShape, Precision.F32)
    {
        _z32 = readout.Features(states, stateShape);
    }

    private OutputNtkOperator(LinearOperator ntkS, Readout readout, AxisShape stateShape, Precision precision)
        : base(readout.OutputShape(stateShape), readout.OutputShape(stateShape))
    {
        LinearOperator.RequireSameShape(stateShape, ntkS.Domain, "output NTK: NTK_S domain");
        _ntkS = ntkS;
        _c = readout.AsOperator(stateShape, precision);
        _rows = readout.Rows(stateShape);
        _in = readout.InputSize;
        _out = readout.OutputSize;
        _bias = readout.HasBias;
    }

    /// <inheritdoc/>
    public override string Name => "Θ_y (output NTK)";
    /// <inheritdoc/>
    public override bool IsSelfAdjoint => true;

    /// <summary>Float32 blocks stay float32 when Z is float32 and NTK_S applies float32 natively.</summary>
    internal override bool AppliesFloat32Natively => _z32 is not null && _ntkS.AppliesFloat32Natively;

    /// <inheritdoc/>
    protected override void ForwardBlock(ReadOnlySpan<double> x, Span<double> y, int count)
    {
        if (_z is null)
        {
            // A float32 operator given float64 vectors: one float32 application, X rounded and Y widened once.
            using var x32 = new Float32Buffer((long)count * Range.Size);
            using var y32 = new Float32Buffer((long)count * Range.Size);
            Float32.Narrow(x, x32.Span);
            ForwardBlock(x32.Span, y32.Span, count);
            Float32.Widen(y32.Span, y);
            return;
        }
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
        if (_bias) AddBiasTerm(x, y, count);
    }

    /// <inheritdoc/>
    protected override void AdjointBlock(ReadOnlySpan<double> x, Span<double> y, int count) => ForwardBlock(x, y, count);

    /// <inheritdoc/>
    protected override void ForwardBlock(ReadOnlySpan<float> x, Span<float> y, int count)
    {
        if (_z32 is null) { base.ForwardBlock(x, y, count); return; }
        int s = _c.Domain.Size, o = Range.Size;
        using (var t = new Float32Buffer((long)count * s))
        using (var u = new Float32Buffer((long)count * s))
        {
            _c.ApplyAdjointBlock(x, t.Span, count);
            _ntkS.ApplyBlock(t.Span, u.Span, count);
            _c.ApplyBlock(u.Span, y, count);
        }
        // Θ_readout in float64 on output-sized blocks: acc = widen(C NTK_S Cᵀ X) + Z (Zᵀ X) [+ 1 (1ᵀ X)].
        using var xw = new BlockBuffer((long)count * o);
        using var acc = new BlockBuffer((long)count * o);
        using var zt = new BlockBuffer((long)count * _in * _out);
        Float32.Widen(x, xw.Span);
        Float32.Widen(y, acc.Span);
        zt.Span.Clear();
        int chunk = Math.Max(1, Math.Min(_rows, WidenedValues / _in));
        using var zw = new BlockBuffer((long)chunk * _in);
        for (int pass = 0; pass < 2; pass++)
        {
            for (int r0 = 0; r0 < _rows; r0 += chunk)
            {
                int rows = Math.Min(chunk, _rows - r0);
                var zs = zw.Span[..(rows * _in)];
                Float32.Widen(_z32.AsSpan(r0 * _in, rows * _in), zs);
                if (pass == 0) // Zᵀ X_j, summed over every row
                    Gemm.MultiplyBatched(Trans.Yes, Trans.No, count, _in, _out, rows, 1.0, zs, _in, 0, xw.Span[(r0 * _out)..], _out, o, 1.0, zt.Span, _out, _in * _out);
                else           // Y_j += Z (Zᵀ X_j) on these rows
                    Gemm.MultiplyBatched(Trans.No, Trans.No, count, rows, _out, _in, 1.0, zs, _in, 0, zt.Span, _out, _in * _out, 1.0, acc.Span[(r0 * _out)..], _out, o);
            }
        }
        if (_bias) AddBiasTerm(xw.Span, acc.Span, count);
        Float32.Narrow(acc.Span, y);
    }

    /// <inheritdoc/>
    protected override void AdjointBlock(ReadOnlySpan<float> x, Span<float> y, int count) => ForwardBlock(x, y, count);

    // Values of float32 Z widened at a time (a few hundred KB of float64 scratch).
    private const int WidenedValues = 1 << 15;

    // y_j += 1 (1ᵀ x_j): every row gets the column sums of x_j (the bias's term of Θ_readout).
    private void AddBiasTerm(ReadOnlySpan<double> x, Span<double> y, int count)
    {
        int o = Range.Size;
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
}
