using GlobalNtk.Models.Mlp;
using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Recurrent;

namespace GlobalNtk.Tests.Recurrent;

/// <summary>Small models, data and finite-difference helpers shared by the recurrent tests.</summary>
internal static class RecurrentTestKit
{
    public const int B = 3, T = 5, N = 2, H = 4, O = 3;

    /// <summary>A small model; <c>leaky-rnn/relu</c> is the leaky RNN with φ = relu.</summary>
    public static RecurrentModel Model(string arch, int seed = 7)
    {
        var parts = arch.Split('/');
        var act = parts.Length > 1 ? ActivationFunctions.Parse(parts[1]) : Activation.Tanh;
        return RecurrentModel.Create(new RecurrentConfig(parts[0], N, H, O) { Seed = seed, Gain = 1.3, Alpha = 0.3, Activation = act });
    }

    /// <summary>Entries uniform in ±<paramref name="scale"/> (<see cref="TestMath.Uniform(int, int, double)"/>).</summary>
    public static double[] Random(int n, int seed, double scale = 1.0) => TestMath.Uniform(n, seed, scale);

    public static Tensor Inputs(RecurrentModel model, int trials = B, int steps = T, int seed = 11) =>
        new(Random(trials * steps * model.InputSize, seed), model.InputShape(trials, steps));

    public static Tensor InitialState(RecurrentModel model, int trials = B, int seed = 13) =>
        new(Random(trials * model.StateSize, seed, 0.5), new AxisShape(("trial", trials), ("unit", model.StateSize)));

    /// <summary>A copy of the model with chain parameters θ.</summary>
    public static RecurrentModel WithTheta(RecurrentModel model, ReadOnlySpan<double> theta) =>
        (RecurrentModel)model.WithChainValues(theta);

    /// <summary>
    /// Every step f_k(z_{k−1}, x_k) evaluated at once from given previous states: the (b, k) pairs
    /// become B·T one-step trials. prev is [B, T, S] (row (b,k) = z_{k−1}); returns [B, T, S].
    /// </summary>
    public static double[] OneStep(RecurrentModel model, Tensor inputs, ReadOnlySpan<double> prev)
    {
        int bt = inputs.Shape.Sizes[0] * inputs.Shape.Sizes[1];
        var x = new Tensor(inputs.Span.ToArray(), model.InputShape(bt, 1));
        var z0 = new Tensor(prev.ToArray(), new AxisShape(("trial", bt), ("unit", model.StateSize)));
        return model.Linearize(x, z0).States.ToArray();
    }

    /// <summary>z_{k−1} for every (b, k): the trajectory shifted by one step, z_0 first.</summary>
    public static double[] PreviousStates(ChainLinearization chain)
    {
        var lin = (RecurrentLinearization)chain;
        int b = lin.Trials, t = lin.Steps, s = lin.StateSize;
        var prev = new double[b * t * s];
        var z = lin.States.Span; var z0 = lin.InitialState.Span;
        for (int i = 0; i < b; i++)
            for (int k = 0; k < t; k++)
                (k == 0 ? z0.Slice(i * s, s) : z.Slice((i * t + k - 1) * s, s)).CopyTo(prev.AsSpan((i * t + k) * s, s));
        return prev;
    }

    /// <summary><see cref="TestMath.RelativeError"/>.</summary>
    public static double RelErr(ReadOnlySpan<double> a, ReadOnlySpan<double> b) => TestMath.RelativeError(a, b);

    public static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> b) => Numerics.Dot(a, b);

    /// <summary><see cref="TestMath.RelativeDifference"/>.</summary>
    public static double RelDiff(double a, double b) => TestMath.RelativeDifference(a, b);


}
