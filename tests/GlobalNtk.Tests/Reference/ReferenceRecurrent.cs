using GlobalNtk.Models.Mlp;
using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Recurrent;

namespace GlobalNtk.Tests.Reference;

/// <summary>
/// Straightforward scalar loops of PyTorch's recurrent equations (docs/math.md#cells), written
/// independently of the library's cells, over <see cref="Dual"/> numbers: with zero tangents it
/// is a plain float64 forward pass; seeding one parameter's tangent differentiates the whole
/// unrolled model end to end (one column of dz/dθ).
/// </summary>
public static class ReferenceRecurrent
{
    /// <summary>States [B, T, S] from the PyTorch equations; <paramref name="p"/> maps parameter names to row-major values.</summary>
    public static Dual[] Forward(RecurrentConfig config, IReadOnlyDictionary<string, Dual[]> p, double[] x, int trials, int steps, double[]? z0)
    {
        string arch = config.NormalizedArch;
        int n = config.InputSize, h = config.HiddenSize, s = config.StateSize;
        var wih = p["rnn.weight_ih_l0"]; var whh = p["rnn.weight_hh_l0"]; var bhh = p["rnn.bias_hh_l0"];
        var bih = arch == "leaky-rnn" ? null : p["rnn.bias_ih_l0"];
        var z = new Dual[trials * steps * s];
        for (int b = 0; b < trials; b++)
        {
            var hs = new Dual[h]; var cs = new Dual[h];
            for (int i = 0; i < h; i++)
            {
                hs[i] = (Dual)(z0?[b * s + i] ?? 0);
                if (arch == "lstm") cs[i] = (Dual)(z0?[b * s + h + i] ?? 0);
            }
            for (int t = 0; t < steps; t++)
            {
                // Affine row 'row' of W_ih x + b_ih, and of W_hh u + b_hh.
                Dual Ih(int row)
                {
                    var acc = bih == null ? (Dual)0.0 : bih[row];
                    for (int j = 0; j < n; j++) acc += wih[row * n + j] * (Dual)x[(b * steps + t) * n + j];
                    return acc;
                }
                Dual Hh(int row, Dual[] u)
                {
                    var acc = bhh[row];
                    for (int j = 0; j < h; j++) acc += whh[row * h + j] * u[j];
                    return acc;
                }
                var hNew = new Dual[h]; var cNew = new Dual[h];
                switch (arch)
                {
                    case "rnn-tanh":
                    case "rnn-relu":
                        for (int i = 0; i < h; i++)
                        {
                            var a = Ih(i) + Hh(i, hs);
                            hNew[i] = arch == "rnn-tanh" ? Dual.Tanh(a) : Dual.Relu(a);
                        }
                        break;
                    case "gru":
                        for (int i = 0; i < h; i++)
                        {
                            var r = Sigmoid(Ih(i) + Hh(i, hs));
                            var u = Sigmoid(Ih(h + i) + Hh(h + i, hs));
                            var nn = Dual.Tanh(Ih(2 * h + i) + r * Hh(2 * h + i, hs));
                            hNew[i] = ((Dual)1.0 - u) * nn + u * hs[i];
                        }
                        break;
                    case "lstm":
                        for (int i = 0; i < h; i++)
                        {
                            var ig = Sigmoid(Ih(i) + Hh(i, hs));
                            var fg = Sigmoid(Ih(h + i) + Hh(h + i, hs));
                            var gg = Dual.Tanh(Ih(2 * h + i) + Hh(2 * h + i, hs));
                            var og = Sigmoid(Ih(3 * h + i) + Hh(3 * h + i, hs));
                            cNew[i] = fg * cs[i] + ig * gg;
                            hNew[i] = og * Dual.Tanh(cNew[i]);
                        }
                        break;
                    case "leaky-rnn":
                        {
                            var phi = hs.Select(v => config.Activation == Activation.Tanh ? Dual.Tanh(v) : Dual.Relu(v)).ToArray();
                            var a = (Dual)config.Alpha;
                            for (int i = 0; i < h; i++)
                                hNew[i] = ((Dual)1.0 - a) * hs[i] + a * (Hh(i, phi) + Ih(i));
                        }
                        break;
                    default: throw new ArgumentException($"reference: unknown arch {arch}");
                }
                hs = hNew; cs = cNew;
                int o = (b * steps + t) * s;
                for (int i = 0; i < h; i++)
                {
                    z[o + i] = hs[i];
                    if (arch == "lstm") z[o + h + i] = cs[i];
                }
            }
        }
        return z;
    }

    /// <summary>States [B·T·S] of <paramref name="model"/> computed by the reference loops (float64).</summary>
    public static double[] States(RecurrentModel model, Tensor inputs, double[]? z0 = null)
    {
        var p = model.Parameters.ToDictionary(q => q.Name, q => q.Data.Select(v => (Dual)v).ToArray());
        return Forward(model.Config, p, inputs.Span.ToArray(), inputs.Shape.Sizes[0], inputs.Shape.Sizes[1], z0 ?? Broadcast(model, inputs))
            .Select(v => v.V).ToArray();
    }

    /// <summary>
    /// The dense whole-model Jacobian dz/dθ, row-major [B·T·S, m] (θ in <c>model.Parameters</c>
    /// order), by forward-mode AD of the unrolled reference model: one dual-number pass per column.
    /// </summary>
    public static double[] WholeModelJacobian(RecurrentModel model, Tensor inputs, double[]? z0 = null)
    {
        int trials = inputs.Shape.Sizes[0], steps = inputs.Shape.Sizes[1];
        int rows = trials * steps * model.StateSize, m = model.Parameters.TotalSize;
        var x = inputs.Span.ToArray();
        z0 ??= Broadcast(model, inputs);
        var jac = new double[rows * m];
        int col = 0;
        foreach (var seeded in model.Parameters)
            for (int e = 0; e < seeded.Size; e++, col++)
            {
                var p = model.Parameters.ToDictionary(q => q.Name,
                    q => q.Data.Select((v, i) => new Dual(v, q.Name == seeded.Name && i == e ? 1 : 0)).ToArray());
                var z = Forward(model.Config, p, x, trials, steps, z0);
                for (int r = 0; r < rows; r++) jac[r * m + col] = z[r].D;
            }
        return jac;
    }

    private static Dual Sigmoid(Dual a) => 1.0 / (1.0 + Dual.Exp(-a));

    private static double[]? Broadcast(RecurrentModel model, Tensor inputs)
    {
        if (model.InitialState.IsEmpty) return null;
        int trials = inputs.Shape.Sizes[0];
        var z0 = new double[trials * model.StateSize];
        for (int b = 0; b < trials; b++) model.InitialState.CopyTo(z0.AsSpan(b * model.StateSize));
        return z0;
    }
}
