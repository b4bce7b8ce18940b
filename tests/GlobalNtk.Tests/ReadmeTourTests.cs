using GlobalNtk.Dense;
using GlobalNtk.Estimators;
using GlobalNtk.Models.Blocks;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Recurrent;
using GlobalNtk.Ntk;
using GlobalNtk.Tasks;
using GlobalNtk.Training;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>The README's API tour, compiled and run, so the snippet cannot rot.</summary>
public class ReadmeTourTests
{
    [Fact]
    public void ApiTourRunsAndItsNumbersAreConsistent()
    {
        // --- README snippet begins ---
        var task = TaskRegistry.Create("flip-flop");
        var model = RecurrentModel.Create("gru", task.InputSize, hiddenSize: 16, task.OutputSize, seed: 1);
        var batch = task.EvaluationSet;                          // inputs (trial, time, input)
        var lin = model.Linearize(batch.Inputs);                 // forward pass + linearisation
        var ntk = new NtkOperators(lin);                         // P, P*, P⁻¹, J_θ, K, NTK_S, …

        var e = new double[lin.StateShape.Size];
        for (int i = 0; i < e.Length; i++) e[i] = Math.Sin(i);   // any state-space vector
        double[] dz = ntk.NtkS.Apply(e);                         // ż = −NTK_S e, matrix-free

        var pr = EffectiveRank.ParticipationRatio(ntk.NtkS, probes: 30, seed: 1);
        var prTime = EffectiveRank.Partial(ntk.NtkS, ["time"], probes: 10, seed: 1);
        var top = Spectral.TopEigenpairs(ntk.NtkS, k: 5, seed: 1);
        var core = ntk.KroneckerCore;                            // per-site Gram spectra, c(r)
        Console.WriteLine($"PR(NTK_S) = {pr.Value:G4} ± {pr.StandardError:G2}, PR_time = {prTime.Value:G4}, " +
                          $"λ₁ = {top.Values[0]:G4}, rank bound {core.RankBound} of {lin.StateShape.Size}, c(2) = {core.ModeCapture(2):G3}");
        // --- README snippet ends ---

        Assert.Equal(lin.StateShape.Size, dz.Length);
        Assert.InRange(pr.Value, 1, lin.StateShape.Size);
        Assert.InRange(prTime.Value, 1, lin.Steps);
        Assert.True(top.Values[0] >= top.Values[4]);
        Assert.InRange(core.ModeCapture(2), 0, 1 + 1e-12);
        Assert.Equal(1.0, core.ModeCapture(core.MaxRank), 10);
        // ⟨e, NTK_S e⟩ ≤ λ₁‖e‖² (PSD operator, Rayleigh quotient bounded by the top eigenvalue).
        double q = GlobalNtk.Dense.Numerics.Dot(e, dz) / GlobalNtk.Dense.Numerics.Dot(e, e);
        Assert.InRange(q, 0, top.Values[0] * (1 + 1e-6));
    }

    [Fact]
    public void CompositionTourRuns()
    {
        var x = new Tensor(new double[4 * 6 * 3], new AxisShape(("sequence", 4), ("token", 6), ("input", 3)));
        for (int i = 0; i < x.Length; i++) x.Span[i] = Math.Cos(i);
        // --- README composition snippet begins ---
        // Each step is a block; blocks compose. Step 0 embeds, steps 1–2 are pre-LN residual MLPs.
        StepBlock Residual(string p, int d) => new ResidualBlock(new SequentialBlock(
            new LayerNormBlock($"{p}.norm", d), AffineBlock.Linear($"{p}.fc1", d, 4 * d),
            new ActivationBlock(4 * d, Activation.Gelu), AffineBlock.Linear($"{p}.fc2", 4 * d, d, bias: false)));
        var chain = new BlockChain(inputWidth: 3,
            new SequentialBlock(AffineBlock.Linear("embed", 3, 8), new ActivationBlock(8, Activation.Tanh)),
            Residual("layers.0", 8), Residual("layers.1", 8));
        var theta = chain.Initialize(seed: 1);                   // PyTorch names and default init
        var lin = chain.Linearize(theta, x);                     // state (sequence, layer, token, feature)
        var ops = new NtkOperators(lin);                         // the same P, K, NTK_S as every model
        var stacked = RecurrentModel.Create(new RecurrentConfig("lstm", 3, 16, 2) { Layers = 2, Bias = false, LearnInitialState = true });
        // --- README composition snippet ends ---

        Assert.Equal(new AxisShape(("sequence", 4), ("layer", 3), ("token", 6), ("feature", 8)), lin.StateShape);
        var e = ops.NtkS.Apply(lin.States.Span);
        Assert.True(Numerics.Dot(e, lin.States.Span) > 0);
        Assert.Equal(5, lin.Sites.Count);                        // embed, and fc1/fc2 of both layers
        Assert.Equal(new[] { 2, 16 }, stacked.Parameters["h0"].Shape);
    }

    [Fact]
    public void ValuesTourRuns()
    {
        var task = TaskRegistry.Create("sine");
        var (x, y) = (task.EvaluationSet.Inputs, task.EvaluationSet.Targets);
        // --- README values snippet begins ---
        var model = RecurrentModel.Create("gru", task.InputSize, hiddenSize: 8, task.OutputSize, seed: 1);
        var lin = model.Linearize(x);                            // holds model's θ: nothing can change it
        var grad = new double[model.AllParameters.TotalSize];
        ModelGradient.Compute(model, x, y, grad);                // ∇θ of the MSE, through the NTK operators
        var stepped = new Adam(1e-2).Step(model.AllParameters, grad);  // new values; the old set is untouched
        var trained = model.WithParameters(stepped);             // a new model; model and lin are as they were
        // --- README values snippet ends ---

        Assert.Equal(lin.Parameters.Flatten(), model.Parameters.Flatten());
        Assert.NotEqual(model.AllParameters.Flatten(), trained.AllParameters.Flatten());
        Assert.Equal(model.Forward(x).Span.ToArray(), lin.States.ToArray());
    }
}
