namespace GlobalNtk.Bench;

/// <summary>
/// The benchmarks' input vectors: uniform on [−1, 1) from a seeded <see cref="Random"/>, so that
/// every benchmark, build and precision times the same values.
/// </summary>
internal static class BenchVectors
{
    /// <summary><paramref name="n"/> values uniform on [−1, 1) from seed <paramref name="seed"/>.</summary>
    public static double[] Uniform(int n, int seed)
    {
        var rng = new Random(seed);
        var v = new double[n];
        for (int i = 0; i < n; i++) v[i] = 2 * rng.NextDouble() - 1;
        return v;
    }

    /// <summary><see cref="Uniform"/>'s values rounded to float32, without a float64 block (which would count in a float32 run's peak memory).</summary>
    public static float[] UniformSingle(int n, int seed)
    {
        var rng = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float)(2 * rng.NextDouble() - 1);
        return v;
    }
}
