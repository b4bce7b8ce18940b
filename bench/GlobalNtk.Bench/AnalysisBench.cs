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
/// standard errors, applications and CPU seconds. <c>--compare presets [--presets A,B]</c>: the whole analysis
/// with two presets (quick and thorough unless given), every estimate with its SE and the difference in
/// combined SEs. <c>--compare apply [--block C]</c>: CPU per vector of every operator and of K's
/// terms. <c>--compare stages [--budget P] [--precision f64|f32]</c>: the whole analysis stage by stage (CPU, allocation,
/// peak memory, the scratch pools' high-water marks, applications; f32: the float32 linearisation, whose estimators run on float32 blocks). Options: <c>--model FILE --task NAME --steps T --trials B --old-probes N</c>.
/// </summary>
internal static class AnalysisBench
{
    public static int Run(string[] args)
    {
        string? model = null, task = null, compare = "partial";
        int? steps = null, trials = null;
        int oldProbes = 10;
        string? onlyAxis = null, onlyOperator = null, cache = null;
        bool tracedIndex = true;
        int seedCount = 1;
        long exactLimit = KroneckerCore.DefaultExactApplicationLimit;
        int block = 4;
        var budget = AnalysisBudget.Default;
        var precision = GlobalNtk.Dense.Precision.F64;
        var presets = new[] { AnalysisBudget.Quick, AnalysisBudget.Thorough };
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
                case "--axis": onlyAxis = args[++i]; break;
                case "--operator": onlyOperator = args[++i]; break;
                case "--no-traced-index": tracedIndex = false; break;
                case "--exact-cache": cache = args[++i]; break;
                case "--seeds": seedCount = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--exact-limit": exactLimit = long.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--block": block = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--budget": budget = Enum.Parse<AnalysisBudget>(args[++i], ignoreCase: true); break;
                case "--precision":
                    if (!GlobalNtk.Dense.PrecisionNames.TryParse(args[++i], out precision)) { Console.Error.WriteLine($"error: --precision '{args[i]}' is not f64 or f32"); return 2; }
                    break;
                case "--presets": presets = args[++i].Split(',').Select(b => Enum.Parse<AnalysisBudget>(b, ignoreCase: true)).ToArray(); break;
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
            "presets" => Presets(loaded.Model, ev, presets, seedCount),
            "kronecker" => Kronecker(loaded.Model, ev, exactLimit),
            "apply" => Apply(loaded.Model, ev, block),
            "stages" => Stages(loaded.Model, ev, budget, precision),
            "calibrate" => Calibrate(loaded.Model, ev, budget, oldProbes, tracedIndex, onlyAxis, onlyOperator),
            "traced" => Traced(loaded.Model, ev, budget, oldProbes, onlyAxis),
            "trialcal" => TrialCal(loaded.Model, ev, budget, oldProbes, onlyAxis ?? "trial", onlyOperator, cache, model),
            _ => Partial(loaded.Model, ev, oldProbes),
        };
    }

    private static double Cpu() => Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;

    /// <summary>
    /// CPU seconds per vector of each operator the analysis applies (NTK_S, K and its site and rest
    /// terms, P, P*, P P*), for one vector and for a block of <paramref name="block"/>.
    /// </summary>
    private static int Apply(GlobalNtk.Models.IChainModel model, TaskBatch ev, int block)
    {
        var lin = model.Linearize(ev.Inputs);
        var ops = new NtkOperators(lin);
        int n = lin.StateShape.Size;
        var map = new SiteParameterMap(lin);
        Console.WriteLine($"state {lin.StateShape} = {n}; {lin.Sites.Count} sites, {map.RestSize} θ scalars outside every site; CPU s per vector");
        var rng = new Random(5);
        var x = new double[(long)block * n];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextDouble() - 0.5;
        var y = new double[(long)block * n];
        var g = new double[(long)block * Math.Max(1, map.RestSize)];
        var rows = new List<(string, Action<int>)>
        {
            ("NTK_S", c => ops.NtkS.ApplyBlock(x.AsSpan(0, c * n), y.AsSpan(0, c * n), c)),
            ("K (Kronecker form)", c => ops.KKronecker.ApplyBlock(x.AsSpan(0, c * n), y.AsSpan(0, c * n), c)),
            ("K (generic J_θ J_θ*)", c => ops.K.ApplyBlock(x.AsSpan(0, c * n), y.AsSpan(0, c * n), c)),
            ("P", c => ops.P.ApplyBlock(x.AsSpan(0, c * n), y.AsSpan(0, c * n), c)),
            ("P*", c => ops.PAdjoint.ApplyBlock(x.AsSpan(0, c * n), y.AsSpan(0, c * n), c)),
        };
        if (map.RestSize > 0)
        {
            rows.Add(("  K rest: J_rest* (VJP)", c => lin.ParamVjpSubset(map.Rest, x.AsSpan(0, c * n), g.AsSpan(0, c * map.RestSize), c)));
            rows.Add(("  K rest: J_rest (JVP)", c => lin.ParamJvpSubset(map.Rest, g.AsSpan(0, c * map.RestSize), y.AsSpan(0, c * n), c)));
        }
        foreach (var site in lin.Sites)
        {
            var a = new double[(long)block * site.Rows * site.OutDim];
            rows.Add(($"  K site {site.Name}: D* and D", c =>
            {
                site.ApplyDAdjoint(x.AsSpan(0, c * n), a.AsSpan(0, c * site.Rows * site.OutDim), c);
                site.ApplyDAdd(a.AsSpan(0, c * site.Rows * site.OutDim), y.AsSpan(0, c * n), c);
            }));
        }
        Console.WriteLine($"| operator | 1 vector | block of {block}, per vector |");
        Console.WriteLine("|---|---|---|");
        foreach (var (name, run) in rows)
        {
            run(1); // warm-up
            double c0 = Cpu(); run(1); double one = Cpu() - c0;
            c0 = Cpu(); run(block); double blk = (Cpu() - c0) / block;
            Console.WriteLine($"| {name} | {one:F3} | {blk:F3} |");
        }
        return 0;
    }

    /// <summary>
    /// The whole analysis of one checkpoint with a preset, stage by stage: CPU seconds, bytes
    /// allocated, live heap and the process's peak working set at the end of each stage; then
    /// the applications each estimate used (results' records).
    /// </summary>
    private static int Stages(GlobalNtk.Models.IChainModel model, TaskBatch ev, AnalysisBudget budget, GlobalNtk.Dense.Precision precision)
    {
        var options = AnalysisOptions.ForBudget(budget) with { Precision = precision };
        string? stage = null;
        double c0 = Cpu(), cStart = c0;
        long a0 = GC.GetTotalAllocatedBytes();
        Console.WriteLine($"preset {budget}, {GlobalNtk.Dense.PrecisionNames.Name(precision)}; | stage | CPU s | allocated GB | heap GB | peak working set GB | scratch pools' high-water GB (f64 + f32) |");
        Console.WriteLine("|---|---|---|---|---|---|");
        void Close()
        {
            if (stage is null) return;
            var p = Process.GetCurrentProcess();
            long a = GC.GetTotalAllocatedBytes();
            Console.WriteLine($"| {stage} | {Cpu() - c0:F1} | {(a - a0) / 1e9:F2} | {GC.GetTotalMemory(false) / 1e9:F2} | {p.PeakWorkingSet64 / 1e9:F2} | {GlobalNtk.Operators.ScratchPool.Shared.PeakRetainedBytes / 1e9:F2} + {GlobalNtk.Operators.ScratchPool.Float32Shared.PeakRetainedBytes / 1e9:F2} |");
            c0 = Cpu(); a0 = a;
        }
        var analysis = new NtkAnalyzer(ev.Inputs, ev.Targets, options).Analyze(model, "m", progress: (text, _) =>
        {
            string name = text.Split(':')[0];
            if (name == stage) return;
            Close();
            stage = name;
        });
        Close();
        Console.WriteLine($"total {Cpu() - cStart:F1} s CPU, peak working set {Process.GetCurrentProcess().PeakWorkingSet64 / 1e9:F2} GB");
        foreach (var s in new[] { analysis.NtkSpectrum, analysis.KSpectrum, analysis.PropagationSpectrum })
            Console.WriteLine($"spectrum {s.Operator}: {s.Applications}/{s.Budget} applications, {s.Status}, top-{s.Eigenvalues.Length}");
        foreach (var r in new[] { analysis.NtkRank, analysis.KRank })
        {
            Console.WriteLine($"rank {r.Operator}: {r.Applications} applications; partial: {string.Join(", ", r.Partial.Select(p => $"{p.Axis} {p.Method} {p.Applications}"))}");
            Console.WriteLine($"  tr {r.Operator} = {r.Trace:G4} ± {r.TraceStandardError:G2}, PR = {r.Value:G4} ± {r.StandardError:G2} ({r.Applications}/{r.Budget}, {r.Status})");
            foreach (var p in r.Partial)
                Console.WriteLine($"  PR({r.Operator}) {p.Axis} = {p.Value:G4} ± {p.StandardError:G2} ({p.Method} {p.KeptProbe}{(p.TracedIndexAxes is { } ti ? $" index ω on {ti}" : "")}, {p.Applications}/{p.Budget}, {p.Status})");
        }
        return 0;
    }

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
        Console.WriteLine($"| rest ({core.RestParameterCount} θ) | | | | exact, {core.RestApplications} JVP vectors | {rest:G6} | {Cpu() - c0:F2} |");
        // The same trace one scalar per JVP (the previous method), for the before/after in one run.
        c0 = Cpu();
        var map = new SiteParameterMap(lin);
        int k = map.RestSize, n = lin.StateShape.Size, chunk = 8;
        double single = 0;
        var e = new double[chunk * k];
        var yv = new double[(long)chunk * n];
        for (int p0 = 0; p0 < k; p0 += chunk)
        {
            int cs = Math.Min(chunk, k - p0);
            Array.Clear(e);
            for (int t = 0; t < cs; t++) e[t * k + p0 + t] = 1.0;
            lin.ParamJvpSubset(map.Rest, e.AsSpan(0, cs * k), yv.AsSpan(0, cs * n), cs);
            single += GlobalNtk.Dense.Numerics.Dot(yv.AsSpan(0, cs * n), yv.AsSpan(0, cs * n));
        }
        Console.WriteLine($"| rest, one scalar per JVP ({k} JVP vectors) | | | | exact | {single:G6} | {Cpu() - c0:F2} |");
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

    /// <summary>
    /// <c>--compare calibrate [--budget P] [--old-probes SEEDS] [--axis A] [--no-traced-index]</c>: every
    /// partial rank of NTK_S and K (or only axis A; the others then give one estimate each as hints)
    /// with the preset's budget over many seeds (deflated as in the analysis, each seed's earlier axes
    /// as the traced-axis hints unless --no-traced-index), against a reference with 10× the budget:
    /// the kept factor and traced index axes chosen, the SD of the z-scores, how many lie beyond 2
    /// and 3, and the mean applications.
    /// </summary>
    private static double Sd(double[] x) { double m = x.Average(); return Math.Sqrt(x.Sum(v => (v - m) * (v - m)) / (x.Length - 1)); }

    private static int Calibrate(GlobalNtk.Models.IChainModel model, TaskBatch ev, AnalysisBudget budget, int seeds, bool tracedIndex, string? onlyAxis, string? onlyOperator)
    {
        var ops = new NtkOperators(model.Linearize(ev.Inputs));
        var o = AnalysisOptions.ForBudget(budget);
        Console.WriteLine($"preset {budget}, partial budget {o.PartialBudget}, {seeds} seeds");
        Console.WriteLine("| operator | axis | reference | method (index ψ / seeds) | mean PR ± mean SE | mean z | SD(z) | SD(PR)/mean SE | beyond 2 | beyond 3 | mean applications | index ω on (seeds) |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var (name, op) in new[] { ("NTK_S", ops.NtkSApplied), ("K", ops.KApplied) }.Where(x => onlyOperator is null || x.Item1 == onlyOperator))
        {
            var eig = Spectral.TopEigenpairs(op, o.TopK, o.Seed + 1, new SpectrumBudget(o.SpectrumBudget, o.SpectrumTolerance));
            var d = Deflation.FromEigenpairs(eig);
            // As in the analysis: each seed's earlier axes tell which traced axes are coherent.
            var done = Enumerable.Range(0, seeds).Select(_ => new Dictionary<string, TracedAxisHint>()).ToArray();
            foreach (var (axis, size) in op.Domain.Names.Zip(op.Domain.Sizes))
            {
                if (size <= 1) continue;
                if (onlyAxis is not null && axis != onlyAxis)
                {
                    // Not calibrated here: one estimate with 10× the budget serves every seed as the hint.
                    var hint = TracedAxisHint.Of(EffectiveRank.PartialWithin(op, [axis], 10 * o.PartialBudget, 1, d, 0, done[0]));
                    foreach (var h in done) h[axis] = hint;
                    Console.WriteLine($"| {name} | {axis} | (hint only) | | {hint.ParticipationRatio:G4}, index spread {hint.IndexSpread:G3} | | | | | | | |");
                    continue;
                }
                var reference = EffectiveRank.PartialWithin(op, [axis], Math.Max(10 * o.PartialBudget, 12 * size), 99, d);
                // With --axis, also without hints in the same run (same reference).
                foreach (bool hints in onlyAxis is not null && tracedIndex ? new[] { true, false } : new[] { tracedIndex })
                {
                    var ests = Enumerable.Range(0, seeds).Select(s => EffectiveRank.PartialWithin(op, [axis], o.PartialBudget, 1000 + s, d, o.RelativeTarget,
                        hints ? done[s] : null)).ToArray();
                    for (int s = 0; s < seeds; s++) done[s][axis] = TracedAxisHint.Of(ests[s]);
                    long apps = ests.Sum(e => e.Applications);
                    string ti = string.Join(" ", ests.GroupBy(e => string.Join(",", e.TracedIndexAxes)).Where(g => g.Key.Length > 0).Select(g => $"{g.Key}:{g.Count()}"));
                    var z = ests.Select(e => (e.ParticipationRatio.Value - reference.ParticipationRatio.Value)
                        / Math.Sqrt(Math.Pow(e.ParticipationRatio.StandardError, 2) + Math.Pow(reference.ParticipationRatio.StandardError, 2))).ToArray();
                    double mz = z.Average(), sd = Math.Sqrt(z.Sum(v => (v - mz) * (v - mz)) / (z.Length - 1));
                    Console.WriteLine($"| {name} | {axis} | {reference.ParticipationRatio.Value:G4} ± {reference.ParticipationRatio.StandardError:G2} ({reference.Plan.Method}) | {ests[0].Plan.Method} ({ests.Count(e => e.KeptProbe == KeptProbe.Index)}/{seeds}) | {ests.Average(e => e.ParticipationRatio.Value):G4} ± {ests.Average(e => e.ParticipationRatio.StandardError):G2} | {mz:F2} | {sd:F2} | {Sd(ests.Select(e => e.ParticipationRatio.Value).ToArray()) / ests.Average(e => e.ParticipationRatio.StandardError):F2} | {z.Count(v => Math.Abs(v) > 2)} | {z.Count(v => Math.Abs(v) > 3)} | {(double)apps / seeds:F1} | {(ti.Length == 0 ? (hints ? "–" : "off") : ti)} |");
                }
            }
        }
        return 0;
    }

    /// <summary>
    /// <c>--compare traced [--budget P] [--old-probes N]</c>: for every partial rank of NTK_S and K
    /// (deflated as in the analysis), the relative variance per Kronecker probe of t (tr M) and s
    /// (‖M‖_F²) for each kept factor and each choice of index factors on the traced axes, from N probes.
    /// </summary>
    private static int Traced(GlobalNtk.Models.IChainModel model, TaskBatch ev, AnalysisBudget budget, int probes, string? onlyAxis)
    {
        var ops = new NtkOperators(model.Linearize(ev.Inputs));
        var o = AnalysisOptions.ForBudget(budget);
        Console.WriteLine($"{probes} probes per row; relative variance per probe of t and s (var/mean²)");
        Console.WriteLine("| operator | kept axis | ψ | index factors on | rel var t | rel var s |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var (name, op) in new[] { ("NTK_S", ops.NtkSApplied), ("K", ops.KApplied) })
        {
            var eig = Spectral.TopEigenpairs(op, o.TopK, o.Seed + 1, new SpectrumBudget(o.SpectrumBudget, o.SpectrumTolerance));
            var d = Deflation.FromEigenpairs(eig);
            var probed = new DeflatedOperator(op, d);
            foreach (var axis in op.Domain.Names.Where(a => onlyAxis is null || a == onlyAxis))
            {
                var traced = op.Domain.Names.Where(a => a != axis).ToArray();
                var split = new AxisSplit(op.Domain, traced, "traced bench");
                var ml = EffectiveRank.LowRankPartialTraceForBench(d, split);
                foreach (var kind in new[] { KeptProbe.Rademacher, KeptProbe.Index })
                    for (int mask = 0; mask < 1 << traced.Length; mask++)
                    {
                        var sampler = new KroneckerPartialSampler(probed, split, 7 + mask, ml) { TracedIndexMask = mask };
                        var rows = sampler.Sample(probes, kind);
                        double Rel(int c) { double m = rows.Average(r => r[c]); return rows.Sum(r => (r[c] - m) * (r[c] - m)) / (rows.Count - 1) / (m * m); }
                        string on = string.Join(",", traced.Where((_, i) => (mask >> i & 1) != 0));
                        Console.WriteLine($"| {name} | {axis} | {kind} | {(on.Length == 0 ? "none" : on)} | {Rel(0):G3} | {Rel(2):G3} |");
                    }
            }
        }
        return 0;
    }

    private static int Presets(GlobalNtk.Models.IChainModel model, TaskBatch ev, AnalysisBudget[] presets, int seeds)
    {
        var results = new List<(string Name, ModelAnalysis A, double Cpu)>();
        foreach (var b in presets)
        {
            double c0 = Cpu();
            var a = new NtkAnalyzer(ev.Inputs, ev.Targets, AnalysisOptions.ForBudget(b)).Analyze(model, b.ToString());
            results.Add((b.ToString(), a, Cpu() - c0));
        }
        static long Apps(ModelAnalysis m) => m.NtkSpectrum.Applications + m.KSpectrum.Applications + m.PropagationSpectrum.Applications
            + m.NtkRank.Applications + m.KRank.Applications + m.NtkRank.Partial.Sum(p => p.Applications) + m.KRank.Partial.Sum(p => p.Applications);
        Console.WriteLine($"{results[0].Name}: {results[0].Cpu:F1} s CPU, {Apps(results[0].A)} applications; {results[1].Name}: {results[1].Cpu:F1} s CPU, {Apps(results[1].A)} applications");
        // --seeds N: the first preset again with N − 1 other seeds, for the spread of its z-scores.
        var more = Enumerable.Range(1, Math.Max(0, seeds - 1)).Select(s =>
            new NtkAnalyzer(ev.Inputs, ev.Targets, AnalysisOptions.ForBudget(presets[0]) with { Seed = 1 + 7919 * s }).Analyze(model, presets[0].ToString())).ToList();
        Console.WriteLine();
        string extra = seeds > 1 ? $" mean z over {seeds} seeds | SD(z) | abs z > 2 | abs z > 3 |" : "";
        Console.WriteLine($"| estimate | {results[0].Name} | {results[1].Name} | difference / combined SE |{extra}");
        Console.WriteLine(seeds > 1 ? "|---|---|---|---|---|---|---|---|" : "|---|---|---|---|");
        static List<(string, double, double)> Rows(ModelAnalysis m)
        {
            var rows = new List<(string, double, double)>();
            foreach (var r in new[] { m.NtkRank, m.KRank })
            {
                rows.Add(($"tr {r.Operator}", r.Trace, r.TraceStandardError));
                rows.Add(($"PR({r.Operator})", r.Value, r.StandardError));
                foreach (var p in r.Partial) rows.Add(($"PR({r.Operator}) {p.Axis}{(p.TracedIndexAxes is { } ti ? $" [index ω: {ti}]" : "")}", p.Value, p.StandardError));
            }
            foreach (var s in new[] { m.NtkSpectrum, m.KSpectrum, m.PropagationSpectrum })
                rows.Add(($"λ₁({s.Operator}) [{s.Status}]", s.Eigenvalues[0], s.ErrorBounds.FirstOrDefault()));
            return rows;
        }
        static double Z((string, double, double) q, (string, double, double) th) => (q.Item2 - th.Item2) / Math.Sqrt(q.Item3 * q.Item3 + th.Item3 * th.Item3);
        var reference = Rows(results[1].A);
        var others = more.Select(Rows).ToList();
        var first = Rows(results[0].A);
        for (int i = 0; i < first.Count; i++)
        {
            var (q, th) = (first[i], reference[i]);
            double z = Z(q, th);
            string tail = "";
            if (seeds > 1)
            {
                var zs = others.Select(o => Z(o[i], th)).Prepend(z).Where(double.IsFinite).ToArray();
                if (zs.Length > 1)
                {
                    double mz = zs.Average(), sd = Math.Sqrt(zs.Sum(v => (v - mz) * (v - mz)) / (zs.Length - 1));
                    tail = $" {mz:F2} | {sd:F2} | {zs.Count(v => Math.Abs(v) > 2)} | {zs.Count(v => Math.Abs(v) > 3)} |";
                }
                else tail = " – | – | – | – |";
            }
            Console.WriteLine($"| {q.Item1} | {q.Item2:G4} ± {q.Item3:G2} | {th.Item2:G4} ± {th.Item3:G2} | {(double.IsFinite(z) ? z.ToString("F2", CultureInfo.InvariantCulture) : "–")} |{tail}");
        }
        return 0;
    }

    /// <summary>
    /// The exact partial trace M = tr_other(A) along every axis, from A applied to every unit vector
    /// (n applications; M_a[k,l] = Σ_r A[(k,r),(l,r)]), cached as text in <paramref name="file"/> when given.
    /// </summary>
    private static Dictionary<string, double[]> ExactPartials(LinearOperator op, string? file)
    {
        var shape = op.Domain;
        var result = new Dictionary<string, double[]>();
        if (file is not null && File.Exists(file))
        {
            foreach (var line in File.ReadAllLines(file))
            {
                var parts = line.Split(' ');
                result[parts[0]] = parts.Skip(1).Select(x => double.Parse(x, CultureInfo.InvariantCulture)).ToArray();
            }
            return result;
        }
        int n = shape.Size, rank = shape.Rank;
        var strides = shape.Strides();
        var ms = Enumerable.Range(0, rank).Select(a => new double[shape.Sizes[a] * shape.Sizes[a]]).ToArray();
        int chunk = 64;
        var x = new double[(long)chunk * n];
        var y = new double[(long)chunk * n];
        for (int j0 = 0; j0 < n; j0 += chunk)
        {
            int c = Math.Min(chunk, n - j0);
            Array.Clear(x);
            for (int j = 0; j < c; j++) x[(long)j * n + j0 + j] = 1;
            op.ApplyBlock(x.AsSpan(0, c * n), y.AsSpan(0, c * n), c);
            for (int j = 0; j < c; j++)
            {
                int col = j0 + j;
                for (int a = 0; a < rank; a++)
                {
                    int na = shape.Sizes[a], l = col / strides[a] % na;
                    var m = ms[a];
                    for (int k = 0; k < na; k++) m[k * na + l] += y[(long)j * n + col + (k - l) * strides[a]];
                }
            }
        }
        for (int a = 0; a < rank; a++) result[shape.Names[a]] = ms[a];
        if (file is not null)
            File.WriteAllLines(file, result.Select(kv => kv.Key + " " + string.Join(" ", kv.Value.Select(v => v.ToString("R", CultureInfo.InvariantCulture)))));
        return result;
    }

    private static double SpreadOf(double[] m)
    {
        int n = (int)Math.Round(Math.Sqrt(m.Length));
        double tr = 0, sq = 0;
        for (int i = 0; i < n; i++) { tr += m[i * n + i]; sq += m[i * n + i] * m[i * n + i]; }
        return n * sq / (tr * tr) - 1;
    }

    private static double PrOf(double[] m)
    {
        int n = (int)Math.Round(Math.Sqrt(m.Length));
        double tr = 0, f2 = 0;
        for (int i = 0; i < n; i++) { tr += m[i * n + i]; for (int j = 0; j < n; j++) f2 += m[i * n + j] * m[j * n + i]; }
        return tr * tr / f2;
    }

    /// <summary>
    /// <c>--compare trialcal [--axis A] [--operator O] [--old-probes SEEDS] [--exact-cache PREFIX]</c>: the
    /// preset's partial rank along one axis over many seeds against the EXACT partial trace (A applied to
    /// every unit vector), deflated as in the analysis; z-score summaries of the shipped SE and of
    /// alternative SEs computed from the same Kronecker rows.
    /// </summary>
    private static int TrialCal(GlobalNtk.Models.IChainModel model, TaskBatch ev, AnalysisBudget budget, int seeds, string axis, string? onlyOperator, string? cache, string modelPath)
    {
        var ops = new NtkOperators(model.Linearize(ev.Inputs));
        var o = AnalysisOptions.ForBudget(budget);
        Console.WriteLine($"preset {budget}, partial budget {o.PartialBudget}, {seeds} seeds, axis {axis}");
        foreach (var (name, op) in new[] { ("NTK_S", ops.NtkSApplied), ("K", ops.KApplied) }.Where(x => onlyOperator is null || x.Item1 == onlyOperator))
        {
            double c0 = Cpu();
            var exactM = ExactPartials(op, cache is null ? null : $"{cache}-{Path.GetFileNameWithoutExtension(modelPath)}-{name}.txt");
            double exact = PrOf(exactM[axis]);
            Console.WriteLine($"{name}: exact partial traces ({Cpu() - c0:F1} s CPU): " + string.Join(", ", exactM.Select(kv => $"PR {kv.Key} = {PrOf(kv.Value):G6}")));
            var eig = Spectral.TopEigenpairs(op, o.TopK, o.Seed + 1, new SpectrumBudget(o.SpectrumBudget, o.SpectrumTolerance));
            var d = Deflation.FromEigenpairs(eig);
            c0 = Cpu();
            var rowsOf = new IReadOnlyList<double[]>?[seeds];
            // TRIALCAL_VARY_DEFLATION=1: a fresh spectrum (so a fresh deflation) per seed, as in separate analyses.
            bool vary = Environment.GetEnvironmentVariable("TRIALCAL_VARY_DEFLATION") == "1";
            Deflation DeflationFor(int s) => !vary ? d : Deflation.FromEigenpairs(Spectral.TopEigenpairs(op, o.TopK, o.Seed + 2 + s, new SpectrumBudget(o.SpectrumBudget, o.SpectrumTolerance)));
            // TRIALCAL_EXACT_HINTS=1: traced-axis hints from the exact partial traces (the analysis passes estimated ones).
            Dictionary<string, TracedAxisHint>? hints = Environment.GetEnvironmentVariable("TRIALCAL_EXACT_HINTS") != "1" ? null
                : exactM.Where(kv => kv.Key != axis).ToDictionary(kv => kv.Key, kv => new TracedAxisHint(PrOf(kv.Value), SpreadOf(kv.Value)));
            if (hints is not null) Console.WriteLine("  hints: " + string.Join(", ", hints.Select(h => $"{h.Key} PR {h.Value.ParticipationRatio:G4} spread {h.Value.IndexSpread:G3}")));
            // TRIALCAL_HINTS=estimated: per seed, the axes before this one (shape order) estimated first and passed on, as the analysis does.
            bool estimated = Environment.GetEnvironmentVariable("TRIALCAL_HINTS") == "estimated";
            var masked = 0;
            Dictionary<string, TracedAxisHint>? HintsFor(int s)
            {
                if (!estimated) return hints;
                var h = new Dictionary<string, TracedAxisHint>();
                foreach (var a in op.Domain.Names.TakeWhile(a => a != axis))
                    h[a] = TracedAxisHint.Of(EffectiveRank.PartialWithin(op, [a], o.PartialBudget, 5000 + 7 * s + a.Length, DeflationFor(s), o.RelativeTarget, h));
                return h;
            }
            var ests = Enumerable.Range(0, seeds).Select(s => EffectiveRank.PartialWithinRows(op, [axis], o.PartialBudget, 1000 + s, DeflationFor(s), o.RelativeTarget, HintsFor(s), r => rowsOf[s] = r)).ToArray();
            masked = ests.Count(e => e.TracedIndexAxes.Count > 0);
            Console.WriteLine($"  traced index factors in {masked}/{seeds} seeds");
            var rowIndex = new Dictionary<PartialRankEstimate, int>(ReferenceEqualityComparer.Instance);
            for (int i = 0; i < ests.Length; i++) rowIndex[ests[i]] = i;
            IReadOnlyList<double[]>? Rows(PartialRankEstimate e) => rowsOf[rowIndex[e]];
            if (cache is not null)
                File.WriteAllLines($"{cache}-{Path.GetFileNameWithoutExtension(modelPath)}-{name}-{axis}-rows.txt", ests.Select(e =>
                    FormattableString.Invariant($"{exact:R} {e.KeptProbe} {e.ParticipationRatio.Value:R} {e.ParticipationRatio.StandardError:R} ")
                    + string.Join(" ", (Rows(e) ?? []).Select(r => FormattableString.Invariant($"{r[0]:R},{r[2]:R}")))));
            Console.WriteLine($"  {seeds} estimates in {Cpu() - c0:F1} s CPU; method {ests[0].Plan.Method}, index ψ {ests.Count(e => e.KeptProbe == KeptProbe.Index)}/{seeds}, rows {ests.Average(e => Rows(e)?.Count ?? 0):F1}, applications {ests.Average(e => e.Applications):F1}");
            Console.WriteLine("  | SE variant | mean PR | mean z | SD(z) | SD(PR)/RMS SE | beyond 2 | beyond 3 | min z | max z | corr(err, SE) |");
            Console.WriteLine("  |---|---|---|---|---|---|---|---|---|---|");
            void Row(string label, Func<PartialRankEstimate, (double Value, double Se)> f)
            {
                var v = ests.Select(f).ToArray();
                var z = v.Select(x => (x.Value - exact) / x.Se).ToArray();
                double mz = z.Average(), rmsSe = Math.Sqrt(v.Average(x => x.Se * x.Se));
                var err = v.Select(x => x.Value - exact).ToArray();
                var se = v.Select(x => x.Se).ToArray();
                double me = err.Average(), ms = se.Average();
                double corr = err.Zip(se).Sum(p => (p.First - me) * (p.Second - ms)) / Math.Sqrt(err.Sum(e => (e - me) * (e - me)) * se.Sum(q => (q - ms) * (q - ms)));
                Console.WriteLine($"  | {label} | {v.Average(x => x.Value):G5} | {mz:F2} | {Sd(z):F2} | {Sd(v.Select(x => x.Value).ToArray()) / rmsSe:F2} | {z.Count(q => Math.Abs(q) > 2)} | {z.Count(q => Math.Abs(q) > 3)} | {z.Min():F2} | {z.Max():F2} | {corr:F2} |");
            }
            Row("shipped", e => (e.ParticipationRatio.Value, e.ParticipationRatio.StandardError));
            if (ests.All(e => Rows(e) is not null))
            {
                Row("jackknife, no t factor", e => (e.ParticipationRatio.Value, e.ParticipationRatio.StandardError / EffectiveRank.SmallSample(Rows(e)!.Count)));
                Row("delta method × t factor", e => Delta(Rows(e)!));
                Row("bias-corrected jackknife × t factor", e => BiasCorrected(Rows(e)!));
            }
        }
        return 0;
    }

    private static double PairPr(IEnumerable<double[]> rows)
    {
        var r = rows.ToArray();
        int m = r.Length;
        double t = r.Average(x => x[0]), t2 = r.Average(x => x[1]), s = r.Average(x => x[2]);
        return (m * t * t - t2) / (m - 1) / s;
    }

    private static (double, double) Delta(IReadOnlyList<double[]> rows)
    {
        int m = rows.Count;
        double t = rows.Average(x => x[0]), s = rows.Average(x => x[2]);
        double vt = rows.Sum(x => (x[0] - t) * (x[0] - t)) / (m - 1), vs = rows.Sum(x => (x[2] - s) * (x[2] - s)) / (m - 1);
        double cts = rows.Sum(x => (x[0] - t) * (x[2] - s)) / (m - 1);
        double gt = 2 * t / s, gs = -t * t / (s * s);
        double var = (gt * gt * vt + gs * gs * vs + 2 * gt * gs * cts) / m;
        return (PairPr(rows), EffectiveRank.SmallSample(m) * Math.Sqrt(Math.Max(0, var)));
    }

    private static (double, double) BiasCorrected(IReadOnlyList<double[]> rows)
    {
        int m = rows.Count;
        double full = PairPr(rows);
        var loo = Enumerable.Range(0, m).Select(i => PairPr(rows.Where((_, j) => j != i))).ToArray();
        double lm = loo.Average();
        double bc = m * full - (m - 1) * lm;
        double se = Math.Sqrt((m - 1.0) / m * loo.Sum(x => (x - lm) * (x - lm)));
        return (bc, EffectiveRank.SmallSample(m) * se);
    }
}
