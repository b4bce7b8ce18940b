namespace GlobalNtk.Operators;

/// <summary>
/// The samplers every random draw goes through: Rademacher probes, standard normals and uniforms.
/// Generators come from an <see cref="RngKey"/> (a <see cref="Random"/> created from a seed gives
/// the same stream on every run and platform), so every estimator is reproducible: same seed →
/// same answer.
/// </summary>
public static class RandomProbes
{
    /// <summary>Fills <paramref name="x"/> with independent ±1 (Rademacher) entries.</summary>
    public static void Rademacher(Random rng, Span<double> x) => RademacherOf(rng, x);

    /// <summary>
    /// Independent ±1 entries of any number type (float32 probe blocks): the same values, from the
    /// same draws of <paramref name="rng"/>, as <see cref="Rademacher(Random, Span{double})"/>.
    /// </summary>
    internal static void RademacherOf<T>(Random rng, Span<T> x) where T : System.Numerics.INumber<T>
    {
        Span<byte> bytes = stackalloc byte[256];
        for (int i = 0; i < x.Length; i += 8 * bytes.Length)
        {
            rng.NextBytes(bytes);
            int end = Math.Min(x.Length, i + 8 * bytes.Length);
            for (int j = i; j < end; j++)
            {
                int bit = (bytes[(j - i) >> 3] >> ((j - i) & 7)) & 1;
                x[j] = bit == 0 ? T.One : -T.One;
            }
        }
    }

    /// <summary>
    /// Fills <paramref name="x"/> with independent standard normal entries (Box–Muller: each pair of
    /// uniforms u₁ ∈ (0, 1], u₂ gives √(−2 ln u₁)·cos 2πu₂ and √(−2 ln u₁)·sin 2πu₂).
    /// </summary>
    public static void Gaussian(Random rng, Span<double> x)
    {
        for (int i = 0; i < x.Length; i += 2)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();   // u1 ∈ (0, 1]: log is finite
            double r = Math.Sqrt(-2.0 * Math.Log(u1));
            x[i] = r * Math.Cos(2 * Math.PI * u2);
            if (i + 1 < x.Length) x[i + 1] = r * Math.Sin(2 * Math.PI * u2);
        }
    }

    /// <summary>One standard normal sample (the first of a Box–Muller pair; two uniforms per call).</summary>
    public static double Gaussian(Random rng)
    {
        Span<double> one = stackalloc double[1];
        Gaussian(rng, one);
        return one[0];
    }

    /// <summary>A new array of <paramref name="n"/> standard normal entries.</summary>
    public static double[] Gaussian(Random rng, int n)
    {
        var x = new double[n];
        Gaussian(rng, x);
        return x;
    }

    /// <summary>Fills <paramref name="x"/> with independent entries uniform in [−<paramref name="bound"/>, <paramref name="bound"/>).</summary>
    public static void Uniform(Random rng, Span<double> x, double bound)
    {
        for (int i = 0; i < x.Length; i++) x[i] = (2 * rng.NextDouble() - 1) * bound;
    }
}
