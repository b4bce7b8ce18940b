using System.Globalization;
using System.Text;
using System.Text.Json.Serialization;
using GlobalNtk.Analysis;
using GlobalNtk.Cli.Common;

namespace GlobalNtk.Cli.Reports;

/// <summary>A training curve: the training-batch loss at each step and the evaluation-set loss and accuracy where evaluated.</summary>
public sealed record TrainingCurve(int[] Steps, double[] Loss, int[] EvalSteps, double[] EvalLoss, double[] EvalAccuracy,
    string LossDefinition = GlobalNtk.Models.MseLoss.Definition)
{
    /// <summary>From the trainer's log rows (rows without a value are skipped in each series).</summary>
    public static TrainingCurve FromLog(IEnumerable<GlobalNtk.Training.TrainingLogRow> rows)
    {
        var r = rows.ToArray();
        var train = r.Where(x => x.Loss is not null).ToArray();
        var ev = r.Where(x => x.EvalLoss is not null).ToArray();
        return new TrainingCurve(train.Select(x => x.Step).ToArray(), train.Select(x => x.Loss!.Value).ToArray(),
            ev.Select(x => x.Step).ToArray(), ev.Select(x => x.EvalLoss!.Value).ToArray(), ev.Select(x => x.EvalAccuracy ?? double.NaN).ToArray());
    }
}

/// <summary>What a report folder is made from.</summary>
/// <param name="Title">Report title.</param>
/// <param name="Setup">One markdown paragraph describing model, data and budgets.</param>
/// <param name="Checkpoints">Analyses in training order (first = initialisation when trained).</param>
/// <param name="Training">The training curve, if the model was trained.</param>
/// <param name="Options">The analysis options used.</param>
/// <param name="Extra">Further facts for results.json (command, runtime…).</param>
public sealed record AnalysisReport(string Title, [property: JsonIgnore] string Setup, IReadOnlyList<ModelAnalysis> Checkpoints,
    TrainingCurve? Training, AnalysisOptions Options, IReadOnlyDictionary<string, object>? Extra = null)
{
    /// <summary>The setup paragraph as plain text (JSON holds no Markdown).</summary>
    [JsonPropertyName("setup")]
    public string SetupText => CliText.PlainFromMarkdown(Setup);
}

/// <summary>
/// Writes a report folder: <c>report.md</c> (a short figure set with captions that state the key
/// numbers), one PNG per figure, a CSV with every plotted number, and <c>results.json</c>.
/// </summary>
public static class AnalysisReportWriter
{
    /// <summary>Writes the report into <paramref name="dir"/> (which must exist); returns the figure file names.</summary>
    public static IReadOnlyList<string> Write(string dir, AnalysisReport report)
    {
        if (report.Checkpoints.Count == 0) throw new ArgumentException("A report needs at least one analysed checkpoint.");
        var md = new StringBuilder();
        var figures = new List<string>();
        var cps = report.Checkpoints;
        var first = cps[0];
        var last = cps[^1];
        bool trained = cps.Count > 1;
        double[] xs = CheckpointX(cps, out string xLabel);

        md.AppendLine($"# {report.Title}").AppendLine();
        md.AppendLine(report.Setup).AppendLine();
        md.AppendLine(Headline(first, last, trained)).AppendLine();
        int fig = 0;

        void Figure(string file, string caption)
        {
            figures.Add(file);
            fig++;
            md.AppendLine($"![Figure {fig}]({file})").AppendLine();
            md.AppendLine($"**Figure {fig}.** {caption}").AppendLine();
        }

        // Loss curve
        if (report.Training is { } tr && (tr.Steps.Length > 0 || tr.EvalSteps.Length > 0))
        {
            var csv = new Csv("step", "series", "value");
            for (int i = 0; i < tr.Steps.Length; i++) csv.Row(tr.Steps[i], "train_loss", tr.Loss[i]);
            for (int i = 0; i < tr.EvalSteps.Length; i++) csv.Row(tr.EvalSteps[i], "eval_loss", tr.EvalLoss[i]);
            for (int i = 0; i < tr.EvalSteps.Length; i++) csv.Row(tr.EvalSteps[i], "eval_accuracy", tr.EvalAccuracy[i]);
            csv.Save(Path.Combine(dir, "loss.csv"));
            var series = new List<Series>
            {
                new("training batch loss", tr.Steps.Select(s => (double)s).ToArray(), tr.Loss, Markers: false),
                new("evaluation-set loss", tr.EvalSteps.Select(s => (double)s).ToArray(), tr.EvalLoss),
            };
            Plots.Lines(Path.Combine(dir, "loss.png"), "Training loss", "training step", "loss (MSE)", series, logY: true);
            string evalText = tr.EvalSteps.Length > 0
                ? $" Evaluation-set loss {F(tr.EvalLoss[0])} at step {tr.EvalSteps[0]} → {F(tr.EvalLoss[^1])} at step {tr.EvalSteps[^1]}; task accuracy {F(tr.EvalAccuracy[0])} → {F(tr.EvalAccuracy[^1])}."
                : "";
            string trainText = tr.Steps.Length > 0 ? $" Training-batch loss {F(tr.Loss[0])} → {F(tr.Loss[^1])}." : "";
            Figure("loss.png", $"Loss ({tr.LossDefinition}) against training step, log scale.{trainText}{evalText} Data: `loss.csv`.");
        }

        // Spectra
        {
            var csv = new Csv("checkpoint", "step", "operator", "index", "eigenvalue", "residual");
            foreach (var c in cps)
                foreach (var s in new[] { c.NtkSpectrum, c.KSpectrum, c.PropagationSpectrum })
                    for (int i = 0; i < s.Eigenvalues.Length; i++) csv.Row(c.Label, c.Step, s.Operator, i + 1, s.Eigenvalues[i], s.Residuals[i]);
            csv.Save(Path.Combine(dir, "spectra.csv"));
            var series = new List<Series> { SpectrumSeries(first.NtkSpectrum, $"NTK_S at {first.Label}") };
            if (trained) series.Add(SpectrumSeries(last.NtkSpectrum, $"NTK_S at {last.Label}", dashed: true));
            Plots.Lines(Path.Combine(dir, "ntk_spectrum.png"), "Top eigenvalues of NTK_S = P K P*", "eigenvalue index i", "eigenvalue λ_i", series, logY: true, integerX: true);
            string change = trained
                ? $" After training ({last.Label}) λ₁ = {F(last.NtkSpectrum.Eigenvalues.FirstOrDefault())}; the ratio λ₁/λ_{last.NtkSpectrum.Eigenvalues.Length} goes from {F(Decay(first.NtkSpectrum))} to {F(Decay(last.NtkSpectrum))}."
                : "";
            Figure("ntk_spectrum.png", $"Top {first.NtkSpectrum.Eigenvalues.Length} eigenvalues of the global NTK NTK_S (block Krylov; largest residual ‖A v − λ v‖ = {F(MaxRes(cps))}), log scale, of a {first.NtkSpectrum.Dimension}-dimensional state space. At {first.Label} λ₁ = {F(first.NtkSpectrum.Eigenvalues.FirstOrDefault())}.{change} Data: `spectra.csv`.");

            var s3 = new List<Series> { SpectrumSeries(last.NtkSpectrum, "NTK_S = P K P*"), SpectrumSeries(last.KSpectrum, "K = J_θ J_θ*"), SpectrumSeries(last.PropagationSpectrum, "P P*") };
            Plots.Lines(Path.Combine(dir, "factor_spectra.png"), $"Spectra of NTK_S and its factors ({last.Label})", "eigenvalue index i", "eigenvalue λ_i", s3, logY: true, integerX: true);
            Figure("factor_spectra.png", $"The factorisation NTK_S = P K P* at {last.Label}: top eigenvalues of NTK_S (λ₁ = {F(last.NtkSpectrum.Eigenvalues.FirstOrDefault())}), of the immediate kernel K (λ₁ = {F(last.KSpectrum.Eigenvalues.FirstOrDefault())}) and of the propagation Gram P P* (λ₁ = {F(last.PropagationSpectrum.Eigenvalues.FirstOrDefault())}). Data: `spectra.csv`.");
        }

        // Effective ranks
        {
            var csv = new Csv("checkpoint", "step", "operator", "axis", "axis_size", "effective_rank", "standard_error", "probes");
            foreach (var c in cps)
                foreach (var r in new[] { c.NtkRank, c.KRank })
                {
                    csv.Row(c.Label, c.Step, r.Operator, "full", r.Dimension, r.Value, r.StandardError, r.Probes);
                    foreach (var p in r.Partial) csv.Row(c.Label, c.Step, r.Operator, p.Axis, p.Size, p.Value, p.StandardError, p.Probes);
                }
            // Stacked recurrent nets: NTK_S restricted to each layer's units ("axis" layer_k).
            foreach (var c in cps)
                foreach (var l in c.LayerRanks ?? [])
                    csv.Row(c.Label, c.Step, "NTK_S", $"layer_{l.Layer}", l.Units, l.Value, l.StandardError, l.Probes);
            csv.Save(Path.Combine(dir, "effective_ranks.csv"));
            var series = new List<Series>
            {
                new("PR(NTK_S) full", xs, cps.Select(c => c.NtkRank.Value).ToArray(), Error: cps.Select(c => c.NtkRank.StandardError).ToArray()),
                new("PR(K) full", xs, cps.Select(c => c.KRank.Value).ToArray(), Dashed: true, Error: cps.Select(c => c.KRank.StandardError).ToArray()),
            };
            foreach (var p in first.NtkRank.Partial)
            {
                var at = cps.Select(c => c.NtkRank.Partial.FirstOrDefault(q => q.Axis == p.Axis)).ToArray();
                series.Add(new($"PR(NTK_S) {p.Axis}", xs, at.Select(q => q?.Value ?? double.NaN).ToArray(), Error: at.Select(q => q?.StandardError ?? double.NaN).ToArray()));
            }
            Plots.Lines(Path.Combine(dir, "effective_ranks.png"), "Effective ranks (participation ratio)", xLabel, "effective rank PR", series, logY: true);
            string parts = string.Join(", ", last.NtkRank.Partial.Select(p => p.Value > p.Size || p.Value < 1 ? $"{p.Axis} {PartialValue(p)}" : $"{p.Axis} {F(p.Value)} of {p.Size}"));
            if (last.LayerRanks is { } lr)
                parts += "; per layer (NTK_S on one layer's units): " + string.Join(", ", lr.Select(l => $"layer {l.Layer} {F(l.Value)} ± {F(l.StandardError)}"));
            string init = trained ? $" (at {first.Label}: {F(first.NtkRank.Value)} ± {F(first.NtkRank.StandardError)})" : "";
            Figure("effective_ranks.png", $"Participation-ratio effective rank PR = (tr A)²/tr(A²) of NTK_S (full state space and partial traces keeping one axis) and of K, {(trained ? "across checkpoints" : "for this model")}, log scale. At {last.Label}: PR(NTK_S) = {F(last.NtkRank.Value)} ± {F(last.NtkRank.StandardError)}{init} out of {last.NtkRank.Dimension} dimensions; partial ranks: {parts}; PR(K) = {F(last.KRank.Value)} ± {F(last.KRank.StandardError)}. {last.NtkRank.Method} ({last.NtkRank.Probes} probes); partial ranks by {string.Join(", ", last.NtkRank.Partial.Select(p => $"{p.Axis}: {p.Method}"))}; ± and the error bars are one standard error. Data: `effective_ranks.csv`.");
        }

        // Kronecker core: site spectra and mode capture
        {
            var csv = new Csv("checkpoint", "step", "site", "index", "singular_value", "gram_eigenvalue", "mode_capture_c_r");
            foreach (var c in cps)
                for (int i = 0; i < c.Kronecker.ModeCapture.Length; i++) csv.Row(c.Label, c.Step, "(all sites)", i + 1, null, null, c.Kronecker.ModeCapture[i]);
            foreach (var c in cps)
                foreach (var s in c.Kronecker.Sites)
                    for (int i = 0; i < Math.Max(s.SingularValues.Length, s.ModeCapture.Length); i++)
                    {
                        double? sv = i < s.SingularValues.Length ? s.SingularValues[i] : null;
                        csv.Row(c.Label, c.Step, s.Name, i + 1, sv, sv * sv, i < s.ModeCapture.Length ? s.ModeCapture[i] : null);
                    }
            csv.Save(Path.Combine(dir, "kronecker_core.csv"));
            var spec = new List<Series>();
            var cap = new List<Series>();
            foreach (var (c, dashed) in trained ? new[] { (first, false), (last, true) } : new[] { (last, false) })
                cap.Add(new($"c(r) model, {c.Label}", Index1(c.Kronecker.ModeCapture.Length), c.Kronecker.ModeCapture, Markers: c.Kronecker.ModeCapture.Length <= 80, Dashed: dashed));
            // Each site's curve at the first checkpoint, then at the last: one colour per curve, solid
            // with filled circles at the first, dashed with open squares at the last; a curve that lies
            // on another (an input site's Gram does not change in training) is marked in the legend.
            var pairs = trained ? new[] { (first, false), (last, true) } : new[] { (last, false) };
            foreach (var s in last.Kronecker.Sites)
                foreach (var (c, dashed) in pairs)
                    if (c.Kronecker.Sites.FirstOrDefault(x => x.Name == s.Name) is { } site)
                        spec.Add(new($"Ĝ[{site.Name}] {c.Label}", Index1(site.SingularValues.Length), site.SingularValues.Select(v => v * v).ToArray(), Markers: site.SingularValues.Length <= 80, Dashed: dashed));
            foreach (var (c, dashed) in pairs)
                foreach (var s in c.Kronecker.Sites)
                    cap.Add(new($"c_s(r) site {s.Name}, {c.Label}", Index1(s.ModeCapture.Length), s.ModeCapture, Markers: s.ModeCapture.Length <= 80, Dashed: dashed));
            int zeroModes = Plots.Lines(Path.Combine(dir, "site_spectra.png"), "Kronecker core: spectrum of each site's Gram Ĝ_s", "activity mode i", "eigenvalue σ_i² of Ĝ_s", spec, logY: true, integerX: true);
            string sites = string.Join("; ", last.Kronecker.Sites.Select(s => $"{s.Name}: {s.Rows} rows × width {s.Width}, rank {s.GramRank}, PR(Ĝ) = {F(s.GramParticipationRatio)}, m_s = {s.OutDim}"));
            string zeros = zeroModes > 0 ? $" {zeroModes} eigenvalue(s) ≤ 0 (beyond a site's rank) cannot be drawn on the log scale and are left out." : "";
            Figure("site_spectra.png", $"Eigenvalues of the Gram matrix Ĝ_s = Û Ûᵀ of each weight site's variables (squared singular values of Û), log scale{(trained ? $", at {first.Label} (solid lines, filled circles) and {last.Label} (dashed lines, open squares); a curve that did not change lies on the earlier one and its legend entry says so" : "")}.{zeros} At {last.Label}: {sites}. Rank bound rank K ≤ Σ_s rank(Ĝ_s)·m_s (plus parameters outside every site; for depth chains each layer's share capped at that layer's state size, docs/math.md#kronecker-core) = {last.Kronecker.RankBound} of {last.Kronecker.StateDimension} state dimensions. Data: `kronecker_core.csv`.");
            Plots.Lines(Path.Combine(dir, "mode_capture.png"), "Mode capture c(r) = tr K_r / tr K", "activity modes kept per site r", "c(r)", cap, horizontalLine: 0.9, horizontalLineLabel: "90%", integerX: true);
            string r90 = string.Join("; ", last.Kronecker.Sites.Select(s => $"{s.Name}: r = {Reach(s.ModeCapture, 0.9)} of {s.ModeCapture.Length}"));
            var mc = last.Kronecker.ModeCapture;
            string model = mc.Length == 0 ? "" : $"For the whole model at {last.Label}: c(1) = {F(mc[0])}{(mc.Length > 1 ? $", c(2) = {F(mc[1])}" : "")}, 90% reached at r = {Reach(mc, 0.9)}. ";
            Figure("mode_capture.png", $"Mode capture c(r) = tr K_r / tr K: the fraction of tr K ({(last.Kronecker.TraceKStandardError > 0 ? $"tr K = {F(last.Kronecker.TraceK)} ± {F(last.Kronecker.TraceKStandardError)}, Hutchinson-estimated on {EstimatedParts(last.Kronecker)}, exact elsewhere" : $"exact, tr K = {F(last.Kronecker.TraceK)}")}) kept when every site's Gram Ĝ_s is truncated to its top r activity modes (the whole model), and each site's own share c_s(r). {model}Per site, modes needed for 90%: {r90}. Data: `kronecker_core.csv`.");
        }

        // SRB
        {
            var csv = new Csv("checkpoint", "step", "r", "srb", "update_fraction", "error_fraction", "activity_variance_fraction");
            foreach (var c in cps)
                for (int i = 0; i < c.Srb.Ranks.Length; i++)
                    csv.Row(c.Label, c.Step, c.Srb.Ranks[i], c.Srb.Index[i], c.Srb.UpdateFraction[i], c.Srb.ErrorFraction[i], c.Srb.ActivityVarianceFraction[i]);
            csv.Save(Path.Combine(dir, "srb.csv"));
            var series = new List<Series> { new($"SRB(r) at {first.Label}", first.Srb.Ranks.Select(r => (double)r).ToArray(), first.Srb.Index) };
            if (trained) series.Add(new($"SRB(r) at {last.Label}", last.Srb.Ranks.Select(r => (double)r).ToArray(), last.Srb.Index, Dashed: true));
            Plots.Lines(Path.Combine(dir, "srb.png"), "Self-referential bias index SRB(r)", $"principal directions of the activity kept r ({last.Srb.VectorAxis} axis)", "SRB(r)", series, horizontalLine: 1.0, horizontalLineLabel: "no bias (SRB = 1)", integerX: true);
            Figure("srb.png", $"SRB(r) = (‖Π_r Δz‖²/‖Δz‖²)/(‖Π_r e‖²/‖e‖²) with Δz = −NTK_S e and Π_r the projection onto the top-r principal directions of the model's own activity; SRB > 1 means gradient descent moves the state preferentially inside the modes the model already uses. Error e: {last.Srb.ErrorSource}. {SrbSummary(first)}{(trained ? " " + SrbSummary(last) : "")} Data: `srb.csv`.");
        }

        // Task modes
        if (cps.All(c => c.TaskModes is not null) && first.TaskModes!.SingularValues.Length > 0)
        {
            int modes = first.TaskModes.SingularValues.Length;
            var csv = new Csv("checkpoint", "step", "mode", "sigma", "rho", "learned_fraction");
            foreach (var c in cps)
                for (int i = 0; i < c.TaskModes!.SingularValues.Length; i++)
                    csv.Row(c.Label, c.Step, i + 1, c.TaskModes.SingularValues[i], c.TaskModes.Learnability[i], c.TaskModes.LearnedFraction[i]);
            csv.Save(Path.Combine(dir, "task_modes.csv"));
            var rho = new List<Series>();
            var learned = new List<Series>();
            for (int i = 0; i < modes; i++)
            {
                int k = i;
                rho.Add(new($"mode {i + 1} (σ = {F(first.TaskModes.SingularValues[i])})", xs, cps.Select(c => k < c.TaskModes!.Learnability.Length ? c.TaskModes.Learnability[k] : double.NaN).ToArray()));
                learned.Add(new($"mode {i + 1} (ρ at {first.Label} = {F(first.TaskModes.Learnability[i])})", xs, cps.Select(c => k < c.TaskModes!.LearnedFraction.Length ? c.TaskModes.LearnedFraction[k] : double.NaN).ToArray()));
            }
            Plots.Lines(Path.Combine(dir, "task_learnability.png"), "Task-mode learnability ρ_i (output NTK)", xLabel, "ρ_i = ⟨M_i, Θ_y M_i⟩", rho, logY: true);
            string rhoText = string.Join(", ", first.TaskModes.Learnability.Select((r, i) => $"ρ_{i + 1} = {F(r)}"));
            Figure("task_learnability.png", $"Learnability of each task mode M_i = a_i b_iᵀ of the target matrix Y = Σ σ_i a_i b_iᵀ: the output-NTK Rayleigh quotient ρ_i, log scale. At {first.Label}: {rhoText}. Modes with small ρ_i at initialisation are learned slowly. Data: `task_modes.csv`.");
            Plots.Lines(Path.Combine(dir, "learned_fraction.png"), "Learned fraction of each task mode", xLabel, "‖a_i^T Ŷ‖ / σ_i", learned, horizontalLine: 1.0, horizontalLineLabel: "fully learned");
            string lf = string.Join(", ", last.TaskModes!.LearnedFraction.Select((f, i) => $"mode {i + 1}: {F(f)}"));
            Figure("learned_fraction.png", $"Learned fraction ‖a_iᵀ Ŷ‖/σ_i of each task mode in the model's outputs Ŷ{(trained ? " across checkpoints" : "")}. At {last.Label}: {lf}. Data: `task_modes.csv`.");
        }

        // Alignment between consecutive checkpoints
        if (cps.Skip(1).Any(c => c.AlignmentWithPrevious is not null))
        {
            var csv = new Csv("checkpoint", "step", "previous", "alignment", "standard_error", "probes");
            foreach (var c in cps.Skip(1))
                if (c.AlignmentWithPrevious is { } a) csv.Row(c.Label, c.Step, a.With, a.Value, a.StandardError, a.Probes);
            csv.Save(Path.Combine(dir, "alignment.csv"));
            var al = cps.Skip(1).Select(c => c.AlignmentWithPrevious?.Value ?? double.NaN).ToArray();
            Plots.Lines(Path.Combine(dir, "alignment.png"), "NTK_S alignment between consecutive checkpoints", xLabel, "alignment ⟨A,B⟩_F / (‖A‖_F ‖B‖_F)", [new("alignment with previous checkpoint", xs.Skip(1).ToArray(), al)]);
            var valid = al.Where(double.IsFinite).ToArray();
            Figure("alignment.png", $"Kernel alignment of NTK_S between each checkpoint and the previous one (1 = the kernel did not change direction): minimum {F(valid.DefaultIfEmpty(double.NaN).Min())}, last {F(valid.DefaultIfEmpty(double.NaN).Last())}. Data: `alignment.csv`.");
        }

        EstimatorTable(md, dir, cps);
        md.AppendLine("All numbers are in `results.json`; every plotted number is in the CSV named in its caption. Every figure is also written as SVG beside its PNG (same name, `.svg`).");
        File.WriteAllText(Path.Combine(dir, "report.md"), md.ToString());
        string command = report.Extra is not null && report.Extra.TryGetValue("command", out var cmd) ? cmd.ToString() ?? "analyze" : "analyze";
        File.WriteAllText(Path.Combine(dir, "results.json"), CliJson.Document(command, report));
        return figures;
    }

    // Every estimate's method, probes, budget used and standard error: estimators.csv for all
    // checkpoints, a table for the last one in the report.
    private static void EstimatorTable(StringBuilder md, string dir, IReadOnlyList<ModelAnalysis> cps)
    {
        var csv = new Csv("checkpoint", "step", "estimate", "value", "standard_error", "method", "status", "probes", "applications", "budget");
        var rows = new List<(string Label, List<string[]> Rows)>();
        foreach (var c in cps)
        {
            var list = new List<string[]>();
            void Row(string what, double value, double se, string method, string status, int probes, long apps, long budget)
            {
                csv.Row(c.Label, c.Step, what, value, se, method, status, probes, apps, budget);
                list.Add([what, F(value), se > 0 ? F(se) : "exact", method, status, probes > 0 ? probes.ToString(CultureInfo.InvariantCulture) : "–",
                    apps.ToString(CultureInfo.InvariantCulture), budget > 0 ? budget.ToString(CultureInfo.InvariantCulture) : "–"]);
            }
            foreach (var sp in new[] { c.NtkSpectrum, c.KSpectrum, c.PropagationSpectrum })
                Row($"λ₁({sp.Operator})", sp.Eigenvalues.FirstOrDefault(), sp.ErrorBounds.FirstOrDefault(), $"{sp.Method}, top-{sp.Eigenvalues.Length}, tolerance {sp.Tolerance:G2}",
                    sp.Status, 0, sp.Applications, sp.Budget);
            foreach (var r in new[] { c.NtkRank, c.KRank })
            {
                Row($"tr {r.Operator}", r.Trace, r.TraceStandardError, r.Method, r.Status, r.Probes, r.Applications, r.Budget);
                Row($"PR({r.Operator})", r.Value, r.StandardError, r.Method, r.Status, r.Probes, r.Applications, r.Budget);
                foreach (var p in r.Partial)
                    Row($"PR({r.Operator}) {p.Axis}", p.Value, p.StandardError, $"{p.Method}{(p.KeptProbe is { } kp ? $" ({kp} ψ{(p.TracedIndexAxes is { } ti ? $"; index ω on {ti}" : "")})" : "")} partial trace", p.Status, p.Probes, p.Applications, p.Budget);
            }
            if (c.AlignmentWithPrevious is { } a) Row($"alignment with {a.With}", a.Value, a.StandardError, a.Method, "", a.Probes, a.Applications, 0);
            rows.Add((c.Label, list));
        }
        csv.Save(Path.Combine(dir, "estimators.csv"));
        var last = rows[^1];
        md.AppendLine($"**Estimators at {last.Label}.** Every estimate with its method, probes and operator applications used; ± for λ₁ is its error bound min(r, r²/gap), for the rest one standard error. All checkpoints: `estimators.csv`.").AppendLine();
        md.AppendLine("| estimate | value | ± | method | status | probes | applications | budget |");
        md.AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var r in last.Rows) md.AppendLine("| " + string.Join(" | ", r) + " |");
        md.AppendLine();
    }

    /// <summary>Formats a number with 3 significant digits (invariant culture).</summary>
    public static string F(double v) => !double.IsFinite(v) ? v.ToString(CultureInfo.InvariantCulture)
        : Math.Abs(v) >= 1e5 || (Math.Abs(v) < 1e-3 && v != 0) ? v.ToString("0.00e0", CultureInfo.InvariantCulture)
        : Math.Abs(v) >= 100 ? Math.Round(v).ToString("0", CultureInfo.InvariantCulture)
        : v.ToString("G3", CultureInfo.InvariantCulture);

    private static string Headline(ModelAnalysis first, ModelAnalysis last, bool trained)
    {
        string axes = string.Join(" × ", last.StateAxes.Select(a => $"{a.Size} {a.Name}"));
        var sb = new StringBuilder($"**Key numbers.** State space {axes} = {last.NtkRank.Dimension} dimensions, {last.ParameterCount} chain parameters. ");
        sb.Append(trained
            ? $"Effective rank of NTK_S: {F(first.NtkRank.Value)} at {first.Label} → {F(last.NtkRank.Value)} at {last.Label}. "
            : $"Effective rank of NTK_S: {F(last.NtkRank.Value)} ± {F(last.NtkRank.StandardError)}. ");
        sb.Append($"Kronecker rank bound on K: {last.Kronecker.RankBound}. ");
        if (first.Loss is double l0 && last.Loss is double l1) sb.Append(trained ? $"Loss on the analysis batch: {F(l0)} → {F(l1)}. " : $"Loss on the analysis batch: {F(l1)}. ");
        int i1 = Array.IndexOf(last.Srb.Ranks, 1);
        if (i1 >= 0) sb.Append($"SRB(1) = {F(last.Srb.Index[i1])}.");
        return sb.ToString().TrimEnd();
    }

    /// <summary>The parts of tr K that were estimated: sites whose D is not row-local, and the θ scalars outside every site.</summary>
    private static string EstimatedParts(KroneckerResult k)
    {
        var parts = new List<string>();
        var sites = k.Sites.Where(x => x.TraceMethod == "Hutchinson").Select(x => x.Name).ToArray();
        if (sites.Length > 0) parts.Add($"the sites {string.Join(", ", sites)} whose D is not row-local");
        if (k.RestTraceMethod == "Hutchinson")
            parts.Add($"the {k.RestParameterCount} parameters outside every site (tr = {F(k.RestTrace)} ± {F(k.RestTraceStandardError)})");
        return string.Join(" and ", parts);
    }

    /// <summary>
    /// A partial rank for text: its value, and when the estimate lies outside [1, axis size] (where the
    /// true PR of an n×n PSD partial trace lies) its standard error and that bound, so noise is not read as a result.
    /// </summary>
    internal static string PartialValue(PartialRankResult p) =>
        p.Value > p.Size ? $"{F(p.Value)} ± {F(p.StandardError)}, above its size {p.Size}: estimator noise"
        : p.Value < 1 ? $"{F(p.Value)} ± {F(p.StandardError)}, below 1: estimator noise" : F(p.Value);

    private static string SrbSummary(ModelAnalysis c)
    {
        if (c.Srb.Index.Length == 0) return "";
        int best = Array.IndexOf(c.Srb.Index, c.Srb.Index.Where(double.IsFinite).DefaultIfEmpty(double.NaN).Max());
        string peak = best >= 0 ? $"peak {F(c.Srb.Index[best])} at r = {c.Srb.Ranks[best]}" : "undefined";
        return $"At {c.Label}: SRB(1) = {F(c.Srb.Index[0])}, {peak}.";
    }

    private static double[] CheckpointX(IReadOnlyList<ModelAnalysis> cps, out string label)
    {
        if (cps.All(c => c.Step is not null)) { label = "training step"; return cps.Select(c => (double)c.Step!.Value).ToArray(); }
        label = "checkpoint index";
        return Enumerable.Range(0, cps.Count).Select(i => (double)i).ToArray();
    }

    private static Series SpectrumSeries(SpectrumResult s, string label, bool dashed = false) =>
        new(label, Index1(s.Eigenvalues.Length), s.Eigenvalues, Dashed: dashed);

    private static double[] Index1(int n) => Enumerable.Range(1, n).Select(i => (double)i).ToArray();

    private static double Decay(SpectrumResult s) => s.Eigenvalues.Length == 0 ? double.NaN : s.Eigenvalues[0] / s.Eigenvalues[^1];

    private static double MaxRes(IEnumerable<ModelAnalysis> cps) => cps.SelectMany(c => c.NtkSpectrum.Residuals).DefaultIfEmpty(0).Max();

    private static int Reach(double[] c, double level)
    {
        for (int i = 0; i < c.Length; i++) if (c[i] >= level) return i + 1;
        return c.Length;
    }
}
