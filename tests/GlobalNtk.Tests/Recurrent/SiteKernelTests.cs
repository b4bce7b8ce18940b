using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Recurrent;
using Xunit;
using static GlobalNtk.Tests.Recurrent.RecurrentTestKit;

namespace GlobalNtk.Tests.Recurrent;

/// <summary>
/// K's fused site kernel (<see cref="ChainLinearization.TryAddSiteKernel"/> of a single-layer
/// recurrent net) on cells wide enough that its sites run as GEMMs: H = 20 gives d̂ = 21 &gt; 8 for
/// the hidden site, N = 10 a GEMM input site too (N = 2 keeps it on the narrow path). The reference
/// is K = J_θ J_θ* from the parameter maps, which share no code with the kernel (the small models of
/// the other tests have d̂ ≤ 8, the kernel's narrow path only). G·H ≥ 60 columns per site split into
/// two 48-column parts when the threads are forced on, 36 rows into 8-row parts.
/// </summary>
public class SiteKernelTests
{
    private const int Trials = 4, Steps = 9;   // 36 rows: not a multiple of the 8-row groups

    public static TheoryData<string, int, string> Cases()
    {
        var data = new TheoryData<string, int, string>();
        foreach (var arch in RecurrentConfig.Architectures)
            foreach (int inputs in new[] { 2, 10 })
                foreach (var precision in new[] { "f64", "f32" })
                    data.Add(arch, inputs, precision);
        return data;
    }

    private static ChainLinearization Linearize(string arch, int inputs, Precision precision)
    {
        var model = RecurrentModel.Create(new RecurrentConfig(arch, inputs, 20, 3) { Seed = 5, Gain = 1.3, Alpha = 0.3 });
        return model.Linearize(Inputs(model, Trials, Steps), InitialState(model, Trials), precision);
    }

    /// <summary>y = K q for <paramref name="count"/> vectors through the site kernel.</summary>
    private static double[] Kernel(ChainLinearization lin, double[] q, int count)
    {
        var y = new double[q.Length];
        Assert.True(lin.TryAddSiteKernel(q, y, count));
        return y;
    }

    /// <summary>K q = J_θ (J_θ* q) in float64.</summary>
    private static double[] JJStar(ChainLinearization lin, double[] q, int count)
    {
        var th = new double[count * lin.Parameters.TotalSize];
        lin.ParamVjp(q, th, count);
        var y = new double[q.Length];
        lin.ParamJvp(th, y, count);
        return y;
    }

    [Theory, MemberData(nameof(Cases))]
    public void KernelEqualsJJStarAndIgnoresChunksAndThreads(string arch, int inputs, string precisionName)
    {
        Assert.True(PrecisionNames.TryParse(precisionName, out var precision));
        var lin = Linearize(arch, inputs, precision);
        var reference = JJStar(Linearize(arch, inputs, Precision.F64), Random(3 * lin.StateShape.Size, 21), 3);
        var q = Random(3 * lin.StateShape.Size, 21);
        var y = Kernel(lin, q, 3);
        // float64: both sides are sums of the same products in different orders, each within
        // γ_n Σ|terms| (n ≤ 36 rows · 21 columns, γ_n ≈ 8e-14); measured ≤ 1.3e-16. 1e-12 leaves room
        // for Σ|terms| ≫ |K q| and is far below any indexing or bias-term error (O(1)).
        // float32: the kernel's rounding to float32 (u = 6e-8) of Û, the caches and every sum,
        // against float64 (measured ≤ 1.7e-7): 1e-5, as the other float32 operator tests.
        double tol = precision == Precision.F32 ? 1e-5 : 1e-12;
        Assert.True(RelErr(y, reference) <= tol, $"{arch} N={inputs} {precisionName}: K q vs J J* q {RelErr(y, reference):E2}");

        // One vector at a time gives the block's bits: the vectors never share a sum.
        int size = lin.StateShape.Size;
        for (int j = 0; j < 3; j++)
            Assert.Equal(y.AsSpan(j * size, size).ToArray(), Kernel(lin, q.AsSpan(j * size, size).ToArray(), 1));

        // Chunks of 1, 3, 8 and 20 rows (of 36), and every chunk split over threads: only the order of
        // the sums over rows changes (C_s and the bias sums accumulate chunk by chunk); measured
        // ≤ 2.0e-16 (float64) and ≤ 1.1e-7 (float32).
        int p = ((RecurrentLinearization)lin).PreWidth, bytes = precision == Precision.F32 ? 4 : 8;
        foreach (int rows in new[] { 1, 3, 8, 20 })
            foreach (bool threaded in new[] { false, true })
            {
                using var chunk = RecurrentLinearization.KernelChunkBytes.Override((long)rows * p * bytes);
                using var parallel = threaded ? RowLoop.ParallelThreshold.Override(0) : null;
                double err = RelErr(Kernel(lin, q, 3), y);
                Assert.True(err <= (precision == Precision.F32 ? 1e-5 : 1e-13), $"{arch} N={inputs} {precisionName}: {rows} rows per chunk (threads: {threaded}) {err:E2}");
            }
        // The memory budget caps the chunk as well.
        using (RecurrentLinearization.RowChunkElements.Override(5L * p))
            Assert.True(RelErr(Kernel(lin, q, 3), y) <= (precision == Precision.F32 ? 1e-5 : 1e-13), $"{arch} N={inputs} {precisionName}: 5-row budget");
    }
}
