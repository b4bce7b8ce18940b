using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Recurrent;

namespace GlobalNtk.Tests.Reference;

/// <summary>
/// Straightforward scalar loops of PyTorch's recurrent equations (MATH.md §4), written
/// independently of the library's cells; generic over the scalar so that, on dual numbers, it
/// differentiates the whole unrolled model end to end.
/// </summary>
public static class ReferenceRecurrent
{
    /// <summary>States [B, T, S] from the PyTorch equations; <paramref name="p"/> maps parameter names to row-major values.</summary>
    public static TS[] Forward<TS>(RecurrentConfig config, IReadOnlyDictionary<string, TS[]> p, double[] x, int trials, int steps, double[]? z0)
        where TS : struct, IRefScalar<TS>
    {
        string arch = config.NormalizedArch;
        int n = config.InputSize, h = config.HiddenSize, s = config.StateSize;
        var wih = p["rnn.weight_ih_l0"]; var whh = p["rnn.weight_hh_l0"]; var bhh = p["rnn.bias_hh_l0"];
        var bih = arch == "leaky-rnn" ? null : p["rnn.bias_ih_l0"];
        var z = new TS[trials * steps * s];
        for (int b = 0; b < trials; b++)
        {
            var hs = new TS[h]; var cs = new TS[h];
            for (int i = 0; i < h; i++)
            {
                hs[i] = TS.Const(z0?[b * s + i] ?? 0);
                if (arch == "lstm") cs[i] = TS.Const(z0?[b * s + h + i] ?? 0);
            }
            for (int t = 0; t < steps; t++)
            {
                // Affine row 'row' of W_ih x + b_ih, and of W_hh u + b_hh.
                TS Ih(int row)
                {
                    var acc = bih == null ? TS.Const(0) : bih[row];
                    for (int j = 0; j < n; j++) acc += wih[row * n + j] * TS.Const(x[(b * steps + t) * n + j]);
                    return acc;
                }
                TS Hh(int row, TS[] u)
                {
                    var acc = bhh[row];
                    for (int j = 0; j < h; j++) acc += whh[row * h + j] * u[j];
                    return acc;
                }
                var hNew = new TS[h]; var cNew = new TS[h];
                switch (arch)
                {
                    case "rnn-tanh":
                    case "rnn-relu":
                        for (int i = 0; i < h; i++)
                        {
                            var a = Ih(i) + Hh(i, hs);
                            hNew[i] = arch == "rnn-tanh" ? TS.Tanh(a) : TS.Relu(a);
                        }
                        break;
                    case "gru":
                        for (int i = 0; i < h; i++)
                        {
                            var r = TS.Sigmoid(Ih(i) + Hh(i, hs));
                            var u = TS.Sigmoid(Ih(h + i) + Hh(h + i, hs));
                            var nn = TS.Tanh(Ih(2 * h + i) + r * Hh(2 * h + i, hs));
                            hNew[i] = (TS.Const(1) - u) * nn + u * hs[i];
                        }
                        break;
                    case "lstm":
                        for (int i = 0; i < h; i++)
                        {
                            var ig = TS.Sigmoid(Ih(i) + Hh(i, hs));
                            var fg = TS.Sigmoid(Ih(h + i) + Hh(h + i, hs));
                            var gg = TS.Tanh(Ih(2 * h + i) + Hh(2 * h + i, hs));
                            var og = TS.Sigmoid(Ih(3 * h + i) + Hh(3 * h + i, hs));
                            cNew[i] = fg * cs[i] + ig * gg;
                            hNew[i] = og * TS.Tanh(cNew[i]);
                        }
                        break;
                    case "leaky-rnn":
                        {
                            var phi = hs.Select(v => config.Activation == Activation.Tanh ? TS.Tanh(v) : TS.Relu(v)).ToArray();
                            var a = TS.Const(config.Alpha);
                            for (int i = 0; i < h; i++)
                                hNew[i] = (TS.Const(1) - a) * hs[i] + a * (Hh(i, phi) + Ih(i));
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
        var p = model.Parameters.ToDictionary(q => q.Name, q => q.Data.Select(v => new Real(v)).ToArray());
        return Forward<Real>(model.Config, p, inputs.Span.ToArray(), inputs.Shape.Sizes[0], inputs.Shape.Sizes[1], z0 ?? Broadcast(model, inputs))
            .Select(v => v.Value).ToArray();
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
                var z = Forward<Dual>(model.Config, p, x, trials, steps, z0);
                for (int r = 0; r < rows; r++) jac[r * m + col] = z[r].Tangent;
            }
        return jac;
    }

    private static double[]? Broadcast(RecurrentModel model, Tensor inputs)
    {
        if (model.InitialState == null) return null;
        int trials = inputs.Shape.Sizes[0];
        var z0 = new double[trials * model.StateSize];
        for (int b = 0; b < trials; b++) model.InitialState.CopyTo(z0, b * model.StateSize);
        return z0;
    }
}
