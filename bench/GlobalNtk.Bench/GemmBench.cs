using System.Diagnostics;
using GlobalNtk.Dense;

namespace GlobalNtk.Bench;

/// <summary>
/// <c>gemm</c>: GFLOP/s of <see cref="Gemm.Multiply"/> against OpenBLAS in the same process, best of
/// several timed repetitions after a warm-up (the machine is shared, so the best rep is the least
/// disturbed one). Options: <c>--reps N</c>, <c>--all</c> (all transpose pairs and NTK shapes),
/// <c>--kc/--mc/--nc</c> (AVX-512 blocking, for tuning), <c>--threads N</c>, <c>--kernel avx512|avx2|scalar</c>,
/// <c>--precision f64|f32|both</c> (f32 is compared with OpenBLAS sgemm; default both),
/// <c>--kc32/--mc32/--nc32</c> (float32 AVX-512 blocking), <c>--nc32b</c> (float32 B̄ block width for
/// an untransposed B), <c>--direct N</c> (largest m·n·k
/// multiplied without packing), <c>--narrow-depth N</c> (least k for the direct path's transposed narrow C), <c>--dot-rows N</c> / <c>--dot-depth K4,K8,K15</c> (most m, least k of A·Bᵀ in dot form up to 4, 8, 15 rows), <c>--dot-scalar N</c> (below which k one column A·x runs as scalar chains), <c>--narrow-dot V</c> (least k, in vectors, of the narrow dot form's lane sums; 0 = off), <c>--narrow-tree on|off</c> (its tree form), <c>--narrow-packed on|off</c>, <c>--transposed-copy on|off</c>, <c>--direct-narrow on|off</c> (the direct path's narrow-C and few-row routes), <c>--outer on|off</c> (the outer-product route for k ≤ 2), <c>--only TEXT</c> (shapes whose name contains TEXT), <c>--shape MxNxK[:NN|TN|NT|TT]</c>
/// (an extra shape), <c>--cpu-time</c> (both contenders on one
/// thread, timed by the thread's CPU time: on a shared, oversubscribed machine this excludes the
/// time the thread waits for a core, which wall time of a multi-threaded run cannot), <c>--process-cpu</c> (the
/// process's CPU time, all threads: what a multi-threaded product costs in CPU, its re-packing, spinning and
/// fork/join included; OpenBLAS's idle threads spin, so set OPENBLAS_NUM_THREADS=1 to read its column).
/// Repetitions of the two contenders alternate, so both see the same background load.
/// <c>--sweep</c> replaces the shapes by a reproducible random grid (<c>--seed S</c>, default 1; <c>--count N</c>
/// shapes, default 160; <c>--max-product P</c>, largest m·n·k, default 2²⁰ − 1 = the direct path; <c>--min-product P</c>, smallest, default 1:
/// <c>--min-product 1048576</c> samples the packed path) and ends
/// with a summary per precision; see <see cref="SweepShapes"/>.
/// </summary>
internal static class GemmBench
{
    private sealed record Shape(string Name, Trans Ta, Trans Tb, int M, int N, int K);

    public static int Run(string[] args)
    {
        int reps = 7;
        bool all = false;
        string precision = "both";
        string? only = null;
        var extra = new List<Shape>();
        bool sweep = false;
        int seed = 1, count = 160;
        long maxProduct = (1L << 20) - 1, minProduct = 1;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--reps": reps = int.Parse(args[++i]); break;
                case "--all": all = true; break;
                case "--precision": precision = args[++i]; break;
                case "--kc": GemmTuning.KC512 = int.Parse(args[++i]); break;
                case "--mc": GemmTuning.MC512 = int.Parse(args[++i]); break;
                case "--nc": GemmTuning.NC512 = int.Parse(args[++i]); break;
                case "--kernel": Gemm.ForcedKernel = Enum.Parse<Gemm.KernelKind>(args[++i], ignoreCase: true); break;
                case "--kc32": GemmTuning.KC512F32 = int.Parse(args[++i]); break;
                case "--mc32": GemmTuning.MC512F32 = int.Parse(args[++i]); break;
                case "--nc32": GemmTuning.NC512F32 = int.Parse(args[++i]); break;
                case "--nc32b": GemmTuning.NC512F32StoredB = int.Parse(args[++i]); break;
                case "--cpu-time": s_cpuTime = true; break;
                case "--process-cpu": s_processCpu = true; break;
                case "--direct": Gemm.DirectProduct = long.Parse(args[++i]); break;
                case "--only": only = args[++i]; break;
                case "--shape": extra.Add(ParseShape(args[++i])); break;
                case "--threads": Gemm.MaxDegreeOfParallelism = int.Parse(args[++i]); break;
                case "--sweep": sweep = true; break;
                case "--seed": seed = int.Parse(args[++i]); break;
                case "--count": count = int.Parse(args[++i]); break;
                case "--max-product": maxProduct = long.Parse(args[++i]); break;
                case "--min-product": minProduct = long.Parse(args[++i]); break;
                case "--narrow-depth": SetNarrowDepth(int.Parse(args[++i])); break;
                case "--dot-rows": SetDotRows(int.Parse(args[++i])); break;
                case "--dot-depth": SetDotDepth(args[++i]); break;
                case "--dot-scalar": SetDotScalar(int.Parse(args[++i])); break;
                case "--dot-stream": SetDotStream(long.Parse(args[++i])); break;
                case "--narrow-dot": SetNarrowDot(int.Parse(args[++i])); break;
                case "--narrow-packed": SetNarrowPacked(args[++i] == "on"); break;
                case "--narrow-tree": SetNarrowTree(args[++i] == "on"); break;
                case "--transposed-copy": SetTransposedCopy(args[++i] == "on"); break;
                case "--direct-narrow": SetDirectNarrow(args[++i] == "on"); break;
                case "--outer": SetOuter(args[++i] == "on"); break;
                default: Console.Error.WriteLine($"gemm: unknown option '{args[i]}'"); return 2;
            }
        }

        var shapes = new List<Shape>
        {
            new("square n=1000 A·B", Trans.No, Trans.No, 1000, 1000, 1000),
            new("[2880×260]ᵀ·[2880×768] Aᵀ·B", Trans.Yes, Trans.No, 260, 768, 2880),
        };
        if (all)
        {
            shapes.Add(new("square n=1000 Aᵀ·B", Trans.Yes, Trans.No, 1000, 1000, 1000));
            shapes.Add(new("square n=1000 A·Bᵀ", Trans.No, Trans.Yes, 1000, 1000, 1000));
            shapes.Add(new("square n=1000 Aᵀ·Bᵀ", Trans.Yes, Trans.Yes, 1000, 1000, 1000));
            shapes.Add(new("NTK step [32×256]·[768×256]ᵀ", Trans.No, Trans.Yes, 32, 768, 256));
            shapes.Add(new("NTK step [32×768]·[768×256]", Trans.No, Trans.No, 32, 256, 768));
            shapes.Add(new("small 64×64×64", Trans.No, Trans.No, 64, 64, 64));
            shapes.Add(new("tiny 8×8×8", Trans.No, Trans.No, 8, 8, 8));
            shapes.Add(new("gemv 1000×1000·v", Trans.No, Trans.No, 1000, 1, 1000));
            shapes.Add(new("gemv [1000×1000]ᵀ·v", Trans.Yes, Trans.No, 1000, 1, 1000));
            shapes.Add(new("vᵀ·[1000×1000]", Trans.No, Trans.No, 1, 1000, 1000));
        }

        if (sweep && (minProduct < 1 || minProduct > Math.Min(maxProduct, 3000L * 3000 * 3000)))
        {
            Console.Error.WriteLine($"gemm: --min-product {minProduct} must lie in 1..min(--max-product, 3000³) (the sweep's dimensions stop at 3000)");
            return 2;
        }
        if (sweep) shapes = SweepShapes(seed, count, minProduct, maxProduct);
        shapes.AddRange(extra);
        if (only != null) shapes.RemoveAll(s => !s.Name.Contains(only, StringComparison.Ordinal));

        var blas = OpenBlas.TryLoad();
        if (s_cpuTime)
        {
            Gemm.MaxDegreeOfParallelism = 1;
            if (blas != null && !blas.TrySetThreads(1)) Console.WriteLine("OpenBLAS: cannot set its thread count; set OPENBLAS_NUM_THREADS=1");
        }
        Console.WriteLine($"kernel: {Gemm.SelectedKernel}, blocking f64 KC={GemmTuning.KC512} MC={GemmTuning.MC512} NC={GemmTuning.NC512}, " +
                          $"f32 KC={GemmTuning.KC512F32} MC={GemmTuning.MC512F32} NC={GemmTuning.NC512F32} (stored B {GemmTuning.NC512F32StoredB}), " +
                          $"threads ≤ {Gemm.MaxDegreeOfParallelism}, {Environment.ProcessorCount} processors, " +
                          (s_cpuTime ? "timed by thread CPU time" : s_processCpu ? "timed by process CPU time" : "timed by wall clock"));
        Console.WriteLine(blas is null ? "OpenBLAS: not found (install e.g. libopenblas0-pthread to compare)" : $"OpenBLAS: {blas.Description}");
        if (precision is not ("f64" or "f32" or "both")) { Console.Error.WriteLine($"gemm: --precision must be f64, f32 or both, not '{precision}'"); return 2; }
        Console.WriteLine($"{"shape",-34} {"prec",4} {"managed GF/s",13} {"OpenBLAS GF/s",14} {"ratio",7} {"max rel diff",13}");
        var ratios = new Dictionary<string, List<(Shape S, double Ratio)>> { ["f64"] = [], ["f32"] = [] };
        foreach (var s in shapes)
        {
            if (precision != "f32" && RunF64(s, reps, blas) is double r64) ratios["f64"].Add((s, r64));
            if (precision != "f64" && RunF32(s, reps, blas) is double r32) ratios["f32"].Add((s, r32));
        }
        if (sweep) foreach (var (p, list) in ratios) Summarise(p, list);
        return 0;
    }

    // Its own method so that Run still compiles against a GlobalNtk.dll without the knob: before/after runs
    // swap an older library under this bench, and the JIT resolves a field when it compiles the method.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void SetNarrowDepth(int depth) => Avx512Kernel<double>.NarrowDepth = Avx512Kernel<float>.NarrowDepth = depth;

    /// <summary>Most rows of A for which A·Bᵀ runs in dot form (0: none); its own method, as <see cref="SetNarrowDepth"/>.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void SetDotRows(int rows) => GemmDot.MaxDotRows = rows;

    /// <summary>Least k for which A·Bᵀ with up to 4, 8 and 15 rows runs in dot form ("16,32,192"), both precisions.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void SetDotDepth(string depths)
    {
        var d = depths.Split(',').Select(int.Parse).ToArray();
        d.CopyTo(GemmDot.MinDotDepth64, 0);
        d.CopyTo(GemmDot.MinDotDepth32, 0);
    }

    /// <summary>Below which k one column A·x runs as scalar chains.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void SetDotScalar(int depth) => GemmDot.ScalarDepth = depth;

    /// <summary>Above how many bytes of stored A one column of Aᵀ·x streams A row by row.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void SetDotStream(long bytes) => GemmDot.StreamingColumnBytes = bytes;
    // --narrow-dot V: the narrow dot form's lane sums from k ≥ V vectors (0 = off); --narrow-tree on|off: its tree form; --narrow-packed on|off: the narrow route
    // with A transposed past the direct path. Own methods, as SetNarrowDepth.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void SetNarrowDot(int vectors) => Avx512NarrowDot<double>.DepthVectors = Avx512NarrowDot<float>.DepthVectors = vectors;

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void SetNarrowPacked(bool on) => Gemm.NarrowPacked = on;

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void SetNarrowTree(bool on) => Avx512NarrowDot<double>.Tree = Avx512NarrowDot<float>.Tree = on;

    /// <summary>--transposed-copy on|off: the routes of GemmTransposedCopy (an operand transposed into scratch first).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void SetTransposedCopy(bool on) => GemmTransposedCopy.Enabled = on;

    /// <summary>--direct-narrow on|off: the direct path's routes for narrow C and few rows (<see cref="DirectNarrowRoutes"/>).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void SetDirectNarrow(bool on) => DirectNarrowRoutes.On = on;

    /// <summary>--outer on|off: the outer-product route (k ≤ 2, B transposed, few rows; <see cref="GemmOuter"/>).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void SetOuter(bool on) => GemmOuter.Enabled = on;

    /// <summary>
    /// The sweep's shapes, reproducible from the seed: each of m, n, k log-uniform in 1..3000, drawn again
    /// until <paramref name="minProduct"/> ≤ m·n·k ≤ <paramref name="maxProduct"/>; every third shape has a narrow C (m or n in 1..8, the
    /// other of the two log-uniform in 64..3000); the transpose pairs NN, TN, NT, TT take turns.
    /// </summary>
    private static List<Shape> SweepShapes(int seed, int count, long minProduct, long maxProduct)
    {
        var rng = new Random(seed);
        int Log(int lo, int hi) => (int)Math.Round(Math.Exp(Math.Log(lo) + rng.NextDouble() * (Math.Log(hi) - Math.Log(lo))));
        string[] pairs = ["NN", "TN", "NT", "TT"];
        var shapes = new List<Shape>(count);
        for (int i = 0; i < count; i++)
        {
            int m, n, k;
            do
            {
                if (i % 3 == 2)
                {
                    int narrow = rng.Next(1, 9), wide = Log(64, 3000);
                    (m, n) = rng.Next(2) == 0 ? (wide, narrow) : (narrow, wide);
                }
                else (m, n) = (Log(1, 3000), Log(1, 3000));
                k = Log(1, 3000);
            } while ((long)m * n * k > maxProduct || (long)m * n * k < minProduct);
            shapes.Add(ParseShape($"{m}x{n}x{k}:{pairs[i % 4]}"));
        }
        return shapes;
    }

    /// <summary>The sweep's summary of one precision: shapes below 100 % and 95 % of OpenBLAS, the geometric mean, the worst ten.</summary>
    private static void Summarise(string precision, List<(Shape S, double Ratio)> list)
    {
        if (list.Count == 0) return;
        double geo = Math.Exp(list.Average(x => Math.Log(x.Ratio)));
        Console.WriteLine($"{precision}: {list.Count} shapes, {list.Count(x => x.Ratio < 1)} below 100 %, " +
                          $"{list.Count(x => x.Ratio < 0.95)} below 95 % of OpenBLAS, geometric mean {geo:P1}; worst: " +
                          string.Join(", ", list.OrderBy(x => x.Ratio).Take(10).Select(x => $"{x.S.Name} {x.Ratio:P0}")));
    }

    private static double? RunF64(Shape s, int reps, OpenBlas? blas)
    {
        var rng = new Random(1);
        var (aCols, bCols, aLength, bLength) = Operands(s);
        double[] a = Random(rng, aLength), b = Random(rng, bLength);
        double[] c1 = new double[s.M * s.N], c2 = new double[s.M * s.N];
        return Report(s, "f64", reps, () => Gemm.Multiply(s.Ta, s.Tb, s.M, s.N, s.K, 1.0, a, aCols, b, bCols, 0.0, c1, s.N),
            blas is null ? null : () => blas.Dgemm(s.Ta == Trans.Yes, s.Tb == Trans.Yes, s.M, s.N, s.K, 1.0, a, aCols, b, bCols, 0.0, c2, s.N),
            c1.Length, i => c1[i], i => c2[i]);
    }

    private static double? RunF32(Shape s, int reps, OpenBlas? blas)
    {
        var rng = new Random(1);
        var (aCols, bCols, aLength, bLength) = Operands(s);
        float[] a = RandomF32(rng, aLength), b = RandomF32(rng, bLength);
        float[] c1 = new float[s.M * s.N], c2 = new float[s.M * s.N];
        return Report(s, "f32", reps, () => Gemm.Multiply(s.Ta, s.Tb, s.M, s.N, s.K, 1f, a, aCols, b, bCols, 0f, c1, s.N),
            blas is null ? null : () => blas.Sgemm(s.Ta == Trans.Yes, s.Tb == Trans.Yes, s.M, s.N, s.K, 1f, a, aCols, b, bCols, 0f, c2, s.N),
            c1.Length, i => c1[i], i => c2[i]);
    }

    /// <summary>A shape from "MxNxK" with an optional transpose pair suffix ":NN", ":TN", ":NT" or ":TT".</summary>
    private static Shape ParseShape(string text)
    {
        string[] parts = text.Split(':');
        int[] d = parts[0].Split('x').Select(int.Parse).ToArray();
        string t = parts.Length > 1 ? parts[1] : "NN";
        return new Shape($"{parts[0]} {t}", t[0] == 'T' ? Trans.Yes : Trans.No, t[1] == 'T' ? Trans.Yes : Trans.No, d[0], d[1], d[2]);
    }

    /// <summary>Row strides and lengths of the stored A and B of a shape.</summary>
    private static (int ACols, int BCols, int ALength, int BLength) Operands(Shape s)
    {
        int aRows = s.Ta == Trans.No ? s.M : s.K, aCols = s.Ta == Trans.No ? s.K : s.M;
        int bRows = s.Tb == Trans.No ? s.K : s.N, bCols = s.Tb == Trans.No ? s.N : s.K;
        return (aCols, bCols, aRows * aCols, bRows * bCols);
    }

    /// <summary>
    /// Times both contenders and prints one row (C of the managed and the OpenBLAS run read through c1/c2);
    /// returns OpenBLAS's time over ours, or null without OpenBLAS.
    /// </summary>
    private static double? Report(Shape s, string precision, int reps, Action managedRun, Action? blasRun,
        int length, Func<int, double> c1, Func<int, double> c2)
    {
        double flops = 2.0 * s.M * s.N * s.K;
        // Each timing runs a batch of ≥ ~4e6 flops (a single tiny product lasts less than the clock's own
        // cost and step), and enough batches for ≥ ~3e8 flops per contender on the small shapes.
        int batch = (int)Math.Clamp(4e6 / flops, 1, 40000);
        int r = Math.Max(reps, (int)Math.Min(20000, 3e8 / (flops * batch)));
        var (managed, t) = Best(r, batch, managedRun, blasRun);
        string blasCol = "-", ratioCol = "-", diffCol = "-";
        if (blasRun is not null)
        {
            blasCol = $"{flops / t / 1e9:F2}";
            ratioCol = $"{t / managed:P0}";
            double maxDiff = 0, maxAbs = 0; // normwise: max |Δ| / max |C|
            for (int i = 0; i < length; i++)
            {
                maxDiff = Math.Max(maxDiff, Math.Abs(c1(i) - c2(i)));
                maxAbs = Math.Max(maxAbs, Math.Abs(c2(i)));
            }
            diffCol = $"{maxDiff / maxAbs:E1}";
        }
        Console.WriteLine($"{s.Name,-34} {precision,4} {flops / managed / 1e9,13:F2} {blasCol,14} {ratioCol,7} {diffCol,13}");
        return blasRun is null ? null : t / managed;
    }

    private static float[] RandomF32(Random rng, int count)
    {
        var x = new float[count];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }

    private static double[] Random(Random rng, int count)
    {
        var x = new double[count];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextDouble() * 2 - 1;
        return x;
    }

    private static bool s_cpuTime, s_processCpu;

    /// <summary>
    /// Best time (s) per run of <paramref name="reps"/> timings of <paramref name="batch"/> runs of each
    /// contender after two warm-up runs, the timings alternating between them; wall clock, or the
    /// thread's CPU time with --cpu-time.
    /// </summary>
    private static (double F, double G) Best(int reps, int batch, Action f, Action? g)
    {
        f(); f(); g?.Invoke(); g?.Invoke();
        double bestF = double.MaxValue, bestG = double.MaxValue;
        for (int i = 0; i < reps; i++)
        {
            bestF = Math.Min(bestF, Time(f, batch));
            if (g != null) bestG = Math.Min(bestG, Time(g, batch));
        }
        return (bestF, bestG);
    }

    private static double Time(Action f, int batch)
    {
        double t0 = Now();
        for (int i = 0; i < batch; i++) f();
        return (Now() - t0) / batch;
    }

    private static double Now() => s_cpuTime ? CpuSeconds(3) : s_processCpu ? CpuSeconds(2) : Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency;

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern unsafe int ClockGetTime(int clock, long* timespec);

    /// <summary>CPU time of the calling thread (clock 3, CLOCK_THREAD_CPUTIME_ID) or of the process (2, all its threads); Linux only.</summary>
    private static unsafe double CpuSeconds(int clock)
    {
        long* ts = stackalloc long[2];
        if (ClockGetTime(clock, ts) != 0) throw new InvalidOperationException($"clock_gettime({clock}) failed");
        return ts[0] + ts[1] * 1e-9;
    }
}
