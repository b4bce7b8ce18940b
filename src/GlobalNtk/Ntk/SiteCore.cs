using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Operators;
using MathNet.Numerics.LinearAlgebra;
using MathNet.Numerics.LinearAlgebra.Factorization;

namespace GlobalNtk.Ntk;

/// <summary>
/// The Kronecker core of one weight site (docs/math.md#kronecker-core): the site-variable matrix Û
/// (Rows × d̂), the spectrum σ_i² of its Gram Ĝ = Û Ûᵀ, its activity modes, PR(Ĝ) and its
/// numerical rank; plus, once the model-level <see cref="KroneckerCore"/> has computed them,
/// the exact per-mode contributions σ_i² ‖D_s(v_i ⊗ I)‖_F² to tr K.
/// </summary>
/// <remarks>
/// The thin SVD Û = V Σ Wᵀ is obtained from the small d̂ × d̂ Gram ÛᵀÛ (one GEMM) and a
/// symmetric eigensolver (MathNet, d̂ is at most a few hundred). This gives σ_i² with absolute
/// error of order ε‖Û‖₂² — exactly the accuracy of the quantities reported from it (the
/// spectrum of Ĝ, PR(Ĝ), c(r), which are functions of σ²); a direct SVD of the tall Û would only
/// add relative accuracy to singular values far below √ε·σ₁, which the numerical rank treats as
/// zero anyway. Left modes are therefore formed only for i below the numerical rank.
/// </remarks>
public sealed class SiteCore
{
    private readonly double[] _rightModes;   // [d̂, d̂], row i = w_i (descending σ_i)
    private readonly Lazy<SiteTraces> _traces;

    /// <summary>
    /// The spectral part only (Gram, spectrum, modes, rank): <see cref="TraceK"/> and
    /// <see cref="ModeContributions"/> need the linearisation's D_s and come from
    /// <see cref="KroneckerCore"/>'s sites instead.
    /// </summary>
    internal SiteCore(WeightSite site) : this(site, TraceMethod.Exact, _ => throw new InvalidOperationException(
        $"Site '{site.Name}': this core was built without its linearisation; take trace contributions from KroneckerCore.Sites.")) { }

    internal SiteCore(WeightSite site, TraceMethod method, Func<SiteCore, SiteTraces> traces)
    {
        _traces = new(() => traces(this));
        Method = method;
        Site = site;
        int n = site.Rows, d = site.AugmentedWidth;
        if (site.VariablesSingle.Length > 0) Float32.EnsureFinite(site.VariablesSingle.Span, $"site '{site.Name}' variables Û");
        else Numerics.EnsureFinite(site.Variables.Span, $"site '{site.Name}' variables Û");
        var gram = new double[d * d];
        double trace = 0;
        if (n > 0 && d > 0)
            ForEachRowChunk((r0, rows, u) =>
            {
                Gemm.Multiply(Trans.Yes, Trans.No, d, d, rows, 1.0, u, d, u, d, r0 == 0 ? 0.0 : 1.0, gram, d);
                trace += Numerics.Dot(u, u);
            });
        // Symmetrise (the GEMM may round the two triangles differently) before the symmetric solver.
        var g = Matrix<double>.Build.Dense(d, d, (i, j) => 0.5 * (gram[i * d + j] + gram[j * d + i]));
        var evd = g.Evd(Symmetricity.Symmetric);
        var order = Enumerable.Range(0, d).OrderByDescending(i => evd.EigenValues[i].Real).ToArray();
        Spectrum = order.Select(i => Math.Max(0.0, evd.EigenValues[i].Real)).ToArray();
        _rightModes = new double[d * d];
        for (int r = 0; r < d; r++)
            for (int c = 0; c < d; c++) _rightModes[r * d + c] = evd.EigenVectors[c, order[r]];
        Trace = trace;   // tr Ĝ = ‖Û‖_F², exact (not via the eigenvalues)
        double s4 = Spectrum.Sum(s => s * s), s2 = Spectrum.Sum();
        ParticipationRatio = s4 > 0 ? s2 * s2 / s4 : 0.0;
        double tol = Math.Max(n, d) * Eps * (d > 0 ? Spectrum[0] : 0.0);
        NumericalRank = Spectrum.Count(s => s > tol && s > 0);
    }

    private const double Eps = 2.220446049250313e-16;

    /// <summary>Float64 elements of one widened row chunk of a float32 Û (2 MiB).</summary>
    internal static readonly ScopedSetting<long> WideChunkElements = new(1L << 18);

    /// <summary>A row chunk of Û in float64: the first row, the number of rows and the rows [rows, d̂].</summary>
    internal delegate void RowChunkAction(int firstRow, int rows, ReadOnlySpan<double> u);

    /// <summary>
    /// Visits Û in float64, in row order: a float64 Û as one chunk (itself); a float32 Û
    /// (<see cref="WeightSite.VariablesSingle"/>) widened (exactly) a few rows at a time into one
    /// small buffer, so the Gram, traces and left modes accumulate in float64 without a float64
    /// copy of the whole Û (docs/math.md#numerics).
    /// </summary>
    internal void ForEachRowChunk(RowChunkAction action)
    {
        int n = Rows, d = AugmentedWidth;
        var single = Site.VariablesSingle;
        if (single.Length == 0) { action(0, n, Site.Variables.Span); return; }
        int chunk = (int)Math.Clamp(WideChunkElements.Value / Math.Max(1, d), 1, Math.Max(1, n));
        using var pooled = new BlockBuffer((long)chunk * d);   // pooled: the core visits Û many times, each a 2 MiB array otherwise
        var buf = pooled.Span;
        for (int r0 = 0; r0 < n; r0 += chunk)
        {
            int rows = Math.Min(chunk, n - r0);
            var wide = buf[..(rows * d)];
            Float32.Widen(single.Span.Slice(r0 * d, rows * d), wide);
            action(r0, rows, wide);
        }
    }

    /// <summary>The site.</summary>
    public WeightSite Site { get; }
    /// <summary>Site name.</summary>
    public string Name => Site.Name;
    /// <summary>N: rows of Û (e.g. trials × steps).</summary>
    public int Rows => Site.Rows;
    /// <summary>d̂: columns of Û (site width plus one per bias).</summary>
    public int AugmentedWidth => Site.AugmentedWidth;
    /// <summary>m_s: output size of the site's affine map.</summary>
    public int OutDim => Site.OutDim;
    /// <summary>Eigenvalues of Ĝ = Û Ûᵀ (σ_i², descending, length d̂; zero-padded rank deficiency included).</summary>
    public IReadOnlyList<double> Spectrum { get; }
    /// <summary>Singular values σ_i of Û (descending).</summary>
    public double[] SingularValues() => Spectrum.Select(Math.Sqrt).ToArray();
    /// <summary>tr Ĝ = ‖Û‖_F².</summary>
    public double Trace { get; }
    /// <summary>PR(Ĝ) = (Σσ²)² / Σσ⁴ (docs/math.md#effective-rank).</summary>
    public double ParticipationRatio { get; }
    /// <summary>Numerical rank: #σ_i² &gt; max(N, d̂)·ε·σ₁² (the rounding level of the Gram eigenvalues).</summary>
    public int NumericalRank { get; }
    /// <summary>This site's share of the rank bound: rank(Ĝ_s)·m_s.</summary>
    public long RankBound => (long)NumericalRank * OutDim;

    /// <summary>Fraction of tr Ĝ in the top <paramref name="r"/> modes (cumulative spectrum).</summary>
    public double CumulativeSpectrum(int r)
    {
        double s = 0;
        for (int i = 0; i < Math.Min(r, Spectrum.Count); i++) s += Spectrum[i];
        return Trace > 0 ? s / Trace : 0.0;
    }

    /// <summary>Right modes w_i (over units/inputs, then bias columns) as [d̂, d̂], row i = w_i.</summary>
    public double[] RightModes() => (double[])_rightModes.Clone();

    /// <summary>The right modes themselves (not a copy; never written): [d̂, d̂], row i = w_i.</summary>
    internal double[] RightModesView => _rightModes;

    /// <summary>
    /// Left modes v_i = Û w_i / σ_i (over the site's rows, e.g. trial × time; unit norm) for
    /// i &lt; <paramref name="r"/> ≤ <see cref="NumericalRank"/>, as [r, Rows] (row i = v_i).
    /// </summary>
    public double[] LeftModes(int r)
    {
        if (r < 0 || r > NumericalRank)
            throw new ArgumentOutOfRangeException(nameof(r), $"Site '{Name}': asked for {r} left modes, numerical rank is {NumericalRank}.");
        var uw = UnnormalisedLeftModes(r);   // [N, r]
        int n = Rows;
        var v = new double[r * n];
        for (int i = 0; i < r; i++)
        {
            double inv = 1.0 / Math.Sqrt(Spectrum[i]);
            for (int k = 0; k < n; k++) v[i * n + k] = uw[k * r + i] * inv;
        }
        return v;
    }

    /// <summary>Û W_r = [σ_1 v_1, …, σ_r v_r] as [N, r] (stable for every σ, even zero).</summary>
    internal double[] UnnormalisedLeftModes(int r)
    {
        int n = Rows, d = AugmentedWidth;
        var uw = new double[(long)n * r];
        if (r > 0 && n > 0)
            ForEachRowChunk((r0, rows, u) => Gemm.Multiply(Trans.No, Trans.Yes, rows, r, d, 1.0, u, d, _rightModes, d, 0.0, uw.AsSpan(r0 * r, rows * r), r));
        return uw;
    }

    /// <summary>Ĝ = Û Ûᵀ as a dense N × N matrix: for small cases only (N ≤ <paramref name="maxRows"/>).</summary>
    public double[] DenseGram(int maxRows = 2000)
    {
        int n = Rows, d = AugmentedWidth;
        if (n > maxRows) throw new InvalidOperationException($"Site '{Name}': dense Gram would be {n} × {n}, over the limit {maxRows}.");
        var g = new double[n * n];
        Gemm.Multiply(Trans.No, Trans.Yes, n, n, d, 1.0, Site.Variables.Span, d, Site.Variables.Span, d, 0.0, g, n);
        return g;
    }

    /// <summary>Exact tr K_s = tr(D_s(Ĝ_s ⊗ I)D_s*) (computed on first use, with the contributions).</summary>
    public double TraceK => _traces.Value.Trace;
    /// <summary>
    /// Per-mode contributions σ_i² ‖D_s(v_i ⊗ I)‖_F² to tr K_s, descending σ (length d̂); computed
    /// on first use (cost: see <see cref="KroneckerCore"/>).
    /// </summary>
    public IReadOnlyList<double> ModeContributions => _traces.Value.Contributions;
    internal double[] Contributions => _traces.Value.Contributions;
    /// <summary>How <see cref="TraceK"/> and the contributions are computed.</summary>
    public TraceMethod Method { get; }
    /// <summary>Standard error of <see cref="TraceK"/> (0 unless <see cref="Method"/> is Hutchinson).</summary>
    public double TraceStandardError => CumulativeStandardError(AugmentedWidth);
    /// <summary>Standard error of Σ_{i&lt;r} contributions (tr K_{s,r}); 0 for exact methods.</summary>
    public double CumulativeStandardError(int r)
    {
        var se = _traces.Value.StandardErrors;
        int k = Math.Min(r, AugmentedWidth);
        return se is null || k <= 0 ? 0.0 : se[k - 1];
    }
}

/// <summary>How a site's tr K_s and mode contributions are computed (docs/math.md#mode-capture).</summary>
public enum TraceMethod
{
    /// <summary>Exact, row-local: Σ_n Ĝ[n,n]‖D_n‖_F² with row norms from the row's state slice.</summary>
    RowLocal,
    /// <summary>Exact, general: d̂·m_s applications of D_s.</summary>
    Exact,
    /// <summary>Hutchinson estimate with Rademacher state probes (seeded), with standard errors.</summary>
    Hutchinson,
}

/// <summary>Per-mode contributions, their sum, and (estimates only) the standard error of each cumulative sum.</summary>
internal readonly record struct SiteTraces(double[] Contributions, double Trace, double[]? StandardErrors)
{
    public static implicit operator SiteTraces((double[] c, double t, double[]? se) x) => new(x.c, x.t, x.se);
}
