using GlobalNtk.Dense;
using GlobalNtk.IO;
using GlobalNtk.Ntk;
using GlobalNtk.Study;
using GlobalNtk.Tasks;
using Xunit;

namespace GlobalNtk.Tests;

public class StudyUnitTests
{
    private static double[,] Dense(GlobalNtk.Operators.LinearOperator op)
    {
        int n = op.Domain.Size;
        var m = new double[n, n];
        for (int j = 0; j < n; j++)
        {
            var e = new double[n]; e[j] = 1;
            var col = op.Apply(e);
            for (int i = 0; i < n; i++) m[i, j] = col[i];
        }
        return m;
    }

    [Theory]
    [InlineData("gru")]
    [InlineData("lstm")]
    [InlineData("stacked gru")]
    [InlineData("transformer")]
    [InlineData("mlp")]
    public void ExactnessUnitsFindTheKroneckerCoreExact(string label)
    {
        var a = StudyScale.ExactnessArchitectures.Single(x => x.Label == label);
        var unit = new StudyUnit("t", UnitKind.Exactness, a.Arch, a.Task, 4, 1.0, 3, a.Label) { ModelOptions = a.Options };
        var r = StudyUnitRunner.Exactness(unit, StudyScale.Test);
        Assert.True(r.Dimension > 0 && r.Parameters > 0);
        // rounding of a few sweeps in double precision; the pre-registered C1 threshold is 1e-10
        Assert.InRange(r.KRelativeDifference, 0, 1e-12);
        Assert.InRange(r.NtkRelativeDifference, 0, 1e-12);
        Assert.InRange(r.FiniteDifferenceRelativeDifference, 1e-14, 1e-7); // central differences: nonzero truncation error, far below 1e-6
    }

    [Fact]
    public void FiniteDifferenceReferenceDetectsAWrongKernel()
    {
        // the reference must be able to fail: NTK_S scaled by 1.01 is 1 % off in Frobenius norm
        var task = TaskRegistry.Create("flip-flop", new TaskOptions { Seed = 1, Steps = 3, EvaluationTrials = 2 });
        var model = ModelRegistry.Create(new ModelSpec("gru", task.InputSize, 3, task.OutputSize) { Seed = 1 });
        var theta = model.Parameters.Flatten();
        var ops = new NtkOperators(model.Linearize(task.EvaluationSet.Inputs));
        double good = StudyUnitRunner.FiniteDifferenceDifference(model, task.EvaluationSet.Inputs, ops.NtkS);
        Assert.Equal(theta, model.Parameters.Flatten()); // θ restored bit for bit
        double wrong = StudyUnitRunner.FiniteDifferenceDifference(model, task.EvaluationSet.Inputs, 1.01 * ops.NtkS);
        Assert.True(good < 1e-7, $"{good}");
        Assert.InRange(wrong, 0.0099, 0.0101);
    }

    [Fact]
    public void SnapshotMatchesDenseComputationsOnASmallGru()
    {
        var task = TaskRegistry.Create("flip-flop", new TaskOptions { Seed = 2, Steps = 4, EvaluationTrials = 2 });
        var model = ModelRegistry.Create(new ModelSpec("gru", task.InputSize, 3, task.OutputSize) { Seed = 2 });
        var batch = task.EvaluationSet;
        var snap = StudyUnitRunner.Measure(model, batch, 0, probes: 64, seed: 1); // probes ≥ dimension 24: exact
        var lin = model.Linearize(batch.Inputs);
        var ops = new NtkOperators(lin);
        // dense reference: the whole-model NTK (dz/dθ)(dz/dθ)*, independent of the P K P* factorisation
        var a = Dense(ops.WholeModelNtk);
        int n = lin.StateShape.Size;
        Assert.Equal(n, snap.Dimension);
        double tr = 0, fro = 0;
        for (int i = 0; i < n; i++) { tr += a[i, i]; for (int j = 0; j < n; j++) fro += a[i, j] * a[i, j]; }
        Assert.Equal(tr * tr / fro, snap.PrNtk, 9);
        Assert.Equal(0, snap.PrNtkSe);

        // cos(Δz, −e) with e = Cᵀ ∂L/∂y built by hand
        var y = model.Readout.Forward(lin.States.Span, lin.StateShape);
        var dy = new double[y.Length];
        double loss = GlobalNtk.Models.MseLoss.Evaluate(y.Span, batch.Targets.Span, dy);
        Assert.Equal(loss, snap.Loss, 14);
        var e = model.Readout.AsOperator(lin.StateShape).ApplyAdjoint(dy);
        var ae = new double[n];
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) ae[i] += a[i, j] * e[j];
        double cos = Numerics.Dot(ae, e) / (Numerics.Norm(ae) * Numerics.Norm(e));
        Assert.Equal(cos, snap.Misdirection, 10);
        Assert.InRange(snap.Misdirection, 0, 1); // NTK_S is PSD: the update never points against −e

        // Kronecker bound Σ m_s PR(Ĝ_s): GRU has two sites with m_s = 3H
        Assert.Equal(ops.KroneckerCore.Sites.Sum(s => 3.0 * 3 * s.ParticipationRatio), snap.KroneckerBound, 10);
        Assert.Equal(StudyScale.MaxRank, snap.ModeCapture.Length);
        Assert.Equal(3, snap.Srb.Length); // r ≤ H
        Assert.All(snap.ModeCapture.Zip(snap.ModeCapture.Skip(1)), p => Assert.True(p.First <= p.Second + 1e-12));
    }

    [Fact]
    public void TrainingUnitWritesItsRunAndMeasuresEveryCheckpoint()
    {
        using var tmp = new TempDir();
        var scale = StudyScale.Test;
        var unit = StudyPlan.Training("gru", "flip-flop", 4, 1.0, 1);
        var r = StudyUnitRunner.Run(unit, scale, tmp.File("u"));
        Assert.Equal("units/" + unit.Id, r.Folder);
        Assert.NotNull(r.Init); Assert.NotNull(r.Trained);
        Assert.Equal(0, r.Init!.Step);
        Assert.Equal(scale.Steps, r.Trained!.Step);
        Assert.True(File.Exists(Path.Combine(tmp.File("u"), "run", "log.csv")));
        var ckpts = GlobalNtk.Training.Checkpoints.List(Path.Combine(tmp.File("u"), "run"));
        Assert.Equal(ckpts.Select(c => c.Step), r.Trajectory!.Select(p => p.Step));
        // the first checkpoint is the initial model: same loss and misdirection as the init snapshot
        Assert.Equal(r.Init.Loss, r.Trajectory![0].EvalLoss, 12);
        Assert.Equal(r.Init.Misdirection, r.Trajectory[0].Misdirection, 10);
        Assert.Equal(r.Trained.Loss, r.Trajectory[^1].EvalLoss, 12);
        // same unit, same numbers (every seed derives from the unit)
        var again = StudyUnitRunner.Run(unit, scale, tmp.File("v"));
        Assert.Equal(r.Trained.PrNtk, again.Trained!.PrNtk);
        Assert.Equal(r.Trained.Srb, again.Trained.Srb);
    }
}
