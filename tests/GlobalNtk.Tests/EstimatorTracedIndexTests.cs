using GlobalNtk.Dense;
using GlobalNtk.Estimators;
using GlobalNtk.Operators;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// Index factors on coherent traced axes of Kronecker probes (PartialWithin's tracedHints), against
/// exact dense partial traces: every mask is unbiased, the SEs match the spread over seeds, and on
/// an operator whose traced axes are near rank one the spread of the partial rank falls a lot.
/// </summary>
public class EstimatorTracedIndexTests
{
    private static readonly AxisShape Shape = new(("seq", 6), ("token", 5), ("feature", 12));

    // A = G Gᵀ + δI with G = (1/√6)·1_seq ⊗ u_token ⊗ B + εR: sequences exchangeable and coherent,
    // tokens coherent with a slightly uneven profile u, and a generic power-law feature block B.
    // M = tr_{seq,token} A keeps the feature axis (PR well above 1); the traced axes are near
    // rank one, where a shared Rademacher factor's quadratic form (Σω)² has relative variance ≈ 2.
    private static DenseOperator CoherentTracedAxes(double eps, int seed)
    {
        int n = Shape.Size, nf = 12, r = 24;
        var rng = new Random(seed);
        double Gauss() => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        var u = new double[5];
        for (int t = 0; t < 5; t++) u[t] = (1 + 0.02 * t) / Math.Sqrt(5);
        var b = new double[nf * r];
        for (int i = 0; i < b.Length; i++) b[i] = Gauss() * Math.Pow(1 + i % r, -0.1);
        int cols = 2 * r;
        var g = new double[n * cols];
        for (int s = 0; s < 6; s++)
            for (int t = 0; t < 5; t++)
                for (int f = 0; f < nf; f++)
                    for (int c = 0; c < r; c++) g[((s * 5 + t) * nf + f) * cols + c] = b[f * r + c] * u[t] / Math.Sqrt(6);
        for (int i = 0; i < n; i++) for (int c = r; c < cols; c++) g[i * cols + c] = eps * Gauss();
        var a = new double[n * n];
        Gemm.Multiply(Trans.No, Trans.Yes, n, n, cols, 1.0, g, cols, g, cols, 0.0, a, n);
        return new DenseOperator(a, Shape, Shape);
    }

    // The hint an exact partial rank gives: PR and an index factor's relative variance n·ΣM_kk²/(tr M)² − 1.
    private static TracedAxisHint ExactHint(LinearOperator a, string kept)
    {
        var m = Reductions.PartialTrace(a.Materialize(), a.Domain.Names.Where(x => x != kept));
        int n = m.Rows;
        double sq = 0;
        for (int k = 0; k < n; k++) sq += m[k, k] * m[k, k];
        var (_, _, pr) = ExactPartial(a, kept);
        return new TracedAxisHint(pr, n * sq / (m.Trace() * m.Trace()) - 1);
    }

    private static (double Tr, double F2, double Pr) ExactPartial(LinearOperator a, string kept)
    {
        var m = Reductions.PartialTrace(a.Materialize(), a.Domain.Names.Where(x => x != kept));
        int n = m.Rows;
        double tr = m.Trace(), f2 = 0;
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) f2 += m[i, j] * m[j, i];
        return (tr, f2, tr * tr / f2);
    }

    private static double Sd(IReadOnlyCollection<double> x) { double m = x.Average(); return Math.Sqrt(x.Sum(v => (v - m) * (v - m)) / (x.Count - 1)); }

    [Fact]
    public void HintsRecordHowEvenTheKeptAxisIs()
    {
        // IndexSpread of an estimate is n·ΣM_kk²/(tr M)² − 1 (exact for the per-index path up to
        // probe noise; bounded by t's spread for index ψ): small for the exchangeable seq axis.
        var dense = CoherentTracedAxes(0.1, 5);
        var exact = ExactHint(dense, "seq");
        var op = new MeteredOperator(dense, null);
        var perIndex = EffectiveRank.PartialWithin(op, ["seq"], 240, 3);
        Assert.Equal(PartialRankMethod.PerIndex, perIndex.Plan.Method);
        Assert.InRange(perIndex.IndexSpread, 0, exact.IndexSpread + 0.05);
        var kron = Enumerable.Range(0, 20).Select(s => EffectiveRank.PartialWithin(op, ["seq"], 24, s)).Where(e => e.KeptProbe == KeptProbe.Index).ToList();
        Assert.NotEmpty(kron);
        Assert.All(kron, e => Assert.True(e.IndexSpread >= 0 && double.IsFinite(e.IndexSpread)));
        Assert.True(double.IsPositiveInfinity(EffectiveRank.PartialWithin(op, ["feature"], 24, 1).IndexSpread)); // Rademacher ψ: unknown
    }

    [Theory]
    [InlineData(0)] // i.i.d. Rademacher on (seq, token): the old probe
    [InlineData(1)] // index on seq
    [InlineData(2)] // index on token
    [InlineData(3)] // index on both
    public void EveryTracedMaskIsUnbiasedForTrMAndItsSquare(int mask)
    {
        // Each probe row [t, t², s] has E t = tr M and E s = ‖M‖_F² whatever the traced factors;
        // 3000 probes, 4 standard errors of the mean. Kept factor both ways.
        var dense = CoherentTracedAxes(0.1, 5);
        var (tr, f2, _) = ExactPartial(dense, "feature");
        var split = new AxisSplit(Shape, ["seq", "token"], "test");
        foreach (var kind in new[] { KeptProbe.Rademacher, KeptProbe.Index })
        {
            var sampler = new KroneckerPartialSampler(new MeteredOperator(dense, null), split, 17 + mask, null) { TracedIndexMask = mask };
            var rows = sampler.Sample(3000, kind);
            var t = rows.Select(r => r[0]).ToArray();
            var s = rows.Select(r => r[2]).ToArray();
            Assert.True(Math.Abs(t.Average() - tr) <= 4 * Sd(t) / Math.Sqrt(t.Length), $"mask {mask} {kind}: tr M {t.Average()} vs {tr} (SD {Sd(t)})");
            Assert.True(Math.Abs(s.Average() - f2) <= 4 * Sd(s) / Math.Sqrt(s.Length), $"mask {mask} {kind}: ‖M‖² {s.Average()} vs {f2} (SD {Sd(s)})");
        }
    }

    [Fact]
    public void AMisScaledIndexFactorIsCaughtByTheUnbiasednessCheck()
    {
        // The check above can fail: index factors with E[ωωᵀ] = 1.21·I (ω = 1.1·√n·e_k, simulated by
        // probing 1.21·A: E t = 1.21 tr M) lie far outside its 4-SE band.
        var dense = CoherentTracedAxes(0.1, 5);
        var (tr, _, _) = ExactPartial(dense, "feature");
        var split = new AxisSplit(Shape, ["seq", "token"], "test");
        var scaled = new DenseOperator(dense.Materialize().Matrix.Select(v => 1.21 * v).ToArray(), Shape, Shape);
        var rows = new KroneckerPartialSampler(new MeteredOperator(scaled, null), split, 20, null) { TracedIndexMask = 3 }.Sample(3000, KeptProbe.Rademacher);
        var t = rows.Select(r => r[0]).ToArray();
        Assert.True(Math.Abs(t.Average() - tr) > 4 * Sd(t) / Math.Sqrt(t.Length));
    }

    [Fact]
    public void CoherentTracedAxesGetIndexFactorsWithCalibratedErrorsAndLessSpread()
    {
        var dense = CoherentTracedAxes(0.1, 5);
        var (tr, f2, pr) = ExactPartial(dense, "feature");
        var seqHint = ExactHint(dense, "seq");
        var tokenHint = ExactHint(dense, "token");
        Assert.InRange(seqHint.ParticipationRatio, 1.0, 6 / PartialRankPlan.CoherentAxisRatio);
        Assert.InRange(tokenHint.ParticipationRatio, 1.0, 5 / PartialRankPlan.CoherentAxisRatio);
        Assert.InRange(seqHint.IndexSpread, 0, PartialRankPlan.EvenAxisSpread);
        Assert.InRange(tokenHint.IndexSpread, 0, PartialRankPlan.EvenAxisSpread);
        var hints = new Dictionary<string, TracedAxisHint> { ["seq"] = seqHint, ["token"] = tokenHint };
        var op = new MeteredOperator(dense, null); // matrix-free view (dense operators are exact)
        const int seeds = 300, budget = 24;
        var with = new PartialRankEstimate[seeds];
        var without = new PartialRankEstimate[seeds];
        for (int s = 0; s < seeds; s++)
        {
            long before = op.Applications;
            with[s] = EffectiveRank.PartialWithin(op, ["feature"], budget, 500 + s, tracedHints: hints);
            Assert.True(op.Applications - before <= budget);
            Assert.Equal(PartialRankMethod.Kronecker, with[s].Plan.Method);
            // Index ω goes with Rademacher ψ only (the pilot keeps Rademacher ψ for this generic feature block).
            Assert.Equal(with[s].KeptProbe == KeptProbe.Rademacher ? new[] { "seq", "token" } : [], with[s].TracedIndexAxes);
            without[s] = EffectiveRank.PartialWithin(op, ["feature"], budget, 500 + s);
            Assert.Empty(without[s].TracedIndexAxes);
        }
        Assert.True(with.Count(e => e.KeptProbe == KeptProbe.Rademacher) >= 0.9 * seeds, $"Rademacher ψ {with.Count(e => e.KeptProbe == KeptProbe.Rademacher)}/{seeds}");
        // Unbiased tr M and ‖M‖_F² (4 SD/√300) with SEs that match the spread.
        var trs = with.Select(e => e.Trace.Value).ToArray();
        var f2s = with.Select(e => e.FrobeniusSquared.Value).ToArray();
        Assert.True(Math.Abs(trs.Average() - tr) <= 4 * Sd(trs) / Math.Sqrt(seeds), $"tr M {trs.Average()} vs {tr}");
        Assert.True(Math.Abs(f2s.Average() - f2) <= 4 * Sd(f2s) / Math.Sqrt(seeds), $"‖M‖² {f2s.Average()} vs {f2}");
        Assert.InRange(with.Average(e => e.Trace.StandardError) / Sd(trs), 0.75, 1.25);
        // PR's z-scores calibrated as in EstimatorAdaptiveTests (SD in [0.7, 1.4], ≤ 4 % beyond 3,
        // mean within the ratio's small O(1/m) bias).
        var z = with.Select(e => (e.ParticipationRatio.Value - pr) / e.ParticipationRatio.StandardError).ToArray();
        Assert.InRange(Sd(z), 0.7, 1.4);
        Assert.True(z.Count(v => Math.Abs(v) > 3) <= 0.04 * seeds, $"{z.Count(v => Math.Abs(v) > 3)} of {seeds} beyond 3 SE");
        Assert.InRange(z.Average(), -0.3, 0.3);
        // The point of it: the spread of PR over seeds falls by at least half against i.i.d.
        // Rademacher factors on the same (coherent) traced axes.
        double sdWith = Sd(with.Select(e => e.ParticipationRatio.Value).ToArray());
        double sdWithout = Sd(without.Select(e => e.ParticipationRatio.Value).ToArray());
        Assert.True(sdWith < 0.5 * sdWithout, $"SD of PR with index ω {sdWith}, without {sdWithout}");
    }

    [Fact]
    public void IncoherentOrUnknownTracedAxesKeepRademacher()
    {
        // A traced axis counts as coherent only when its PR is at most size / CoherentAxisRatio;
        // axes without a hint keep the shared Rademacher factor.
        var a = KnownSpectra.Rotated(Shape, KnownSpectra.PowerLaw(Shape.Size, 0.6), 4).Materialize();
        var op = new MeteredOperator(a, null);
        var high = new Dictionary<string, TracedAxisHint> { ["seq"] = new(6 / PartialRankPlan.CoherentAxisRatio + 0.01, 0), ["token"] = new(4.0, 0) };
        Assert.Empty(EffectiveRank.PartialWithin(op, ["feature"], 24, 1, tracedHints: high).TracedIndexAxes);
        // ... and even: a coherent axis whose trace a few indices carry keeps Rademacher (heavy tails otherwise).
        var uneven = new Dictionary<string, TracedAxisHint> { ["seq"] = new(1.2, 0.5), ["token"] = new(1.1, double.PositiveInfinity) };
        Assert.Empty(EffectiveRank.PartialWithin(op, ["feature"], 24, 1, tracedHints: uneven).TracedIndexAxes);
        // All traced axes or none: a traced axis whose spread is unknown, or without a hint, or uneven (the
        // transformer proxy's layer axis, spread 0.71, left as a Rademacher factor under indexed sequences and
        // tokens: NTK_S feature axis miscalibrated), keeps every factor Rademacher.
        var partly = new Dictionary<string, TracedAxisHint> { ["seq"] = new(1.2, 0.005), ["token"] = new(4.0, double.PositiveInfinity) };
        Assert.Empty(EffectiveRank.PartialWithin(op, ["feature"], 24, 1, tracedHints: partly).TracedIndexAxes);
        var missing = new Dictionary<string, TracedAxisHint> { ["seq"] = new(1.2, 0.005) };
        Assert.Empty(EffectiveRank.PartialWithin(op, ["feature"], 24, 1, tracedHints: missing).TracedIndexAxes);
        var oneUneven = new Dictionary<string, TracedAxisHint> { ["seq"] = new(1.2, 0.005), ["token"] = new(1.1, 0.5) };
        Assert.Empty(EffectiveRank.PartialWithin(op, ["feature"], 24, 1, tracedHints: oneUneven).TracedIndexAxes);
        // An even axis that is not coherent is indexed with the coherent ones (its index factor is quiet).
        var evenIncoherent = new Dictionary<string, TracedAxisHint> { ["seq"] = new(1.2, 0.005), ["token"] = new(4.0, 0.01) };
        Assert.Equal(new[] { "seq", "token" }, EffectiveRank.PartialWithin(op, ["feature"], 24, 1, tracedHints: evenIncoherent).TracedIndexAxes);
        // The bound: just above it stays Rademacher, just below it is indexed.
        var justUneven = new Dictionary<string, TracedAxisHint> { ["seq"] = new(1.06, 0.0001), ["token"] = new(1.1, 1.1 * PartialRankPlan.EvenAxisSpread) };
        Assert.Empty(EffectiveRank.PartialWithin(op, ["feature"], 24, 1, tracedHints: justUneven).TracedIndexAxes);
        var justEven = new Dictionary<string, TracedAxisHint> { ["seq"] = new(1.06, 0.0001), ["token"] = new(1.1, 0.9 * PartialRankPlan.EvenAxisSpread) };
        Assert.Equal(new[] { "seq", "token" }, EffectiveRank.PartialWithin(op, ["feature"], 24, 1, tracedHints: justEven).TracedIndexAxes);
        // The per-index path has no index factors (without them the hints leave it alone).
        Assert.Empty(EffectiveRank.PartialWithin(op, ["seq"], 240, 1, tracedHints: partly).TracedIndexAxes);
        // So does index ψ: with both factors index, probes sample single slices (heavy tails).
        var coherent = new MeteredOperator(CoherentTracedAxes(0.1, 5), null);
        var onToken = new Dictionary<string, TracedAxisHint> { ["token"] = new(1.1, 0.005), ["feature"] = new(10, 0.02) };
        for (int s = 0; s < 20; s++)
        {
            var e = EffectiveRank.PartialWithin(coherent, ["seq"], 24, s, tracedHints: onToken);
            Assert.Equal(PartialRankMethod.Kronecker, e.Plan.Method);
            if (e.KeptProbe == KeptProbe.Index) Assert.Empty(e.TracedIndexAxes);
            else Assert.Equal(new[] { "token", "feature" }, e.TracedIndexAxes);
        }
    }
}
