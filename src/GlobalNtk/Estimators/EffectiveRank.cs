using GlobalNtk.Dense;
using GlobalNtk.Operators;

namespace GlobalNtk.Estimators;

/// <summary>
/// Participation-ratio effective rank PR(A) = (tr A)² / tr(A²) of a PSD operator (docs/math.md#effective-rank),
/// between 1 and the dimension; PR(G ⊗ I_H) = H·PR(G).
/// </summary>
public static class EffectiveRank
{
    /// <summary>
    /// PR of a symmetric PSD operator from one block of m Rademacher probes (m applications):
    /// tᵢ = ωᵢᵀAωᵢ and sᵢ = ‖Aωᵢ‖² (unbiased for tr A and tr A² = ‖A‖_F²); the numerator (tr A)² is
    /// estimated without bias from independent probe pairs, Σ_{i≠j} tᵢtⱼ / (m(m−1)). The standard
    /// error is the delete-one jackknife's. Exact when the budget reaches the dimension.
    /// </summary>
    public static Estimate ParticipationRatio(LinearOperator op, int probes, int seed)
    {
        ArgumentNullException.ThrowIfNull(op);
        op.RequireSquare("ParticipationRatio");
        if (op.Domain.Size > probes && probes < 3) throw new ArgumentOutOfRangeException(nameof(probes), $"ParticipationRatio needs at least 3 probes, got {probes}.");
        var (products, exact) = ProbeRunner.Collect(op, probes, seed, probeImage: true, imageImage: true);
        var samples = products.Select(p => new[] { p.ProbeImage, p.ImageImage }).ToArray();
        int m = samples.Length;
        if (exact)
        {
            double tr = samples.Sum(s => s[0]), tr2 = samples.Sum(s => s[1]);
            return new Estimate(Ratio(tr * tr, tr2, op), 0, m);
        }
        // Means of (t, t², s) give the pair estimate ((Σt)² − Σt²)/(m(m−1)) = (m·mean(t)² − mean(t²))/(m−1).
        var stats = samples.Select(s => new[] { s[0], s[0] * s[0], s[1] }).ToArray();
        double Pr(double[] mean, int count) => Ratio((count * mean[0] * mean[0] - mean[1]) / (count - 1), mean[2], op);
        var full = new double[3];
        foreach (var s in stats) for (int i = 0; i < 3; i++) full[i] += s[i] / m;
        double value = Pr(full, m);
        double se = SampleStatistics.JackknifeError(stats, mean => Pr(mean, m - 1));
        return new Estimate(value, se, m);
    }

    /// <summary>Checks a square operator and its kept axes; returns the other (traced) axes.</summary>
    private static string[] TracedAxes(LinearOperator op, IReadOnlyCollection<string> keptAxes)
    {
        ArgumentNullException.ThrowIfNull(op);
        ArgumentNullException.ThrowIfNull(keptAxes);
        op.RequireSquare("Partial effective rank");
        foreach (var a in keptAxes)
            if (!op.Domain.Contains(a)) throw new ShapeMismatchException($"Partial effective rank: axis '{a}' is not in shape {op.Domain}.");
        return op.Domain.Names.Where(a => !keptAxes.Contains(a)).ToArray();
    }

    /// <summary>
    /// Partial effective rank along <paramref name="keptAxes"/>: the PR of the partial trace over
    /// all the other axes (docs/math.md#partial-effective-rank), e.g. kept = ["time"] gives PR_time = PR(tr_{trial,unit} A).
    /// The partial trace is exact for dense operators or when the traced size is at most
    /// <paramref name="probes"/>; otherwise it uses <paramref name="probes"/> Rademacher probes on
    /// the traced axes (each costing one application per kept index) and the standard error is a
    /// delete-a-group jackknife over probe groups.
    /// </summary>
    public static Estimate Partial(LinearOperator op, IReadOnlyCollection<string> keptAxes, int probes, int seed)
    {
        var traced = TracedAxes(op, keptAxes);
        if (traced.Length == 0) return ParticipationRatio(op, probes, seed);
        var pt = Reductions.PartialTraceWithError(op, traced, probes, seed);
        double value = OfMatrix(pt.Value);
        if (pt.Exact) return new Estimate(value, 0, pt.Probes);
        // Delete-a-group jackknife over the group means (groups have equal size up to one probe).
        double se = SampleStatistics.JackknifeError(pt.GroupMeans,
            mean => OfMatrix(new DenseOperator(mean, pt.Value.Domain, pt.Value.Range)));
        return new Estimate(value, se, pt.Probes);

    }

    /// <summary>
    /// Partial effective rank along <paramref name="keptAxes"/> (PR of the partial trace M over the
    /// other axes) at a cost independent of the kept size: 2 applications per probe instead of
    /// (kept size) per probe. With Rademacher ψ on the kept axes and independent ω, ω′ on the traced
    /// axes, M_ω = (I⊗ω)ᵀA(I⊗ω) is unbiased for M, so ψᵀ M_ω M_ω′ ψ is unbiased for tr(M²) (an
    /// independent probe pair), and (ψ⊗ω′)ᵀA(ψ⊗ω′) for tr M = tr A, whose square is estimated
    /// from independent pairs as in <see cref="ParticipationRatio"/>. Jackknife standard error.
    /// Prefer it over <see cref="Partial"/> when the kept size is large (e.g. PR_space with many units).
    /// </summary>
    public static Estimate PartialPaired(LinearOperator op, IReadOnlyCollection<string> keptAxes, int probes, int seed)
    {
        ArgumentNullException.ThrowIfNull(op);
        ArgumentNullException.ThrowIfNull(keptAxes);
        op.RequireSquare("Partial effective rank");
        if (probes < 3) throw new ArgumentOutOfRangeException(nameof(probes), $"PartialPaired needs at least 3 probes, got {probes}.");
        foreach (var a in keptAxes)
            if (!op.Domain.Contains(a)) throw new ShapeMismatchException($"Partial effective rank: axis '{a}' is not in shape {op.Domain}.");
        var traced = op.Domain.Names.Where(a => !keptAxes.Contains(a)).ToArray();
        if (traced.Length == 0) return ParticipationRatio(op, probes, seed);
        var split = new AxisSplit(op.Domain, traced, "Partial effective rank");
        var rows = new KroneckerPartialSampler(op, split, seed, null).Sample(probes, KeptProbe.Rademacher);
        return PairRatio(rows, op);
    }

    /// <summary>
    /// tr A, tr A² and PR = (tr A)²/tr A² of a self-adjoint PSD operator from Rademacher probes
    /// (one application each): tᵢ = ω̃ᵢᵀAω̃ᵢ and sᵢ = ‖Aω̃ᵢ‖² with ω̃ = (I−VVᵀ)ω, plus the exact
    /// contributions tr(VᵀAV) and ‖AV‖_F² of the optional <paramref name="deflation"/> (e.g. the top
    /// eigenvectors already computed for the spectrum, which carry most of both traces and so most
    /// of the variance). Unbiased for tr A and tr A²; PR's numerator from independent probe pairs,
    /// jackknife standard error. Exact (without deflation) when the budget reaches the dimension.
    /// </summary>
    /// <param name="op">A self-adjoint PSD operator.</param>
    /// <param name="probes">Most probes (applications); never exceeded.</param>
    /// <param name="seed">Seed of the probes.</param>
    /// <param name="deflation">Optional top eigenvectors of A with their images.</param>
    /// <param name="relativeTarget">
    /// When positive, probes stop once PR's standard error is at most this fraction of PR (after
    /// a pilot of <see cref="AdaptiveProbes.Pilot"/> probes; see <see cref="AdaptiveProbes"/>); 0 uses every probe.
    /// </param>
    public static RankMoments Moments(LinearOperator op, int probes, int seed, Deflation? deflation = null, double relativeTarget = 0)
    {
        ArgumentNullException.ThrowIfNull(op);
        op.RequireSquare("Effective rank");
        int n = op.Domain.Size;
        int m = ProbeRunner.Count(n, probes, out bool exact);
        if (!exact && m < 3) throw new ArgumentOutOfRangeException(nameof(probes), $"Effective rank needs at least 3 probes, got {probes}.");
        if (deflation is not null && deflation.Dimension != n)
            throw new ShapeMismatchException($"Effective rank: deflation vectors have length {deflation.Dimension}, but {op.Name} acts on {op.Domain}.");
        int r = exact || deflation is null ? 0 : deflation.Count;
        var (ct, cs) = r > 0 ? deflation!.ExactShares(r) : (0.0, 0.0);
        var t = new List<double>(m);
        var s = new List<double>(m);
        // Probe and image blocks in float32 when the operator applies float32 natively (ProbeBlock).
        bool single = ProbeBlock.UsesFloat32(op);
        double[]? image = null, block = null;
        float[]? image32 = null, block32 = null;
        var rng = RngKey.FromSeed(seed).CreateRandom();
        void Draw(int count)
        {
            if (single) DrawMoments(op, rng, count, exact, r > 0 ? deflation : null, ct, cs, t, s, ref block32, ref image32);
            else DrawMoments(op, rng, count, exact, r > 0 ? deflation : null, ct, cs, t, s, ref block, ref image);
        }
        if (exact)
        {
            Draw(m);
            var tr = ProbeRunner.MeanEstimate(t.ToArray(), true);
            var sq = ProbeRunner.MeanEstimate(s.ToArray(), true);
            return new RankMoments(tr, sq, new Estimate(Ratio(tr.Value * tr.Value, sq.Value, op), 0, m), m, 0);
        }
        Draw(AdaptiveProbes.First(m, relativeTarget, AdaptiveProbes.Pilot));
        Estimate pr;
        while (true)
        {
            pr = PairRatio(t.Select((ti, i) => new[] { ti, ti * ti, s[i] }).ToList(), op);
            int next = AdaptiveProbes.Next(t.Count, m, pr, relativeTarget, AdaptiveProbes.Pilot);
            if (next <= t.Count) break;
            Draw(next - t.Count);
        }
        var trace = ProbeRunner.MeanEstimate(t.ToArray(), false);
        var square = ProbeRunner.MeanEstimate(s.ToArray(), false);
        return new RankMoments(trace, square, pr, t.Count, r) { Budget = m, TargetReached = AdaptiveProbes.Reached(pr, relativeTarget) };
    }

    // Moments' probes: count more rows of t = ω̃ᵀAω̃ + ct and s = ‖Aω̃‖² + cs (ω̃ = (I−VVᵀ)ω), in
    // blocks of T; unit vectors from index t.Count on when exact. Sums accumulate in float64.
    private static void DrawMoments<T>(LinearOperator op, Random rng, int count, bool exact, Deflation? deflation, double ct, double cs,
        List<double> t, List<double> s, ref T[]? block, ref T[]? image) where T : unmanaged
    {
        int n = op.Domain.Size;
        int chunk = ProbeBlock.VectorsPerBlock<T>(n, count);
        for (int done = 0; done < count; done += chunk)
        {
            int c = Math.Min(chunk, count - done);
            var xs = ProbeRunner.Reuse(ref block, (long)c * n);
            if (exact)
            {
                xs.Clear();
                for (int j = 0; j < c; j++) ProbeBlock.Set(xs, j * n + t.Count + j, 1.0);
            }
            else ProbeBlock.Rademacher(rng, xs);
            for (int j = 0; j < c && deflation is not null; j++)
            {
                var xj = xs.Slice(j * n, n);
                deflation.Project(xj);
            }
            var y = ProbeRunner.Reuse(ref image, (long)c * n);
            ProbeBlock.Apply<T>(op, xs, y, c);
            for (int j = 0; j < c; j++)
            {
                ReadOnlySpan<T> yj = y.Slice(j * n, n);
                t.Add(ct + ProbeBlock.Dot<T>(xs.Slice(j * n, n), yj));
                s.Add(cs + ProbeBlock.Dot(yj, yj));
            }
        }
    }

    /// <summary>
    /// PR = (tr A)²/tr A² from independent probe rows [t, t², s] (t unbiased for tr A, s for tr A²):
    /// numerator Σ_{i≠j} tᵢtⱼ/(m(m−1)) = (m·mean(t)² − mean(t²))/(m−1), delete-one jackknife SE.
    /// </summary>
    private static Estimate PairRatio(IReadOnlyList<double[]> stats, LinearOperator op)
    {
        int m = stats.Count;
        double Pr(double[] mean, int count) => Ratio((count * mean[0] * mean[0] - mean[1]) / (count - 1), mean[2], op);
        var avg = new double[3];
        foreach (var st in stats) for (int i = 0; i < 3; i++) avg[i] += st[i] / m;
        return new Estimate(Pr(avg, m), SmallSample(m) * SampleStatistics.JackknifeError(stats, mean => Pr(mean, m - 1)), m);
    }

    /// <summary>
    /// Factor on a ratio's jackknife SE from <paramref name="m"/> independent samples or groups:
    /// t_{m−1}(0.97725)/2, so that ±2 SE keeps its normal coverage when the SE itself is estimated
    /// from few samples (1.22 for m = 9, 1.05 for m = 30). Without it quick's partial ranks had
    /// z-scores with SD ≈ 1.25 against a reference (bench analysis --compare calibrate).
    /// </summary>
    internal static double SmallSample(int m) =>
        m < 3 ? 1 : MathNet.Numerics.Distributions.StudentT.InvCDF(0, 1, m - 1, 0.97725) / 2.0;

    // PR of Kronecker rows, NaN where the pilot's tr A² estimate is not positive.
    private static double PairRatioOrNaN(List<double[]> rows)
    {
        int m = rows.Count;
        double t = 0, t2 = 0, s = 0;
        foreach (var r in rows) { t += r[0] / m; t2 += r[1] / m; s += r[2] / m; }
        return s > 0 ? (m * t * t - t2) / (m - 1) / s : double.NaN;
    }

    /// <summary>
    /// Partial effective rank along <paramref name="keptAxes"/> within a budget of
    /// <paramref name="budget"/> operator applications: PR(M) with M = tr_other(A), and unbiased
    /// estimates of tr M and ‖M‖_F² with standard errors. <see cref="PartialRankPlan.Choose"/>
    /// picks the exact partial trace, the per-index path (short kept axes; ‖M‖_F² and (tr M)² from
    /// distinct independent probe groups, so unbiased) or Kronecker probes (cost independent of
    /// the kept size). Dense operators are always exact.
    /// </summary>
    /// <param name="op">A self-adjoint PSD operator.</param>
    /// <param name="keptAxes">Axes M keeps.</param>
    /// <param name="budget">Operator applications allowed (never exceeded).</param>
    /// <param name="seed">Seed of the probes.</param>
    /// <param name="deflation">
    /// Optional top eigenvectors of A with their images (from the spectrum): the probed paths then
    /// probe only (I−VVᵀ)A(I−VVᵀ) and add the exact partial trace of the low-rank rest, which
    /// removes most of their variance when the spectrum is steep.
    /// </param>
    /// <param name="relativeTarget">
    /// When positive, probing stops once PR's standard error is at most this fraction of PR (the
    /// budget stays the cap; see <see cref="AdaptiveProbes"/>); 0 spends the whole budget.
    /// </param>
    /// <remarks>
    /// The Kronecker path first draws a pilot of <see cref="PartialRankPlan.KroneckerPilot"/> probes with
    /// Rademacher ψ (<see cref="KeptProbe"/>). Only where its PR is at most half the kept size (M far
    /// from diagonal, e.g. exchangeable sequences) and the traced axes get no index factors does it draw an
    /// index pilot too, and keeps drawing index ψ if that pilot is the less variable, dropping the
    /// Rademacher pilot; otherwise it pools the pilots and draws Rademacher ψ, with index factors on every
    /// traced axis where tracedHints allow them. Every probe is unbiased whatever its kind; the
    /// data-dependent choice and stop add a bias well below the standard error (tested against
    /// exact dense partial traces).
    /// </remarks>
    /// <param name="tracedHints">
    /// Optional hints on (some of) the traced axes from their own partial ranks, already estimated
    /// (e.g. the axes the analysis did before this one; <see cref="TracedAxisHint.Of"/>). Where the
    /// Kronecker path draws Rademacher ψ, it draws an index factor √n_a·e_k on every traced axis a
    /// that is coherent (PR_a ≤ n_a/<see cref="PartialRankPlan.CoherentAxisRatio"/>: near rank one, where a
    /// shared Rademacher factor's quadratic form is very noisy) and one i.i.d. Rademacher vector on
    /// the other traced axes; still unbiased (E[ωωᵀ] = I). It does so only when every traced axis has
    /// a hint and every coherent one is even (an index factor's relative variance at most
    /// <see cref="PartialRankPlan.EvenAxisSpread"/>: no few indices carry the trace, which would give
    /// heavy tails); otherwise all traced axes stay Rademacher.
    /// </param>
    public static PartialRankEstimate PartialWithin(LinearOperator op, IReadOnlyCollection<string> keptAxes, int budget, int seed,
        Deflation? deflation = null, double relativeTarget = 0, IReadOnlyDictionary<string, TracedAxisHint>? tracedHints = null) =>
        PartialWithinRows(op, keptAxes, budget, seed, deflation, relativeTarget, tracedHints, null);

    // The same, handing the Kronecker path's probe rows [t, t², s] to onRows (the bench's calibration).
    internal static PartialRankEstimate PartialWithinRows(LinearOperator op, IReadOnlyCollection<string> keptAxes, int budget, int seed,
        Deflation? deflation, double relativeTarget, IReadOnlyDictionary<string, TracedAxisHint>? tracedHints, Action<IReadOnlyList<double[]>>? onRows)
    {
        var traced = TracedAxes(op, keptAxes);
        if (traced.Length == 0)
        {
            var mo = Moments(op, budget, seed, relativeTarget: relativeTarget);
            var kind = mo.ParticipationRatio.Exact ? PartialRankMethod.Exact : PartialRankMethod.PerIndex;
            return new PartialRankEstimate(mo.ParticipationRatio, mo.Trace, mo.TraceOfSquare, new PartialRankPlan(kind, mo.Applications, mo.Applications))
                { Applications = mo.Applications, TargetReached = mo.TargetReached };
        }
        var split = new AxisSplit(op.Domain, traced, "Partial effective rank");
        var plan = op is DenseOperator
            ? new PartialRankPlan(PartialRankMethod.Exact, split.Reduced, 0)
            : PartialRankPlan.Choose(split.Kept, split.Reduced, budget);
        bool deflate = plan.Method != PartialRankMethod.Exact && deflation is not null && deflation.Count > 0;
        if (deflate && deflation!.Dimension != op.Domain.Size)
            throw new ShapeMismatchException($"Partial effective rank: deflation vectors have length {deflation.Dimension}, but {op.Name} acts on {op.Domain}.");
        var ml = deflate ? LowRankPartialTrace(deflation!, split) : null;
        var probed = deflate ? new DeflatedOperator(op, deflation!) : op;
        int tracedMask = plan.Method == PartialRankMethod.Exact ? 0 : CoherentTracedAxes(split, tracedHints);
        // Where the traced axes take index factors, Kronecker probes replace the per-index path at the same cost:
        // the per-index path's Rademacher ω gives every group a χ²₁-like factor (νᵀω)² on near-rank-one traced
        // axes, whose heavy tail made its jackknife SE optimistic (demo GRU unit axis, thorough: 6 of 100 seeds
        // beyond 3 SE, min −9.3); per-index groups of single traced slices were accurate but, being nearly
        // proportional to one another, gave a jackknife SE that vanished in some seeds (z down to −80).
        if (plan.Method == PartialRankMethod.PerIndex && tracedMask != 0)
            plan = new PartialRankPlan(PartialRankMethod.Kronecker, (int)(plan.Applications / 2), 2 * (plan.Applications / 2));
        if (plan.Method == PartialRankMethod.Kronecker)
            return KroneckerPartial(probed, split, plan, seed, ml, relativeTarget, op, tracedMask, onRows);

        if (plan.Method == PartialRankMethod.Exact)
        {
            var ex = Reductions.PartialTraceWithError(probed, traced, Math.Max(1, split.Reduced), seed);
            double tr = ex.Value.Trace(), f2 = TraceOfProduct(ex.Value.Matrix, ex.Value.Matrix, split.Kept);
            return new PartialRankEstimate(new Estimate(Ratio(tr * tr, f2, op), 0, ex.Probes), new Estimate(tr, 0, ex.Probes), new Estimate(f2, 0, ex.Probes), plan)
                { Applications = plan.Applications, TargetReached = true, IndexSpread = IndexSpreadOf(ex.Value.Matrix, split.Kept) };
        }

        // Per-index path: independent probe groups M_g (each unbiased for M; with a deflation, the
        // exact M_L is added to every group). With a target, a pilot of the fewest probes first.
        var groups = new List<double[]>();
        var weights = new List<double>();
        int used = 0, round = 0;
        void Run(int probes)
        {
            var pt = Reductions.PartialTraceWithError(probed, traced, probes, RngKey.FromSeed(seed).Fold(round++).Seed);
            int g = pt.GroupMeans.Length;
            foreach (var grp in pt.GroupMeans)
            {
                if (ml is not null) Numerics.Axpy(1.0, ml, grp);
                groups.Add(grp);
                weights.Add((double)probes / g);
            }
            used += probes;
        }
        Run(AdaptiveProbes.First(plan.Probes, relativeTarget, PartialRankPlan.MinPerIndexProbes));
        PartialRankEstimate est;
        while (true)
        {
            est = PerIndexEstimate(groups, weights, split.Kept, op, plan);
            int next = AdaptiveProbes.Next(used, plan.Probes, est.ParticipationRatio, relativeTarget, PartialRankPlan.MinPerIndexProbes);
            if (next <= used) break;
            Run(Math.Min(plan.Probes - used, Math.Max(PartialRankPlan.MinPerIndexProbes, next - used)));
        }
        var mean = new double[groups[0].Length];
        for (int g = 0; g < groups.Count; g++) Numerics.Axpy(weights[g] / weights.Sum(), groups[g], mean);
        return est with { Applications = (long)used * split.Kept, TargetReached = AdaptiveProbes.Reached(est.ParticipationRatio, relativeTarget), IndexSpread = IndexSpreadOf(mean, split.Kept) };
    }

    // Independent probe groups M_g (each unbiased for M): U-statistics over distinct pairs g ≠ h
    // give unbiased (tr M)² and tr M² = ‖M‖_F²; delete-a-group jackknife for their SEs.
    private static PartialRankEstimate PerIndexEstimate(List<double[]> groups, List<double> weights, int nk, LinearOperator op, PartialRankPlan plan)
    {
        int g = groups.Count;
        var tau = groups.Select(x => Trace(x, nk)).ToArray();
        var cross = new double[g, g];
        for (int i = 0; i < g; i++) for (int j = i + 1; j < g; j++) cross[i, j] = cross[j, i] = TraceOfProduct(groups[i], groups[j], nk);
        (double Num, double Den) U(int skip)
        {
            double num = 0, den = 0; int count = 0;
            for (int i = 0; i < g; i++) for (int j = 0; j < g; j++)
                if (i != j && i != skip && j != skip) { num += tau[i] * tau[j]; den += cross[i, j]; count++; }
            return (num / count, den / count);
        }
        var (num0, den0) = U(-1);
        var loo = Enumerable.Range(0, g).Select(U).ToArray();
        double Jack(Func<(double Num, double Den), double> f)
        {
            var v = loo.Select(f).ToArray();
            double mean = v.Average();
            return Math.Sqrt((g - 1.0) / g * v.Sum(x => (x - mean) * (x - mean)));
        }
        double wsum = weights.Sum();
        double trM = tau.Select((x, i) => x * weights[i]).Sum() / wsum;
        double tauMean = tau.Average();
        double trSe = Math.Sqrt(tau.Sum(x => (x - tauMean) * (x - tauMean)) / (g - 1) / g);
        int probes = (int)Math.Round(wsum);
        var prEst = new Estimate(Ratio(num0, den0, op), SmallSample(g) * Jack(u => Ratio(u.Num, u.Den, op)), probes);
        return new PartialRankEstimate(prEst, new Estimate(trM, trSe, probes), new Estimate(den0, Jack(u => u.Den), probes), plan);
    }

    // The Kronecker path (see PartialWithin's remarks): pilot with both kept factors, then the one
    // with the smaller relative variance until the target or the budget.
    private static PartialRankEstimate KroneckerPartial(LinearOperator probed, AxisSplit split, PartialRankPlan plan, int seed, double[]? ml,
        double relativeTarget, LinearOperator op, int tracedIndexMask, Action<IReadOnlyList<double[]>>? onRows)
    {
        int nk = split.Kept;
        var sampler = new KroneckerPartialSampler(probed, split, seed,
            ml is null ? null : (ml, Trace(ml, nk), TraceOfProduct(ml, ml, nk))) { TracedIndexMask = tracedIndexMask }; // Rademacher ψ's traced factors
        int cap = plan.Probes, drawn = 0;
        var rows = new List<double[]>();
        var kind = KeptProbe.Rademacher;
        int pilot = Math.Min(PartialRankPlan.KroneckerPilot, cap / 2);
        if (nk > 1 && pilot >= 3 && cap >= 2 * pilot + 2)
        {
            // Pilot of the kept factor. Index ψ is tried only where the Rademacher pilot shows M far
            // from diagonal (PR ≤ n/2: Rademacher's kept-axis variance is then of order (tr M)² per
            // probe, with a heavy tail); it is kept if its pilot is the less variable, and the
            // Rademacher pilot is then dropped. The first test depends on the Rademacher samples
            // only, so the index samples are rarely kept for having looked quiet. Elsewhere no index
            // pilot is drawn (it would only add kept-axis noise to the pool).
            // Index factors on traced axes go with Rademacher ψ only: with index ψ as well, a probe
            // samples single slices and heavy tails made the jackknife SE optimistic (demo GRU, time
            // axis with index ω on trials: SD(z) 2.95 over 40 seeds).
            var radDiagnostics = new List<(double[] Diagonal, double Square)>();
            var rad = sampler.Sample(pilot, KeptProbe.Rademacher, radDiagnostics);
            drawn = pilot;
            double prPilot = PairRatioOrNaN(rad);
            // With index factors on the traced axes no index pilot is drawn: index ψ would have to drop them
            // (never both), and the traced axes' Rademacher factor then brings back its χ²₁-like tail (demo
            // GRU ckpt 120, NTK_S unit axis, PR 3.5 of 32: index-ψ seeds SD(z) 1.60 with 6 of 63 beyond 3 SE,
            // Rademacher ψ with index ω 1.10 with 1 of 137).
            bool farFromDiagonal = prPilot <= nk / 2.0 && tracedIndexMask == 0;
            if (farFromDiagonal)
            {
                sampler.TracedIndexMask = 0;
                var idxDiagnostics = new List<(double[] Diagonal, double Square)>();
                var idx = sampler.Sample(pilot, KeptProbe.Index, idxDiagnostics);
                drawn += pilot;
                // Rademacher's side is not its 3-row sample variance alone: near rank one its t is about
                // (tr M/n)(Σψ)², whose few values (Σψ = 0, ±2, … for n = 12) let three rows agree by chance
                // (0.39³ ≈ 6 % of pilots) and look quiet; those seeds then had SD(z) 1.7–1.9 on the demo's
                // trial axis. Its theoretical kept-axis variance (RademacherKeptFloor) bounds it below.
                double radVariance = Math.Max(KroneckerPartialSampler.RelativeVariance(rad),
                    KroneckerPartialSampler.RelativeVarianceOfS(rad) + KroneckerPartialSampler.RademacherKeptFloor(rad, radDiagnostics, idx, idxDiagnostics, sampler.LowRankTrace, nk));
                if (KroneckerPartialSampler.RelativeVariance(idx) < radVariance)
                {
                    kind = KeptProbe.Index;
                    rows.AddRange(idx);
                }
                else
                {
                    sampler.TracedIndexMask = tracedIndexMask;
                    rows.AddRange(rad);
                    rows.AddRange(idx);
                }
            }
            else rows.AddRange(rad);
            int first = Math.Max(0, Math.Min(cap - drawn, AdaptiveProbes.First(cap, relativeTarget, PartialRankPlan.MinKroneckerSamples) - rows.Count));
            rows.AddRange(sampler.Sample(first, kind));
            drawn += first;
        }
        else
        {
            int first = AdaptiveProbes.First(cap, relativeTarget, PartialRankPlan.MinKroneckerSamples);
            rows.AddRange(sampler.Sample(first, kind));
            drawn = first;
        }
        Estimate pr;
        while (true)
        {
            pr = PairRatio(rows, op);
            int next = AdaptiveProbes.Next(rows.Count, rows.Count + cap - drawn, pr, relativeTarget, PartialRankPlan.MinKroneckerSamples);
            if (next <= rows.Count) break;
            int more = next - rows.Count;
            rows.AddRange(sampler.Sample(more, kind));
            drawn += more;
        }
        onRows?.Invoke(rows);
        return new PartialRankEstimate(pr, ProbeRunner.MeanEstimate(rows.Select(x => x[0]).ToArray(), false),
            ProbeRunner.MeanEstimate(rows.Select(x => x[2]).ToArray(), false), plan)
            {
                Applications = sampler.Applications, KeptProbe = kind, TargetReached = AdaptiveProbes.Reached(pr, relativeTarget),
                // Index ψ rows: t's relative variance bounds the index factor's own (it adds the traced noise).
                IndexSpread = kind == KeptProbe.Index ? RelativeVarianceOfT(rows) : double.PositiveInfinity,
                TracedIndexAxes = kind == KeptProbe.Rademacher ? split.ReducedShape.Names.Where((_, a) => (tracedIndexMask >> a & 1) != 0).ToArray() : [],
            };
    }

    // Bits of the traced axes that get index factors: every traced axis (of size > 1) or none. Each needs a
    // hint and must be even (index spread at most EvenAxisSpread), and at least one must be coherent
    // (PR_a ≤ n_a/CoherentAxisRatio: near rank one, where a Rademacher factor's quadratic form has a
    // χ²₁-like tail). All or none: an axis left with a Rademacher factor keeps that factor's noise, and a
    // single indexed slice can make it larger (transformer NTK_S feature axis with index factors on
    // sequences and tokens but a Rademacher layer factor, layer spread 0.71: SD(z) 1.52–1.61 over 20 seeds).
    private static int CoherentTracedAxes(AxisSplit split, IReadOnlyDictionary<string, TracedAxisHint>? hints)
    {
        if (hints is null) return 0;
        int mask = 0;
        bool coherent = false;
        var names = split.ReducedShape.Names;
        for (int a = 0; a < names.Count; a++)
        {
            int size = split.ReducedShape.Sizes[a];
            if (size <= 1) continue;
            if (a >= 30 || !hints.TryGetValue(names[a], out var h) || !double.IsFinite(h.ParticipationRatio)) return 0;
            if (!(h.IndexSpread <= PartialRankPlan.EvenAxisSpread)) return 0;
            coherent |= h.ParticipationRatio <= size / PartialRankPlan.CoherentAxisRatio;
            mask |= 1 << a;
        }
        return coherent ? mask : 0;
    }

    // The low-rank rest's (M_L, tr M_L, ‖M_L‖²) for the bench's direct use of the sampler.
    internal static (double[] Matrix, double Trace, double Frobenius2) LowRankPartialTraceForBench(Deflation d, AxisSplit split)
    {
        var ml = LowRankPartialTrace(d, split);
        return (ml, Trace(ml, split.Kept), TraceOfProduct(ml, ml, split.Kept));
    }

    // M_L = tr_other(L) for the low-rank L = A − (I−VVᵀ)A(I−VVᵀ) = W Vᵀ + V Wᵀ with W = AV − ½V(VᵀAV):
    // M_L = G + Gᵀ, G = Σ_i W_i V_iᵀ with each vector reshaped to (kept × traced), one GEMM per vector.
    private static double[] LowRankPartialTrace(Deflation d, AxisSplit split)
    {
        int nk = split.Kept, nt = split.Reduced, k = d.Count, n = d.Dimension;
        var full = split.Full;
        var tm = new double[k * k];
        // float32 vectors and images (a float32 solve's) enter every sum widened (exactly), so the
        // sums below are float64 ones over their values.
        for (int i = 0; i < k; i++) for (int j = 0; j < k; j++) tm[i * k + j] = d.VectorDotImage(i, j);
        var g = new double[nk * nk];
        var w = new double[n];
        var wm = new double[(long)nk * nt];
        var vm = new double[(long)nk * nt];
        for (int i = 0; i < k; i++)
        {
            d.ImageInto(i, w);
            for (int j = 0; j < k; j++) d.AddVector(-0.25 * (tm[j * k + i] + tm[i * k + j]), j, w);
            if (d.SingleVectors is { } single)
            {
                var vf = single[i];
                for (int q = 0; q < wm.Length; q++) { wm[q] = w[full[q]]; vm[q] = vf[full[q]]; }
            }
            else
            {
                var v = d.Vectors![i];
                for (int q = 0; q < wm.Length; q++) { wm[q] = w[full[q]]; vm[q] = v[full[q]]; }
            }
            Gemm.Multiply(Trans.No, Trans.Yes, nk, nk, nt, 1.0, wm, nt, vm, nt, 1.0, g, nk);
        }
        var ml = new double[nk * nk];
        for (int a = 0; a < nk; a++) for (int b = 0; b < nk; b++) ml[a * nk + b] = g[a * nk + b] + g[b * nk + a];
        return ml;
    }

    // Relative variance per probe of an index factor along an axis with partial trace M: n·ΣM_kk²/(tr M)² − 1.
    private static double IndexSpreadOf(double[] m, int n)
    {
        double tr = 0, sq = 0;
        for (int k = 0; k < n; k++) { double d = m[(long)k * n + k]; tr += d; sq += d * d; }
        return tr > 0 ? Math.Max(0, n * sq / (tr * tr) - 1) : double.PositiveInfinity;
    }

    private static double RelativeVarianceOfT(List<double[]> rows)
    {
        int m = rows.Count;
        if (m < 2) return double.PositiveInfinity;
        double mean = rows.Average(r => r[0]);
        double v = rows.Sum(r => (r[0] - mean) * (r[0] - mean)) / (m - 1);
        return mean > 0 ? v / (mean * mean) : double.PositiveInfinity;
    }

    private static double Trace(double[] a, int n)
    {
        double s = 0;
        for (int i = 0; i < n; i++) s += a[(long)i * n + i];
        return s;
    }

    // tr(AB) = Σ_ij A_ij B_ji of two row-major n×n matrices.
    private static double TraceOfProduct(double[] a, double[] b, int n)
    {
        double s = 0;
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) s += a[(long)i * n + j] * b[(long)j * n + i];
        return s;
    }

    /// <summary>Exact PR = (tr M)² / tr(M²) of a small square dense matrix (tr(M²) = Σ M_ij M_ji).</summary>
    public static double OfMatrix(DenseOperator m)
    {
        ArgumentNullException.ThrowIfNull(m);
        m.RequireSquare("EffectiveRank.OfMatrix");
        int n = m.Rows;
        double tr2 = 0;
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) tr2 += m[i, j] * m[j, i];
        double tr = m.Trace();
        return Ratio(tr * tr, tr2, m);
    }

    /// <summary>PR = (Σλ)² / Σλ² of a spectrum.</summary>
    public static double OfSpectrum(IReadOnlyList<double> eigenvalues)
    {
        double s = 0, s2 = 0;
        foreach (var l in eigenvalues) { s += l; s2 += l * l; }
        if (!(s2 > 0)) throw new ArgumentException("Effective rank of an all-zero spectrum is undefined.");
        return s * s / s2;
    }

    private static double Ratio(double num, double den, LinearOperator op)
    {
        if (!(den > 0)) throw new InvalidOperationException($"Effective rank of {op.Name}: tr(A²) estimate is {den}; the operator is zero or not PSD.");
        return num / den;
    }
}
