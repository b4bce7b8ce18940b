using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GlobalNtk.Dense;

// Float32 microkernels: the same register blocking as the float64 ones (24 zmm / 12 ymm
// accumulators), with twice the lanes per vector, so each FMA does twice the work. Accumulation
// is in float32, as in BLAS sgemm; callers that need float64 sums (traces, Gram matrices,
// Krylov orthogonalisation) keep those in float64 themselves.

/// <summary>AVX-512 float32 kernel: 8 rows × 48 columns = 24 zmm accumulators + 3 B vectors + 1 broadcast (of 32 registers).</summary>
internal unsafe struct Avx512KernelF32 : IGemmKernel<float>
{
    public static int MR => 8;
    public static int NR => 48;
    public static int KC => GemmTuning.KC512F32;
    public static int MC => GemmTuning.MC512F32;
    public static int NC => GemmTuning.NC512F32;

    public static void Compute(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta) =>
        Run(kc, a, b, c, ldc, alpha, beta, NR);

    /// <summary>
    /// A full-height tile whose last columns fall outside C (<paramref name="cols"/> &lt; 48): the
    /// same loop, with masked loads and stores of C, so the tile needs no scratch copy.
    /// </summary>
    public static bool TryComputeColumnEdge(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta, int cols)
    {
        Run(kc, a, b, c, ldc, alpha, beta, cols);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Run(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta, int cols)
    {
        Vector512<float> c00 = Vector512<float>.Zero;
        Vector512<float> c01 = Vector512<float>.Zero;
        Vector512<float> c02 = Vector512<float>.Zero;
        Vector512<float> c10 = Vector512<float>.Zero;
        Vector512<float> c11 = Vector512<float>.Zero;
        Vector512<float> c12 = Vector512<float>.Zero;
        Vector512<float> c20 = Vector512<float>.Zero;
        Vector512<float> c21 = Vector512<float>.Zero;
        Vector512<float> c22 = Vector512<float>.Zero;
        Vector512<float> c30 = Vector512<float>.Zero;
        Vector512<float> c31 = Vector512<float>.Zero;
        Vector512<float> c32 = Vector512<float>.Zero;
        Vector512<float> c40 = Vector512<float>.Zero;
        Vector512<float> c41 = Vector512<float>.Zero;
        Vector512<float> c42 = Vector512<float>.Zero;
        Vector512<float> c50 = Vector512<float>.Zero;
        Vector512<float> c51 = Vector512<float>.Zero;
        Vector512<float> c52 = Vector512<float>.Zero;
        Vector512<float> c60 = Vector512<float>.Zero;
        Vector512<float> c61 = Vector512<float>.Zero;
        Vector512<float> c62 = Vector512<float>.Zero;
        Vector512<float> c70 = Vector512<float>.Zero;
        Vector512<float> c71 = Vector512<float>.Zero;
        Vector512<float> c72 = Vector512<float>.Zero;
        // Fetch the C tile while the k-loop runs: C rarely sits in L1/L2 (it outgrows L2 on large
        // products), and its 24 lines would otherwise stall the store phase.
        for (int r = 0; r < 8; r++)
        {
            float* cr = c + r * ldc;
            Sse.Prefetch0(cr); Sse.Prefetch0(cr + 16); Sse.Prefetch0(cr + 32);
        }
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b + 0);
            Vector512<float> b1 = Vector512.Load(b + 16);
            Vector512<float> b2 = Vector512.Load(b + 32);
            Vector512<float> a0 = Vector512.Create(a[0]);
            c00 = Avx512F.FusedMultiplyAdd(a0, b0, c00);
            c01 = Avx512F.FusedMultiplyAdd(a0, b1, c01);
            c02 = Avx512F.FusedMultiplyAdd(a0, b2, c02);
            Vector512<float> a1 = Vector512.Create(a[1]);
            c10 = Avx512F.FusedMultiplyAdd(a1, b0, c10);
            c11 = Avx512F.FusedMultiplyAdd(a1, b1, c11);
            c12 = Avx512F.FusedMultiplyAdd(a1, b2, c12);
            Vector512<float> a2 = Vector512.Create(a[2]);
            c20 = Avx512F.FusedMultiplyAdd(a2, b0, c20);
            c21 = Avx512F.FusedMultiplyAdd(a2, b1, c21);
            c22 = Avx512F.FusedMultiplyAdd(a2, b2, c22);
            Vector512<float> a3 = Vector512.Create(a[3]);
            c30 = Avx512F.FusedMultiplyAdd(a3, b0, c30);
            c31 = Avx512F.FusedMultiplyAdd(a3, b1, c31);
            c32 = Avx512F.FusedMultiplyAdd(a3, b2, c32);
            Vector512<float> a4 = Vector512.Create(a[4]);
            c40 = Avx512F.FusedMultiplyAdd(a4, b0, c40);
            c41 = Avx512F.FusedMultiplyAdd(a4, b1, c41);
            c42 = Avx512F.FusedMultiplyAdd(a4, b2, c42);
            Vector512<float> a5 = Vector512.Create(a[5]);
            c50 = Avx512F.FusedMultiplyAdd(a5, b0, c50);
            c51 = Avx512F.FusedMultiplyAdd(a5, b1, c51);
            c52 = Avx512F.FusedMultiplyAdd(a5, b2, c52);
            Vector512<float> a6 = Vector512.Create(a[6]);
            c60 = Avx512F.FusedMultiplyAdd(a6, b0, c60);
            c61 = Avx512F.FusedMultiplyAdd(a6, b1, c61);
            c62 = Avx512F.FusedMultiplyAdd(a6, b2, c62);
            Vector512<float> a7 = Vector512.Create(a[7]);
            c70 = Avx512F.FusedMultiplyAdd(a7, b0, c70);
            c71 = Avx512F.FusedMultiplyAdd(a7, b1, c71);
            c72 = Avx512F.FusedMultiplyAdd(a7, b2, c72);
            a += 8; b += 48;
        }
        Vector512<float> va = Vector512.Create(alpha);
        Vector512<float> vb = Vector512.Create(beta);
        bool full = cols == NR, beta0 = beta == 0; // full: a JIT-time constant from Compute
        Vector512<float> m0 = default, m1 = default, m2 = default;
        if (!full)
        {
            Vector512<int> lane = Vector512<int>.Indices, n = Vector512.Create(cols);
            m0 = Vector512.LessThan(lane, n).AsSingle();
            m1 = Vector512.LessThan(lane + Vector512.Create(16), n).AsSingle();
            m2 = Vector512.LessThan(lane + Vector512.Create(32), n).AsSingle();
        }
        Put(c + 0 * ldc + 0, c00, va, vb, beta0, full, m0);
        Put(c + 0 * ldc + 16, c01, va, vb, beta0, full, m1);
        Put(c + 0 * ldc + 32, c02, va, vb, beta0, full, m2);
        Put(c + 1 * ldc + 0, c10, va, vb, beta0, full, m0);
        Put(c + 1 * ldc + 16, c11, va, vb, beta0, full, m1);
        Put(c + 1 * ldc + 32, c12, va, vb, beta0, full, m2);
        Put(c + 2 * ldc + 0, c20, va, vb, beta0, full, m0);
        Put(c + 2 * ldc + 16, c21, va, vb, beta0, full, m1);
        Put(c + 2 * ldc + 32, c22, va, vb, beta0, full, m2);
        Put(c + 3 * ldc + 0, c30, va, vb, beta0, full, m0);
        Put(c + 3 * ldc + 16, c31, va, vb, beta0, full, m1);
        Put(c + 3 * ldc + 32, c32, va, vb, beta0, full, m2);
        Put(c + 4 * ldc + 0, c40, va, vb, beta0, full, m0);
        Put(c + 4 * ldc + 16, c41, va, vb, beta0, full, m1);
        Put(c + 4 * ldc + 32, c42, va, vb, beta0, full, m2);
        Put(c + 5 * ldc + 0, c50, va, vb, beta0, full, m0);
        Put(c + 5 * ldc + 16, c51, va, vb, beta0, full, m1);
        Put(c + 5 * ldc + 32, c52, va, vb, beta0, full, m2);
        Put(c + 6 * ldc + 0, c60, va, vb, beta0, full, m0);
        Put(c + 6 * ldc + 16, c61, va, vb, beta0, full, m1);
        Put(c + 6 * ldc + 32, c62, va, vb, beta0, full, m2);
        Put(c + 7 * ldc + 0, c70, va, vb, beta0, full, m0);
        Put(c + 7 * ldc + 16, c71, va, vb, beta0, full, m1);
        Put(c + 7 * ldc + 32, c72, va, vb, beta0, full, m2);
    }

    /// <summary>C row segment = alpha·acc (+ beta·C); under <paramref name="mask"/> only when not <paramref name="full"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(float* c, Vector512<float> acc, Vector512<float> va, Vector512<float> vb, bool beta0, bool full, Vector512<float> mask)
    {
        if (full)
        {
            if (beta0) Vector512.Store(va * acc, c);
            else Vector512.Store(Avx512F.FusedMultiplyAdd(va, acc, vb * Vector512.Load(c)), c);
        }
        else
        {
            if (beta0) Avx512F.MaskStore(c, mask, va * acc);
            else Avx512F.MaskStore(c, mask, Avx512F.FusedMultiplyAdd(va, acc, vb * Avx512F.MaskLoad(c, mask, Vector512<float>.Zero)));
        }
    }
}

/// <summary>AVX2/FMA float32 kernel: 6 rows × 16 columns = 12 ymm accumulators + 2 B vectors + 1 broadcast (of 16 registers).</summary>
internal unsafe struct Avx2KernelF32 : IGemmKernel<float>
{
    public static int MR => 6;
    public static int NR => 16;
    public static int KC => 256;
    public static int MC => 96;
    public static int NC => 4096;

    public static void Compute(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        Vector256<float> c00 = Vector256<float>.Zero;
        Vector256<float> c01 = Vector256<float>.Zero;
        Vector256<float> c10 = Vector256<float>.Zero;
        Vector256<float> c11 = Vector256<float>.Zero;
        Vector256<float> c20 = Vector256<float>.Zero;
        Vector256<float> c21 = Vector256<float>.Zero;
        Vector256<float> c30 = Vector256<float>.Zero;
        Vector256<float> c31 = Vector256<float>.Zero;
        Vector256<float> c40 = Vector256<float>.Zero;
        Vector256<float> c41 = Vector256<float>.Zero;
        Vector256<float> c50 = Vector256<float>.Zero;
        Vector256<float> c51 = Vector256<float>.Zero;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(b + 0);
            Vector256<float> b1 = Vector256.Load(b + 8);
            Vector256<float> a0 = Vector256.Create(a[0]);
            c00 = Fma.MultiplyAdd(a0, b0, c00);
            c01 = Fma.MultiplyAdd(a0, b1, c01);
            Vector256<float> a1 = Vector256.Create(a[1]);
            c10 = Fma.MultiplyAdd(a1, b0, c10);
            c11 = Fma.MultiplyAdd(a1, b1, c11);
            Vector256<float> a2 = Vector256.Create(a[2]);
            c20 = Fma.MultiplyAdd(a2, b0, c20);
            c21 = Fma.MultiplyAdd(a2, b1, c21);
            Vector256<float> a3 = Vector256.Create(a[3]);
            c30 = Fma.MultiplyAdd(a3, b0, c30);
            c31 = Fma.MultiplyAdd(a3, b1, c31);
            Vector256<float> a4 = Vector256.Create(a[4]);
            c40 = Fma.MultiplyAdd(a4, b0, c40);
            c41 = Fma.MultiplyAdd(a4, b1, c41);
            Vector256<float> a5 = Vector256.Create(a[5]);
            c50 = Fma.MultiplyAdd(a5, b0, c50);
            c51 = Fma.MultiplyAdd(a5, b1, c51);
            a += 6; b += 16;
        }
        Vector256<float> va = Vector256.Create(alpha);
        if (beta == 0)
        {
            Vector256.Store(va * c00, c + 0 * ldc + 0);
            Vector256.Store(va * c01, c + 0 * ldc + 8);
            Vector256.Store(va * c10, c + 1 * ldc + 0);
            Vector256.Store(va * c11, c + 1 * ldc + 8);
            Vector256.Store(va * c20, c + 2 * ldc + 0);
            Vector256.Store(va * c21, c + 2 * ldc + 8);
            Vector256.Store(va * c30, c + 3 * ldc + 0);
            Vector256.Store(va * c31, c + 3 * ldc + 8);
            Vector256.Store(va * c40, c + 4 * ldc + 0);
            Vector256.Store(va * c41, c + 4 * ldc + 8);
            Vector256.Store(va * c50, c + 5 * ldc + 0);
            Vector256.Store(va * c51, c + 5 * ldc + 8);
        }
        else
        {
            Vector256<float> vb = Vector256.Create(beta);
            Vector256.Store(Fma.MultiplyAdd(va, c00, vb * Vector256.Load(c + 0 * ldc + 0)), c + 0 * ldc + 0);
            Vector256.Store(Fma.MultiplyAdd(va, c01, vb * Vector256.Load(c + 0 * ldc + 8)), c + 0 * ldc + 8);
            Vector256.Store(Fma.MultiplyAdd(va, c10, vb * Vector256.Load(c + 1 * ldc + 0)), c + 1 * ldc + 0);
            Vector256.Store(Fma.MultiplyAdd(va, c11, vb * Vector256.Load(c + 1 * ldc + 8)), c + 1 * ldc + 8);
            Vector256.Store(Fma.MultiplyAdd(va, c20, vb * Vector256.Load(c + 2 * ldc + 0)), c + 2 * ldc + 0);
            Vector256.Store(Fma.MultiplyAdd(va, c21, vb * Vector256.Load(c + 2 * ldc + 8)), c + 2 * ldc + 8);
            Vector256.Store(Fma.MultiplyAdd(va, c30, vb * Vector256.Load(c + 3 * ldc + 0)), c + 3 * ldc + 0);
            Vector256.Store(Fma.MultiplyAdd(va, c31, vb * Vector256.Load(c + 3 * ldc + 8)), c + 3 * ldc + 8);
            Vector256.Store(Fma.MultiplyAdd(va, c40, vb * Vector256.Load(c + 4 * ldc + 0)), c + 4 * ldc + 0);
            Vector256.Store(Fma.MultiplyAdd(va, c41, vb * Vector256.Load(c + 4 * ldc + 8)), c + 4 * ldc + 8);
            Vector256.Store(Fma.MultiplyAdd(va, c50, vb * Vector256.Load(c + 5 * ldc + 0)), c + 5 * ldc + 0);
            Vector256.Store(Fma.MultiplyAdd(va, c51, vb * Vector256.Load(c + 5 * ldc + 8)), c + 5 * ldc + 8);
        }
    }
}
