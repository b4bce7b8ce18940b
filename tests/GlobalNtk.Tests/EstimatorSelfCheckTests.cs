using System.Text.Json;
using GlobalNtk.Cli;
using GlobalNtk.Estimators;
using GlobalNtk.Ntk;
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

    [Fact]
    public void SelfCheckCommandPrintsTableAndJson()
    {
        var r = CliTestHost.Run("selfcheck", "--seed", "3", "--json");
        Assert.Equal(0, r.Exit);
        using var doc = JsonDocument.Parse(r.Out);
        Assert.Equal("selfcheck", doc.RootElement.GetProperty("command").GetString());
        var rows = doc.RootElement.GetProperty("rows").EnumerateArray().ToArray();
        Assert.Equal(SelfCheck.Run(3).Count + OperatorSelfCheck.Run(3, GlobalNtk.Dense.Precision.F64).Count, rows.Length);
        Assert.Contains(rows, r => r.GetProperty("name").GetString()!.StartsWith("λ_1"));

        r = CliTestHost.Run("selfcheck");
        Assert.Equal(0, r.Exit);
        Assert.Contains("Hutch++", r.Out);
        Assert.Contains("exact", r.Out);
    }
}
