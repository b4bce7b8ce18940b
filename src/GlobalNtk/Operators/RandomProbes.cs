namespace GlobalNtk.Operators;

/// <summary>
/// Seeded random probe vectors. A <see cref="Random"/> created from a seed gives the same stream
/// on every run and platform, so every estimator is reproducible: same seed → same answer.
/// </summary>
public static class RandomProbes
{
    /// <summary>Fills <paramref name="x"/> with independent ±1 (Rademacher) entries.</summary>
    public static void Rademacher(Random rng, Span<double> x)
    {
        Span<byte> bytes = stackalloc byte[256];
        for (int i = 0; i < x.Length; i += 8 * bytes.Length)
        {
            rng.NextBytes(bytes);
            int end = Math.Min(x.Length, i + 8 * bytes.Length);
            for (int j = i; j < end; j++)
            {
                int bit = (bytes[(j - i) >> 3] >> ((j - i) & 7)) & 1;
                x[j] = bit == 0 ? 1.0 : -1.0;
            }
        }
    }

    /// <summary>Fills <paramref name="x"/> with independent standard normal entries (Box–Muller).</summary>
    public static void Gaussian(Random rng, Span<double> x)
    {
        for (int i = 0; i < x.Length; i += 2)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            double r = Math.Sqrt(-2.0 * Math.Log(u1));
            x[i] = r * Math.Cos(2 * Math.PI * u2);
            if (i + 1 < x.Length) x[i + 1] = r * Math.Sin(2 * Math.PI * u2);
        }
    }
}
