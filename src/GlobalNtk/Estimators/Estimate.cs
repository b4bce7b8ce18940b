namespace GlobalNtk.Estimators;

/// <summary>
/// A randomised estimate: its value, its standard error (0 when computed exactly, NaN when the
/// method gives none) and the number of probes it used.
/// </summary>
public sealed record Estimate(double Value, double StandardError, int Probes)
{
    /// <summary>Whether the value was computed exactly (probe budget ≥ dimension).</summary>
    public bool Exact => StandardError == 0;
}
