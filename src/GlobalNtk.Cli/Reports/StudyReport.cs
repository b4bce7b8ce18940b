using System.Globalization;
using System.Text;
using GlobalNtk.Cli.Common;
using GlobalNtk.Operators;
using GlobalNtk.Study;

namespace GlobalNtk.Cli.Reports;

/// <summary>What <c>results.json</c> holds: the study's identity, every verdict and every unit's numbers (no timings).</summary>
public sealed record StudyResults(string Scale, int StudySeed, string Plan, IReadOnlyList<ClaimVerdict> Claims, IReadOnlyList<UnitResult> Units);

/// <summary>Wall and CPU time of a study (timings.json; kept out of results.json so results do not depend on the machine or the sharding).</summary>
public sealed record StudyTimings(double WallSeconds, double CpuSeconds, int Processes, IReadOnlyDictionary<string, double> UnitSeconds);

/// <summary>
/// Writes the study folder: report.md (verdict table first, then numbered figures with captions
/// that give their key numbers), PNG+SVG figures, CSVs, results.json and timings.json. Every
/// number is traceable to a unit folder (<c>units/&lt;id&gt;/</c>: unit.json and the run's checkpoints and log).
/// </summary>
public static class StudyReport
{
    private static string F(double v) => AnalysisReportWriter.F(v);
    private static string CI(Interval i) => $"{F(i.Value)} [{F(i.Low)}, {F(i.High)}]";

    /// <summary>Label of a verdict in the report.</summary>
    public static string Label(Verdict v) => v switch
    {
        Verdict.Supported => "supported",
        Verdict.NotSupported => "not supported",
        _ => "inconclusive",
    };

    /// <summary>Writes everything into <paramref name="dir"/>; returns the results.</summary>
    public static StudyResults Write(string dir, StudyPlan plan, int studySeed, IReadOnlyList<UnitResult> units, StudyTimings timings)
    {
        var scale = plan.Scale;
        var ordered = plan.Units.Select(u => units.Single(r => r.Unit.Id == u.Id)).ToArray();
        var claims = StudyClaims.Evaluate(scale, ordered, studySeed);
        var results = new StudyResults(scale.Name, studySeed, plan.Fingerprint, claims, ordered);
        File.WriteAllText(Path.Combine(dir, "results.json"), CliJson.Serialize(results) + "\n");
        File.WriteAllText(Path.Combine(dir, "timings.json"), CliJson.Serialize(timings) + "\n");
        WriteCsvs(dir, scale, ordered, claims);
        var md = new StringBuilder();
        md.AppendLine($"# GlobalNtk study: the paper's claims (scale `{scale.Name}`)").AppendLine();
        md.AppendLine("Each criterion was fixed in code (GlobalNtk.Study.StudyClaims) before any data were produced. A verdict is **supported** when every " +
            "statistic's 95 % percentile-bootstrap interval across seeds lies on the predicted side of its threshold, **not supported** when one lies " +
            $"entirely on the other side, and **inconclusive** otherwise. Bootstrap: {StudyStatistics.Resamples} resamples, seeded from the study seed {studySeed}.").AppendLine();
        md.AppendLine("| claim | criterion | statistic: estimate [95 % CI] (threshold) | verdict |");
        md.AppendLine("|---|---|---|---|");
        foreach (var c in claims)
        {
            string stats = string.Join("<br>", c.Statistics.Select(s => $"{s.Name}: {CI(s.Estimate)} ({(s.PredictBelow ? "<" : ">")} {F(s.Threshold)})"));
            md.AppendLine($"| {c.Id} {c.Title} | {c.Criterion} | {stats} | **{Label(c.Verdict)}** |");
        }
        md.AppendLine();
        md.AppendLine($"**Setup.** Seeds {{{string.Join(", ", scale.Seeds)}}}; every run: Adam (learning rate {scale.LearningRate.ToString(CultureInfo.InvariantCulture)}, batch {scale.Batch}, gradient clipping 1) " +
            $"for {scale.Steps} steps, {(scale.TrialSteps is int t ? $"{t} steps per recurrent trial" : "each task's trial length")}, analysed on the task's fixed evaluation set of {scale.EvalTrials} trials. " +
            $"Effective ranks PR = (tr A)²/tr(A²) from {scale.Probes} Rademacher probes. {ordered.Length} units, wall {timings.WallSeconds:F0} s, CPU {timings.CpuSeconds:F0} s over {timings.Processes} process(es). " +
            "Every number below comes from `results.json`, whose `units[*].folder` names the unit's folder (`unit.json`, and for training units `run/` with checkpoints and `log.csv`).").AppendLine();
        foreach (var c in claims) md.AppendLine($"**{c.Id} data.** {c.Data}").AppendLine();
        int fig = 0;
        void Figure(string name, string caption)
        {
            fig++;
            md.AppendLine($"![Figure {fig}]({name}.png)").AppendLine();
            md.AppendLine($"**Figure {fig}.** {caption} (also `{name}.svg`)").AppendLine();
        }
        Figures(dir, scale, ordered, claims, Figure, RngKey.FromSeed(studySeed).Fold("figures"));
        File.WriteAllText(Path.Combine(dir, "report.md"), md.ToString());
        return results;
    }


    private static IntervalSeries Curve(string label, double[] x, Interval[] iv, bool dashed = false, bool line = true) =>
        new(label, x, iv.Select(i => i.Value).ToArray(), iv.Select(i => i.Low).ToArray(), iv.Select(i => i.High).ToArray(), dashed, line);

    private static void Figures(string dir, StudyScale scale, UnitResult[] r, IReadOnlyList<ClaimVerdict> claims, Action<string, string> figure, RngKey key)
    {
        // Interval bars: bootstrap over seeds, one stream per bar (index folded into the figures' key).
        Interval Mean(IEnumerable<double> v, int index) => StudyStatistics.MeanInterval(v.Where(double.IsFinite).ToArray(), key.Fold(index).Seed);
        // C1
        var archs = StudyScale.ExactnessArchitectures.Select(a => a.Label).ToArray();
        var ex = StudyClaims.ExactnessUnits(r).ToArray();
        double[] MaxOf(Func<ExactnessResult, double> f) => archs.Select(a => ex.Where(u => u.Unit.Label == a).Select(u => f(u.Exactness!)).DefaultIfEmpty(double.NaN).Max()).ToArray();
        var kd = MaxOf(e => e.KRelativeDifference); var nd = MaxOf(e => e.NtkRelativeDifference); var fd = MaxOf(e => e.FiniteDifferenceRelativeDifference);
        var idx = archs.Select((_, i) => (double)i).ToArray();
        // exact zeros cannot go on a log axis: plot them at the smallest double ratio, 1e-17, and say so
        static double[] Floor(double[] v) => v.Select(x => x == 0 ? 1e-17 : x).ToArray();
        StudyFigures.Save(dir, "fig1_exactness", "C1: Kronecker core vs generic forms (worst seed)", "architecture", "relative Frobenius difference",
            [new("K: Kronecker vs generic", idx, Floor(kd), Line: false), new("P K P* vs whole-model NTK", idx, Floor(nd), Line: false), new("P K P* vs finite-difference NTK", idx, Floor(fd), Line: false)],
            logY: true, reference: StudyClaims.ExactnessThreshold, referenceLabel: "criterion", xTickLabels: archs);
        figure("fig1_exactness", $"C1. Worst relative difference over {scale.Seeds.Length} seeds for each architecture, computed exactly on small models " +
            $"(exact zeros drawn at 1e-17): K {string.Join(", ", archs.Select((a, i) => $"{a} {F(kd[i])}"))}; NTK {string.Join(", ", archs.Select((a, i) => $"{a} {F(nd[i])}"))}; finite-difference NTK {string.Join(", ", archs.Select((a, i) => $"{a} {F(fd[i])}"))}. Grey line: the criterion {F(StudyClaims.ExactnessThreshold)} of the exact forms (the finite-difference one is {F(StudyClaims.FiniteDifferenceThreshold)}). Data: `c1_exactness.csv`.");

        // C2
        var hs = scale.HiddenSizes.Select(h => (double)h).ToArray();
        Interval[] ByH(Func<UnitResult, double> f, int seed) => scale.HiddenSizes.Select(h => Mean(StudyClaims.Bottleneck(r, h).Select(f), 1000 * seed + h)).ToArray();
        var prInit = ByH(u => u.Init!.PrNtk, 1); var prTr = ByH(u => u.Trained!.PrNtk, 2);
        var kInit = ByH(u => u.Init!.PrK, 3); var kTr = ByH(u => u.Trained!.PrK, 4);
        var bound = ByH(u => u.Trained!.KroneckerBound, 5);
        var dim = scale.HiddenSizes.Select(h => StudyClaims.Bottleneck(r, h).Select(u => (double)u.Init!.Dimension).DefaultIfEmpty(double.NaN).First()).ToArray();
        StudyFigures.Save(dir, "fig2_rank_vs_hidden", "C2: effective rank against hidden size (GRU, flip-flop)", "hidden units H", "participation ratio",
            [Curve("PR(NTK_S) init", hs, prInit, true), Curve("PR(NTK_S) trained", hs, prTr), Curve("PR(K) init", hs, kInit, true), Curve("PR(K) trained", hs, kTr),
             Curve("Σ m_s·PR(Ĝ_s) trained", hs, bound), new("state dimension", hs, dim)], logX: true, logY: true, xTicks: hs);
        var c2 = claims.Single(c => c.Id == "C2");
        figure("fig2_rank_vs_hidden", $"C2. Mean over seeds with 95 % bootstrap bars. PR(NTK_S) after training {string.Join(", ", scale.HiddenSizes.Select((h, i) => $"H={h}: {F(prTr[i].Value)}"))} while the dimension grows {F(dim.FirstOrDefault())} → {F(dim.LastOrDefault())}; " +
            $"slope of log PR against log H {CI(c2.Statistics[1].Estimate)} (init {CI(c2.Statistics[0].Estimate)}). Data: `c2_bottleneck.csv`.");
        var fracInit = ByH(u => u.Init!.PrNtk / u.Init.Dimension, 6); var fracTr = ByH(u => u.Trained!.PrNtk / u.Trained.Dimension, 7);
        var ratio = ByH(u => u.Trained!.PrNtk / u.Trained.KroneckerBound, 8);
        StudyFigures.Save(dir, "fig3_rank_fraction", "C2: PR(NTK_S) as a fraction of the dimension and of the Kronecker bound", "hidden units H", "ratio",
            [Curve("PR(NTK_S)/dimension init", hs, fracInit, true), Curve("PR(NTK_S)/dimension trained", hs, fracTr), Curve("PR(NTK_S)/Σ m_s·PR(Ĝ_s) trained", hs, ratio)], logX: true, logY: true, xTicks: hs);
        figure("fig3_rank_fraction", $"C2. PR(NTK_S)/dimension after training falls from {F(fracTr.First().Value)} (H={scale.HiddenSizes[0]}) to {F(fracTr.Last().Value)} (H={scale.HiddenSizes[^1]}); " +
            $"PR(NTK_S) over the Kronecker bound Σ m_s·PR(Ĝ_s): {string.Join(", ", ratio.Select(i => F(i.Value)))}. Data: `c2_bottleneck.csv`.");

        // C3
        var rs = Enumerable.Range(1, StudyScale.MaxRank).Select(i => (double)i).ToArray();
        Interval[] ByR(IEnumerable<UnitResult> us, Func<UnitResult, double[]> f, int seed) =>
            Enumerable.Range(0, StudyScale.MaxRank).Select(i => Mean(us.Select(u => { var a = f(u); return i < a.Length ? a[i] : double.NaN; }), 1000 * seed + i)).ToArray();
        var srbSeries = new List<IntervalSeries>(); var capSeries = new List<IntervalSeries>(); var cosSeries = new List<IntervalSeries>();
        var srbText = new List<string>(); var cosText = new List<string>();
        foreach (var cell in scale.SrbCells)
        {
            var us = StudyClaims.SrbCell(r, scale, cell).ToArray();
            string name = $"{cell.Arch}/{cell.Task}";
            var si = ByR(us, u => u.Init!.Srb, 11); var st = ByR(us, u => u.Trained!.Srb, 12);
            srbSeries.Add(Curve($"{name} init", rs, si, true)); srbSeries.Add(Curve($"{name} trained", rs, st));
            capSeries.Add(Curve($"{name} init", rs, ByR(us, u => u.Init!.ModeCapture, 13), true)); capSeries.Add(Curve($"{name} trained", rs, ByR(us, u => u.Trained!.ModeCapture, 14)));
            srbText.Add($"{name} SRB(1) {F(si[0].Value)} → {F(st[0].Value)}, SRB(8) {F(si[^1].Value)} → {F(st[^1].Value)}");
            var steps = us.FirstOrDefault()?.Trajectory?.Select(p => (double)p.Step).ToArray() ?? [];
            var cos = steps.Select((s, i) => Mean(us.Select(u => u.Trajectory![i].Misdirection), 15000 + i)).ToArray();
            cosSeries.Add(Curve(name, steps, cos));
            if (cos.Length > 0) cosText.Add($"{name} {F(cos[0].Value)} → {F(cos[^1].Value)}");
        }
        StudyFigures.Save(dir, "fig4_srb", "C3: self-referential bias SRB(r)", "r (top principal directions of the activity)", "SRB(r)", srbSeries,
            logY: true, xTicks: rs, reference: 1, referenceLabel: "no bias (SRB = 1)");
        var c3 = claims.Single(c => c.Id == "C3");
        figure("fig4_srb", $"C3. SRB(r) at initialisation (open markers) and after training (filled), mean over seeds with 95 % bootstrap bars: {string.Join("; ", srbText)}. " +
            $"Geometric mean over r and cells: init {CI(c3.Statistics[0].Estimate)}, trained {CI(c3.Statistics[1].Estimate)}. Data: `c3_srb.csv`.");
        StudyFigures.Save(dir, "fig5_mode_capture", "C3: mode capture c(r) = tr K_r / tr K", "r (activity modes kept per site)", "c(r)", capSeries, xTicks: rs);
        figure("fig5_mode_capture", "C3. Fraction of tr K carried by the top r activity modes of every site, init (open markers) and trained (filled). Data: `c3_srb.csv`.");
        StudyFigures.Save(dir, "fig6_misdirection", "C3: cos(Δz, −e) over training", "training step", "cos(−NTK_S e, −e)", cosSeries, reference: 1, referenceLabel: "functional gradient descent");
        figure("fig6_misdirection", $"C3. How far gradient descent's state update turns away from the error (1 = along −e), at each checkpoint: {string.Join("; ", cosText)}. Data: `c3_misdirection.csv`.");

        // C4
        var gs = scale.Gains;
        Interval[] ByG(Func<UnitResult, double> f, int seed) => gs.Select((g, i) => Mean(StudyClaims.GainSweep(r, scale).Where(u => u.Unit.Gain == g).Select(f), 1000 * seed + i)).ToArray();
        var prG = ByG(u => u.Init!.PrNtk, 21); var lossG = ByG(u => u.Trained!.Loss, 22); var loss0 = ByG(u => u.Init!.Loss, 23);
        StudyFigures.Save(dir, "fig7_rank_vs_gain", "C4: PR(NTK_S) at initialisation against the initial gain", "initial gain g", "PR(NTK_S) at init", [Curve("GRU, flip-flop", gs, prG)], logY: true, xTicks: gs);
        figure("fig7_rank_vs_gain", $"C4. PR(NTK_S) at initialisation, mean over seeds with 95 % bootstrap bars: {string.Join(", ", gs.Select((g, i) => $"g={F(g)}: {F(prG[i].Value)}"))}. Data: `c4_gain.csv`.");
        StudyFigures.Save(dir, "fig8_loss_vs_gain", "C4: evaluation loss against the initial gain", "initial gain g", "evaluation MSE",
            [Curve("at initialisation", gs, loss0, true), Curve($"after {scale.Steps} steps", gs, lossG)], logY: true, xTicks: gs);
        var c4 = claims.Single(c => c.Id == "C4");
        figure("fig8_loss_vs_gain", $"C4. Final loss {string.Join(", ", gs.Select((g, i) => $"g={F(g)}: {F(lossG[i].Value)}"))}; Spearman ρ(PR at init, final loss) {CI(c4.Statistics[0].Estimate)}. Data: `c4_gain.csv`.");
        var pts = StudyClaims.GainPoints(r, scale).SelectMany(p => p.RhoLearned).ToArray();
        StudyFigures.Save(dir, "fig9_learned_vs_rho", "C4: learned fraction against task-mode learnability", "ρ_i at initialisation", "learned fraction after training",
            [new("one task mode of one run", pts.Select(p => p.X).ToArray(), pts.Select(p => p.Y).ToArray(), Line: false)], logX: true);
        figure("fig9_learned_vs_rho", $"C4. Each point: one task mode of one (gain, seed) run; Spearman ρ {CI(c4.Statistics[1].Estimate)} (cluster bootstrap over seeds). Data: `c4_gain.csv`.");

        // C5
        var tu = StudyClaims.Transformer(r).ToArray();
        var when = new[] { 0.0, 1.0 };
        Interval[] Pair(Func<Snapshot, double> f, int seed) => [Mean(tu.Select(u => f(u.Init!)), seed), Mean(tu.Select(u => f(u.Trained!)), seed + 1)];
        var tn = Pair(s => s.PrNtk / s.Dimension, 31); var tk = Pair(s => s.PrK / s.Dimension, 33);
        StudyFigures.Save(dir, "fig10_transformer", $"C5: causal transformer (d = {scale.TransformerDim}) on n-back", "", "PR / state dimension",
            [Curve("PR(NTK_S)/dimension", when, tn), Curve("PR(K)/dimension", when, tk)], logY: true, reference: StudyClaims.TransformerFraction, referenceLabel: "criterion", xTickLabels: ["initialisation", "trained"]);
        figure("fig10_transformer", $"C5. PR(NTK_S)/dimension {F(tn[0].Value)} → {F(tn[1].Value)}, PR(K)/dimension {F(tk[0].Value)} → {F(tk[1].Value)} (dimension {F(tu.Select(u => (double)u.Init!.Dimension).DefaultIfEmpty(double.NaN).First())}). Data: `c5_transformer.csv`.");
    }

    private static void WriteCsvs(string dir, StudyScale scale, UnitResult[] r, IReadOnlyList<ClaimVerdict> claims)
    {
        var v = new Csv("claim", "statistic", "estimate", "ci_low", "ci_high", "threshold", "predicted", "verdict");
        foreach (var c in claims)
            foreach (var s in c.Statistics)
                v.Row(c.Id, s.Name, s.Estimate.Value, s.Estimate.Low, s.Estimate.High, s.Threshold, s.PredictBelow ? "below" : "above", Label(c.Verdict));
        v.Save(Path.Combine(dir, "verdicts.csv"));

        var c1 = new Csv("unit", "folder", "arch", "seed", "dimension", "parameters", "k_relative_difference", "ntk_relative_difference", "fd_ntk_relative_difference");
        foreach (var u in StudyClaims.ExactnessUnits(r))
            c1.Row(u.Unit.Id, u.Folder, u.Unit.Label, u.Unit.Seed, u.Exactness!.Dimension, u.Exactness.Parameters, u.Exactness.KRelativeDifference, u.Exactness.NtkRelativeDifference, u.Exactness.FiniteDifferenceRelativeDifference);
        c1.Save(Path.Combine(dir, "c1_exactness.csv"));

        string[] snapHeader = ["unit", "folder", "arch", "task", "hidden", "gain", "seed", "when", "step", "loss", "dimension", "pr_ntk", "pr_ntk_se", "pr_k", "pr_k_se", "kronecker_bound", "misdirection"];
        object?[] SnapRow(UnitResult u, string when, Snapshot s) =>
            [u.Unit.Id, u.Folder, u.Unit.Arch, u.Unit.Task, u.Unit.Hidden, u.Unit.Gain, u.Unit.Seed, when, s.Step, s.Loss, s.Dimension, s.PrNtk, s.PrNtkSe, s.PrK, s.PrKSe, s.KroneckerBound, s.Misdirection];
        var c2 = new Csv(snapHeader);
        foreach (int h in scale.HiddenSizes)
            foreach (var u in StudyClaims.Bottleneck(r, h)) { c2.Row(SnapRow(u, "init", u.Init!)); c2.Row(SnapRow(u, "trained", u.Trained!)); }
        c2.Save(Path.Combine(dir, "c2_bottleneck.csv"));

        var c3 = new Csv("unit", "folder", "arch", "task", "seed", "when", "r", "srb", "mode_capture");
        var c3m = new Csv("unit", "folder", "arch", "task", "seed", "step", "eval_loss", "misdirection");
        foreach (var cell in scale.SrbCells)
            foreach (var u in StudyClaims.SrbCell(r, scale, cell))
            {
                foreach (var (when, s) in new[] { ("init", u.Init!), ("trained", u.Trained!) })
                    for (int i = 0; i < StudyScale.MaxRank; i++)
                        c3.Row(u.Unit.Id, u.Folder, u.Unit.Arch, u.Unit.Task, u.Unit.Seed, when, i + 1, i < s.Srb.Length ? s.Srb[i] : double.NaN, s.ModeCapture[i]);
                foreach (var p in u.Trajectory!) c3m.Row(u.Unit.Id, u.Folder, u.Unit.Arch, u.Unit.Task, u.Unit.Seed, p.Step, p.EvalLoss, p.Misdirection);
            }
        c3.Save(Path.Combine(dir, "c3_srb.csv"));
        c3m.Save(Path.Combine(dir, "c3_misdirection.csv"));

        var c4 = new Csv("unit", "folder", "gain", "seed", "pr_ntk_init", "loss_init", "loss_final", "accuracy_final", "mode", "rho_init", "learned_fraction_final");
        foreach (var u in StudyClaims.GainSweep(r, scale))
            for (int i = 0; i < u.Init!.Rho.Length; i++)
                c4.Row(u.Unit.Id, u.Folder, u.Unit.Gain, u.Unit.Seed, u.Init.PrNtk, u.Init.Loss, u.Trained!.Loss, u.FinalAccuracy, i + 1, u.Init.Rho[i], u.Trained.LearnedFraction[i]);
        c4.Save(Path.Combine(dir, "c4_gain.csv"));

        var c5 = new Csv(snapHeader);
        foreach (var u in StudyClaims.Transformer(r)) { c5.Row(SnapRow(u, "init", u.Init!)); c5.Row(SnapRow(u, "trained", u.Trained!)); }
        c5.Save(Path.Combine(dir, "c5_transformer.csv"));
    }
}
