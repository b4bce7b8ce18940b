using GlobalNtk.Cli.Reports;
using Xunit;

namespace GlobalNtk.Tests;

public class CliPlotsTests
{
    [Fact]
    public void RendersPngWithLogAxis()
    {
        using var dir = new TempDir();
        string path = dir.File("spectrum.png");
        var x = Enumerable.Range(1, 30).Select(i => (double)i).ToArray();
        Plots.Lines(path, "NTK_S spectrum", "index i", "eigenvalue λ_i",
            [new Series("init", x, x.Select(i => 100 * Math.Pow(i, -2.0)).ToArray()),
             new Series("trained", x, x.Select(i => 50 * Math.Exp(-i / 3.0)).ToArray(), Dashed: true)],
            logY: true);
        var bytes = File.ReadAllBytes(path);
        Assert.True(bytes.Length > 5000, $"PNG only {bytes.Length} bytes");
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
    }
}
