using System.Numerics;

namespace GlobalNtk.Models.Blocks;

/// <summary>The attention softmax (docs/math.md#transformers): one home for the fused and the block paths.</summary>
internal static class Softmax
{
    /// <summary>
    /// Replaces each row of the n×n score block <paramref name="p"/> by its softmax; with
    /// <paramref name="causal"/>, row t covers columns 0…t and the rest are set to 0. The max and
    /// the normaliser are float64 for either element type (a sum of up to n exponentials); for
    /// float64 this is exactly the classic three-pass loop.
    /// </summary>
    public static void Rows<T>(Span<T> p, int n, bool causal) where T : struct, IFloatingPointIeee754<T>
    {
        for (int t = 0; t < n; t++)
        {
            var row = p.Slice(t * n, n);
            int allowed = causal ? t + 1 : n;
            double max = double.NegativeInfinity;
            for (int u = 0; u < allowed; u++) max = Math.Max(max, double.CreateTruncating(row[u]));
            double sum = 0;
            for (int u = 0; u < allowed; u++)
            {
                double e = Math.Exp(double.CreateTruncating(row[u]) - max);
                row[u] = T.CreateTruncating(e);
                sum += e;
            }
            double inv = 1.0 / sum;
            for (int u = 0; u < allowed; u++) row[u] = T.CreateTruncating(double.CreateTruncating(row[u]) * inv);
            row[allowed..].Clear();
        }
    }
}
