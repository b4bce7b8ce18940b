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
    /// Float32: φ and φ' evaluated in float64, φ'(u) kept in float32 (narrowed chunk by chunk: a
    /// float64 copy of the whole diagonal would be garbage twice the size of the cache).
    /// </summary>
    protected override BlockTrace ForwardF32(ParameterSet parameters, ReadOnlySpan<double> input, int rows, Span<double> output)
    {
        var d = new float[checked(rows * width)];
        Span<double> chunk = stackalloc double[1024];
        for (int i = 0; i < d.Length; i += chunk.Length)
        {
            int n = Math.Min(chunk.Length, d.Length - i);
            activation.Evaluate(input.Slice(i, n), output.Slice(i, n), chunk[..n]);
            Float32.Narrow(chunk[..n], d.AsSpan(i, n));
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
