using System.Numerics.Tensors;
using GlobalNtk.Dense;
using GlobalNtk.Models.Mlp;

namespace GlobalNtk.Models.Blocks;

/// <summary>A pointwise nonlinearity y = φ(u); its Jacobian is diag(φ'(u)).</summary>
public sealed class ActivationBlock(int width, Activation activation) : StepBlock
{
    /// <inheritdoc/>
    public override int InputWidth => width;
    /// <inheritdoc/>
    public override int OutputWidth => width;
    /// <summary>φ.</summary>
    public Activation Activation => activation;

    /// <inheritdoc/>
    public override BlockTrace Forward(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output)
    {
        var d = new double[checked(rows * width)];
        activation.Evaluate(input[..d.Length], output[..d.Length], d);
        return new DiagonalTrace(this, rows, d);
    }

    /// <inheritdoc/>
    public override bool Supports(Precision precision) => precision is Precision.F64 or Precision.F32;

    /// <summary>
    /// Float32: float32 rows in and out, φ and φ' evaluated in float64 on each float32 input and
    /// rounded once; φ'(u) kept in float32. Chunk by chunk through a stack buffer: no float64 copy of
    /// the rows or of the diagonal.
    /// </summary>
    protected override BlockTrace ForwardF32(ParameterSet parameters, ReadOnlySpan<float> input, int rows, Span<float> output)
    {
        var d = new float[checked(rows * width)];
        const int Chunk = 512;
        Span<double> u = stackalloc double[Chunk], y = stackalloc double[Chunk], dy = stackalloc double[Chunk];
        for (int i = 0; i < d.Length; i += Chunk)
        {
            int n = Math.Min(Chunk, d.Length - i);
            Float32.Widen(input.Slice(i, n), u[..n]);
            activation.Evaluate(u[..n], y[..n], dy[..n]);
            Float32.Narrow(y[..n], output.Slice(i, n));
            Float32.Narrow(dy[..n], d.AsSpan(i, n));
        }
        return new DiagonalTrace32(this, rows, d);
    }
}

/// <summary>A <see cref="DiagonalTrace"/> whose diagonal is stored in float32 (each product formed in float64).</summary>
internal sealed class DiagonalTrace32(StepBlock block, int rows, float[] d) : BlockTrace(block, rows)
{
    public override void Jvp(ReadOnlySpan<double> dIn, Span<double> dOut, int count)
    {
        int n = d.Length;
        for (int j = 0; j < count; j++)
        {
            var x = dIn.Slice(j * n, n);
            var y = dOut.Slice(j * n, n);
            for (int i = 0; i < n; i++) y[i] = x[i] * d[i];
        }
    }

    public override void Vjp(ReadOnlySpan<double> dOut, Span<double> dIn, int count) => Jvp(dOut, dIn, count);

    internal override bool IsSingle => true;

    internal override void Jvp32(ReadOnlySpan<float> dIn, Span<float> dOut, int count) =>
        Operators.Elementwise.MultiplyRows(dIn[..(count * d.Length)], d, dOut[..(count * d.Length)]);

    internal override void Vjp32(ReadOnlySpan<float> dOut, Span<float> dIn, int count) => Jvp32(dOut, dIn, count);
}

/// <summary>A trace whose input Jacobian is diag(d) per row (d [Rows, width]); no parameters.</summary>
internal sealed class DiagonalTrace(StepBlock block, int rows, double[] d) : BlockTrace(block, rows)
{
    public override void Jvp(ReadOnlySpan<double> dIn, Span<double> dOut, int count) =>
        Operators.Elementwise.MultiplyRows(dIn[..(count * d.Length)], d, dOut[..(count * d.Length)]);

    public override void Vjp(ReadOnlySpan<double> dOut, Span<double> dIn, int count) => Jvp(dOut, dIn, count);
}
