using System.Buffers.Binary;
using System.Text;
using GlobalNtk.IO;
using Xunit;

namespace GlobalNtk.Tests;

public class IONpyTests
{
    /// <summary>A .npy file as numpy.save writes it (any version, descr and payload given raw).</summary>
    private static byte[] NpyBytes(string dict, byte[] payload, int major = 1)
    {
        int prefix = major == 1 ? 10 : 12;
        int total = (prefix + dict.Length + 1 + 63) / 64 * 64;
        string header = dict + new string(' ', total - prefix - dict.Length - 1) + "\n";
        var bytes = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)major, 0 };
        var len = new byte[major == 1 ? 2 : 4];
        if (major == 1) BinaryPrimitives.WriteUInt16LittleEndian(len, (ushort)header.Length);
        else BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)header.Length);
        bytes.AddRange(len);
        bytes.AddRange(Encoding.Latin1.GetBytes(header));
        bytes.AddRange(payload);
        return bytes.ToArray();
    }

    private static byte[] F32(params float[] v)
    {
        var b = new byte[4 * v.Length];
        for (int i = 0; i < v.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(4 * i), v[i]);
        return b;
    }

    private static byte[] F64(params double[] v)
    {
        var b = new byte[8 * v.Length];
        for (int i = 0; i < v.Length; i++) BinaryPrimitives.WriteDoubleLittleEndian(b.AsSpan(8 * i), v[i]);
        return b;
    }

    [Theory]
    [InlineData(new[] { 2, 3, 4 })]
    [InlineData(new[] { 5 })]
    [InlineData(new int[0])]
    [InlineData(new[] { 3, 0 })]
    public void RoundTripIsBitIdentical(int[] shape)
    {
        using var dir = new TempDir();
        int n = shape.Aggregate(1, (a, b) => a * b);
        var rng = new Random(7);
        var data = Enumerable.Range(0, n).Select(_ => rng.NextDouble() - 0.5).ToArray();
        if (n > 1) { data[0] = -0.0; data[1] = double.Epsilon; }
        string path = dir.File("a.npy");
        Npy.Write(path, new NdArray(shape, data));
        var back = Npy.Read(path);
        Assert.Equal(shape, back.Shape);
        Assert.Equal(data.Select(BitConverter.DoubleToInt64Bits), back.Data.Select(BitConverter.DoubleToInt64Bits));
        Assert.Equal(0, (new FileInfo(path).Length - 8L * n) % 64); // header padded to 64 bytes as numpy does
        Assert.Single(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void ReadsFloat32AndVersion2AsNumpyWritesThem()
    {
        using var dir = new TempDir();
        string p1 = dir.File("f32.npy");
        File.WriteAllBytes(p1, NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", F32(1.5f, -0.1f, 3, 4)));
        var a = Npy.Read(p1);
        Assert.Equal([2, 2], a.Shape);
        Assert.Equal([1.5, (double)-0.1f, 3, 4], a.Data);

        string p2 = dir.File("v2.npy");
        File.WriteAllBytes(p2, NpyBytes("{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (3,)}", F64(1, 2, 3), major: 2));
        Assert.Equal([1.0, 2, 3], Npy.Read(p2).Data);

        var t = Npy.Read(p1).ToTensor("X", "trial", "unit");
        Assert.Equal(2, t.Shape["unit"]);
        var ex = Assert.Throws<ArgumentException>(() => a.ToTensor("inputs X.npy", "trial", "time", "input"));
        Assert.Equal("inputs X.npy: expected 3 axes (trial, time, input), got shape [2, 2].", ex.Message);
    }

    public static TheoryData<string, byte[], string> BadFiles() => new()
    {
        { "not npy", Encoding.ASCII.GetBytes("hello world, not numpy"), "not a .npy file (missing the \\x93NUMPY magic)" },
        { "corrupt header", NpyBytes("{'descr': '<f8', 'fortran_order': Fals, 'shape': (2,), }", F64(1, 2)), "corrupt .npy header: expected True or False" },
        { "missing key", NpyBytes("{'descr': '<f8', 'fortran_order': False, }", F64(1, 2)), "corrupt .npy header: needs 'descr', 'fortran_order' and 'shape'" },
        { "bad shape", NpyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2, x), }", F64(1, 2)), "corrupt .npy header: expected a non-negative integer dimension" },
        { "header past end", NpyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", [])[..40], "header length 118 runs past the end of the file (40 bytes)" },
        { "fortran", NpyBytes("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }", F64(1, 2, 3, 4)), "Fortran order (fortran_order: True); only C order is supported" },
        { "complex dtype", NpyBytes("{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }", F64(1, 2)), ".npy dtype '<c16' is not supported" },
        { "big endian", NpyBytes("{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", F64(1, 2)), ".npy dtype '>f8' is not supported" },
        { "truncated", NpyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", F64(1, 2, 3)), ".npy data truncated: shape [2, 3] of <f8 needs 48 bytes, file has 24" },
        { "version", NpyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", F64(1), major: 4), ".npy format version 4.0 is not supported" },
        { "nan", NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", F32(1, float.PositiveInfinity, 2)), "array [3]: element 1 of 3 is Infinity" },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void BadFilesGiveOneLineErrorsNamingTheFile(string label, byte[] bytes, string expected)
    {
        using var dir = new TempDir();
        string path = dir.File(label.Replace(' ', '_') + ".npy");
        File.WriteAllBytes(path, bytes);
        var ex = Assert.Throws<DataFileException>(() => Npy.Read(path));
        Assert.StartsWith(path + ": ", ex.Message);
        Assert.Contains(expected, ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public void NonFiniteCanBeAllowedExplicitly()
    {
        using var dir = new TempDir();
        string path = dir.File("nan.npy");
        Npy.Write(path, new NdArray([2], [1, double.NaN]));
        Assert.Throws<DataFileException>(() => Npy.Read(path));
        Assert.True(double.IsNaN(Npy.Read(path, allowNonFinite: true).Data[1]));
    }
}
