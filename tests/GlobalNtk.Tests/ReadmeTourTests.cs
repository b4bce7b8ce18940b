using GlobalNtk.Estimators;
using GlobalNtk.Models.Recurrent;
using GlobalNtk.Ntk;
using GlobalNtk.Tasks;
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
}
