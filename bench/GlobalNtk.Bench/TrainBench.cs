using System.Diagnostics;
using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Ntk;
using GlobalNtk.Tasks;
using GlobalNtk.Training;

namespace GlobalNtk.Bench;

/// <summary>
/// Training-step cost on the demo's model (GRU H=32 on flip-flop, batch 16, trials of 60 steps):
/// whole Adam steps, then the stages of one step (batch, forward + linearisation, readout and loss,
/// P*, J_θ*, optimizer and the new model) timed separately.
/// Usage: <c>train [steps=200] [H=32] [batch=16] [T=60]</c>.
/// </summary>
internal static class TrainBench
{
    public static int Run(string[] args)
    {
        int Arg(int i, int d) => args.Length > i ? int.Parse(args[i]) : d;
        int steps = Arg(0, 200), h = Arg(1, 32), batch = Arg(2, 16), t = Arg(3, 60);
        var options = new TrainingOptions { Steps = steps, BatchSize = batch, LearningRate = 0.01, Optimizer = "adam", Seed = 0 };
        var trainer = Trainer.Create("gru", h, "flip-flop", options, taskOptions: new TaskOptions { Steps = t, EvaluationTrials = 12 });
        Console.WriteLine($"gru H={h} batch={batch} T={t} m={trainer.Model.AllParameters.TotalSize} cores={Environment.ProcessorCount}");
        var proc = Process.GetCurrentProcess();
        var cpu0 = proc.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        trainer.Run();
        proc.Refresh();
        Console.WriteLine($"  {steps} Adam steps (Trainer.Run)        wall {sw.Elapsed.TotalMilliseconds / steps,8:F3} ms/step   cpu {(proc.TotalProcessorTime - cpu0).TotalMilliseconds / steps,8:F3} ms/step");

        var model = trainer.Model;
        var b = trainer.Task.TrainBatch(0, batch);
        var grad = new double[model.AllParameters.TotalSize];
        int reps = Math.Max(20, steps);
        void Time(string what, Action run)
        {
            for (int i = 0; i < 5; i++) run();
            proc.Refresh();
            var c0 = proc.TotalProcessorTime;
            var s = Stopwatch.StartNew();
            for (int i = 0; i < reps; i++) run();
            proc.Refresh();
            Console.WriteLine($"  {what,-36} wall {s.Elapsed.TotalMilliseconds / reps,8:F3} ms        cpu {(proc.TotalProcessorTime - c0).TotalMilliseconds / reps,8:F3} ms");
        }
        var lin = model.Linearize(b.Inputs);
        var ops = new NtkOperators(lin);
        var e = new double[lin.StateShape.Size];
        for (int i = 0; i < e.Length; i++) e[i] = Math.Sin(i);  // a fixed, non-trivial state error
        var w = ops.PAdjoint.Apply(e);
        Time("training batch", () => trainer.Task.TrainBatch(3, batch));
        Time("forward + linearise", () => model.Linearize(b.Inputs));
        Time("readout + loss", () => { var y = model.Readout.Forward(lin.States.Span, lin.StateShape); MseLoss.Evaluate(y.Span, b.Targets.Span, new double[y.Length]); });
        Time("P* (BPTT)", () => ops.PAdjoint.Apply(e));
        Time("J_θ*", () => ops.Jtheta.ApplyAdjoint(w));
        Time("gradient (ModelGradient.Compute)", () => ModelGradient.Compute(model, b.Inputs, b.Targets, grad));
        var opt = Optimizer.Create("adam", 0.01);
        Time("Adam step + new model", () => model.WithParameters(opt.Step(model.AllParameters, grad)));
        return 0;
    }
}
