using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using GlobalNtk.Dense;
using GlobalNtk.Models;

namespace GlobalNtk.IO;

/// <summary>
/// The contents of a safetensors file: named tensors (as float64 <see cref="Parameter"/>s, in
/// file order) and the <c>__metadata__</c> string map.
/// </summary>
/// <remarks>
/// Format (huggingface/safetensors): an 8-byte little-endian header length N, N bytes of UTF-8
/// JSON mapping each tensor name to <c>{"dtype", "shape", "data_offsets": [begin, end]}</c>
/// (offsets relative to the byte buffer that follows the header) plus an optional
/// <c>"__metadata__"</c> object of strings, then the little-endian tensor bytes.
/// F64, F32, F16 and BF16 are read (the narrower ones widened exactly to float64); files are
/// written as F64.
/// </remarks>
public sealed class SafetensorsFile
{
    /// <summary>Largest header accepted (the format's own limit is 100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>Creates the in-memory contents; tensor names must be unique.</summary>
    public SafetensorsFile(IEnumerable<Parameter> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        Tensors = new ParameterSet(tensors);
        Metadata = new Dictionary<string, string>(metadata ?? new Dictionary<string, string>(), StringComparer.Ordinal);
    }

    /// <summary>The tensors, in file order.</summary>
    public ParameterSet Tensors { get; }

    /// <summary>The <c>__metadata__</c> map (empty when the file has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>
    /// Reads and validates a safetensors file. Every problem (missing file, not a regular file,
    /// truncated or malformed header, header not UTF-8, duplicate keys, unsupported dtype,
    /// offsets outside the data, shape not matching its byte range, overlapping tensors, holes
    /// or trailing bytes in the data, NaN/Inf unless <paramref name="allowNonFinite"/>) throws a
    /// <see cref="DataFileException"/> naming the file and the tensor. Reads are bounded by the
    /// file's size.
    /// </summary>
    public static SafetensorsFile Read(string path, bool allowNonFinite = false)
    {
        byte[] bytes = FileBytes.ReadAll(path);
        if (bytes.Length < 8)
            throw new DataFileException(path, $"not a safetensors file: {bytes.Length} bytes, too short for the 8-byte header length.");
        ulong headerLen = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (headerLen > MaxHeaderBytes || (long)headerLen > bytes.Length - 8)
            throw new DataFileException(path, $"safetensors header length {headerLen} exceeds the file size {bytes.Length} (truncated or not a safetensors file).");
        int hl = (int)headerLen;
        var dataStart = 8 + hl;
        long dataLen = bytes.Length - dataStart;

        // System.Text.Json would only fail on invalid UTF-8 later, inside a name; check it here.
        try { StrictUtf8.GetCharCount(bytes, 8, hl); }
        catch (DecoderFallbackException ex)
        {
            throw new DataFileException(path, $"safetensors header is not valid UTF-8 (bad byte at offset {8 + Math.Max(0, ex.Index)}).");
        }
        JsonDocument doc;
        try { doc = JsonDocument.Parse(bytes.AsMemory(8, hl)); }
        catch (JsonException ex) { throw new DataFileException(path, $"safetensors header is not valid JSON ({OneLine(ex.Message)})."); }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new DataFileException(path, $"safetensors header must be a JSON object, got {doc.RootElement.ValueKind}.");
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var entries = new List<(string Name, string Dtype, int[] Shape, long Begin, long End)>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (!names.Add(prop.Name))
                    throw new DataFileException(path, $"safetensors header names '{prop.Name}' twice (duplicate key).");
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object)
                        throw new DataFileException(path, "safetensors __metadata__ must be an object of strings.");
                    foreach (var m in prop.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String)
                            throw new DataFileException(path, $"safetensors __metadata__ value for '{m.Name}' is {m.Value.ValueKind}, expected a string.");
                        if (!metadata.TryAdd(m.Name, m.Value.GetString()!))
                            throw new DataFileException(path, $"safetensors __metadata__ names '{m.Name}' twice (duplicate key).");
                    }
                    continue;
                }
                entries.Add(ParseEntry(path, prop));
            }

            // Like the reference implementation: the tensors, sorted by offset, tile the data
            // section exactly (no overlap, no hole, nothing after the last one).
            var sorted = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
            long expectedBegin = 0;
            string? previous = null;
            foreach (var e in sorted)
            {
                int elem = FileBytes.ElementSize(e.Dtype);
                long count = 1;
                foreach (var d in e.Shape)
                {
                    count *= d;
                    if (count > Array.MaxLength)
                        throw new DataFileException(path, $"tensor '{e.Name}': shape {ShapeText(e.Shape)} is too large.");
                }
                if (e.End < e.Begin)
                    throw new DataFileException(path, $"tensor '{e.Name}': data_offsets [{e.Begin}, {e.End}] are reversed.");
                if (e.End > dataLen)
                    throw new DataFileException(path, $"tensor '{e.Name}': data_offsets [{e.Begin}, {e.End}] run past the end of the data ({dataLen} bytes; file truncated?).");
                if (e.End - e.Begin != count * elem)
                    throw new DataFileException(path, $"tensor '{e.Name}': shape {ShapeText(e.Shape)} of {e.Dtype} needs {count * elem} bytes but data_offsets [{e.Begin}, {e.End}] span {e.End - e.Begin}.");
                if (e.Begin < expectedBegin)
                    throw new DataFileException(path, $"tensors '{previous}' and '{e.Name}' overlap (data_offsets of '{e.Name}' [{e.Begin}, {e.End}] start before byte {expectedBegin}).");
                if (e.Begin > expectedBegin)
                    throw new DataFileException(path, $"tensor '{e.Name}': data_offsets [{e.Begin}, {e.End}] leave a hole of {e.Begin - expectedBegin} bytes after {(previous is null ? "the header" : $"'{previous}'")}.");
                expectedBegin = e.End;
                previous = e.Name;
            }
            if (expectedBegin != dataLen)
                throw new DataFileException(path, $"{dataLen - expectedBegin} trailing bytes after the last tensor's data (the data section is {dataLen} bytes, the tensors end at {expectedBegin}).");

            var tensors = new List<Parameter>(entries.Count);
            foreach (var e in sorted)
            {
                int elem = FileBytes.ElementSize(e.Dtype);
                var data = FileBytes.ReadElements(bytes.AsSpan(dataStart + (int)e.Begin, (int)(e.End - e.Begin)), (int)((e.End - e.Begin) / elem), e.Dtype);
                if (!allowNonFinite)
                {
                    try { Numerics.EnsureFinite(data, $"tensor '{e.Name}' {ShapeText(e.Shape)}"); }
                    catch (NonFiniteException ex) { throw new DataFileException(path, ex.Message, ex); }
                }
                tensors.Add(Parameter.Own(e.Name, e.Shape, data));
            }
            return new SafetensorsFile(tensors, metadata);
        }
    }

    /// <summary>UTF-8 that throws on invalid bytes (the header must be valid UTF-8).</summary>
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Writes the tensors as F64 (with the metadata) to <paramref name="path"/>, atomically.</summary>
    public void Write(string path)
    {
        foreach (var t in Tensors)
            if (t.Name == "__metadata__") throw new ArgumentException($"{path}: '__metadata__' is reserved and cannot name a tensor.");
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            if (Metadata.Count > 0)
            {
                w.WriteStartObject("__metadata__");
                foreach (var kv in Metadata) w.WriteString(kv.Key, kv.Value);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in Tensors)
            {
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", "F64");
                w.WriteStartArray("shape");
                foreach (var s in t.Shape) w.WriteNumberValue(s);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + 8L * t.Size);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += 8L * t.Size;
            }
            w.WriteEndObject();
        }
        // Pad the header with spaces to a multiple of 8 so the data is 8-byte aligned.
        int pad = (int)((8 - ms.Length % 8) % 8);
        for (int i = 0; i < pad; i++) ms.WriteByte((byte)' ');
        var header = ms.ToArray();

        AtomicFile.Write(path, s =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
            s.Write(len);
            s.Write(header);
            foreach (var t in Tensors) FileBytes.WriteFloat64(s, t.Data);
        });
    }

    private static (string, string, int[], long, long) ParseEntry(string path, JsonProperty prop)
    {
        string name = prop.Name;
        var v = prop.Value;
        if (v.ValueKind != JsonValueKind.Object)
            throw new DataFileException(path, $"tensor '{name}': header entry must be an object, got {v.ValueKind}.");
        var keys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var field in v.EnumerateObject())
            if (!keys.Add(field.Name))
                throw new DataFileException(path, $"tensor '{name}': header entry names '{field.Name}' twice (duplicate key).");
        if (!v.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw new DataFileException(path, $"tensor '{name}': header entry has no string 'dtype'.");
        string dtype = dt.GetString()!;
        if (dtype is not ("F64" or "F32" or "F16" or "BF16"))
            throw new DataFileException(path, $"tensor '{name}': dtype {dtype} is not supported (F64, F32, F16, BF16; they are read as float64).");
        if (!v.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw new DataFileException(path, $"tensor '{name}': header entry has no 'shape' array.");
        var shape = new List<int>();
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out int di) || di < 0)
                throw new DataFileException(path, $"tensor '{name}': shape entry {d.GetRawText()} is not a non-negative integer.");
            shape.Add(di);
        }
        if (!v.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new DataFileException(path, $"tensor '{name}': header entry needs 'data_offsets' [begin, end].");
        long[] o = new long[2];
        int k = 0;
        foreach (var d in off.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out o[k]) || o[k] < 0)
                throw new DataFileException(path, $"tensor '{name}': data_offsets entry {d.GetRawText()} is not a non-negative integer.");
            k++;
        }
        return (name, dtype, shape.ToArray(), o[0], o[1]);
    }

    internal static string ShapeText(IEnumerable<int> shape) => "[" + string.Join(", ", shape) + "]";

    internal static string OneLine(string s) => s.ReplaceLineEndings(" ");
}

/// <summary>Whole-file reads with one-line errors naming the file, and little-endian float (de)coding.</summary>
internal static class FileBytes
{
    /// <summary>
    /// Bytes per element of a little-endian element type: safetensors' F64, F32, F16, BF16, or
    /// NumPy's <c>&lt;f8 &lt;f4 &lt;f2 &lt;i8 &lt;i4 &lt;i2 |i1 |u1 &lt;u2 &lt;u4</c>; 0 when unknown.
    /// </summary>
    public static int ElementSize(string type) => type switch
    {
        "F64" or "<f8" or "<i8" => 8,
        "F32" or "<f4" or "<i4" or "<u4" => 4,
        "F16" or "BF16" or "<f2" or "<i2" or "<u2" => 2,
        "|i1" or "|u1" => 1,
        _ => 0,
    };

    /// <summary>
    /// Decodes <paramref name="count"/> little-endian elements of <paramref name="type"/> (see
    /// <see cref="ElementSize"/>) to float64. Every float type widens exactly (a bfloat16 is the
    /// high half of a float32); integers are exact up to 2⁵³ in magnitude.
    /// </summary>
    public static double[] ReadElements(ReadOnlySpan<byte> src, int count, string type)
    {
        var data = new double[count];
        switch (type)
        {
            case "F64" or "<f8": for (int i = 0; i < count; i++) data[i] = BinaryPrimitives.ReadDoubleLittleEndian(src[(8 * i)..]); break;
            case "F32" or "<f4": for (int i = 0; i < count; i++) data[i] = BinaryPrimitives.ReadSingleLittleEndian(src[(4 * i)..]); break;
            case "F16" or "<f2": for (int i = 0; i < count; i++) data[i] = (double)BinaryPrimitives.ReadHalfLittleEndian(src[(2 * i)..]); break;
            case "BF16":
                for (int i = 0; i < count; i++)
                    data[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(src[(2 * i)..]) << 16);
                break;
            case "<i8": for (int i = 0; i < count; i++) data[i] = BinaryPrimitives.ReadInt64LittleEndian(src[(8 * i)..]); break;
            case "<i4": for (int i = 0; i < count; i++) data[i] = BinaryPrimitives.ReadInt32LittleEndian(src[(4 * i)..]); break;
            case "<u4": for (int i = 0; i < count; i++) data[i] = BinaryPrimitives.ReadUInt32LittleEndian(src[(4 * i)..]); break;
            case "<i2": for (int i = 0; i < count; i++) data[i] = BinaryPrimitives.ReadInt16LittleEndian(src[(2 * i)..]); break;
            case "<u2": for (int i = 0; i < count; i++) data[i] = BinaryPrimitives.ReadUInt16LittleEndian(src[(2 * i)..]); break;
            case "|i1": for (int i = 0; i < count; i++) data[i] = (sbyte)src[i]; break;
            case "|u1": for (int i = 0; i < count; i++) data[i] = src[i]; break;
            default: throw new ArgumentException($"element type '{type}' is not supported.");
        }
        return data;
    }

    /// <summary>Writes values as little-endian float64 through a 64 KiB buffer.</summary>
    public static void WriteFloat64(Stream s, ReadOnlySpan<double> values)
    {
        var buf = new byte[1 << 16];
        int n = 0;
        foreach (var v in values)
        {
            BinaryPrimitives.WriteDoubleLittleEndian(buf.AsSpan(n), v);
            n += 8;
            if (n == buf.Length) { s.Write(buf, 0, n); n = 0; }
        }
        s.Write(buf, 0, n);
    }

    /// <summary>The whole regular file, read no further than its size (<see cref="RegularFile.ReadAll"/>).</summary>
    public static byte[] ReadAll(string path) => RegularFile.ReadAll(path);
}
