using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using GlobalNtk.IO;
using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Models.Recurrent;
using Xunit;

namespace GlobalNtk.Tests;

/// <summary>
/// Hostile files: anything but a regular file, headers that lie about their length, are not
/// UTF-8, repeat keys or hold many thousands of tensors, and data with trailing bytes. Each is
/// one <see cref="DataFileException"/> naming the file (in the CLI: one "error:" line, exit 2).
/// </summary>
public class HostileInputTests
{
    /// <summary>A safetensors file with the given header text and data bytes.</summary>
    private static byte[] Safetensors(byte[] header, byte[] data, ulong? declaredHeaderLength = null)
    {
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, declaredHeaderLength ?? (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    private static byte[] Safetensors(string header, int dataBytes) => Safetensors(Encoding.UTF8.GetBytes(header), new byte[dataBytes]);

    private static DataFileException ReadFails(string path, params string[] fragments)
    {
        var ex = Assert.Throws<DataFileException>(() => SafetensorsFile.Read(path));
        Assert.Contains(path, ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
        foreach (var f in fragments) Assert.Contains(f, ex.Message, StringComparison.OrdinalIgnoreCase);
        return ex;
    }

    /// <summary>Runs <paramref name="read"/> on another thread and fails (instead of hanging) if it blocks.</summary>
    private static Exception? WithoutHanging(Action read)
    {
        var task = Task.Run(read);
        Assert.True(((IAsyncResult)task).AsyncWaitHandle.WaitOne(TimeSpan.FromSeconds(60)), "the read blocked (a FIFO was opened)");
        return task.Exception?.InnerException;
    }

    /// <summary>Makes a FIFO with mkfifo(1) when the platform has it; null otherwise.</summary>
    private static string? MakeFifo(TempDir dir)
    {
        if (OperatingSystem.IsWindows()) return null;
        string? mkfifo = new[] { "/usr/bin/mkfifo", "/bin/mkfifo" }.FirstOrDefault(File.Exists);
        if (mkfifo is null) return null;
        string path = dir.File("fifo");
        using var p = Process.Start(new ProcessStartInfo(mkfifo, [path]) { UseShellExecute = false })!;
        p.WaitForExit();
        return p.ExitCode == 0 ? path : null;
    }

    [Fact]
    public void OnlyRegularFilesAreRead()
    {
        using var dir = new TempDir();
        // Always available: an empty file and a folder.
        File.WriteAllBytes(dir.File("empty.safetensors"), []);
        ReadFails(dir.File("empty.safetensors"), "empty or not a regular file");
        Directory.CreateDirectory(dir.File("folder.npy"));
        Assert.Contains("folder", Assert.Throws<DataFileException>(() => Npy.Read(dir.File("folder.npy"))).Message);

        var specials = new List<string>();
        if (File.Exists("/dev/zero")) specials.Add("/dev/zero");   // a character device that never ends
        if (MakeFifo(dir) is string fifo) specials.Add(fifo);        // opening it would block
        if (OperatingSystem.IsLinux()) Assert.Contains("/dev/zero", specials); // on Linux at least the device is checked
        foreach (var special in specials)
        {
            var link = dir.File("link-to-" + Path.GetFileName(special));
            File.CreateSymbolicLink(link, special);
            foreach (var path in new[] { special, link })
            {
                var ex = WithoutHanging(() => SafetensorsFile.Read(path));
                Assert.Contains("not a regular file", Assert.IsType<DataFileException>(ex).Message);
                ex = WithoutHanging(() => Npy.Read(path));
                Assert.Contains(path, Assert.IsType<DataFileException>(ex).Message);
            }
        }
    }

    [Fact]
    public void CliRefusesDevicesAndFifosAsModelOrInputs()
    {
        using var f = new CliFixture();
        var specials = new List<string> { f.Dir.File("empty.npy") };
        File.WriteAllBytes(specials[0], []);
        if (File.Exists("/dev/zero")) specials.Add("/dev/zero");
        using var fifoDir = new TempDir();
        if (MakeFifo(fifoDir) is string fifo) specials.Add(fifo);
        foreach (var special in specials)
        {
            foreach (var (option, args) in new[]
            {
                ("--model", new[] { "forward", "--model", special, "--inputs", f.X, "--out", f.Dir.File("z.npy") }),
                ("--inputs", new[] { "forward", "--model", f.ModelPath, "--inputs", special, "--out", f.Dir.File("z.npy") }),
                ("--vector", new[] { "apply", "--model", f.ModelPath, "--inputs", f.X, "--operator", "K", "--vector", special, "--out", f.Dir.File("a.npy") }),
            })
            {
                CliTestHost.Result? r = null;
                Assert.Null(WithoutHanging(() => r = CliTestHost.Run(args)));
                CliTestHost.AssertOneLineError(r!, option, special, "not a regular file");
                Assert.Empty(f.Extra("empty.npy"));
            }
        }
    }

    [Fact]
    public void HeaderLengthBeyondTheFileIsRefusedBeforeAnyRead()
    {
        using var dir = new TempDir();
        string path = dir.File("m.safetensors");
        foreach (ulong declared in new ulong[] { 1000, SafetensorsFile.MaxHeaderBytes + 1, ulong.MaxValue })
        {
            File.WriteAllBytes(path, Safetensors(Encoding.UTF8.GetBytes("{}"), [], declared));
            ReadFails(path, $"header length {declared}", "exceeds the file size");
        }
        // .npy: a v2 header length past the end.
        var npy = dir.File("x.npy");
        Npy.Write(npy, new NdArray([2], [1, 2]));
        var bytes = File.ReadAllBytes(npy);
        bytes[6] = 2;
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), 1u << 30);
        File.WriteAllBytes(npy, bytes);
        Assert.Contains("runs past the end", Assert.Throws<DataFileException>(() => Npy.Read(npy)).Message);
    }

    [Fact]
    public void HeaderThatIsNotUtf8IsOneError()
    {
        using var f = new CliFixture();
        var header = Encoding.UTF8.GetBytes("{\"aX\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}");
        int bad = Array.IndexOf(header, (byte)'X');
        header[bad] = 0xFF; // a byte that never occurs in UTF-8
        File.WriteAllBytes(f.ModelPath, Safetensors(header, new byte[8]));
        ReadFails(f.ModelPath, "not valid UTF-8", $"offset {8 + bad}");
        var r = CliTestHost.Run("forward", "--model", f.ModelPath, "--inputs", f.X, "--out", f.Dir.File("z.npy"));
        CliTestHost.AssertOneLineError(r, "m.safetensors", "UTF-8");
        Assert.Empty(f.Extra());

        // .npy version 3.0 headers are UTF-8 too.
        var npy = f.Dir.File("v3.npy");
        Npy.Write(npy, new NdArray([1], [1]));
        var bytes = File.ReadAllBytes(npy);
        var v3 = new byte[bytes.Length + 2];
        bytes.AsSpan(0, 8).CopyTo(v3);
        v3[6] = 3;
        int hl = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8));
        BinaryPrimitives.WriteUInt32LittleEndian(v3.AsSpan(8), (uint)hl);
        bytes.AsSpan(10).CopyTo(v3.AsSpan(12));
        int colon = Encoding.Latin1.GetString(v3).IndexOf("'descr':", StringComparison.Ordinal) + "'descr':".Length;
        v3[colon] = 0xC3; // a UTF-8 lead byte followed by a quote, not a continuation byte
        File.WriteAllBytes(npy, v3);
        Assert.Contains("not valid UTF-8", Assert.Throws<DataFileException>(() => Npy.Read(npy)).Message);
    }

    [Fact]
    public void DuplicateKeysAreNamedAsDuplicates()
    {
        using var dir = new TempDir();
        string path = dir.File("m.safetensors");
        const string entry = "{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}";
        File.WriteAllBytes(path, Safetensors($"{{\"w\":{entry},\"w\":{{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[8,16]}}}}", 16));
        var ex = ReadFails(path, "'w' twice", "duplicate");
        Assert.DoesNotContain("overlap", ex.Message);

        File.WriteAllBytes(path, Safetensors($"{{\"__metadata__\":{{\"arch\":\"gru\",\"arch\":\"lstm\"}},\"w\":{entry}}}", 8));
        ReadFails(path, "__metadata__", "'arch' twice", "duplicate");

        File.WriteAllBytes(path, Safetensors("{\"w\":{\"dtype\":\"F64\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8));
        ReadFails(path, "tensor 'w'", "'dtype' twice", "duplicate");

        // Genuinely overlapping tensors are still reported as such.
        File.WriteAllBytes(path, Safetensors($"{{\"a\":{{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}},\"b\":{entry}}}", 16));
        ReadFails(path, "overlap", "'a'", "'b'");
    }

    [Fact]
    public void TrailingBytesAndHolesAreRefused()
    {
        using var f = new CliFixture();
        var good = File.ReadAllBytes(f.ModelPath);
        File.WriteAllBytes(f.ModelPath, [.. good, .. "garbage"u8.ToArray()]);
        ReadFails(f.ModelPath, "7 trailing bytes");
        CliTestHost.AssertOneLineError(CliTestHost.Run("forward", "--model", f.ModelPath, "--inputs", f.X, "--out", f.Dir.File("z.npy")),
            "m.safetensors", "trailing bytes");
        Assert.Empty(f.Extra());

        string path = f.Dir.File("hole.safetensors");
        File.WriteAllBytes(path, Safetensors("{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[16,24]}}", 24));
        ReadFails(path, "tensor 'b'", "hole of 8 bytes", "'a'");

        File.WriteAllBytes(f.ModelPath, good);
        var x = File.ReadAllBytes(f.X);
        File.WriteAllBytes(f.X, [.. x, 0]);
        Assert.Contains("1 trailing bytes", Assert.Throws<DataFileException>(() => Npy.Read(f.X)).Message);
        CliTestHost.AssertOneLineError(CliTestHost.Run("forward", "--model", f.ModelPath, "--inputs", f.X, "--out", f.Dir.File("z.npy")),
            "x.npy", "trailing");
    }

    [Fact]
    public void ManyTensorsAreLookedUpByIndexAndListedBriefly()
    {
        // A GRU's tensors plus 20,000 weight/bias pairs that could each be the readout: the
        // lookup must pair them by name (dictionaries) and report the ambiguity in one short line.
        using var dir = new TempDir();
        const int pairs = 20_000;
        var gru = RecurrentModel.Create("gru", 2, 3, 1, seed: 1);
        var tensors = gru.Parameters.ToList();
        for (int i = 0; i < pairs; i++)
        {
            tensors.Add(new Parameter($"x{i}.weight", [1, 3], [0.5, 0.25, 0.125]));
            tensors.Add(new Parameter($"x{i}.bias", [1], [i]));
        }
        string path = dir.File("many.safetensors");
        new SafetensorsFile(tensors, new Dictionary<string, string> { ["arch"] = "gru" }).Write(path);

        var file = SafetensorsFile.Read(path);
        Assert.Equal(2 * pairs + gru.Parameters.Count, file.Tensors.Count);
        var ex = Assert.Throws<DataFileException>(() => ModelFile.Load(path));
        Assert.Contains("several readout candidates", ex.Message);
        Assert.Contains($"({pairs} in all)", ex.Message);
        Assert.True(ex.Message.Length < 1000, $"message of {ex.Message.Length} characters");

        // One pair only: it is the readout, found among the 20,000 other (unclaimed) names.
        var lookup = new TensorLookup(path, file);
        foreach (var p in gru.Parameters) Assert.Same(file.Tensors[p.Name], lookup.TryFind(p.Name.Split('.')[^1]));
        Assert.Equal($"x{pairs - 1}.weight", lookup.TryFind($"x{pairs - 1}.weight")!.Name);
        Assert.Null(lookup.TryFind("weight_hh_l1"));
        var unclaimed = Assert.Throws<DataFileException>(() => lookup.RequireAllClaimed("gru"));
        Assert.Contains($"in all", unclaimed.Message);
        Assert.True(unclaimed.Message.Length < 1000);
    }

    [Fact]
    public void DeepMlpWithThousandsOfTensorsLoads()
    {
        using var dir = new TempDir();
        const int layers = 3000;
        var mlp = MlpModel.Create(2, 2, layers, 1, Activation.Tanh, seed: 4);
        string path = dir.File("deep.safetensors");
        ModelFile.Save(path, mlp);
        var back = ModelFile.Load(path).Model;
        Assert.Equal(mlp.AllParameters.TotalSize, back.AllParameters.TotalSize);
        Assert.Equal(mlp.AllParameters.Flatten(), back.AllParameters.Flatten());
    }

    [Fact]
    public void SuffixLookupMatchesWholeDottedParts()
    {
        using var dir = new TempDir();
        string path = dir.File("names.safetensors");
        new SafetensorsFile(
        [
            new Parameter("model.rnn.weight_hh_l0", [1], [1]), new Parameter(".bias", [1], [2]),
            new Parameter("xweight_ih_l0", [1], [3]), new Parameter("a.b.c", [1], [4]), new Parameter("c", [1], [5]),
        ]).Write(path);
        var t = new TensorLookup(path, SafetensorsFile.Read(path));
        Assert.Equal("model.rnn.weight_hh_l0", t.TryFind("rnn.weight_hh_l0")!.Name);
        Assert.Equal("model.rnn.weight_hh_l0", t.TryFind("model.rnn.weight_hh_l0")!.Name);
        Assert.Null(t.TryFind("n.weight_hh_l0"));   // whole parts only
        Assert.Null(t.TryFind("weight_ih_l0"));     // "xweight_ih_l0" does not end in ".weight_ih_l0"
        Assert.Equal(".bias", t.TryFind("bias")!.Name);
        Assert.Equal("a.b.c", t.TryFind("b.c")!.Name);
        Assert.Contains("several tensors end with 'c'", Assert.Throws<DataFileException>(() => t.TryFind("c")).Message);
    }
}

/// <summary>--out never replaces something that is not a regular file, even with --force.</summary>
public class HostileOutputTests
{
    [Fact]
    public void ForceNeverReplacesAFifoOrAnEmptyFile()
    {
        using var f = new CliFixture();
        var targets = new List<string> { f.Dir.File("empty.npy") };
        File.WriteAllBytes(targets[0], []);
        if (!OperatingSystem.IsWindows() && new[] { "/usr/bin/mkfifo", "/bin/mkfifo" }.FirstOrDefault(File.Exists) is string mkfifo)
        {
            using var p = System.Diagnostics.Process.Start(mkfifo, [f.Dir.File("fifo.npy")]);
            p.WaitForExit();
            if (p.ExitCode == 0) targets.Add(f.Dir.File("fifo.npy"));
        }
        foreach (var target in targets)
        {
            var r = CliTestHost.Run("forward", "--model", f.ModelPath, "--inputs", f.X, "--out", target, "--force");
            CliTestHost.AssertOneLineError(r, "--out", Path.GetFileName(target), "not a regular file");
            Assert.Equal(0, new FileInfo(target).Length); // still the FIFO / the empty file, not replaced
            Assert.Empty(f.Extra("empty.npy", "fifo.npy"));
        }
    }
}
