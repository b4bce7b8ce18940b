using System.Diagnostics;
using System.Globalization;
using GlobalNtk.Analysis;
using GlobalNtk.Estimators;
using GlobalNtk.IO;
using GlobalNtk.Ntk;
using GlobalNtk.Operators;
using GlobalNtk.Tasks;

namespace GlobalNtk.Bench;

/// <summary>
/// <c>analysis</c>: estimator comparisons on a saved model and its task's evaluation batch.
/// <c>--compare partial</c> (default): every partial effective rank of NTK_S by the old per-index
/// path (EffectiveRank.Partial, 10 probes, one application per kept index per probe) against the
/// budgeted PartialWithin (default preset, deflated by the budgeted top eigenvectors): values,
/// standard errors, applications and CPU seconds. <c>--compare presets</c>: the whole analysis
/// with the quick and the thorough preset, every estimate with its SE and the difference in
/// combined SEs. Options: <c>--model FILE --task NAME --steps T --trials B --old-probes N</c>.
/// </summary>
internal static class AnalysisBench
{
    public static int Run(string[] args)
    {
        string? model = null, task = null, compare = "partial";
        int? steps = null, trials = null;
        int oldProbes = 10;
        long exactLimit = KroneckerCore.DefaultExactApplicationLimit;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--model": model = args[++i]; break;
                case "--task": task = args[++i]; break;
                case "--steps": steps = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--trials": trials = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--old-probes": oldProbes = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--compare": compare = args[++i]; break;
                case "--exact-limit": exactLimit = long.Parse(args[++i], CultureInfo.InvariantCulture); break;
                default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
            }
        }
        if (model is null) { Console.Error.WriteLine("--model FILE is required"); return 2; }
        var loaded = ModelFile.Load(model);
        task ??= loaded.Metadata.TryGetValue("task", out var t) ? t : "flip-flop";
        if (steps is null && loaded.Metadata.TryGetValue("task_steps", out var ts)) steps = int.Parse(ts, CultureInfo.InvariantCulture);
        var ev = TaskRegistry.Create(task, new TaskOptions { Steps = steps, EvaluationTrials = trials }).EvaluationSet;
        Console.WriteLine($"model {Path.GetFileName(model)} ({loaded.Model.Arch}), task {task}, batch {ev.Inputs.Shape}");
        return compare switch
        {
            "presets" => Presets(loaded.Model, ev),
            "kronecker" => Kronecker(loaded.Model, ev, exactLimit),
            _ => Partial(loaded.Model, ev, oldProbes),
        };
    }

    private static double Cpu() => Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;

    /// <summary>The Kronecker core's per-site traces: method, cost (CPU s), tr K_s ± SE; then the rest term.</summary>
    private static int Kronecker(GlobalNtk.Models.IChainModel model, TaskBatch ev, long exactLimit)
    {
        var lin = model.Linearize(ev.Inputs);
        double c0 = Cpu();
        var core = new KroneckerCore(lin, exactLimit, seed: 3);
        Console.WriteLine($"state {lin.StateShape}, exact limit {exactLimit}: setup (Grams, modes) {Cpu() - c0:F1} s CPU");
        Console.WriteLine("| site | rows | d̂ | m | method | tr K_s ± SE | CPU s |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var s in core.Sites)
        {
            c0 = Cpu();
            double tr = s.TraceK;
            Console.WriteLine($"| {s.Name} | {s.Rows} | {s.AugmentedWidth} | {s.OutDim} | {s.Method} | {tr:G6} ± {s.TraceStandardError:G2} | {Cpu() - c0:F2} |");
        }
        c0 = Cpu();
        double rest = core.RestTrace;
        Console.WriteLine($"| rest ({core.RestParameterCount} θ) | | | | exact | {rest:G6} | {Cpu() - c0:F2} |");
        Console.WriteLine($"tr K = {core.TraceK:G6} ± {core.TraceKStandardError:G2}; c(1..4) = {string.Join(", ", core.ModeCaptureCurve(4).Select(c => c.ToString("G4", CultureInfo.InvariantCulture)))}");
        return 0;
    }

    private static int Partial(GlobalNtk.Models.IChainModel model, TaskBatch ev, int oldProbes)
    {
        var ops = new NtkOperators(model.Linearize(ev.Inputs));
        var o = new AnalysisOptions();
        var a = new MeteredOperator(ops.NtkS, null);
        double c0 = Cpu();
        var eig = Spectral.TopEigenpairs(a, o.TopK, o.Seed + 1, new SpectrumBudget(o.SpectrumBudget, o.SpectrumTolerance));
        Console.WriteLine($"NTK_S {a.Domain}: top-{eig.Values.Length} spectrum {eig.Status}, {a.Applications} applications, {Cpu() - c0:F1} s CPU (reused as the deflation)");
        var d = Deflation.FromEigenpairs(eig);
        Console.WriteLine();
        Console.WriteLine($"| axis | size | per-index ({oldProbes} probes) | applications | CPU s | new method | new PR | applications | CPU s | difference / combined SE |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
        int i = 0;
        foreach (var (axis, size) in a.Domain.Names.Zip(a.Domain.Sizes))
        {
            i++;
            if (size <= 1) continue;
            long before = a.Applications; c0 = Cpu();
            var old = EffectiveRank.Partial(a, [axis], oldProbes, o.Seed + 11 + i);
            long oldApps = a.Applications - before; double oldCpu = Cpu() - c0;
            before = a.Applications; c0 = Cpu();
            var now = EffectiveRank.PartialWithin(a, [axis], o.PartialBudget, o.Seed + 11 + i, d);
            long newApps = a.Applications - before; double newCpu = Cpu() - c0;
            double z = (now.ParticipationRatio.Value - old.Value) / Math.Sqrt(Math.Pow(now.ParticipationRatio.StandardError, 2) + Math.Pow(old.StandardError, 2));
            Console.WriteLine($"| {axis} | {size} | {old.Value:G4} ± {old.StandardError:G2} | {oldApps} | {oldCpu:F1} | {now.Plan.Method} ({now.Plan.Probes}) | {now.ParticipationRatio.Value:G4} ± {now.ParticipationRatio.StandardError:G2} | {newApps} | {newCpu:F1} | {z:F2} |");
        }
        return 0;
    }

    private static int Presets(GlobalNtk.Models.IChainModel model, TaskBatch ev)
    {
        var results = new List<(string Name, ModelAnalysis A, double Cpu)>();
        foreach (var b in new[] { AnalysisBudget.Quick, AnalysisBudget.Thorough })
        {
            double c0 = Cpu();
            var a = new NtkAnalyzer(ev.Inputs, ev.Targets, AnalysisOptions.ForBudget(b)).Analyze(model, b.ToString());
            results.Add((b.ToString(), a, Cpu() - c0));
        }
        Console.WriteLine($"quick: {results[0].Cpu:F1} s CPU; thorough: {results[1].Cpu:F1} s CPU");
        Console.WriteLine();
        Console.WriteLine("| estimate | quick | thorough | difference / combined SE |");
        Console.WriteLine("|---|---|---|---|");
        IEnumerable<(string, double, double)> Rows(ModelAnalysis m)
        {
            foreach (var r in new[] { m.NtkRank, m.KRank })
            {
                yield return ($"tr {r.Operator}", r.Trace, r.TraceStandardError);
                yield return ($"PR({r.Operator})", r.Value, r.StandardError);
                foreach (var p in r.Partial) yield return ($"PR({r.Operator}) {p.Axis}", p.Value, p.StandardError);
            }
            foreach (var s in new[] { m.NtkSpectrum, m.KSpectrum, m.PropagationSpectrum })
                yield return ($"λ₁({s.Operator}) [{s.Status}]", s.Eigenvalues[0], s.ErrorBounds.FirstOrDefault());
        }
        foreach (var (q, th) in Rows(results[0].A).Zip(Rows(results[1].A)))
        {
            double z = (q.Item2 - th.Item2) / Math.Sqrt(q.Item3 * q.Item3 + th.Item3 * th.Item3);
            Console.WriteLine($"| {q.Item1} | {q.Item2:G4} ± {q.Item3:G2} | {th.Item2:G4} ± {th.Item3:G2} | {(double.IsFinite(z) ? z.ToString("F2", CultureInfo.InvariantCulture) : "–")} |");
        }
        return 0;
    }
}
