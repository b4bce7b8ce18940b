using GlobalNtk.Models.Mlp;
using System.Numerics;
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
    internal override bool UnitLocal => true;   // D is diagonal

    internal override void ForwardRow<T>(ReadOnlySpan<T> pre, ReadOnlySpan<T> zPrev, Span<T> z, Span<T> cache)
    {
        Pointwise.Apply(Nonlinearity, pre, z);
        Pointwise.DerivativeFromOutput(Nonlinearity, z, cache);
    }

    internal override void ApplyD<T>(in StepRow<T> row, ReadOnlySpan<T> da, Span<T> dz, Span<T> work) =>
        TensorPrimitives.Multiply(row.Cache, da, dz);

    internal override void ApplyDTranspose<T>(in StepRow<T> row, ReadOnlySpan<T> q, Span<T> g, Span<T> work) =>
        TensorPrimitives.Multiply(row.Cache, q, g);

    internal override void ApplyEAdd<T>(in StepRow<T> row, ReadOnlySpan<T> src, Span<T> dst, T alpha, Span<T> work) { }

    internal override void ApplyETransposeAdd<T>(in StepRow<T> row, ReadOnlySpan<T> q, Span<T> dst, T alpha, Span<T> work) { }
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
    internal override bool UnitLocal => true;   // D is diagonal
    internal override bool RecurrentVariableIsState => false;
    internal override void RecurrentVariable<T>(ReadOnlySpan<T> h, Span<T> v) => Pointwise.Apply(Nonlinearity, h, v);
    internal override void RecurrentDerivative<T>(ReadOnlySpan<T> v, Span<T> d) => Pointwise.DerivativeFromOutput(Nonlinearity, v, d);

    internal override void ForwardRow<T>(ReadOnlySpan<T> pre, ReadOnlySpan<T> zPrev, Span<T> z, Span<T> cache)
    {
        TensorPrimitives.Multiply(zPrev, T.CreateChecked(1 - Alpha), z);
        TensorPrimitives.MultiplyAdd(pre, T.CreateChecked(Alpha), z, z);
    }

    internal override void ApplyD<T>(in StepRow<T> row, ReadOnlySpan<T> da, Span<T> dz, Span<T> work) =>
        TensorPrimitives.Multiply(da, T.CreateChecked(Alpha), dz);

    internal override void ApplyDTranspose<T>(in StepRow<T> row, ReadOnlySpan<T> q, Span<T> g, Span<T> work) =>
        TensorPrimitives.Multiply(q, T.CreateChecked(Alpha), g);

    internal override void ApplyEAdd<T>(in StepRow<T> row, ReadOnlySpan<T> src, Span<T> dst, T alpha, Span<T> work) =>
        TensorPrimitives.MultiplyAdd(src, alpha * T.CreateChecked(1 - Alpha), dst, dst);

    internal override void ApplyETransposeAdd<T>(in StepRow<T> row, ReadOnlySpan<T> q, Span<T> dst, T alpha, Span<T> work) =>
        TensorPrimitives.MultiplyAdd(q, alpha * T.CreateChecked(1 - Alpha), dst, dst);
}
