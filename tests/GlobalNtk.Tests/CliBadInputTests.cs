using GlobalNtk.IO;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// Every bad input gives exactly one stderr line naming what and where, a non-zero exit, and no
/// partial output (neither the target nor any temporary file is left in the output folder).
/// </summary>
public class CliBadInputTests
{
    private static void Fails(CliFixture f, string[] args, params string[] fragments)
    {
        var r = CliTestHost.Run(args);
        CliTestHost.AssertOneLineError(r, fragments);
        Assert.Empty(f.Extra());
    }

    [Fact]
    public void MissingModelFile()
    {
        using var f = new CliFixture();
        Fails(f, ["forward", "--model", f.Dir.File("nope.safetensors"), "--inputs", f.X, "--out", f.Dir.File("z.npy")], "nope.safetensors", "not found");
    }

    [Fact]
    public void CorruptSafetensors()
    {
        using var f = new CliFixture();
        File.WriteAllBytes(f.ModelPath, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        Fails(f, ["forward", "--model", f.ModelPath, "--inputs", f.X, "--out", f.Dir.File("z.npy")], "m.safetensors");
    }

    [Fact]
    public void SafetensorsWithAMisShapedTensor()
    {
        using var f = new CliFixture();
        var file = SafetensorsFile.Read(f.ModelPath);
        var ps = file.Tensors.Select(p => p.Name.EndsWith("weight_hh_l0") ? new GlobalNtk.Models.Parameter(p.Name, [p.Shape[0], p.Shape[1] + 1]) : p).ToArray();
        new SafetensorsFile(ps, file.Metadata).Write(f.ModelPath);
        Fails(f, ["forward", "--model", f.ModelPath, "--inputs", f.X, "--out", f.Dir.File("z.npy")], "weight_hh_l0");
    }

    [Fact]
    public void CorruptNpyHeader()
    {
        using var f = new CliFixture();
        var bytes = File.ReadAllBytes(f.X);
        bytes[12] = (byte)'#';
        bytes[13] = (byte)'!';
        File.WriteAllBytes(f.X, bytes);
        Fails(f, ["forward", "--model", f.ModelPath, "--inputs", f.X, "--out", f.Dir.File("z.npy")], "x.npy");
    }

    [Fact]
    public void InputsThatDoNotFitTheModel()
    {
        using var f = new CliFixture();
        Npy.Write(f.X, CliFixture.Random(new Random(1), ("trial", 2), ("time", 5), ("input", CliFixture.In + 1)));
        Fails(f, ["forward", "--model", f.ModelPath, "--inputs", f.X, "--out", f.Dir.File("z.npy")], "x.npy");
    }

    [Fact]
    public void NaNInInputs()
    {
        using var f = new CliFixture();
        var x = CliFixture.Random(new Random(1), ("trial", 2), ("time", 5), ("input", CliFixture.In));
        x.Span[7] = double.NaN;
        Npy.Write(f.X, x);
        Fails(f, ["apply", "--model", f.ModelPath, "--inputs", f.X, "--operator", "NTK", "--vector", f.Q, "--out", f.Dir.File("a.npy")], "x.npy", "NaN");
    }

    [Fact]
    public void InfInVector()
    {
        using var f = new CliFixture();
        var q = CliFixture.Random(new Random(1), ("trial", 2), ("time", 5), ("unit", CliFixture.H));
        q.Span[3] = double.PositiveInfinity;
        Npy.Write(f.Q, q);
        Fails(f, ["apply", "--model", f.ModelPath, "--inputs", f.X, "--operator", "NTK", "--vector", f.Q, "--out", f.Dir.File("a.npy")], "q.npy");
    }

    [Fact]
    public void VectorShapeMismatch()
    {
        using var f = new CliFixture();
        Npy.Write(f.Q, CliFixture.Random(new Random(1), ("trial", 2), ("time", 4), ("unit", CliFixture.H)));
        Fails(f, ["apply", "--model", f.ModelPath, "--inputs", f.X, "--operator", "P", "--vector", f.Q, "--out", f.Dir.File("a.npy")], "q.npy", "[2, 4, 4]", "[2, 5, 4]");
    }

    [Fact]
    public void UnknownOperator()
    {
        using var f = new CliFixture();
        Fails(f, ["apply", "--model", f.ModelPath, "--inputs", f.X, "--operator", "Q", "--vector", f.Q, "--out", f.Dir.File("a.npy")], "operator 'Q'", "NTK");
    }

    [Fact]
    public void UnknownArch()
    {
        using var f = new CliFixture();
        Fails(f, ["forward", "--model", f.ModelPath, "--arch", "transistor", "--inputs", f.X, "--out", f.Dir.File("z.npy")], "transistor");
        Fails(f, ["sweep", "--task", "flip-flop", "--arch", "transistor", "--out", f.Dir.File("s")], "transistor");
    }

    [Fact]
    public void UnknownTask()
    {
        using var f = new CliFixture();
        Fails(f, ["analyze", "--model", f.ModelPath, "--task", "juggling", "--out", f.Dir.File("rep"), "--quiet"], "juggling", "flip-flop");
        Fails(f, ["sweep", "--task", "juggling", "--arch", "gru", "--out", f.Dir.File("s"), "--quiet"], "juggling");
    }

    [Fact]
    public void TargetsShapeMismatch()
    {
        using var f = new CliFixture();
        Npy.Write(f.Y, CliFixture.Random(new Random(1), ("trial", 2), ("time", 5), ("output", CliFixture.O + 1)));
        Fails(f, ["analyze", "--model", f.ModelPath, "--inputs", f.X, "--targets", f.Y, "--out", f.Dir.File("rep"), "--quiet"], "y.npy", "[2, 5, 3]");
    }

    [Fact]
    public void BadOptionValues()
    {
        using var f = new CliFixture();
        Fails(f, ["sweep", "--task", "flip-flop", "--arch", "gru", "--gains", "0,abc", "--out", f.Dir.File("s")], "--gains", "abc");
        Fails(f, ["analyze", "--model", f.ModelPath, "--task", "flip-flop", "--inputs", f.X, "--out", f.Dir.File("rep")], "--task", "--inputs");
        Fails(f, ["analyze", "--model", f.ModelPath, "--inputs", f.X, "--out", f.Dir.File("rep"), "--probes", "1"], "--probes");
        Fails(f, ["forward", "--model", f.ModelPath, "--inputs", f.X], "--out");
        Fails(f, ["forward", "--model", f.ModelPath, "--inputs", f.X, "--out", f.Dir.File("z.npy"), "--frobnicate"], "frobnicate");
    }

    [Fact]
    public void OutputFolderWithAParentThatIsAFile()
    {
        using var f = new CliFixture();
        Fails(f, ["analyze", "--model", f.ModelPath, "--inputs", f.X, "--out", Path.Combine(f.ModelPath, "rep"), "--quiet"], "m.safetensors", "is a file");
    }

    [Fact]
    public void FailureMidAnalysisLeavesNoPartialFolderAndKeepsTheOldOne()
    {
        using var f = new CliFixture();
        // A previous report (replaced only with --force) stays untouched when the new run fails
        // (here: a run folder whose checkpoint is corrupt).
        string rep = f.Dir.File("rep");
        Assert.Equal(0, CliTestHost.Run(["analyze", "--model", f.ModelPath, "--inputs", f.X, "--out", rep, .. CliFixture.FastAnalysis]).Exit);
        string old = CliOutputSafetyTests.Snapshot(rep);
        string run = f.Dir.File("run");
        Directory.CreateDirectory(run);
        File.Copy(f.ModelPath, Path.Combine(run, "ckpt-000000.safetensors"));
        File.WriteAllBytes(Path.Combine(run, "ckpt-000010.safetensors"), [9, 9, 9]);
        var r = CliTestHost.Run("analyze", "--model", run, "--inputs", f.X, "--out", rep, "--force", "--quiet", "--top-k", "2", "--probes", "4", "--partial-budget", "6");
        CliTestHost.AssertOneLineError(r, "ckpt-000010");
        Assert.Equal(old, CliOutputSafetyTests.Snapshot(rep));
        Assert.Empty(f.Extra("rep", "run"));
    }
}
