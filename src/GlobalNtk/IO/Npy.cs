using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using GlobalNtk.Dense;

namespace GlobalNtk.IO;

/// <summary>A plain n-dimensional float64 array (shape + row-major data), as stored in a .npy file.</summary>
public sealed class NdArray
{
    /// <summary>Wraps data (not copied); its length must equal the product of the shape.</summary>
    public NdArray(int[] shape, double[] data)
    {
        long n = 1;
        foreach (var s in shape)
        {
            if (s < 0) throw new ArgumentException($"NdArray: negative dimension in {SafetensorsFile.ShapeText(shape)}.");
            n *= s;
        }
        if (n != data.Length) throw new ArgumentException($"NdArray: data length {data.Length} does not match shape {SafetensorsFile.ShapeText(shape)}.");
        Shape = shape.ToArray();
        Data = data;
    }

    /// <summary>Dimensions, outermost first.</summary>
    public int[] Shape { get; }
    /// <summary>Row-major (C order) values.</summary>
    public double[] Data { get; }
    /// <summary>Shape formatted as <c>[2, 3]</c>.</summary>
    public string ShapeText => SafetensorsFile.ShapeText(Shape);

    /// <summary>From a tensor (copies its elements; axis names are dropped).</summary>
    public static NdArray FromTensor(Tensor t) => new(t.Shape.Sizes.ToArray(), t.Span.ToArray());

    /// <summary>
    /// Views the array as a tensor with the given axis names (shares the data). Throws an
    /// <see cref="ArgumentException"/> naming <paramref name="what"/> when the rank differs.
    /// </summary>
    public Tensor ToTensor(string what, params string[] axisNames)
    {
        if (axisNames.Length != Shape.Length)
            throw new ArgumentException($"{what}: expected {axisNames.Length} axes ({string.Join(", ", axisNames)}), got shape {ShapeText}.");
        return new Tensor(Data, new AxisShape(axisNames, Shape));
    }
}

/// <summary>
/// NumPy <c>.npy</c> files (format versions 1.0, 2.0 and 3.0): little-endian float64, float32,
/// float16 or integer arrays (integer token ids, e.g. <c>&lt;i8</c>), read as float64, C order only. Writes float64, version 1.0
/// (2.0 when the header needs it), atomically.
/// </summary>
public static class Npy
{
    // "\x93NUMPY" as raw bytes (a C# u8 literal would UTF-8-encode U+0093 as two bytes).
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Version 3.0 headers are UTF-8; invalid bytes are an error, not U+FFFD.</summary>
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// Reads a .npy file. Anything but a regular file, corrupt headers, Fortran order,
    /// unsupported dtypes, truncated data, trailing bytes after the data and (unless
    /// <paramref name="allowNonFinite"/>) NaN/Inf throw a <see cref="DataFileException"/> naming
    /// the file. Reads are bounded by the file's size.
    /// </summary>
    public static NdArray Read(string path, bool allowNonFinite = false)
    {
        byte[] b = FileBytes.ReadAll(path);
        if (b.Length < 10 || !b.AsSpan(0, 6).SequenceEqual(Magic))
            throw new DataFileException(path, "not a .npy file (missing the \\x93NUMPY magic).");
        int major = b[6];
        int headerLen, headerStart;
        if (major == 1) { headerLen = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(8)); headerStart = 10; }
        else if (major is 2 or 3)
        {
            if (b.Length < 12) throw new DataFileException(path, ".npy header truncated.");
            uint hl = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(8));
            if (hl > int.MaxValue) throw new DataFileException(path, $".npy header length {hl} is too large.");
            headerLen = (int)hl; headerStart = 12;
        }
        else throw new DataFileException(path, $".npy format version {major}.{b[7]} is not supported (1.0, 2.0, 3.0).");
        if ((long)headerStart + headerLen > b.Length)
            throw new DataFileException(path, $".npy header length {headerLen} runs past the end of the file ({b.Length} bytes).");

        string header;
        try { header = (major == 3 ? StrictUtf8 : Encoding.Latin1).GetString(b, headerStart, headerLen); }
        catch (DecoderFallbackException ex)
        {
            throw new DataFileException(path, $".npy header is not valid UTF-8 (bad byte at offset {headerStart + Math.Max(0, ex.Index)}).");
        }
        var (descr, fortran, shape) = ParseHeader(path, header);
        if (fortran)
            throw new DataFileException(path, ".npy array is in Fortran order (fortran_order: True); only C order is supported (use np.ascontiguousarray).");
        // '=' and '<' both mean little-endian here (the only byte order .NET's readers decode).
        if (descr.Length == 3 && descr[0] == '=') descr = (descr[1] is 'i' or 'u' && descr[2] == '1' ? "|" : "<") + descr[1..];
        int elem = descr.StartsWith('>') ? 0 : FileBytes.ElementSize(descr);
        if (elem == 0)
            throw new DataFileException(path, $".npy dtype '{descr}' is not supported (little-endian float '<f8', '<f4', '<f2' or integer '<i8', '<i4', '<i2', '|i1', '|u1', '<u2', '<u4').");
        long count = 1;
        foreach (var s in shape)
        {
            count *= s;
            if (count > Array.MaxLength) throw new DataFileException(path, $".npy shape {SafetensorsFile.ShapeText(shape)} is too large.");
        }
        int dataStart = headerStart + headerLen;
        long need = count * elem, have = b.Length - dataStart;
        if (have < need)
            throw new DataFileException(path, $".npy data truncated: shape {SafetensorsFile.ShapeText(shape)} of {descr} needs {need} bytes, file has {have}.");
        if (have > need)
            throw new DataFileException(path, $".npy has {have - need} trailing bytes after the data of shape {SafetensorsFile.ShapeText(shape)} (corrupt file?).");
        var data = FileBytes.ReadElements(b.AsSpan(dataStart), (int)count, descr);
        if (descr == "<i8")
            for (int i = 0; i < data.Length; i++)
                if (Math.Abs(data[i]) > 9007199254740992.0)
                    throw new DataFileException(path, $".npy int64 value {BinaryPrimitives.ReadInt64LittleEndian(b.AsSpan(dataStart + 8 * i))} at position {i} exceeds 2^53 and cannot be held exactly as float64.");
        if (!allowNonFinite)
        {
            try { Numerics.EnsureFinite(data, $"array {SafetensorsFile.ShapeText(shape)}"); }
            catch (NonFiniteException ex) { throw new DataFileException(path, ex.Message, ex); }
        }
        return new NdArray(shape, data);
    }

    /// <summary>Writes <paramref name="array"/> as little-endian float64, C order, atomically.</summary>
    public static void Write(string path, NdArray array)
    {
        string shapeText = array.Shape.Length switch
        {
            0 => "()",
            1 => $"({array.Shape[0]},)",
            _ => "(" + string.Join(", ", array.Shape) + ")",
        };
        string dict = $"{{'descr': '<f8', 'fortran_order': False, 'shape': {shapeText}, }}";
        // Total header (magic + version + length + dict + padding + '\n') is a multiple of 64.
        int major = dict.Length + 1 + 10 <= ushort.MaxValue ? 1 : 2;
        int prefix = major == 1 ? 10 : 12;
        int total = (prefix + dict.Length + 1 + 63) / 64 * 64;
        string header = dict + new string(' ', total - prefix - dict.Length - 1) + "\n";
        AtomicFile.Write(path, s =>
        {
            var pre = new byte[prefix];
            Magic.CopyTo(pre, 0);
            pre[6] = (byte)major; pre[7] = 0;
            if (major == 1) BinaryPrimitives.WriteUInt16LittleEndian(pre.AsSpan(8), (ushort)header.Length);
            else BinaryPrimitives.WriteUInt32LittleEndian(pre.AsSpan(8), (uint)header.Length);
            s.Write(pre);
            s.Write(Encoding.Latin1.GetBytes(header));
            FileBytes.WriteFloat64(s, array.Data);
        });
    }

    /// <summary>Writes a tensor (axis names are not stored in .npy).</summary>
    public static void Write(string path, Tensor tensor) => Write(path, NdArray.FromTensor(tensor));

    /// <summary>
    /// Parses the header's Python dict literal, e.g.
    /// <c>{'descr': '&lt;f8', 'fortran_order': False, 'shape': (3, 4), }</c>.
    /// </summary>
    private static (string Descr, bool Fortran, int[] Shape) ParseHeader(string path, string header)
    {
        var p = new DictParser(path, header);
        string? descr = null; bool? fortran = null; int[]? shape = null;
        p.Expect('{');
        while (true)
        {
            p.SkipSpace();
            if (p.TryConsume('}')) break;
            string key = p.ReadString();
            p.Expect(':');
            switch (key)
            {
                case "descr": descr = p.ReadString(); break;
                case "fortran_order": fortran = p.ReadBool(); break;
                case "shape": shape = p.ReadTuple(); break;
                default: throw p.Error($"unexpected key '{key}'");
            }
            p.SkipSpace();
            if (p.TryConsume(',')) continue;
            p.Expect('}');
            break;
        }
        if (descr is null || fortran is null || shape is null)
            throw new DataFileException(path, $"corrupt .npy header: needs 'descr', 'fortran_order' and 'shape' (got {SafetensorsFile.OneLine(header.Trim())}).");
        return (descr, fortran.Value, shape);
    }

    private sealed class DictParser(string path, string text)
    {
        private int _pos;

        public DataFileException Error(string what) =>
            new(path, $"corrupt .npy header: {what} at character {_pos} of \"{SafetensorsFile.OneLine(text.Trim())}\".");

        public void SkipSpace() { while (_pos < text.Length && char.IsWhiteSpace(text[_pos])) _pos++; }

        public bool TryConsume(char c)
        {
            SkipSpace();
            if (_pos < text.Length && text[_pos] == c) { _pos++; return true; }
            return false;
        }

        public void Expect(char c) { if (!TryConsume(c)) throw Error($"expected '{c}'"); }

        public string ReadString()
        {
            SkipSpace();
            if (_pos >= text.Length || (text[_pos] != '\'' && text[_pos] != '"')) throw Error("expected a quoted string");
            char q = text[_pos++];
            int end = text.IndexOf(q, _pos);
            if (end < 0) throw Error("unterminated string");
            string s = text[_pos..end];
            _pos = end + 1;
            return s;
        }

        public bool ReadBool()
        {
            SkipSpace();
            if (string.CompareOrdinal(text, _pos, "True", 0, 4) == 0) { _pos += 4; return true; }
            if (string.CompareOrdinal(text, _pos, "False", 0, 5) == 0) { _pos += 5; return false; }
            throw Error("expected True or False");
        }

        public int[] ReadTuple()
        {
            Expect('(');
            var dims = new List<int>();
            while (true)
            {
                SkipSpace();
                if (TryConsume(')')) break;
                int start = _pos;
                while (_pos < text.Length && char.IsAsciiDigit(text[_pos])) _pos++;
                if (_pos == start || !int.TryParse(text.AsSpan(start, _pos - start), NumberStyles.None, CultureInfo.InvariantCulture, out int d))
                    throw Error("expected a non-negative integer dimension");
                if (_pos < text.Length && text[_pos] == 'L') _pos++; // Python 2 longs
                dims.Add(d);
                SkipSpace();
                if (TryConsume(',')) continue;
                Expect(')');
                break;
            }
            return dims.ToArray();
        }
    }
}
