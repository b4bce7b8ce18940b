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
        var (samples, exact) = ProbeRunner.Collect(op, probes, seed, (x, y) => new[] { Numerics.Dot(x, y), Numerics.Dot(y, y) });
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
        ArgumentNullException.ThrowIfNull(op);
        ArgumentNullException.ThrowIfNull(keptAxes);
        op.RequireSquare("Partial effective rank");
        foreach (var a in keptAxes)
            if (!op.Domain.Contains(a)) throw new ShapeMismatchException($"Partial effective rank: axis '{a}' is not in shape {op.Domain}.");
        var traced = op.Domain.Names.Where(a => !keptAxes.Contains(a)).ToArray();
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
        var split = new AxisSplit(op.Domain, traced, "PartialPaired");
        int nk = split.Kept, nt = split.Reduced, n = op.Domain.Size, m = probes;
        var full = split.Full;
        var rng = RngKey.FromSeed(seed).CreateRandom();
        var psi = new double[(long)m * nk];
        var omega1 = new double[(long)m * nt];
        var omega2 = new double[(long)m * nt];
        RandomProbes.Rademacher(rng, psi);
        RandomProbes.Rademacher(rng, omega1);
        RandomProbes.Rademacher(rng, omega2);

        // x = u ⊗ w on the (kept, traced) split; contract(y, w)[k] = Σ_t w_t y[(k,t)].
        void Embed(ReadOnlySpan<double> u, ReadOnlySpan<double> w, Span<double> x)
        {
            for (int k = 0; k < nk; k++) for (int t = 0; t < nt; t++) x[full[k * nt + t]] = u[k] * w[t];
        }
        void Contract(ReadOnlySpan<double> y, ReadOnlySpan<double> w, Span<double> z)
        {
            for (int k = 0; k < nk; k++) { double acc = 0; for (int t = 0; t < nt; t++) acc += w[t] * y[full[k * nt + t]]; z[k] = acc; }
        }

        var stats = new double[m][];
        int chunk = BlockBuffer.VectorsPerBlock(n, m, ProbeBlockElements);
        var x = new double[(long)chunk * n];
        var z = new double[nk];
        var w = new double[nk];
        for (int first = 0; first < m; first += chunk)
        {
            int c = Math.Min(chunk, m - first);
            var xs = x.AsSpan(0, c * n);
            for (int j = 0; j < c; j++)
                Embed(psi.AsSpan((first + j) * nk, nk), omega1.AsSpan((first + j) * nt, nt), xs.Slice(j * n, n));
            var y = op.ApplyBlock(xs, c);
            var t = new double[c];
            for (int j = 0; j < c; j++)
            {
                t[j] = Numerics.Dot(xs.Slice(j * n, n), y.AsSpan(j * n, n));
                Contract(y.AsSpan(j * n, n), omega1.AsSpan((first + j) * nt, nt), z);       // M_ω′ ψ
                Embed(z, omega2.AsSpan((first + j) * nt, nt), xs.Slice(j * n, n));
            }
            op.ApplyBlock(xs, y, c);
            for (int j = 0; j < c; j++)
            {
                Contract(y.AsSpan(j * n, n), omega2.AsSpan((first + j) * nt, nt), w);       // M_ω M_ω′ ψ
                double s2 = Numerics.Dot(psi.AsSpan((first + j) * nk, nk), w);
                stats[first + j] = [t[j], t[j] * t[j], s2];
            }
        }
        double Pr(double[] mean, int count) => Ratio((count * mean[0] * mean[0] - mean[1]) / (count - 1), mean[2], op);
        var avg = new double[3];
        foreach (var st in stats) for (int i = 0; i < 3; i++) avg[i] += st[i] / m;
        return new Estimate(Pr(avg, m), SampleStatistics.JackknifeError(stats, mean => Pr(mean, m - 1)), m);
    }

    /// <summary>Doubles per probe block (128 MiB): big blocks keep operator applications matrix-matrix.</summary>
    internal const long ProbeBlockElements = 1L << 24;

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
