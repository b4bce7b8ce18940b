namespace GlobalNtk.IO;

/// <summary>How large a model would be, found without allocating it.</summary>
public static class ModelSize
{
    /// <summary>
    /// Width units of the probe models, smallest first (a probe costs its parameters): the first
    /// whose three multiples every option accepts (e.g. divisible by the head count) is used.
    /// </summary>
    internal static readonly int[] ProbeUnits = [4, 12, 60];

    /// <summary>
    /// The number of trainable scalars (chain and readout) that <see cref="ModelRegistry.Create"/>
    /// would allocate for <paramref name="spec"/>, or null when it cannot be told (the
    /// architecture rejects every probe size; creating the real model then reports why).
    /// </summary>
    /// <remarks>
    /// Every architecture's parameter count is a polynomial of degree ≤ 2 in the hidden width
    /// (weights H×H, H×N_in and N_out×H, biases H, everything else fixed by the options), so
    /// three small models of widths c, 2c and 3c determine it exactly, for any registered
    /// architecture and options. A test checks the extrapolation against real models of every
    /// architecture.
    /// </remarks>
    public static double? ParameterCount(ModelSpec spec)
    {
        foreach (int unit in ProbeUnits)
        {
            var counts = new double[3];
            try
            {
                for (int k = 0; k < 3; k++)
                    counts[k] = ModelRegistry.Create(spec with { HiddenSize = (k + 1) * unit }).AllParameters.TotalSize;
            }
            catch (ArgumentException) { continue; }
            // Lagrange interpolation through x = 1, 2, 3 (width in units of the probe).
            double x = spec.HiddenSize / (double)unit;
            return counts[0] * (x - 2) * (x - 3) / 2 - counts[1] * (x - 1) * (x - 3) + counts[2] * (x - 1) * (x - 2) / 2;
        }
        return null;
    }
}
