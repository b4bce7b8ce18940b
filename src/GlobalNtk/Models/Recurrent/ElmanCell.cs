using GlobalNtk.Models.Mlp;
using System.Numerics.Tensors;

namespace GlobalNtk.Models.Recurrent;

/// <summary>nn.RNN (<c>rnn-tanh</c>, <c>rnn-relu</c>): h' = φ(W_ih x + b_ih + W_hh h + b_hh) (docs/math.md#cells).</summary>
/// <remarks>D = diag(φ'(a)), cached per row; E = 0 (h enters only through W_hh).</remarks>
public sealed class ElmanCell : RecurrentCell
{
    internal ElmanCell(RecurrentConfig config, ParameterSet parameters, Activation activation)
        : base(config, parameters, hasBiasIh: true, splitPreActivation: false) => Nonlinearity = activation;

    /// <summary>φ.</summary>
    public Activation Nonlinearity { get; }

    internal override int CacheWidth => HiddenSize;
    internal override int WorkWidth => 0;

    internal override void ForwardRow(ReadOnlySpan<double> pre, ReadOnlySpan<double> zPrev, Span<double> z, Span<double> cache)
    {
        Pointwise.Apply(Nonlinearity, pre, z);
        Pointwise.DerivativeFromOutput(Nonlinearity, z, cache);
    }

    internal override void ApplyD(in StepRow row, ReadOnlySpan<double> da, Span<double> dz, Span<double> work) =>
        TensorPrimitives.Multiply(row.Cache, da, dz);

    internal override void ApplyDTranspose(in StepRow row, ReadOnlySpan<double> q, Span<double> g, Span<double> work) =>
        TensorPrimitives.Multiply(row.Cache, q, g);

    internal override void ApplyEAdd(in StepRow row, ReadOnlySpan<double> src, Span<double> dst, double alpha, Span<double> work) { }

    internal override void ApplyETransposeAdd(in StepRow row, ReadOnlySpan<double> q, Span<double> dst, double alpha, Span<double> work) { }
}

/// <summary>
/// Leaky (rate) RNN <c>leaky-rnn</c>: h' = (1 − α) h + α (W φ(h) + U x + b) (docs/math.md#kronecker-core), with
/// W = <c>weight_hh_l0</c>, U = <c>weight_ih_l0</c>, b = <c>bias_hh_l0</c>.
/// </summary>
/// <remarks>Site variable v = φ(h); D = α I; E = (1 − α) I.</remarks>
public sealed class LeakyRnnCell : RecurrentCell
{
    internal LeakyRnnCell(RecurrentConfig config, ParameterSet parameters)
        : base(config, parameters, hasBiasIh: false, splitPreActivation: false) { }

    /// <summary>α = dt/τ.</summary>
    public double Alpha => Config.Alpha;
    /// <summary>φ.</summary>
    public Activation Nonlinearity => Config.Activation;

    internal override int CacheWidth => 0;
    internal override int WorkWidth => 0;
    internal override bool RecurrentVariableIsState => false;
    internal override void RecurrentVariable(ReadOnlySpan<double> h, Span<double> v) => Pointwise.Apply(Nonlinearity, h, v);
    internal override void RecurrentDerivative(ReadOnlySpan<double> v, Span<double> d) => Pointwise.DerivativeFromOutput(Nonlinearity, v, d);

    internal override void ForwardRow(ReadOnlySpan<double> pre, ReadOnlySpan<double> zPrev, Span<double> z, Span<double> cache)
    {
        TensorPrimitives.Multiply(zPrev, 1 - Alpha, z);
        TensorPrimitives.MultiplyAdd(pre, Alpha, z, z);
    }

    internal override void ApplyD(in StepRow row, ReadOnlySpan<double> da, Span<double> dz, Span<double> work) =>
        TensorPrimitives.Multiply(da, Alpha, dz);

    internal override void ApplyDTranspose(in StepRow row, ReadOnlySpan<double> q, Span<double> g, Span<double> work) =>
        TensorPrimitives.Multiply(q, Alpha, g);

    internal override void ApplyEAdd(in StepRow row, ReadOnlySpan<double> src, Span<double> dst, double alpha, Span<double> work) =>
        TensorPrimitives.MultiplyAdd(src, alpha * (1 - Alpha), dst, dst);

    internal override void ApplyETransposeAdd(in StepRow row, ReadOnlySpan<double> q, Span<double> dst, double alpha, Span<double> work) =>
        TensorPrimitives.MultiplyAdd(q, alpha * (1 - Alpha), dst, dst);
}
