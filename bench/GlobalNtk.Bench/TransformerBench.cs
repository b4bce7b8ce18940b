using System.Diagnostics;
using GlobalNtk.Dense;
using GlobalNtk.Estimators;
using GlobalNtk.Models;
using GlobalNtk.Models.Blocks;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Transformer;
using GlobalNtk.Ntk;
using GlobalNtk.Operators;

namespace GlobalNtk.Bench;

/// <summary>
/// <c>transformer</c>: the shared NTK operators on a pre-LN transformer (issue 5's benchmark;
/// default d=128, heads=4, L=4, d_ff=4d, causal, GELU, 32 sequences × 64 tokens, N_in=3, float64):
/// setup time (forward + operators), one NTK_S application and a block of vectors (wall and
/// process CPU time: the machine may be shared), peak memory; then issue 5's finding — the
/// Kronecker-core rank bound against the state dimension, per-site numerical ranks and PR(Ĝ_s),
/// and PR(K), PR(NTK_S) from Rademacher probes. Options: <c>--d --heads --layers --ff --seqs
/// --tokens --block (0: skip the block timing) --probes --reps --no-finding --mode-capture
/// --post-ln (norm_first=False blocks) --final-norm (nn.TransformerEncoder(norm=…)) --precision f64|f32 --f64-vectors</c>
/// (f32: float32 caches and sgemm products through every block, see TransformerModel.Linearize, and
/// the timed vectors are float32 blocks applied through the operators' float32 path, unless
/// <c>--f64-vectors</c> keeps them float64, as a float64 caller passes them; the finding step's
/// estimators use float32 blocks). <c>--attention</c> times only the
/// causal attention core of one layer (its forward pass, then J_u and J_uᵀ on the block of vectors)
/// with dense products (tile = tokens) and with row blocks of 8, 16, 24, 32 and the default tile.
/// </summary>
internal static class TransformerBench
{
    public static int Run(string[] args)
    {
        int d = 128, heads = 4, layers = 4, ff = 0, seqs = 32, tokens = 64, block = 30, probes = 30, reps = 1;
        bool modeCapture = false, attentionOnly = false;
        bool finding = true, postLn = false, finalNorm = false, f64Vectors = false;
        var precision = Precision.F64;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--d": d = int.Parse(args[++i]); break;
                case "--heads": heads = int.Parse(args[++i]); break;
                case "--layers": layers = int.Parse(args[++i]); break;
                case "--ff": ff = int.Parse(args[++i]); break;
                case "--seqs": seqs = int.Parse(args[++i]); break;
                case "--tokens": tokens = int.Parse(args[++i]); break;
                case "--block": block = int.Parse(args[++i]); break;
                case "--probes": probes = int.Parse(args[++i]); break;
                case "--reps": reps = int.Parse(args[++i]); break;
                case "--no-finding": finding = false; break;
                case "--mode-capture": modeCapture = true; break;
                case "--post-ln": postLn = true; break;
                case "--final-norm": finalNorm = true; break;
                case "--f64-vectors": f64Vectors = true; break;
                case "--attention": attentionOnly = true; break;
                case "--precision":
                    if (!PrecisionNames.TryParse(args[++i], out precision)) { Console.Error.WriteLine($"error: --precision '{args[i]}' is not f64 or f32"); return 2; }
                    break;
                default: Console.Error.WriteLine($"transformer: unknown option '{args[i]}'"); return 2;
            }
        }
        if (ff == 0) ff = 4 * d;
        if (attentionOnly) return AttentionTiles(d, heads, seqs, tokens, Math.Max(block, 1), reps, precision);
        var config = new TransformerConfig(TransformerInput.Linear, 3, d, heads, layers, ff, Activation.Gelu, Causal: true)
            { NormFirst = !postLn, FinalNorm = finalNorm };
        Console.WriteLine($"transformer: d={d} heads={heads} L={layers} d_ff={ff} causal GELU {(postLn ? "post-LN" : "pre-LN")}{(finalNorm ? " + final norm" : "")}, {seqs} sequences × {tokens} tokens, N_in=3, {precision.Name()}; " +
                          $"{Environment.ProcessorCount} processors, GEMM kernel {Gemm.SelectedKernel}, load average {LoadAverage()}");
        var model = TransformerModel.Create(config, 3, seed: 1);
        var rng = new Random(2);
        var x = new Tensor(new AxisShape(("sequence", seqs), ("token", tokens), ("input", 3)));
        for (int i = 0; i < x.Length; i++) x.Span[i] = 2 * rng.NextDouble() - 1;

        NtkOperators ops = null!;
        IChainModel chain = model;
        try { _ = chain.Linearize(x, precision); }
        catch (NotSupportedException ex) { Console.Error.WriteLine($"error: {ex.Message}"); return 2; }
        // Each setup drops the previous operators and collects them, untimed: a user holds one
        // linearisation, and the repetitions' earlier ones (alive, or garbage not yet collected) were
        // counted in the peak working set as if the product held them.
        Timing Setup()
        {
            ops = null!;
            GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
            return Measure(() => { ops = new NtkOperators(chain.Linearize(x, precision)); _ = ops.NtkS; });
        }
        var setupCold = Setup();
        var setup = Setup();
        for (int r = 1; r < reps; r++) { var t = Setup(); if (t.Wall < setup.Wall) setup = t; }
        var lin = ops.Linearization;
        int s = lin.StateShape.Size;
        Console.WriteLine($"state {lin.StateShape} = {s} scalars, θ = {lin.Parameters.TotalSize} scalars, {lin.Sites.Count} sites");
        Console.WriteLine($"setup (forward + operators): {setup}   (first, incl. JIT: {setupCold})");

        bool single = precision == Precision.F32 && !f64Vectors;
        Console.WriteLine($"vectors: {(single ? "float32 blocks (the operators' float32 path)" : "float64 blocks")}");
        var q = single ? [] : BenchVectors.Uniform(s, 3);
        var y = new double[single ? 0 : s];
        var q32 = single ? BenchVectors.UniformSingle(s, 3) : [];
        var y32 = new float[single ? s : 0];
        void Apply(LinearOperator op) { if (single) op.ApplyBlock(q32, y32, 1); else op.ApplyBlock(q, y, 1); }
        var tNtk = Best(reps, () => Apply(ops.NtkS));
        var tK = Best(reps, () => Apply(ops.KKronecker));
        var tKg = Best(reps, () => Apply(ops.K));
        var tP = Best(reps, () => Apply(ops.P));
        var tPs = Best(reps, () => Apply(ops.PAdjoint));
        long peakSingle = Process.GetCurrentProcess().PeakWorkingSet64;
        Timing tNtkB = default;
        long allocBlock = 0;
        if (block > 0)
        {
            var qb = BenchVectors.Uniform(single ? 0 : block * s, 4);
            var yb = new double[single ? 0 : block * s];
            var qb32 = single ? BenchVectors.UniformSingle(block * s, 4) : []; // no float64 block as garbage before the float32 one
            var yb32 = new float[single ? block * s : 0];
            long a0 = GC.GetTotalAllocatedBytes(precise: true);
            tNtkB = Best(1, () => { if (single) ops.NtkS.ApplyBlock(qb32, yb32, block); else ops.NtkS.ApplyBlock(qb, yb, block); });
            allocBlock = GC.GetTotalAllocatedBytes(precise: true) - a0;
        }
        long peakBlock = Process.GetCurrentProcess().PeakWorkingSet64;
        GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
        Console.WriteLine($"GC: {allocBlock / 1e6:F0} MB allocated by the block application; live heap afterwards {GC.GetTotalMemory(false) / 1e6:F0} MB " +
                          $"(linearisation, operators, pooled scratch, and the bench's own vectors)");
        Console.WriteLine($"NTK_S (1 vector): {tNtk}");
        Console.WriteLine($"K Kronecker (1 vector): {tK}   K generic J J* (1 vector): {tKg}");
        Console.WriteLine($"P (1 vector): {tP}   P* (1 vector): {tPs}");
        if (block > 0) Console.WriteLine($"NTK_S (block of {block}): {tNtkB}   per vector {tNtkB.Wall / block:F3} s wall");
        Console.WriteLine($"peak working set: {peakSingle / 1e6:F0} MB after setup + single applications, {peakBlock / 1e6:F0} MB after the block of {block} " +
                          $"(one state vector = {(single ? 4.0 : 8.0) * s / 1e6:F1} MB, the block = {(single ? 4.0 : 8.0) * s * block / 1e6:F0} MB)");
        if (modeCapture) ModeCapture(ops);
        if (!finding) return 0;

        // Issue 5's finding: K (hence NTK_S = P K P*) is low-rank relative to its dimension, bounded by the Kronecker core.
        Console.WriteLine();
        Console.WriteLine($"{"site",-28} {"rows",6} {"d̂",5} {"m",5} {"rank Ĝ",7} {"PR(Ĝ)",8} {"rank bound",11}");
        long bound = 0;
        double prCore = 0;
        // K is block-diagonal across layers (docs/math.md#transformers): layer k's block has rank ≤ min(S·N·d, its sites' bound + its LayerNorm scalars).
        var perLayer = new long[lin.Steps];
        foreach (var site in lin.Sites)
        {
            var core = new SiteCore(site);
            bound += core.RankBound;
            perLayer[LayerOf(site.Name)] += core.RankBound;
            prCore += core.ParticipationRatio * site.OutDim;
            Console.WriteLine($"{site.Name,-28} {site.Rows,6} {site.AugmentedWidth,5} {site.OutDim,5} {core.NumericalRank,7} {core.ParticipationRatio,8:F1} {core.RankBound,11}");
        }
        var kk = (KroneckerKernelOperator)ops.KKronecker;
        bound += kk.RestParameterCount;
        Console.WriteLine($"rank bound Σ rank(Ĝ_s)·m_s + {kk.RestParameterCount} LayerNorm scalars = {bound} of dimension {s} ({100.0 * bound / s:F1}%)");
        int layerDim = s / lin.Steps;
        long blockBound = 0;
        for (int k = 0; k < lin.Steps; k++) blockBound += Math.Min(layerDim, perLayer[k] + (k == 0 ? 0 : 4 * d));
        Console.WriteLine($"per-layer bound Σ_k min(S·N·d, layer k's sites + LayerNorm) = {blockBound} of {s} ({100.0 * blockBound / s:F1}%)");
        // PR(Ĝ ⊗ I_m) = m·PR(Ĝ) (docs/math.md#effective-rank): the effective size of each site's Kronecker core.
        Console.WriteLine($"Kronecker-core effective size Σ_s m_s·PR(Ĝ_s) = {prCore:F0} ({prCore / s:E2} of the dimension)");
        Estimate? eK = null, eN = null;
        var prK = Measure(() => eK = EffectiveRank.ParticipationRatio(ops.KKronecker, probes, 5));
        var prN = Measure(() => eN = EffectiveRank.ParticipationRatio(ops.NtkS, probes, 6));
        Console.WriteLine($"PR(K)     = {eK!.Value:F1} ± {eK.StandardError:F1}  ({eK.Value / s:E2} of the dimension; {probes} probes, {prK})");
        Console.WriteLine($"PR(NTK_S) = {eN!.Value:F1} ± {eN.StandardError:F1}  ({eN.Value / s:E2} of the dimension; {probes} probes, {prN})");
        return 0;
    }

    /// <summary>
    /// Times the Kronecker core's per-site traces (mode capture c(r), docs/math.md#mode-capture): row-local sites
    /// exactly, attention sites by Hutchinson probes; compares with the exact general path's cost,
    /// extrapolated from one timed block of D_s applications (d̂·m_s applications per site).
    /// </summary>
    private static void ModeCapture(NtkOperators ops)
    {
        var lin = ops.Linearization;
        var core = ops.KroneckerCore;
        Console.WriteLine();
        Console.WriteLine($"{"site",-28} {"method",-11} {"tr K_s",12} {"± SE",10} {"time",22} {"exact general (extrap.)",24}");
        double generalTotal = 0;
        foreach (var sc in core.Sites)
        {
            var t = Measure(() => _ = sc.TraceK);
            var site = sc.Site;
            const int cs = 8;
            var a = BenchVectors.Uniform(cs * site.Rows * site.OutDim, 9);
            var q = new double[cs * lin.StateShape.Size];
            var tApply = Measure(() => site.ApplyDAdd(a, q, cs));
            double general = tApply.Wall / cs * site.AugmentedWidth * site.OutDim;
            generalTotal += general;
            Console.WriteLine($"{sc.Name,-28} {sc.Method,-11} {sc.TraceK,12:E4} {sc.TraceStandardError,10:E2} {t,22} {general,20:F0} s");
        }
        Console.WriteLine($"tr K = {core.TraceK:E6} ± {core.TraceKStandardError:E2}; c(1) = {core.ModeCapture(1):F4}, c(8) = {core.ModeCapture(8):F4}, c(32) = {core.ModeCapture(32):F4}; " +
                          $"rank bound {core.RankBound} of {core.StateDimension}; exact general path for every site ≈ {generalTotal:F0} s wall (extrapolated)");
    }

    /// <summary>State layer a site feeds: 0 for the input projection, l+1 for block l's sites (<c>layers.{l}.…</c>).</summary>
    private static int LayerOf(string site) => site.StartsWith("layers.") ? int.Parse(site.Split('.')[1]) + 1 : 0;

    /// <summary>The attention core alone, per tile size (<c>--attention</c>): CPU seconds of J_u and J_uᵀ on a block.</summary>
    private static int AttentionTiles(int d, int heads, int seqs, int tokens, int block, int reps, Precision precision)
    {
        Console.WriteLine($"attention core: d={d} heads={heads} causal, {seqs} sequences × {tokens} tokens, block of {block}, {precision.Name()}; " +
                          $"{Environment.ProcessorCount} processors, load average {LoadAverage()}");
        int rows = seqs * tokens;
        var input = BenchVectors.Uniform(rows * 3 * d, 5);
        var v = BenchVectors.Uniform(block * rows * 3 * d, 6);
        var w = BenchVectors.Uniform(block * rows * d, 7);
        var jv = new double[block * rows * d];
        var jtw = new double[block * rows * 3 * d];
        bool single = precision == Precision.F32; // float32 blocks through the float32 maps, as a float32 linearisation runs them
        var v32 = Float32.ToSingle(v); var w32 = Float32.ToSingle(w);
        var jv32 = new float[single ? jv.Length : 0]; var jtw32 = new float[single ? jtw.Length : 0];
        var tiles = new[] { tokens, 8, 16, 24, 32, CausalProducts.TileFor(tokens) }.Where(t => t <= tokens).Distinct();
        foreach (int tile in tiles)
        {
            var core = new AttentionCoreBlock(d, heads, tokens, causal: true, tile);
            BlockTrace trace = null!;
            var tf = Best(reps, () => trace = core.Forward(new ParameterSet([]), input, rows, new double[rows * d], precision));
            var tj = Best(reps, () => { if (single) trace.Jvp32(v32, jv32, block); else trace.Jvp(v, jv, block); });
            var tv = Best(reps, () => { if (single) trace.Vjp32(w32, jtw32, block); else trace.Vjp(w, jtw, block); });
            Console.WriteLine($"tile {tile,3}{(tile == tokens ? " (dense)" : tile == CausalProducts.TileFor(tokens) ? " (default)" : "")}: forward {tf}; J_u {tj}; J_uᵀ {tv}; " +
                              $"J_u + J_uᵀ {tj.Cpu + tv.Cpu:F3} s CPU");
        }
        return 0;
    }

    private readonly record struct Timing(double Wall, double Cpu)
    {
        public override string ToString() => $"{Wall:F3} s wall, {Cpu:F3} s CPU";
    }

    private static Timing Measure(Action a)
    {
        var p = Process.GetCurrentProcess();
        var cpu0 = p.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        a();
        sw.Stop();
        p.Refresh();
        return new Timing(sw.Elapsed.TotalSeconds, (p.TotalProcessorTime - cpu0).TotalSeconds);
    }

    private static Timing Best(int reps, Action a)
    {
        var best = new Timing(double.PositiveInfinity, double.PositiveInfinity);
        for (int r = 0; r < Math.Max(1, reps); r++)
        {
            var t = Measure(a);
            if (t.Wall < best.Wall) best = t;
        }
        return best;
    }

    private static string LoadAverage()
    {
        try { return File.ReadAllText("/proc/loadavg").Split(' ')[0]; } catch (IOException) { return "?"; }
    }


}
