using System.Diagnostics;
using GlobalNtk.Dense;
using GlobalNtk.Models.Recurrent;
using GlobalNtk.Ntk;
using GlobalNtk.Operators;

namespace GlobalNtk.Bench;

/// <summary>
/// <c>ntk</c>: the NTK operators on a recurrent model (issue 3's benchmark; default GRU, B=32,
/// T=90, H=256, N_in=3, float64): setup time from a fresh forward pass, one NTK_S / K / P
/// application and a block of vectors, achieved GFLOP/s from the operation count next to the
/// GEMM throughput of the K-shaped product in the same run, and peak memory. Best of
/// <c>--reps</c> timed runs after a warm-up (the machine is shared). Options: <c>--arch</c>,
/// <c>--trials</c>, <c>--steps</c>, <c>--hidden</c>, <c>--inputs</c>, <c>--block</c>, <c>--reps</c>,
/// <c>--precision f64|f32</c> (the linearisation's compute precision; the GEMM rates are measured in
/// the same precision; with f32 the timed vectors are float32 blocks, as a float32 caller's, and
/// <c>--f64-vectors</c> keeps them float64, as a float64 caller passes them), <c>--gemm-threads</c>, <c>--detail</c> (per-piece times), <c>--layers</c>,
/// <c>--path fused|blocks</c> (the default linearisation, or the generic block chain; float64 only).
/// </summary>
internal static class NtkBench
{
    public static int Run(string[] args)
    {
        string arch = "gru";
        int b = 32, t = 90, h = 256, nIn = 3, block = 30, reps = 3;
        bool detail = false;
        var precision = Precision.F64;
        int layers = 1;
        string path = "fused";
        bool f64Vectors = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--arch": arch = args[++i]; break;
                case "--trials": b = int.Parse(args[++i]); break;
                case "--steps": t = int.Parse(args[++i]); break;
                case "--hidden": h = int.Parse(args[++i]); break;
                case "--inputs": nIn = int.Parse(args[++i]); break;
                case "--block": block = int.Parse(args[++i]); break;
                case "--reps": reps = int.Parse(args[++i]); break;
                case "--detail": detail = true; break;
                case "--f64-vectors": f64Vectors = true; break;
                case "--precision":
                    if (!PrecisionNames.TryParse(args[++i], out precision)) { Console.Error.WriteLine($"error: --precision '{args[i]}' is not f64 or f32"); return 2; }
                    break;
                case "--gemm-threads": Gemm.MaxDegreeOfParallelism = int.Parse(args[++i]); break;
                case "--layers": layers = int.Parse(args[++i]); break;
                case "--path" when i + 1 < args.Length && args[i + 1] is "fused" or "blocks": path = args[++i]; break;
                default: Console.Error.WriteLine($"ntk: unknown option '{args[i]}'"); return 2;
            }
        }

        Console.WriteLine($"ntk: {arch} B={b} T={t} H={h} N_in={nIn}, {precision.Name()}, {Environment.ProcessorCount} processors, GEMM kernel {Gemm.SelectedKernel}, best of {reps}");
        if (path == "blocks" && precision != Precision.F64) { Console.Error.WriteLine("error: --path blocks has no float32 path"); return 2; }
        var model = RecurrentModel.Create(new RecurrentConfig(arch, nIn, h, 3) { Seed = 1, Layers = layers });
        Func<Tensor, GlobalNtk.Models.ChainLinearization> linearize = path == "blocks" ? xs => model.LinearizeBlocks(xs) : xs => model.Linearize(xs, precision);
        bool f32v = precision == Precision.F32 && !f64Vectors;
        Console.WriteLine($"path: {path} (L={layers}), {(f32v ? "float32" : "float64")} vectors");
        var rng = new Random(2);
        var x = new Tensor(model.InputShape(b, t));
        for (int i = 0; i < x.Length; i++) x.Span[i] = 2 * rng.NextDouble() - 1;

        // Setup: a fresh forward pass plus everything NTK_S needs (sites validated, operators built).
        // The first (cold, JIT) build is reported separately from the best warm one.
        NtkOperators ops = null!;
        long heapBefore = GC.GetTotalMemory(true);
        double setupCold = Time(() => { ops = new NtkOperators(linearize(x)); _ = ops.NtkS; });
        double setup = double.MaxValue, setupCpu = 0;
        for (int r = 0; r < reps; r++)
        {
            ops = null!;
            GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();   // earlier builds are garbage, not part of the peak
            double w = Time(() => { ops = new NtkOperators(linearize(x)); _ = ops.NtkS; });
            if (w < setup) { setup = w; setupCpu = LastCpu; }
        }
        long liveSetup = GC.GetTotalMemory(true);
        var lin = ops.Linearization;
        int s = lin.StateShape.Size;
        Console.WriteLine($"state {lin.StateShape} = {s} scalars, θ has {lin.Parameters.TotalSize} scalars, sites: " +
                          string.Join(", ", lin.Sites.Select(site => $"{site.Name} [{site.Rows}×{site.AugmentedWidth}]→{site.OutDim}")));
        Console.WriteLine($"setup (forward + operators): {setup:F3} s wall, {setupCpu:F3} s CPU (first, incl. JIT: {setupCold:F3} s)");

        // Operation counts (multiply-adds ×2): P and P* are one A_k product per step on B vectors;
        // K is Ûᵀ A and Û C per site.
        double pFlop = 2.0 * b * (t - 1) * model.Config.GateCount * h * (double)h;
        double kFlop = lin.Sites.Sum(site => 4.0 * site.Rows * site.AugmentedWidth * site.OutDim);
        double ntkFlop = 2 * pFlop + kFlop;

        if (detail)
        {
            Components(lin, reps);
            double tLin = Best(reps, () => _ = model.Linearize(x, precision)); double linCpu = LastCpu;
            var lin2 = model.Linearize(x, precision);
            double tOps = Best(reps, () => { var o = new NtkOperators(lin2); _ = o.NtkS; }); double opsCpu = LastCpu;
            Console.WriteLine($"  setup pieces: Linearize (forward) {tLin * 1e3:F1} ms wall {linCpu * 1e3:F1} ms CPU; operators + NTK_S {tOps * 1e3:F1} ms wall {opsCpu * 1e3:F1} ms CPU");
            int g = model.Config.GateCount * h;
            var whh = BenchVectors.Uniform(g * h, 9); var src = BenchVectors.Uniform(b * h, 10); var pre = new double[b * g];
            double tg1 = Best(reps, () => Gemm.Multiply(Trans.No, Trans.Yes, b, g, h, 1.0, src, h, whh, h, 0.0, pre, g));
            double tg2 = Best(reps, () => Gemm.Multiply(Trans.No, Trans.No, b, h, g, 1.0, pre, g, whh, h, 0.0, src, h));
            Console.WriteLine($"  step GEMMs [{b}×{h}]·W_hhᵀ {tg1 * 1e3:F3} ms, [{b}×{g}]·W_hh {tg2 * 1e3:F3} ms ({2.0 * b * g * h / tg1 / 1e9:F1} / {2.0 * b * g * h / tg2 / 1e9:F1} GFLOP/s)");
        }

        // The vectors and blocks in the timed element type only: a float32 run holds no float64 vector
        // (the peak working set below is the float32 path's own).
        var q = f32v ? null : BenchVectors.Uniform(s, 3);
        var y = f32v ? null : new double[s];
        var qf = f32v ? BenchVectors.UniformSingle(s, 3) : null;
        var yf = f32v ? new float[s] : null;
        Action One(LinearOperator op) => f32v ? () => op.ApplyBlock(qf, yf, 1) : () => op.ApplyBlock(q, y, 1);
        One(ops.NtkS)();   // warm-up (JIT)
        double tNtk = Best(reps, One(ops.NtkS)); double NtkCpu = LastCpu;
        double tK = Best(reps, One(ops.KKronecker)); double KCpu = LastCpu;
        double tKg = Best(reps, One(ops.K)); double KgCpu = LastCpu;
        double tP = Best(reps, One(ops.P)); double PCpu = LastCpu;
        double tPs = Best(reps, One(ops.PAdjoint)); double PsCpu = LastCpu;
        long peakSingle = Process.GetCurrentProcess().PeakWorkingSet64;
        // Bytes the GC hands out during one application (scratch that is not pooled), after the warm-ups.
        long alloc0 = GC.GetTotalAllocatedBytes(true); One(ops.NtkS)(); long allocNtk = GC.GetTotalAllocatedBytes(true) - alloc0;
        int m = lin.Parameters.TotalSize;
        alloc0 = GC.GetTotalAllocatedBytes(true);
        if (f32v) ops.Jtheta.ApplyAdjointBlock(qf, new float[m], 1); else ops.Jtheta.ApplyAdjointBlock(q, new double[m], 1);
        long allocJ = GC.GetTotalAllocatedBytes(true) - alloc0;
        long liveSingle = GC.GetTotalMemory(true);

        double[]? qb = null, yb = null; float[]? qbf = null, ybf = null;
        if (f32v) { qbf = BenchVectors.UniformSingle(block * s, 4); ybf = new float[block * s]; }
        else { qb = BenchVectors.Uniform(block * s, 4); yb = new double[block * s]; }
        Action Block(LinearOperator op) => f32v ? () => op.ApplyBlock(qbf, ybf, block) : () => op.ApplyBlock(qb, yb, block);
        double tNtkB = Best(Math.Min(reps, 2), Block(ops.NtkS)); double NtkBCpu = LastCpu;
        double tKB = Best(Math.Min(reps, 2), Block(ops.KKronecker)); double KBCpu = LastCpu;
        double tPB = Best(Math.Min(reps, 2), Block(ops.P)); double PBCpu = LastCpu;
        long peakBlock = Process.GetCurrentProcess().PeakWorkingSet64;
        qb = yb = null; qbf = ybf = null;
        // An aggressive collection hands the freed blocks back to the OS, so the phases below start
        // from the setup's footprint instead of adding to the blocks' (a plain collection keeps them committed).
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        long wsAfterBlock = Process.GetCurrentProcess().WorkingSet64;

        // The Kronecker core and the GEMM rates after the vector blocks are garbage, so the peak working
        // set is the larger of the two phases, not their sum.
        double tCore = Time(() => _ = new KroneckerCore(lin).ModeCaptureCurve()); double coreCpu = LastCpu;
        long peakCoreOnly = Process.GetCurrentProcess().PeakWorkingSet64;
        // The GEMM rates are the bench's own measurement: they start from the product's footprint, not the core's garbage.
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);

        // GEMM throughput of the K-shaped product (Ûᵀ A: [N×d̂]ᵀ·[N×m]) and a square one, same run.
        var big = lin.Sites.OrderByDescending(site => site.AugmentedWidth).First();
        var (gemmK, gemmKCpu) = GemmRate(big.AugmentedWidth, big.OutDim, big.Rows, Trans.Yes, reps, precision);
        var (gemmSq, gemmSqCpu) = GemmRate(1000, 1000, 1000, Trans.No, reps, precision);

        GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
        long peakCore = Process.GetCurrentProcess().PeakWorkingSet64;


        Console.WriteLine();
        Console.WriteLine($"{"operation",-28} {"wall (s)",10} {"CPU (s)",9} {"GFLOP",8} {"GFLOP/s",9}");
        Row("NTK_S (1 vector)", tNtk, NtkCpu, ntkFlop);
        Row("K Kronecker (1 vector)", tK, KCpu, kFlop);
        Row("K generic J J* (1 vector)", tKg, KgCpu, double.NaN);
        Row("P (1 vector)", tP, PCpu, pFlop);
        Row("P* (1 vector)", tPs, PsCpu, pFlop);
        Row($"NTK_S (block of {block})", tNtkB, NtkBCpu, ntkFlop * block);
        Row($"K Kronecker (block of {block})", tKB, KBCpu, kFlop * block);
        Row($"P (block of {block})", tPB, PBCpu, pFlop * block);
        Console.WriteLine($"{"per vector in the block:",-28} NTK_S {tNtkB / block:F4} s, K {tKB / block:F4} s, P {tPB / block:F4} s");
        Console.WriteLine($"Kronecker core (SVD of every site, exact tr K, c(r)): {tCore:F3} s wall, {coreCpu:F3} s CPU");
        Console.WriteLine($"GEMM ({precision.Name()}) in this run: K-shaped [{big.Rows}×{big.AugmentedWidth}]ᵀ·[{big.Rows}×{big.OutDim}] {gemmK:F1} GFLOP/s ({gemmKCpu:F1} per CPU-second), square n=1000 {gemmSq:F1} GFLOP/s ({gemmSqCpu:F1} per CPU-second)");
        Console.WriteLine($"NTK_S one vector: {ntkFlop / 1e9 / tNtk / gemmSq * 100:F0} % of the square GEMM's wall rate, {ntkFlop / 1e9 / NtkCpu / gemmSqCpu * 100:F0} % of its rate per CPU-second");
        Console.WriteLine($"live heap held by the linearisation and operators: {(liveSetup - heapBefore) / 1e6:F0} MB");
        Console.WriteLine($"allocated by one application (GC heap, after warm-up): NTK_S {allocNtk / 1e6:F1} MB, J_θ* {allocJ / 1e6:F1} MB (incl. its {m * (f32v ? 4 : 8) / 1e6:F1} MB result)");
        Console.WriteLine($"live GC heap: {liveSetup / 1e6:F0} MB after setup (model, inputs, linearisation, operators), {liveSingle / 1e6:F0} MB after the single-vector applications (incl. pooled scratch)");
        Console.WriteLine($"peak working set: {peakSingle / 1e6:F0} MB after setup + single-vector applications, {peakBlock / 1e6:F0} MB after the block of {block} " +
                          $"(one state block of {block} = {(f32v ? 4.0 : 8.0) * s * block / 1e6:F0} MB), {peakCoreOnly / 1e6:F0} MB after the Kronecker core, {peakCore / 1e6:F0} MB after the GEMM rates (working set {wsAfterBlock / 1e6:F0} MB before them); GC heap now {GC.GetTotalMemory(false) / 1e6:F0} MB");
        if (precision == Precision.F32)
        {
            // After the peak figure, one linearisation at a time: the float32 result first, then the float32
            // operators are dropped and only then the float64 reference is built (a stacked net's float64
            // linearisation is larger than the blocks were, so building it next to the float32 one set the peak).
            q ??= BenchVectors.Uniform(s, 3);   // qf's values before rounding
            double[] y32;
            if (f32v) { ops.NtkS.ApplyBlock(qf, yf, 1); y32 = yf!.Select(v => (double)v).ToArray(); }
            else y32 = ops.NtkS.Apply(q);
            ops = null!; lin = null!; big = null!;
            ScratchPool.Float32Shared.Trim(); ScratchPool.Shared.Trim();   // the float32 run's pooled scratch is not the reference's
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            var ops64 = new NtkOperators(model.Linearize(x, Precision.F64));
            var y64 = ops64.NtkS.Apply(q);
            double num = 0, den = 0;
            for (int i = 0; i < s; i++) { num += (y32[i] - y64[i]) * (y32[i] - y64[i]); den += y64[i] * y64[i]; }
            Console.WriteLine($"f32 vs f64 on this model ({(f32v ? "float32" : "float64")} vectors): ‖NTK_S q (f32) − NTK_S q (f64)‖ / ‖NTK_S q (f64)‖ = {Math.Sqrt(num / den):E2}; " +
                              $"peak working set after this check {Process.GetCurrentProcess().PeakWorkingSet64 / 1e6:F0} MB");
        }
        return 0;
    }

    /// <summary>Times the pieces the operators are made of (the cells' maps and the K GEMMs), per vector.</summary>
    private static void Components(GlobalNtk.Models.ChainLinearization lin, int reps)
    {
        int s = lin.StateShape.Size;
        var q = BenchVectors.Uniform(s, 8);
        var y = new double[s];
        lin.StateJvpAdd(1, q, y, 1);
        Console.WriteLine($"  one step A_k JVP {Best(reps, () => lin.StateJvpAdd(1, q, y, 1)) * 1e3:F2} ms, VJP {Best(reps, () => lin.StateVjpAdd(1, q, y, 1)) * 1e3:F2} ms (×{lin.Steps - 1} steps)");
        var th = new double[lin.Parameters.TotalSize];
        Console.WriteLine($"  J_θ JVP {Best(reps, () => lin.ParamJvp(th, y, 1)) * 1e3:F1} ms, VJP {Best(reps, () => lin.ParamVjp(q, th, 1)) * 1e3:F1} ms");
        foreach (var site in lin.Sites)
        {
            int n = site.Rows, d = site.AugmentedWidth, m = site.OutDim;
            var a = new double[n * m];
            var c = new double[d * m];
            var u = site.Variables;
            double tDs = Best(reps, () => site.ApplyDAdjoint(q, a, 1));
            double tD = Best(reps, () => site.ApplyDAdd(a, y, 1));
            double tG1 = Best(reps, () => Gemm.Multiply(Trans.Yes, Trans.No, d, m, n, 1.0, u.Span, d, a, m, 0.0, c, m));
            double tG2 = Best(reps, () => Gemm.Multiply(Trans.No, Trans.No, n, m, d, 1.0, u.Span, d, c, m, 0.0, a, m));
            Console.WriteLine($"  site {site.Name}: D* {tDs * 1e3:F1} ms, D {tD * 1e3:F1} ms, Ûᵀ·A {tG1 * 1e3:F1} ms, Û·C {tG2 * 1e3:F1} ms");
        }
    }

    private static void Row(string name, double seconds, double cpu, double flop) =>
        Console.WriteLine($"{name,-28} {seconds,10:F4} {cpu,9:F3} {(double.IsNaN(flop) ? "-" : (flop / 1e9).ToString("F2")),8} {(double.IsNaN(flop) ? "-" : (flop / 1e9 / seconds).ToString("F1")),9}");

    /// <summary>GFLOP/s (wall) and GFLOP per CPU-second of one GEMM shape in the given precision.</summary>
    private static (double Wall, double PerCpu) GemmRate(int m, int n, int k, Trans ta, int reps, Precision precision)
    {
        int lda = ta == Trans.No ? k : m;
        Action run;
        // Operands in the timed precision only (a float32 run holds no float64 copies).
        if (precision == Precision.F32)
        {
            float[] af = BenchVectors.UniformSingle(m * k, 6), bf = BenchVectors.UniformSingle(k * n, 7), cf = new float[m * n];
            run = () => Gemm.Multiply(ta, Trans.No, m, n, k, 1f, af, lda, bf, n, 0f, cf, n);
        }
        else
        {
            double[] a = BenchVectors.Uniform(m * k, 6), bm = BenchVectors.Uniform(k * n, 7), c = new double[m * n];
            run = () => Gemm.Multiply(ta, Trans.No, m, n, k, 1.0, a, lda, bm, n, 0.0, c, n);
        }
        run();
        double sec = Best(reps, run);
        double flop = 2.0 * m * n * k / 1e9;
        return (flop / sec, flop / Math.Max(LastCpu, 1e-9));
    }



    private static double Time(Action a)
    {
        var proc = Process.GetCurrentProcess();
        var cpu0 = proc.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        a();
        double wall = sw.Elapsed.TotalSeconds;
        proc.Refresh();
        LastCpu = (proc.TotalProcessorTime - cpu0).TotalSeconds;
        return wall;
    }

    /// <summary>Process CPU seconds of the last timed run (robust to other processes on a shared machine).</summary>
    private static double LastCpu;

    /// <summary>Best wall time of <paramref name="reps"/> runs; <see cref="LastCpu"/> is set to that run's CPU time.</summary>
    private static double Best(int reps, Action a)
    {
        double best = double.MaxValue, bestCpu = 0;
        for (int r = 0; r < Math.Max(1, reps); r++)
        {
            double w = Time(a);
            if (w < best) { best = w; bestCpu = LastCpu; }
        }
        LastCpu = bestCpu;
        return best;
    }
}
