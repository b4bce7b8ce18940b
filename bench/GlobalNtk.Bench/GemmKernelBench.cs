using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using GlobalNtk.Dense;

namespace GlobalNtk.Bench;

/// <summary>
/// <c>gemmkernel</c>: the AVX-512 microkernel alone (one thread, GFLOP/s by the thread's CPU time, best of
/// <c>--reps</c> timings of ≈ 0.1 s), to tell the kernel's compute rate from its feed and from the rest of
/// the product. Cases, from the inside out:
/// <list type="bullet">
/// <item><c>FMA only</c>: 24 independent FMA chains without memory operands: the core's FMA ceiling;</item>
/// <item><c>L1</c>: one 8-row tile, Ā panel and one B̄ panel both in L1 (kc 128 f32 / 64 f64), the same C tile;</item>
/// <item><c>1 panel, kc KC</c>: one B̄ panel of a whole slice's depth, called repeatedly;</item>
/// <item><c>macro</c>: the driver's order: one Ā panel (8·KC) in L1 against every panel of an L2-sized B̄ block (KC·NC);</item>
/// <item><c>stored A</c>: the same, A's 8 rows read where they are stored (stride 1000), the NN path;</item>
/// <item><c>block</c>: one block of a square n = 1000 product as the driver cuts it (1000 rows, first slice and
/// column block), A and C as stored, B̄ packed; also through <c>MultiplyStoredA</c>, and with B read in place;</item>
/// <item>f32 only: the whole n = 1000 product (ours, <c>GemmDriver.Serial</c>, <c>SerialPacked</c> on a B packed
/// beforehand, OpenBLAS sgemm when installed), the cost of packing all of B, the six blocks of that product
/// with one operand's addresses frozen at a time (which operand's cache misses cost), and a probe of a
/// 12 × 2-vector tile against the 8 × 3 one.</item>
/// </list>
/// Options: <c>--precision f32|f64|both</c>, <c>--reps N</c>, <c>--hash</c> (instead: a hash of
/// <c>Gemm.Multiply</c>'s output bits for a fixed set of shapes, transposes and both precisions, to check
/// that a kernel change keeps the bits).
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
        if (precision != "f64") Probe12x2(reps);
        if (precision != "f32") Cases<double>(reps);
        return 0;
    }

    private static void Cases<T>(int reps) where T : unmanaged, IFloatingPointIeee754<T>
    {
        string prec = typeof(T) == typeof(float) ? "f32" : "f64";
        int kc = Avx512Kernel<T>.KC, nc = Avx512Kernel<T>.NC, nr = Avx512Kernel<T>.NR;
        int kcL1 = typeof(T) == typeof(float) ? 128 : 64;
        int panels = nc / nr;
        // One block of a square n=1000 product as the driver cuts it (first k-slice, first column block): A and C as stored.
        const int big = 1000;
        int kcBig = DivUp(big, DivUp(big, kc)), ncBig = DivUp(DivUp(big, DivUp(big, nc)), nr) * nr;
        nint lda = big, ldc = big;
        int pbLength = Math.Max(kc * nc, kcBig * ncBig);
        T* pa = Alloc<T>(8 * kc), pb = Alloc<T>(pbLength), c = Alloc<T>(8 * big);
        T* aBig = Alloc<T>(big * big), bBig = Alloc<T>(big * big), cBig = Alloc<T>(big * big), paBig = Alloc<T>(big * kcBig);
        var rng = new Random(1);
        Fill(pa, 8 * kc, rng); Fill(pb, pbLength, rng); Fill(c, 8 * big, rng);
        Fill(aBig, big * big, rng); Fill(bBig, big * big, rng); Fill(cBig, big * big, rng); Fill(paBig, big * kcBig, rng);
        T one = T.One;
        double blockFlops = 2.0 * big * ncBig * kcBig;
        try
        {
            Report("FMA only (24 chains, no loads)", prec, "-", 2.0 * 24 * Vector512<T>.Count * 1000, reps, () => FmaOnly<T>(1000));
            foreach (var (name, _, run) in Variants<T>())
            {
                Report($"L1 (kc {kcL1}, 1 panel)", prec, name, 2.0 * 8 * nr * kcL1, reps, () => run(kcL1, pa, pb, c, ldc, one, one, 1, 0));
                Report($"1 panel, kc {kc}", prec, name, 2.0 * 8 * nr * kc, reps, () => run(kc, pa, pb, c, ldc, one, one, 1, 0));
                Report($"macro (kc {kc}, {panels} panels)", prec, name, 2.0 * 8 * nr * kc * panels, reps, () => run(kc, pa, pb, c, ldc, one, one, panels, 0));
                Report($"stored A (kc {kc}, {panels} panels)", prec, name, 2.0 * 8 * nr * kc * panels, reps, () => run(kc, aBig, pb, c, ldc, one, one, panels, lda));
                Report($"block m={big} nc={ncBig} kc={kcBig}, stored A", prec, name, blockFlops, reps, () =>
                {
                    for (int i = 0; i < big; i += 8) run(kcBig, aBig + i * lda, pb, cBig + i * ldc, ldc, one, one, ncBig / nr, lda);
                });
                Report($"block m={big} nc={ncBig} kc={kcBig}, packed A", prec, name, blockFlops, reps, () =>
                {
                    for (int i = 0; i < big; i += 8) run(kcBig, paBig + i * kcBig, pb, cBig + i * ldc, ldc, one, one, ncBig / nr, 0);
                });
                // C 8 bytes past a line (as a managed array's data may start): every row of the tile spans one more line.
                Report($"block m={big} nc={ncBig} kc={kcBig}, stored A, C +8 B", prec, name, blockFlops, reps, () =>
                {
                    T* c8 = (T*)((byte*)cBig + 8);
                    for (int i = 0; i < big - 1; i += 8) run(kcBig, aBig + i * lda, pb, c8 + i * ldc, ldc, one, one, ncBig / nr, lda);
                });
            }
            // The same block through the driver's stored-A entry, and with B read where it is stored instead of packed.
            Report($"block m={big} nc={ncBig} kc={kcBig}, stored A", prec, "MultStorA", blockFlops, reps,
                () => Avx512Kernel<T>.MultiplyStoredA(big, ncBig, kcBig, one, aBig, lda, pb, one, cBig, ldc));
            Report($"block m={big} nc={ncBig} kc={kcBig}, stored A, B", prec, "Direct", blockFlops, reps,
                () => Avx512Kernel<T>.Direct(Trans.No, Trans.No, big, ncBig, kcBig, one, aBig, lda, bBig, big, one, cBig, ldc));
        }
        finally
        {
            foreach (nint x in new[] { (nint)pa, (nint)pb, (nint)c, (nint)aBig, (nint)bBig, (nint)cBig, (nint)paBig })
                NativeMemory.AlignedFree((void*)x);
        }
    }

    private static int DivUp(int a, int b) => (a + b - 1) / b;

    /// <summary>
    /// Probe of another tile shape with the same 24 accumulators: 12 rows × 2 vectors (32 float32 columns), 12 broadcasts and
    /// 2 loads per k-step (B̄ panel kc·128 B instead of kc·192 B), on 12 stored rows of A and a packed 32-column B̄ panel;
    /// C += A·B̄ with the kernel's epilogue. Not in the library: this measures whether the shape would pay.
    /// </summary>
    private static void Tile12x2(int kc, float* a, nint lda, float* b, float* c, nint ldc)
    {
        for (int r = 0; r < 12; r++) { Sse.Prefetch0(c + r * ldc); Sse.Prefetch0(c + r * ldc + 16); }
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        Vector512<float> c80 = default, c81 = default, c90 = default, c91 = default, ca0 = default, ca1 = default, cb0 = default, cb1 = default;
        float* a0 = a, a3 = a + 3 * lda, a6 = a + 6 * lda, a9 = a + 9 * lda;
        nint l2 = 2 * lda;
        for (float* bEnd = b + kc * 32; b < bEnd; b += 32)
        {
            var b0 = Vector512.Load(b); var b1 = Vector512.Load(b + 16);
            var x = Vector512.Create(a0[0]); c00 = Avx512F.FusedMultiplyAdd(x, b0, c00); c01 = Avx512F.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a0[lda]); c10 = Avx512F.FusedMultiplyAdd(x, b0, c10); c11 = Avx512F.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a0[l2]); c20 = Avx512F.FusedMultiplyAdd(x, b0, c20); c21 = Avx512F.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a3[0]); c30 = Avx512F.FusedMultiplyAdd(x, b0, c30); c31 = Avx512F.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a3[lda]); c40 = Avx512F.FusedMultiplyAdd(x, b0, c40); c41 = Avx512F.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a3[l2]); c50 = Avx512F.FusedMultiplyAdd(x, b0, c50); c51 = Avx512F.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(a6[0]); c60 = Avx512F.FusedMultiplyAdd(x, b0, c60); c61 = Avx512F.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(a6[lda]); c70 = Avx512F.FusedMultiplyAdd(x, b0, c70); c71 = Avx512F.FusedMultiplyAdd(x, b1, c71);
            x = Vector512.Create(a6[l2]); c80 = Avx512F.FusedMultiplyAdd(x, b0, c80); c81 = Avx512F.FusedMultiplyAdd(x, b1, c81);
            x = Vector512.Create(a9[0]); c90 = Avx512F.FusedMultiplyAdd(x, b0, c90); c91 = Avx512F.FusedMultiplyAdd(x, b1, c91);
            x = Vector512.Create(a9[lda]); ca0 = Avx512F.FusedMultiplyAdd(x, b0, ca0); ca1 = Avx512F.FusedMultiplyAdd(x, b1, ca1);
            x = Vector512.Create(a9[l2]); cb0 = Avx512F.FusedMultiplyAdd(x, b0, cb0); cb1 = Avx512F.FusedMultiplyAdd(x, b1, cb1);
            a0++; a3++; a6++; a9++;
        }
        var va = Vector512.Create(1f); var vb = Vector512.Create(1f);
        Put2(c, c00, c01, va, vb); Put2(c + ldc, c10, c11, va, vb); Put2(c + 2 * ldc, c20, c21, va, vb);
        Put2(c + 3 * ldc, c30, c31, va, vb); Put2(c + 4 * ldc, c40, c41, va, vb); Put2(c + 5 * ldc, c50, c51, va, vb);
        Put2(c + 6 * ldc, c60, c61, va, vb); Put2(c + 7 * ldc, c70, c71, va, vb); Put2(c + 8 * ldc, c80, c81, va, vb);
        Put2(c + 9 * ldc, c90, c91, va, vb); Put2(c + 10 * ldc, ca0, ca1, va, vb); Put2(c + 11 * ldc, cb0, cb1, va, vb);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static void Put2(float* c, Vector512<float> x0, Vector512<float> x1, Vector512<float> va, Vector512<float> vb)
    {
        Vector512.Store(Avx512F.FusedMultiplyAdd(va, x0, vb * Vector512.Load(c)), c);
        Vector512.Store(Avx512F.FusedMultiplyAdd(va, x1, vb * Vector512.Load(c + 16)), c + 16);
    }

    /// <summary>The 12×2 probe against the library's 8×3 tile on the same patterns (f32, stored A).</summary>
    private static void Probe12x2(int reps)
    {
        const int big = 1000, kc = 334;
        float* a = Alloc<float>(big * big), c = Alloc<float>(big * big), pb = Alloc<float>(kc * 528);
        var rng = new Random(3);
        Fill(a, big * big, rng); Fill(c, big * big, rng); Fill(pb, kc * 528, rng);
        try
        {
            Report($"stored A, 1 strip (kc {kc}, 11 panels)", "f32", "8x3", 2.0 * 8 * 48 * kc * 11, reps, () =>
            {
                for (int j = 0; j < 528; j += 48) Avx512Kernel<float>.StoredAs<DirectA3>(kc, a, big, pb + j * kc, c + j, big, 1f, 1f);
            });
            Report($"stored A, 1 strip (kc {kc}, 16 panels)", "f32", "12x2", 2.0 * 12 * 32 * kc * 16, reps, () =>
            {
                for (int j = 0; j < 512; j += 32) Tile12x2(kc, a, big, pb + j * kc, c + j, big);
            });
            Report($"block m={big} nc=528 kc={kc}, stored A", "f32", "8x3", 2.0 * big * 528 * kc, reps, () =>
            {
                for (int i = 0; i < big; i += 8)
                    for (int j = 0; j < 528; j += 48) Avx512Kernel<float>.StoredAs<DirectA3>(kc, a + i * big, big, pb + j * kc, c + i * big + j, big, 1f, 1f);
            });
            Report($"block m=996 nc=512 kc={kc}, stored A", "f32", "12x2", 2.0 * 996 * 512 * kc, reps, () =>
            {
                for (int i = 0; i + 12 <= big; i += 12)
                    for (int j = 0; j < 512; j += 32) Tile12x2(kc, a + i * big, big, pb + j * kc, c + i * big + j, big);
            });
        }
        finally
        {
            NativeMemory.AlignedFree(a); NativeMemory.AlignedFree(c); NativeMemory.AlignedFree(pb);
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
        var x = Vector512.Create(T.One + T.CreateTruncating(1e-7)); var y = Vector512.Create(T.One - T.CreateTruncating(1e-7));
        Vector512<T> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        Vector512<T> c8 = default, c9 = default, c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default;
        Vector512<T> c16 = default, c17 = default, c18 = default, c19 = default, c20 = default, c21 = default, c22 = default, c23 = default;
        for (int i = 0; i < steps; i++)
        {
            c0 = Fma(x, y, c0); c1 = Fma(x, y, c1); c2 = Fma(x, y, c2); c3 = Fma(x, y, c3); c4 = Fma(x, y, c4); c5 = Fma(x, y, c5);
            c6 = Fma(x, y, c6); c7 = Fma(x, y, c7); c8 = Fma(x, y, c8); c9 = Fma(x, y, c9); c10 = Fma(x, y, c10); c11 = Fma(x, y, c11);
            c12 = Fma(x, y, c12); c13 = Fma(x, y, c13); c14 = Fma(x, y, c14); c15 = Fma(x, y, c15); c16 = Fma(x, y, c16); c17 = Fma(x, y, c17);
            c18 = Fma(x, y, c18); c19 = Fma(x, y, c19); c20 = Fma(x, y, c20); c21 = Fma(x, y, c21); c22 = Fma(x, y, c22); c23 = Fma(x, y, c23);
        }
        s_sink = float.CreateTruncating(((c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7) + (c8 + c9 + c10 + c11 + c12 + c13 + c14 + c15)
            + (c16 + c17 + c18 + c19 + c20 + c21 + c22 + c23)).ToScalar());
    }

    /// <summary>x·y + z on zmm, one instruction in either precision (the type test folds when the JIT specialises T).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Fma<T>(Vector512<T> x, Vector512<T> y, Vector512<T> z) where T : unmanaged =>
        typeof(T) == typeof(float)
            ? Avx512F.FusedMultiplyAdd(x.AsSingle(), y.AsSingle(), z.AsSingle()).As<float, T>()
            : Avx512F.FusedMultiplyAdd(x.AsDouble(), y.AsDouble(), z.AsDouble()).As<double, T>();

    private static float s_sink;

    /// <summary>A run over <c>panels</c> consecutive B̄ panels (C tiles side by side); lda 0: packed Ā panel, else 8 stored rows.</summary>
    private unsafe delegate void Runner<T>(int kc, T* a, T* b, T* c, nint ldc, T alpha, T beta, int panels, nint lda) where T : unmanaged;

    /// <summary>Kernel variants measured side by side (the tile shapes as the driver runs them; add a shape here to compare one).</summary>
    private static (string Name, int Id, Runner<T> Run)[] Variants<T>() where T : unmanaged, IFloatingPointIeee754<T> =>
    [
        ("base", 0, Sweep<T, Packed3, DirectA3>),
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
