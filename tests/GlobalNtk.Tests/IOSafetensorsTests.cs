using System.Buffers.Binary;
using System.Text;
using GlobalNtk.IO;
using GlobalNtk.Models;
using Xunit;

namespace GlobalNtk.Tests;

public class IOSafetensorsTests
{
    /// <summary>Builds a safetensors file byte by byte, as PyTorch's safetensors.torch.save_file would (F32).</summary>
    internal static byte[] HandBuiltF32(string headerJson, float[] data, int? declaredHeaderLength = null)
    {
        var header = Encoding.UTF8.GetBytes(headerJson);
        var bytes = new byte[8 + header.Length + 4 * data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)(declaredHeaderLength ?? header.Length));
        header.CopyTo(bytes, 8);
        for (int i = 0; i < data.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(8 + header.Length + 4 * i), data[i]);
        return bytes;
    }

    private const string PyTorchHeader =
        "{\"__metadata__\":{\"format\":\"pt\",\"arch\":\"rnn-tanh\"}," +
        "\"model.readout.weight\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,8]}," +
        "\"rnn.weight_ih_l0\":{\"dtype\":\"F32\",\"shape\":[2,1],\"data_offsets\":[8,16]}}";

    [Fact]
    public void RoundTripIsBitIdentical()
    {
        using var dir = new TempDir();
        var rng = new Random(1);
        var aData = Enumerable.Range(0, 12).Select(_ => rng.NextDouble() * 2 - 1).ToArray();
        aData[0] = -0.0; aData[1] = double.Epsilon; aData[2] = double.MaxValue; aData[3] = 1.0 / 3.0;
        var a = new Parameter("rnn.weight_hh_l0", [3, 4], aData);
        var b = new Parameter("readout.bias", [2], [Math.PI, -Math.E]);
        var s = new Parameter("scalar", [], [42.0]);
        var md = new Dictionary<string, string> { ["arch"] = "gru", ["note"] = "ünïcode \"quoted\"" };
        string path = dir.File("m.safetensors");
        new SafetensorsFile([a, b, s], md).Write(path);

        var back = SafetensorsFile.Read(path);
        Assert.Equal(["rnn.weight_hh_l0", "readout.bias", "scalar"], back.Tensors.Select(t => t.Name));
        Assert.Equal(md, back.Metadata);
        foreach (var orig in new[] { a, b, s })
        {
            var t = back.Tensors[orig.Name];
            Assert.Equal(orig.Shape, t.Shape);
            Assert.Equal(orig.Data.Select(BitConverter.DoubleToInt64Bits), t.Data.Select(BitConverter.DoubleToInt64Bits));
        }
        // Data is 8-byte aligned after the padded header.
        var bytes = File.ReadAllBytes(path);
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(bytes) % 8);
        Assert.Single(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void ReadsF32WrittenLikePyTorch()
    {
        using var dir = new TempDir();
        string path = dir.File("pt.safetensors");
        float[] data = [0.1f, -2.5f, 3.25f, 1e-3f];
        File.WriteAllBytes(path, HandBuiltF32(PyTorchHeader, data));
        var f = SafetensorsFile.Read(path);
        Assert.Equal("rnn-tanh", f.Metadata["arch"]);
        Assert.Equal("pt", f.Metadata["format"]);
        var w = f.Tensors["model.readout.weight"];
        Assert.Equal([1, 2], w.Shape);
        Assert.Equal([(double)0.1f, -2.5], w.Data);
        Assert.Equal([(double)3.25f, (double)1e-3f], f.Tensors["rnn.weight_ih_l0"].Data);
    }

    public static TheoryData<string, byte[], string> BadFiles()
    {
        var ok = HandBuiltF32(PyTorchHeader, [1, 2, 3, 4]);
        string H(string s) => s;
        return new()
        {
            { "too short", [1, 2, 3], "too short for the 8-byte header length" },
            { "truncated header", HandBuiltF32(PyTorchHeader, [1, 2, 3, 4], declaredHeaderLength: 100_000), "header length 100000 exceeds the file size" },
            { "bad json", HandBuiltF32("{\"a\": [1, 2", []), "header is not valid JSON" },
            { "not an object", HandBuiltF32("[1, 2]", []), "header must be a JSON object" },
            { "offset past end", HandBuiltF32(H("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}"), [1, 2]), "tensor 'w': data_offsets [0, 16] run past the end of the data (8 bytes" },
            { "shape vs bytes", HandBuiltF32(H("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}"), [1, 2]), "tensor 'w': shape [3] of F32 needs 12 bytes but data_offsets [0, 8] span 8" },
            { "dtype", HandBuiltF32(H("{\"w\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}"), [1]), "tensor 'w': dtype I32 is not supported (F64, F32, F16, BF16" },
            { "overlap", HandBuiltF32(H("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}"), [1, 2]), "tensors 'a' and 'b' overlap" },
            { "nan", HandBuiltF32(H("{\"rnn.weight_hh_l0\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"), [1, float.NaN]), "tensor 'rnn.weight_hh_l0' [2]: element 1 of 2 is NaN" },
            { "bad metadata", HandBuiltF32("{\"__metadata__\":{\"arch\":3}}", []), "__metadata__ value for 'arch' is Number" },
            { "no offsets", HandBuiltF32("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", [1]), "tensor 'w': header entry needs 'data_offsets'" },
            { "negative dim", HandBuiltF32("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", [1]), "tensor 'w': shape entry -1 is not a non-negative integer" },
        };
    }

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void BadFilesGiveOneLineErrorsNamingFileAndTensor(string label, byte[] bytes, string expected)
    {
        using var dir = new TempDir();
        string path = dir.File(label.Replace(' ', '_') + ".safetensors");
        File.WriteAllBytes(path, bytes);
        var ex = Assert.Throws<DataFileException>(() => SafetensorsFile.Read(path));
        Assert.StartsWith(path + ": ", ex.Message);
        Assert.Contains(expected, ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public void MissingFileIsNamed()
    {
        using var dir = new TempDir();
        string path = dir.File("nope.safetensors");
        var ex = Assert.Throws<DataFileException>(() => SafetensorsFile.Read(path));
        Assert.Equal($"{path}: file not found.", ex.Message);
    }

    [Fact]
    public void FailedWriteLeavesNothingBehindAndKeepsTheOldFile()
    {
        using var dir = new TempDir();
        string path = dir.File("x.bin");
        File.WriteAllText(path, "old");
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, s =>
        {
            s.Write(new byte[1000]);
            throw new InvalidOperationException("disk full");
        }));
        Assert.Equal("old", File.ReadAllText(path));
        Assert.Single(Directory.GetFiles(dir.Path));

        var bad = new SafetensorsFile([new Parameter("__metadata__", [1], [1.0])]);
        Assert.Throws<ArgumentException>(() => bad.Write(dir.File("y.safetensors")));
        Assert.Single(Directory.GetFiles(dir.Path));
    }
}
