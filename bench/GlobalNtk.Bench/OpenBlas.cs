using System.Runtime.InteropServices;

namespace GlobalNtk.Bench;

/// <summary>
/// Optional OpenBLAS <c>cblas_dgemm</c> / <c>cblas_sgemm</c>, found at run time (comparison only: never a dependency of
/// the library or the tests). <see cref="TryLoad"/> returns null when no OpenBLAS is installed.
/// </summary>
internal sealed unsafe class OpenBlas
{
    private static readonly string[] Candidates =
    [
        "libopenblas.so.0", "libopenblas.so",
        "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
        "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0",
        "/usr/lib/x86_64-linux-gnu/openblas-serial/libopenblas.so.0",
        "/usr/lib64/libopenblas.so.0", "/opt/homebrew/opt/openblas/lib/libopenblas.dylib", "libopenblas.dll",
    ];

    private readonly delegate* unmanaged[Cdecl]<int, int, int, int, int, int, double, double*, int, double*, int, double, double*, int, void> _dgemm;
    private readonly delegate* unmanaged[Cdecl]<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void> _sgemm;

    /// <summary>The library path that loaded and what OpenBLAS says about its build/core.</summary>
    public string Description { get; }

    private OpenBlas(nint lib, nint dgemm, string path)
    {
        if (NativeLibrary.TryGetExport(lib, "cblas_sgemm", out nint sgemm))
            _sgemm = (delegate* unmanaged[Cdecl]<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void>)sgemm;
        _dgemm = (delegate* unmanaged[Cdecl]<int, int, int, int, int, int, double, double*, int, double*, int, double, double*, int, void>)dgemm;
        string info = path;
        if (NativeLibrary.TryGetExport(lib, "openblas_get_config", out nint cfg))
            info += " | " + Marshal.PtrToStringAnsi(((delegate* unmanaged[Cdecl]<nint>)cfg)());
        if (NativeLibrary.TryGetExport(lib, "openblas_get_corename", out nint core))
            info += " | core " + Marshal.PtrToStringAnsi(((delegate* unmanaged[Cdecl]<nint>)core)());
        if (NativeLibrary.TryGetExport(lib, "openblas_get_num_threads", out nint nt))
            info += $" | {((delegate* unmanaged[Cdecl]<int>)nt)()} threads";
        Description = info;
        if (NativeLibrary.TryGetExport(lib, "openblas_set_num_threads", out nint st))
            _setThreads = (delegate* unmanaged[Cdecl]<int, void>)st;
    }

    private readonly delegate* unmanaged[Cdecl]<int, void> _setThreads;

    /// <summary>Sets OpenBLAS's thread count (openblas_set_num_threads); false when this build lacks it.</summary>
    public bool TrySetThreads(int threads)
    {
        if (_setThreads == null) return false;
        _setThreads(threads);
        return true;
    }

    public static OpenBlas? TryLoad()
    {
        foreach (string path in Candidates)
            if (NativeLibrary.TryLoad(path, out nint lib))
            {
                if (NativeLibrary.TryGetExport(lib, "cblas_dgemm", out nint f)) return new OpenBlas(lib, f, path);
                NativeLibrary.Free(lib);
            }
        return null;
    }

    /// <summary>Row-major cblas_dgemm with the same argument meaning as Gemm.Multiply.</summary>
    public void Dgemm(bool ta, bool tb, int m, int n, int k, double alpha, double[] a, int lda,
        double[] b, int ldb, double beta, double[] c, int ldc)
    {
        const int RowMajor = 101, NoTrans = 111, Transp = 112;
        fixed (double* pa = a, pb = b, pc = c)
            _dgemm(RowMajor, ta ? Transp : NoTrans, tb ? Transp : NoTrans, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
    }

    /// <summary>Row-major cblas_sgemm with the same argument meaning as Gemm.Multiply.</summary>
    public void Sgemm(bool ta, bool tb, int m, int n, int k, float alpha, float[] a, int lda,
        float[] b, int ldb, float beta, float[] c, int ldc)
    {
        const int RowMajor = 101, NoTrans = 111, Transp = 112;
        if (_sgemm == null) throw new InvalidOperationException("this OpenBLAS has no cblas_sgemm");
        fixed (float* pa = a, pb = b, pc = c)
            _sgemm(RowMajor, ta ? Transp : NoTrans, tb ? Transp : NoTrans, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
    }
}
