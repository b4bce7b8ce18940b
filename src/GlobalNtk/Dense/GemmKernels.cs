using System.Runtime.CompilerServices;
using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GlobalNtk.Dense;

/// <summary>
/// A register-blocked GEMM microkernel: <c>C[0:MR, 0:NR] = alpha·Ā·B̄ + beta·C</c> where Ā is a packed
/// MR-row micro-panel (<c>kc</c> groups of MR values, one per k) and B̄ a packed NR-column micro-panel
/// (<c>kc</c> groups of NR values). beta == 0 overwrites C without reading it (NaN in C is ignored).
/// The blocking sizes travel with the kernel because they depend on its register footprint.
/// </summary>
internal unsafe interface IGemmKernel<T> where T : unmanaged
{
    /// <summary>Rows of C per microkernel call (broadcast dimension).</summary>
    static abstract int MR { get; }
    /// <summary>Columns of C per microkernel call (vector dimension).</summary>
    static abstract int NR { get; }
    /// <summary>Depth of a k-slice (the Ā micro-panel MR·KC should sit in L1); it fixes the order of the sums, so the bits.</summary>
    static abstract int KC { get; }
    /// <summary>Rows of A per pass over B (the packed Ā block MC·KC sits in L3).</summary>
    static abstract int MC { get; }
    /// <summary>Columns of the packed B̄ block (KC·NC should sit in L2; its panels stream from there).</summary>
    static abstract int NC { get; }
    /// <summary>Columns of the B̄ block when B is stored untransposed, where that differs from <see cref="NC"/> (0: NC).</summary>
    static virtual int NCStoredB => 0;
    static abstract void Compute(int kc, T* a, T* b, T* c, nint ldc, T alpha, T beta);
    /// <summary>
    /// <see cref="Compute"/> for a tile cut by the edges of C: only its first <paramref name="rows"/> ≤ MR
    /// rows and <paramref name="cols"/> ≤ NR columns are written, straight into C; false (the default)
    /// when the kernel has no such path, and the driver runs the tile into scratch and copies it out.
    /// </summary>
    static virtual bool TryComputeEdge(int kc, T* a, T* b, T* c, nint ldc, T alpha, T beta, int rows, int cols) => false;
    /// <summary>Whether the kernel has <see cref="MultiplyStoredA"/>.</summary>
    static virtual bool MultipliesStoredA => false;
    /// <summary>
    /// C[0:m, 0:nc] = alpha·A·B̄ + beta·C, A(i, p) = a[i·lda + p] read where it is stored (p &lt; kc),
    /// B̄ a packed block of nc columns; every edge handled, with the same bits as the packed-A path.
    /// </summary>
    static virtual void MultiplyStoredA(int m, int nc, int kc, T alpha, T* a, nint lda, T* pb, T beta, T* c, nint ldc) =>
        throw new NotSupportedException();
}

/// <summary>Portable scalar kernel (4 × 4) for CPUs without FMA vectors; same packing contract, either precision.</summary>
internal unsafe struct ScalarKernel<T> : IGemmKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public static int MR => 4;
    public static int NR => 4;
    public static int KC => 256;
    public static int MC => 1024;
    public static int NC => 256;

    public static void Compute(int kc, T* a, T* b, T* c, nint ldc, T alpha, T beta)
    {
        // 16 named accumulators (not an array) so the JIT keeps them in registers.
        T c00 = T.Zero, c01 = T.Zero, c02 = T.Zero, c03 = T.Zero, c10 = T.Zero, c11 = T.Zero, c12 = T.Zero, c13 = T.Zero;
        T c20 = T.Zero, c21 = T.Zero, c22 = T.Zero, c23 = T.Zero, c30 = T.Zero, c31 = T.Zero, c32 = T.Zero, c33 = T.Zero;
        for (int p = 0; p < kc; p++)
        {
            T b0 = b[0], b1 = b[1], b2 = b[2], b3 = b[3];
            T a0 = a[0];
            c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
            T a1 = a[1];
            c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
            T a2 = a[2];
            c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
            T a3 = a[3];
            c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            a += 4; b += 4;
        }
        Store(c + 0 * ldc, c00, c01, c02, c03, alpha, beta);
        Store(c + 1 * ldc, c10, c11, c12, c13, alpha, beta);
        Store(c + 2 * ldc, c20, c21, c22, c23, alpha, beta);
        Store(c + 3 * ldc, c30, c31, c32, c33, alpha, beta);
    }

    private static void Store(T* c, T x0, T x1, T x2, T x3, T alpha, T beta)
    {
        if (beta == T.Zero)
        {
            c[0] = alpha * x0; c[1] = alpha * x1; c[2] = alpha * x2; c[3] = alpha * x3;
        }
        else
        {
            // Fused like the vector kernels' epilogue (and the driver's edge tiles).
            c[0] = T.FusedMultiplyAdd(alpha, x0, beta * c[0]); c[1] = T.FusedMultiplyAdd(alpha, x1, beta * c[1]);
            c[2] = T.FusedMultiplyAdd(alpha, x2, beta * c[2]); c[3] = T.FusedMultiplyAdd(alpha, x3, beta * c[3]);
        }
    }
}

/// <summary>Blocking sizes of the AVX-512 path (mutable only so the benchmark can tune them).</summary>
internal static class GemmTuning
{
    // Per core: 48 KiB L1d, 2 MiB L2 (Sapphire Rapids; Zen 5 has 1 MiB). The Ā panel in L1 is
    // 8·KC values (16 KiB f64, 12 KiB f32); the B̄ block KC·NC (≈ 1 MiB in either precision) sits in
    // L2, and the MC-row Ā block (MC·KC) in L3. KC sets the k-slices, and with them the bits of a
    // product, so it stays where it was. Swept with the bench's --kc/--mc/--nc options: f32 NC 336–1008
    // and KC 256–1000 were within the noise of these; a B̄ block past L2 (KC 720, NC 768) lost 30 %;
    // an L2-sized Ā block (MC 192–768) lost 2–15 % on Aᵀ products.
    internal static int KC512 = 256;
    internal static int MC512 = 4800;
    internal static int NC512 = 480;

    internal static int KC512F32 = 384;
    internal static int MC512F32 = 4800;
    internal static int NC512F32 = 528;
    // An untransposed B is packed into wider blocks (KC·768 floats, 1.2 MiB): the K-shape
    // [2880×260]ᵀ·[2880×768] then runs in one block: +2 to +8 points against OpenBLAS in five of six
    // runs (one three-round run showed −3), and small-m products (m = 32–64, n = 768) gain 1–4. A
    // transposed B keeps 528: a 768-column block cost the NTK step [32×256]·[768×256]ᵀ 10–14 points.
    // Only shapes with 528 < n ≤ 768 or n > 1056 block differently; the bits do not depend on NC.
    internal static int NC512F32StoredB = 768;
}
