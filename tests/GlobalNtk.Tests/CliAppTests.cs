using Xunit;

namespace GlobalNtk.Tests;

public class CliAppTests
{
    [Fact]
    public void NoArgumentsListsCommands()
    {
        var r = CliTestHost.Run();
        foreach (var c in new[] { "version" }) Assert.Contains(c, r.Out);
    }

    [Fact]
    public void HelpListsCommands()
    {
        var r = CliTestHost.Run("--help");
        Assert.Equal(0, r.Exit);
        Assert.Contains("version", r.Out);
    }

    [Fact]
    public void UnknownCommandIsOneLineError()
    {
        var r = CliTestHost.Run("frobnicate");
        CliTestHost.AssertOneLineError(r, "frobnicate");
    }

    [Fact]
    public void VersionPrints()
    {
        var r = CliTestHost.Run("version");
        Assert.Equal(0, r.Exit);
        Assert.StartsWith("globalntk ", r.Out);
    }
}
