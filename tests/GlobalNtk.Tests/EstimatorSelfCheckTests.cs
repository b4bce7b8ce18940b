using GlobalNtk.Estimators;
using Xunit;

namespace GlobalNtk.Tests;

public class EstimatorSelfCheckTests
{
    [Fact]
    public void SelfCheckRowsAgreeWithExactValues()
    {
        var rows = SelfCheck.Run(0);
        Assert.True(rows.Count >= 10);
        foreach (var r in rows)
        {
            Assert.True(double.IsFinite(r.Estimate) && double.IsFinite(r.Exact), r.Name);
            // Randomised rows: within 4 standard errors; spectral rows: residual-level agreement.
            Assert.True(Math.Abs(r.Estimate - r.Exact) <= 4 * r.StandardError + 1e-8 * Math.Abs(r.Exact),
                $"{r.Name}: {r.Estimate} vs {r.Exact} ± {r.StandardError}");
        }
    }
}
