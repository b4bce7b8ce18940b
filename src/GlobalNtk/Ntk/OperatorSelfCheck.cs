using GlobalNtk.Dense;
using GlobalNtk.Estimators;
using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Recurrent;
using GlobalNtk.Models.Transformer;
using GlobalNtk.Operators;

namespace GlobalNtk.Ntk;

/// <summary>
/// The self-check of the NTK operators themselves, in a chosen precision, on two small random models
/// (a GRU and a causal transformer): the adjoint identity of P and J_θ and the self-adjointness of Θ_y;
/// NTK_S = P K P* against the float64 whole-model NTK (dz/dθ)(dz/dθ)*; and the whole-model tangent
/// map dz/dθ·v against central finite differences of the float64 forward pass. With
/// <see cref="Precision.F32"/> the operators are those of the float32 linearisation, applied to float32
/// blocks, so the rows check the float32 maps against float64 references.
/// </summary>
/// <remarks>
/// Each row passes when |Estimate − Exact| ≤ <see cref="SelfCheckRow.Tolerance"/> (no statistical error).
/// Tolerances, relative to the norms named in each row:
/// <list type="bullet">
/// <item>Adjoint identity: float64 1e-12; float32 1e-6. The float32 sweeps round every state-block entry
/// once per step and per addition (u₃₂ = 6e-8, a few dozen roundings on these 5-step models), and both
/// inner products are summed in float64.</item>
/// <item>NTK_S against the float64 whole-model NTK: float64 1e-10 (two exact factorisations of one
/// operator, differing by rounding only); float32 1e-5, issue 12's bound for operator applications (the
/// float32 forward pass the maps are taken at differs from float64 by ~1e-7, each float32 sweep and
/// product adds a few u₃₂).</item>
/// <item>dz/dθ·v against central differences with step h = 1e-4 on a unit v: the difference itself is
/// accurate to O(h²) ≈ 1e-8 plus u₆₄‖z‖/h ≈ 1e-12, so float64 is held to 1e-6 and float32 to 1e-5 (the float32
/// tangent sweep's own rounding, as above).</item>
/// </list>
/// </remarks>
public static class OperatorSelfCheck
{
    private const double FiniteDifferenceStep = 1e-4;

    /// <summary>Runs the operator checks with <paramref name="seed"/> (same seed → same rows) in <paramref name="precision"/>.</summary>
    public static IReadOnlyList<SelfCheckRow> Run(int seed, Precision precision)
    {
        var key = RngKey.FromSeed(seed).Fold("operator self-check");
        var rows = new List<SelfCheckRow>();
        var gru = RecurrentModel.Create(new RecurrentConfig("gru", 3, 8, 2) { Seed = key.Fold("gru").Seed });
        var gruInputs = new Tensor(RandomProbes.Gaussian(key.Fold("gru inputs").CreateRandom(), 3 * 5 * 3), gru.InputShape(3, 5));
        rows.AddRange(Check("GRU", gru, gruInputs, precision, key.Fold("gru probes")));
        var tfConfig = new TransformerConfig(TransformerInput.Linear, 3, 8, 2, 2, 12, Activation.Gelu, Causal: true);
        var tf = TransformerModel.Create(tfConfig, 2, key.Fold("transformer").Seed);
        var tfInputs = new Tensor(RandomProbes.Gaussian(key.Fold("transformer inputs").CreateRandom(), 2 * 5 * 3),
            new AxisShape(("sequence", 2), ("token", 5), ("input", 3)));
        rows.AddRange(Check("transformer", tf, tfInputs, precision, key.Fold("transformer probes")));
        return rows;
    }

    private static IEnumerable<SelfCheckRow> Check(string model, IChainModel m, Tensor inputs, Precision precision, RngKey key)
    {
        bool single = precision == Precision.F32;
        string tag = $"{model} {precision.Name()}";
        double adjointTol = single ? 1e-6 : 1e-12, ntkTol = single ? 1e-5 : 1e-10, fdTol = single ? 1e-5 : 1e-6;
        var lin64 = m.Linearize(inputs);
        var lin = single ? m.Linearize(inputs, Precision.F32) : lin64;
        var ops = new NtkOperators(lin);
        var ops64 = single ? new NtkOperators(lin64) : ops;
        var rng = key.CreateRandom();
        // Vectors exact in float32, so both precisions see the same values.
        double[] Vector(int n) => Float32.ToDouble(Float32.ToSingle(RandomProbes.Gaussian(rng, n)));
        // One application in the precision checked: float32 blocks in and out for f32.
        double[] Apply(LinearOperator op, double[] x, bool adjoint = false)
        {
            if (!single) return adjoint ? op.ApplyAdjoint(x) : op.Apply(x);
            var y = new float[adjoint ? op.Domain.Size : op.Range.Size];
            if (adjoint) op.ApplyAdjointBlock(Float32.ToSingle(x), y, 1);
            else op.ApplyBlock(Float32.ToSingle(x), y, 1);
            return Float32.ToDouble(y);
        }

        SelfCheckRow Adjoint(string name, LinearOperator a)
        {
            var x = Vector(a.Domain.Size); var w = Vector(a.Range.Size);
            var ax = Apply(a, x); var aw = Apply(a, w, adjoint: true);
            double scale = Numerics.Norm(ax) * Numerics.Norm(w);
            return new SelfCheckRow($"{tag}: ⟨{name} x, w⟩ = ⟨x, {name}* w⟩", Numerics.Dot(ax, w), Numerics.Dot(x, aw), 0) { Tolerance = adjointTol * scale };
        }

        yield return Adjoint("P", ops.P);
        yield return Adjoint("J_θ", ops.Jtheta);
        yield return Adjoint("Θ_y", ops.OutputNtk(m.Readout));

        // NTK_S = P K P* (Kronecker core) against (dz/dθ)(dz/dθ)* of the float64 linearisation.
        var q = Vector(lin.StateShape.Size);
        var reference = ops64.WholeModelNtk.Apply(q);
        var ntk = Apply(ops.NtkS, q);
        yield return new SelfCheckRow($"{tag}: NTK_S q vs float64 (dz/dθ)(dz/dθ)* q, rel. difference",
            Numerics.Norm(Difference(ntk, reference)) / Numerics.Norm(reference), 0, 0) { Tolerance = ntkTol };

        // dz/dθ·v against central differences of the float64 forward pass.
        var v = Vector(lin.Parameters.TotalSize);
        Numerics.Scale(v, 1.0 / Numerics.Norm(v));
        var jv = Apply(ops.WholeModelJacobian, v);
        var theta = m.Parameters.Flatten();
        var plus = (double[])theta.Clone(); Numerics.Axpy(FiniteDifferenceStep, v, plus);
        var minus = (double[])theta.Clone(); Numerics.Axpy(-FiniteDifferenceStep, v, minus);
        var fd = m.WithChainValues(plus).Linearize(inputs).States.ToArray();
        Numerics.Axpy(-1.0, m.WithChainValues(minus).Linearize(inputs).States.Span, fd);
        Numerics.Scale(fd, 0.5 / FiniteDifferenceStep);
        yield return new SelfCheckRow($"{tag}: dz/dθ v vs central difference (h = {FiniteDifferenceStep:0e0}), rel. difference",
            Numerics.Norm(Difference(jv, fd)) / Numerics.Norm(fd), 0, 0) { Tolerance = fdTol };
    }

    private static double[] Difference(double[] a, double[] b)
    {
        var d = (double[])a.Clone();
        Numerics.Axpy(-1.0, b, d);
        return d;
    }
}
