using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using GlobalNtk.Dense;

namespace GlobalNtk.Bench;

/// <summary>
/// <c>gemmkernel</c>: the AVX-512 microkernel alone (one thread, GFLOP/s by the thread's CPU time),
/// to tell the kernel's compute rate from its feed. Cases, each a full 8-row tile of 3 vectors:
/// <list type="bullet">
/// <item><c>L1</c>: Ā panel and one B̄ panel both in L1 (kc 128 f32 / 64 f64), the same C tile each call;</item>
/// <item><c>1 panel KC</c>: one B̄ panel of depth KC called repeatedly (B̄ panel 72 KiB f32 / 48 KiB f64);</item>
/// <item><c>macro</c>: the driver's pattern: one Ā panel (8·KC) in L1 against every panel of an L2-sized
/// B̄ block (KC·NC), C a row of tiles with stride 1000;</item>
/// <item><c>stored A</c>: the same, A's 8 rows read where they are stored (stride 1000), the 2000³/n=1000 NN path.</item>
/// </list>
/// Options: <c>--precision f32|f64|both</c>, <c>--reps N</c> (best of N timings of ≈ 0.1 s), <c>--hash</c> (prints a
/// hash of Gemm.Multiply's output for a fixed set of shapes, to check that a kernel change keeps the bits).
/// </summary>
internal static unsafe class GemmKernelBench
{
    public static int Run(string[] args)
    {
        string precision = "both";
        int reps = 5;
        bool hash = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--precision": precision = args[++i]; break;
                case "--reps": reps = int.Parse(args[++i]); break;
                case "--hash": hash = true; break;
                default: Console.Error.WriteLine($"gemmkernel: unknown option '{args[i]}'"); return 2;
            }
        }
        if (precision is not ("f64" or "f32" or "both")) { Console.Error.WriteLine($"gemmkernel: --precision must be f64, f32 or both, not '{precision}'"); return 2; }
        if (hash) return Hashes();
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported) { Console.Error.WriteLine("gemmkernel: needs AVX-512"); return 2; }
        Console.WriteLine($"{"case",-34} {"prec",4} {"variant",-10} {"GF/s",8}");
        if (precision != "f64") Cases<float>(reps);
        if (precision != "f64") Whole(reps);
        if (precision != "f32") Cases<double>(reps);
        return 0;
    }

    private static void Cases<T>(int reps) where T : unmanaged, IFloatingPointIeee754<T>
    {
        string prec = typeof(T) == typeof(float) ? "f32" : "f64";
        int kc = Avx512Kernel<T>.KC, nc = Avx512Kernel<T>.NC, nr = Avx512Kernel<T>.NR;
        int kcL1 = typeof(T) == typeof(float) ? 128 : 64;
        int panels = nc / nr;
        nint lda = 1000, ldc = 1000;
        T* pa = Alloc<T>(8 * kc), pb = Alloc<T>(Math.Max(kc * nc, 334 * 528)), a = Alloc<T>(8 * (int)lda), c = Alloc<T>(8 * (int)ldc);
        var rng = new Random(1);
        Fill(pa, 8 * kc, rng); Fill(pb, Math.Max(kc * nc, 334 * 528), rng); Fill(a, 8 * (int)lda, rng);
        for (int i = 0; i < 8 * ldc; i++) c[i] = T.Zero;
        T one = T.One;
        const int big = 1000; // a square n=1000 product's block: its C (1000 × nc) and A (1000 × kc) as stored
        int kcBig = 334, ncBig = 528;
        T* aBig = Alloc<T>(big * big), cBig = Alloc<T>(big * big), paBig = Alloc<T>(big * kcBig);
        Fill(aBig, big * big, rng); Fill(cBig, big * big, rng); Fill(paBig, big * kcBig, rng);
        try
        {
            Report("FMA only (24 chains, no loads)", prec, "-", 2.0 * 24 * Vector512<T>.Count * 1000, reps, () => FmaOnly<T>(1000));
            Report($"block m={big} nc={ncBig} kc={kcBig}, stored A", prec, "MSA", 2.0 * big * ncBig * kcBig, reps,
                () => Avx512Kernel<T>.MultiplyStoredA(big, ncBig, kcBig, one, aBig, big, pb, one, cBig, big));
            T* bBig = aBig; // B as stored: rows of 1000, its kc × nc block read in place
            Report($"block m={big} nc={ncBig} kc={kcBig}, stored A+B", prec, "Direct3", 2.0 * big * ncBig * kcBig, reps, () =>
            {
                for (int i = 0; i < big; i += 8)
                    for (int j = 0; j < ncBig; j += nr)
                        Avx512Kernel<T>.StoredABAs<Direct3>(kcBig, aBig + i * big, big, bBig + j, big, cBig + i * big + j, big, one, one);
            });
            Report($"block m={big} nc={ncBig} kc={kcBig}, stored A+B", prec, "D3ct48", 2.0 * big * ncBig * kcBig, reps, () =>
            {
                for (int i = 0; i < big; i += 8)
                    for (int j = 0; j < ncBig; j += nr)
                        Avx512Kernel<T>.StoredABAs<Var<Direct3, CTail48>>(kcBig, aBig + i * big, big, bBig + j, big, cBig + i * big + j, big, one, one);
            });
            foreach (var (name, variant, run) in Variants<T>())
            {
                Report($"L1 (kc {kcL1}, 1 panel)", prec, name, 2.0 * 8 * nr * kcL1, reps, () => run(kcL1, pa, pb, c, ldc, one, one, 1, 0));
                Report($"1 panel, kc {kc}", prec, name, 2.0 * 8 * nr * kc, reps, () => run(kc, pa, pb, c, ldc, one, one, 1, 0));
                Report($"macro (kc {kc}, {panels} panels)", prec, name, 2.0 * 8 * nr * kc * panels, reps, () => run(kc, pa, pb, c, ldc, one, one, panels, 0));
                Report($"stored A (kc {kc}, {panels} panels)", prec, name, 2.0 * 8 * nr * kc * panels, reps, () => run(kc, a, pb, c, ldc, one, one, panels, lda));
                Report($"block m={big} nc={ncBig} kc={kcBig}, stored A", prec, name, 2.0 * big * ncBig * kcBig, reps, () =>
                {
                    for (int i = 0; i < big; i += 8) run(kcBig, aBig + i * big, pb, cBig + i * big, big, one, one, ncBig / nr, big);
                });
                Report($"block m={big} nc={ncBig} kc={kcBig}, packed A", prec, name, 2.0 * big * ncBig * kcBig, reps, () =>
                {
                    for (int i = 0; i < big; i += 8) run(kcBig, paBig + i * kcBig, pb, cBig + i * big, big, one, one, ncBig / nr, 0);
                });
            }
        }
        finally
        {
            NativeMemory.AlignedFree(aBig); NativeMemory.AlignedFree(cBig); NativeMemory.AlignedFree(paBig);
            NativeMemory.AlignedFree(pa); NativeMemory.AlignedFree(pb); NativeMemory.AlignedFree(a); NativeMemory.AlignedFree(c);
        }
    }

    /// <summary>The whole product n=1000 NN (ours, and OpenBLAS sgemm when installed) on one thread, for scale.</summary>
    private static void Whole(int reps)
    {
        Gemm.MaxDegreeOfParallelism = 1;
        var blas = OpenBlas.TryLoad();
        if (blas != null && !blas.TrySetThreads(1)) Console.WriteLine("OpenBLAS: cannot set its thread count");
        const int n = 1000;
        var rng = new Random(1);
        float[] a = new float[n * n], b = new float[n * n], c = new float[n * n];
        for (int i = 0; i < a.Length; i++) { a[i] = (float)(rng.NextDouble() * 2 - 1); b[i] = (float)(rng.NextDouble() * 2 - 1); }
        double flops = 2.0 * n * n * n;
        Report("whole n=1000 A·B", "f32", "ours", flops, reps, () => Gemm.Multiply(Trans.No, Trans.No, n, n, n, 1f, a, n, b, n, 0f, c, n));
        if (blas != null) Report("whole n=1000 A·B", "f32", "OpenBLAS", flops, reps, () => blas.Sgemm(false, false, n, n, n, 1f, a, n, b, n, 0f, c, n));
        fixed (float* pa = a, pbm = b, pc = c)
        {
            float* ap = pa, bp = pbm, cp = pc;
            float* packed = Alloc<float>((int)GemmDriver<float, Avx512Kernel<float>>.PackedLength(n, n));
            GemmDriver<float, Avx512Kernel<float>>.PackAll(Trans.No, bp, n, n, n, packed);
            Report("whole n=1000 A·B", "f32", "Serial", flops, reps, () => GemmDriver<float, Avx512Kernel<float>>.Serial(Trans.No, Trans.No, n, n, n, 1f, ap, n, bp, n, 0f, cp, n));
            Report("whole n=1000 A·B, B packed before", "f32", "SerialPck", flops, reps, () => GemmDriver<float, Avx512Kernel<float>>.SerialPacked(Trans.No, n, n, n, 1f, ap, n, packed, n, 0, 0f, cp, n));
            Report("pack all of B (1000²)", "f32", "PackAll", flops, reps, () => GemmDriver<float, Avx512Kernel<float>>.PackAll(Trans.No, bp, n, n, n, packed));
            // SerialPacked's six blocks by hand (3 k-slices of 334 × column blocks of 528 and 472), then with one operand's
            // addresses frozen to the first block's, to see which operand's cache misses cost.
            const int kcs = 334, nc0 = 528;
            foreach (string mode in new[] { "real", "same B̄", "same A", "same C", "same all" })
                Report($"6 blocks, {mode}", "f32", "MSA", flops, reps, () =>
                {
                    for (int pc0 = 0; pc0 < n; pc0 += kcs)
                    {
                        int kc = Math.Min(kcs, n - pc0);
                        for (int jc = 0; jc < n; jc += nc0)
                        {
                            int nc = Math.Min(nc0, n - jc);
                            bool sb = mode is "same B̄" or "same all", sa = mode is "same A" or "same all", sc = mode is "same C" or "same all";
                            float* pbBlock = packed + (sb ? 0 : (nint)pc0 * 1008 + (nint)jc * kc);
                            Avx512Kernel<float>.MultiplyStoredA(n, nc, kc, 1f, ap + (sa ? 0 : pc0), n, pbBlock, pc0 == 0 ? 0f : 1f, cp + (sc ? 0 : jc), n);
                        }
                    }
                });
            NativeMemory.AlignedFree(packed);
        }
    }

    /// <summary>24 independent FMA chains, no memory operands: the core's FMA rate (the ceiling of any 24-accumulator tile).</summary>
    private static void FmaOnly<T>(int steps) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float)) FmaOnlyF32(steps);
        else FmaOnlyF64(steps);
    }

    private static void FmaOnlyF32(int steps)
    {
        var x = Vector512.Create(1.0000001f); var y = Vector512.Create(0.9999999f);
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        Vector512<float> c8 = default, c9 = default, c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default;
        Vector512<float> c16 = default, c17 = default, c18 = default, c19 = default, c20 = default, c21 = default, c22 = default, c23 = default;
        for (int i = 0; i < steps; i++)
        {
            c0 = Avx512F.FusedMultiplyAdd(x, y, c0); c1 = Avx512F.FusedMultiplyAdd(x, y, c1); c2 = Avx512F.FusedMultiplyAdd(x, y, c2);
            c3 = Avx512F.FusedMultiplyAdd(x, y, c3); c4 = Avx512F.FusedMultiplyAdd(x, y, c4); c5 = Avx512F.FusedMultiplyAdd(x, y, c5);
            c6 = Avx512F.FusedMultiplyAdd(x, y, c6); c7 = Avx512F.FusedMultiplyAdd(x, y, c7); c8 = Avx512F.FusedMultiplyAdd(x, y, c8);
            c9 = Avx512F.FusedMultiplyAdd(x, y, c9); c10 = Avx512F.FusedMultiplyAdd(x, y, c10); c11 = Avx512F.FusedMultiplyAdd(x, y, c11);
            c12 = Avx512F.FusedMultiplyAdd(x, y, c12); c13 = Avx512F.FusedMultiplyAdd(x, y, c13); c14 = Avx512F.FusedMultiplyAdd(x, y, c14);
            c15 = Avx512F.FusedMultiplyAdd(x, y, c15); c16 = Avx512F.FusedMultiplyAdd(x, y, c16); c17 = Avx512F.FusedMultiplyAdd(x, y, c17);
            c18 = Avx512F.FusedMultiplyAdd(x, y, c18); c19 = Avx512F.FusedMultiplyAdd(x, y, c19); c20 = Avx512F.FusedMultiplyAdd(x, y, c20);
            c21 = Avx512F.FusedMultiplyAdd(x, y, c21); c22 = Avx512F.FusedMultiplyAdd(x, y, c22); c23 = Avx512F.FusedMultiplyAdd(x, y, c23);
        }
        s_sink = ((c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7) + (c8 + c9 + c10 + c11 + c12 + c13 + c14 + c15) + (c16 + c17 + c18 + c19 + c20 + c21 + c22 + c23)).ToScalar();
    }

    private static void FmaOnlyF64(int steps)
    {
        var x = Vector512.Create(1.0000001); var y = Vector512.Create(0.9999999);
        Vector512<double> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        Vector512<double> c8 = default, c9 = default, c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default;
        Vector512<double> c16 = default, c17 = default, c18 = default, c19 = default, c20 = default, c21 = default, c22 = default, c23 = default;
        for (int i = 0; i < steps; i++)
        {
            c0 = Avx512F.FusedMultiplyAdd(x, y, c0); c1 = Avx512F.FusedMultiplyAdd(x, y, c1); c2 = Avx512F.FusedMultiplyAdd(x, y, c2);
            c3 = Avx512F.FusedMultiplyAdd(x, y, c3); c4 = Avx512F.FusedMultiplyAdd(x, y, c4); c5 = Avx512F.FusedMultiplyAdd(x, y, c5);
            c6 = Avx512F.FusedMultiplyAdd(x, y, c6); c7 = Avx512F.FusedMultiplyAdd(x, y, c7); c8 = Avx512F.FusedMultiplyAdd(x, y, c8);
            c9 = Avx512F.FusedMultiplyAdd(x, y, c9); c10 = Avx512F.FusedMultiplyAdd(x, y, c10); c11 = Avx512F.FusedMultiplyAdd(x, y, c11);
            c12 = Avx512F.FusedMultiplyAdd(x, y, c12); c13 = Avx512F.FusedMultiplyAdd(x, y, c13); c14 = Avx512F.FusedMultiplyAdd(x, y, c14);
            c15 = Avx512F.FusedMultiplyAdd(x, y, c15); c16 = Avx512F.FusedMultiplyAdd(x, y, c16); c17 = Avx512F.FusedMultiplyAdd(x, y, c17);
            c18 = Avx512F.FusedMultiplyAdd(x, y, c18); c19 = Avx512F.FusedMultiplyAdd(x, y, c19); c20 = Avx512F.FusedMultiplyAdd(x, y, c20);
            c21 = Avx512F.FusedMultiplyAdd(x, y, c21); c22 = Avx512F.FusedMultiplyAdd(x, y, c22); c23 = Avx512F.FusedMultiplyAdd(x, y, c23);
        }
        s_sink = (float)((c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7) + (c8 + c9 + c10 + c11 + c12 + c13 + c14 + c15) + (c16 + c17 + c18 + c19 + c20 + c21 + c22 + c23)).ToScalar();
    }

    private static float s_sink;

    /// <summary>A run over <c>panels</c> consecutive B̄ panels (C tiles side by side); lda 0: packed Ā panel, else 8 stored rows.</summary>
    private unsafe delegate void Runner<T>(int kc, T* a, T* b, T* c, nint ldc, T alpha, T beta, int panels, nint lda) where T : unmanaged;

    private static (string Name, int Id, Runner<T> Run)[] Variants<T>() where T : unmanaged, IFloatingPointIeee754<T> =>
    [
        ("base", 0, Sweep<T, Packed3, DirectA3>),
        ("ctail32", 7, Sweep<T, Var<Packed3, CTail32>, Var<DirectA3, CTail32>>),
        ("cboth32", 8, Sweep<T, Var<Packed3, CBoth32>, Var<DirectA3, CBoth32>>),
        ("cboth64", 9, Sweep<T, Var<Packed3, CBoth64>, Var<DirectA3, CBoth64>>),
        ("ctail16", 1, Sweep<T, Var<Packed3, CTail16>, Var<DirectA3, CTail16>>),
        ("ctail48", 2, Sweep<T, Var<Packed3, CTail48>, Var<DirectA3, CTail48>>),
        ("ctail128", 3, Sweep<T, Var<Packed3, CTail128>, Var<DirectA3, CTail128>>),
        ("bpf512", 4, Sweep<T, Var<Packed3, BPf512>, Var<DirectA3, BPf512>>),
        ("bpf1024", 5, Sweep<T, Var<Packed3, BPf1024>, Var<DirectA3, BPf1024>>),
        ("bpf512ct48", 6, Sweep<T, Var<Packed3, BPf512CTail48>, Var<DirectA3, BPf512CTail48>>),
    ];

    private static void Sweep<T, SP, SD>(int kc, T* a, T* b, T* c, nint ldc, T alpha, T beta, int panels, nint lda)
        where T : unmanaged, IFloatingPointIeee754<T> where SP : struct, ITileShape where SD : struct, ITileShape
    {
        int nr = Avx512Kernel<T>.NR;
        for (int j = 0; j < panels; j++)
        {
            if (lda == 0) Avx512Kernel<T>.ComputeAs<SP>(kc, a, b + (nint)j * nr * kc, c + j * nr, ldc, alpha, beta);
            else Avx512Kernel<T>.StoredAs<SD>(kc, a, lda, b + (nint)j * nr * kc, c + j * nr, ldc, alpha, beta);
        }
    }

    private static void Report(string name, string prec, string variant, double flopsPerCall, int reps, Action call)
    {
        int calls = Math.Max(1, (int)(0.1 * 150e9 / flopsPerCall)); // ≈ 0.1 s per timing
        for (int i = 0; i < calls / 4; i++) call();
        double best = double.MaxValue;
        for (int r = 0; r < reps; r++)
        {
            double t0 = ThreadCpuSeconds();
            for (int i = 0; i < calls; i++) call();
            best = Math.Min(best, ThreadCpuSeconds() - t0);
        }
        Console.WriteLine($"{name,-34} {prec,4} {variant,-10} {flopsPerCall * calls / best / 1e9,8:F1}");
    }

    /// <summary>FNV-1a of C's bits after Gemm.Multiply, for shapes that reach every kernel path (packed, stored A, edges, slices).</summary>
    private static int Hashes()
    {
        Gemm.MaxDegreeOfParallelism = 1;
        int[][] shapes = [[1000, 1000, 1000], [260, 768, 2880], [2000, 2000, 2000], [512, 512, 512], [37, 101, 777], [64, 64, 64], [32, 768, 256]];
        foreach (var d in shapes)
            foreach (Trans ta in new[] { Trans.No, Trans.Yes })
                foreach (Trans tb in new[] { Trans.No, Trans.Yes })
                {
                    int m = d[0], n = d[1], k = d[2];
                    var rng = new Random(7);
                    float[] a = new float[m * k], b = new float[k * n], c = new float[m * n];
                    double[] a64 = new double[m * k], b64 = new double[k * n], c64 = new double[m * n];
                    for (int i = 0; i < a.Length; i++) a64[i] = a[i] = (float)(rng.NextDouble() * 2 - 1);
                    for (int i = 0; i < b.Length; i++) b64[i] = b[i] = (float)(rng.NextDouble() * 2 - 1);
                    for (int i = 0; i < c.Length; i++) c64[i] = c[i] = (float)(rng.NextDouble() * 2 - 1);
                    Gemm.Multiply(ta, tb, m, n, k, 0.75f, a, ta == Trans.No ? k : m, b, tb == Trans.No ? n : k, 0.5f, c, n);
                    Gemm.Multiply(ta, tb, m, n, k, 0.75, a64, ta == Trans.No ? k : m, b64, tb == Trans.No ? n : k, 0.5, c64, n);
                    ulong h32 = 14695981039346656037, h64 = h32;
                    foreach (float x in c) h32 = (h32 ^ BitConverter.SingleToUInt32Bits(x)) * 1099511628211;
                    foreach (double x in c64) h64 = (h64 ^ BitConverter.DoubleToUInt64Bits(x)) * 1099511628211;
                    Console.WriteLine($"{m}x{n}x{k} {(ta == Trans.No ? 'N' : 'T')}{(tb == Trans.No ? 'N' : 'T')} f32 {h32:x16} f64 {h64:x16}");
                }
        return 0;
    }

    private static T* Alloc<T>(int count) where T : unmanaged => (T*)NativeMemory.AlignedAlloc((nuint)(count * sizeof(T)), 64);

    private static void Fill<T>(T* x, int count, Random rng) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < count; i++) x[i] = T.CreateTruncating(rng.NextDouble() * 2 - 1);
    }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, long* timespec);

    /// <summary>CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID); Linux only.</summary>
    private static double ThreadCpuSeconds()
    {
        long* ts = stackalloc long[2];
        if (ClockGetTime(3, ts) != 0) throw new InvalidOperationException("clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
        return ts[0] + ts[1] * 1e-9;
    }
}
