namespace GlobalNtk.IO;

/// <summary>How large a model would be, found without allocating it.</summary>
public static class ModelSize
{
    /// <summary>Width unit of the probe models: divisible by every usual head count (1–6, 10, 12, 15, 20, 30, 60).</summary>
    internal const int ProbeWidth = 60;

    /// <summary>
    /// The number of trainable scalars (chain and readout) that <see cref="ModelRegistry.Create"/>
    /// would allocate for <paramref name="spec"/>, or null when it cannot be told (the
    /// architecture rejects the probe sizes; creating the real model then reports why).
    /// </summary>
    /// <remarks>
    /// Every architecture's parameter count is a polynomial of degree ≤ 2 in the hidden width
    /// (weights H×H, H×N_in and N_out×H, biases H, everything else fixed by the options), so
    /// three small models of widths 60, 120 and 180 determine it exactly, for any registered
    /// architecture, at the cost of a few thousand parameters. A test checks the
    /// extrapolation against real models of every architecture.
    /// </remarks>
    public static double? ParameterCount(ModelSpec spec)
    {
        var counts = new double[3];
        try
        {
            for (int k = 0; k < 3; k++)
                counts[k] = ModelRegistry.Create(spec with { HiddenSize = (k + 1) * ProbeWidth }).AllParameters.TotalSize;
        }
        catch (ArgumentException) { return null; }
        // Lagrange interpolation through x = 1, 2, 3 (width in units of ProbeWidth).
        double x = spec.HiddenSize / (double)ProbeWidth;
        return counts[0] * (x - 2) * (x - 3) / 2 - counts[1] * (x - 1) * (x - 3) + counts[2] * (x - 1) * (x - 2) / 2;
    }
}
