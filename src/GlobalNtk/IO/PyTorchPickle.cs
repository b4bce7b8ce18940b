namespace GlobalNtk.IO;

/// <summary>
/// Recognises PyTorch's own <c>torch.save</c> files (<c>.pt</c>, <c>.pth</c>: a zip archive, or a
/// bare pickle in the legacy format). GlobalNtk does not read them — unpickling runs arbitrary
/// code — so the error says how to write safetensors with the settings instead.
/// </summary>
public static class PyTorchPickle
{
    /// <summary>The PyTorch lines that save a model's state dict as float64 safetensors with its settings (shown in errors and the README).</summary>
    public const string SaveHint =
        "from safetensors.torch import save_file; " +
        "save_file({k: v.double().contiguous() for k, v in model.state_dict().items()}, 'model.safetensors', " +
        "metadata={'arch': 'transformer', 'heads': '4', 'activation': 'gelu', 'gelu_approximate': 'none', 'causal': 'false', " +
        "'norm_first': 'false', 'layer_norm_eps': '1e-5', 'positional': 'none', 'scale_embedding': 'false'})";

    /// <summary>
    /// Whether the first bytes are a zip local header (<c>PK\x03\x04</c>) or a pickle protocol 2–5
    /// opcode, and not a safetensors header. A safetensors file starts with its 8-byte little-endian
    /// header length, whose first two bytes can spell 0x80 0x02…0x05 (header lengths 640, 896, 1152,
    /// 1408 bytes), so a file whose ninth byte opens a JSON object (<c>{</c>) is safetensors.
    /// </summary>
    public static bool LooksLikePickle(ReadOnlySpan<byte> head)
    {
        if (head.Length >= 9 && head[8] == (byte)'{') return false;
        return head.Length >= 4 && head[0] == (byte)'P' && head[1] == (byte)'K' && head[2] == 3 && head[3] == 4
            || head.Length >= 2 && head[0] == 0x80 && head[1] is >= 2 and <= 5;
    }

    /// <summary>Throws a one-line <see cref="DataFileException"/> with <see cref="SaveHint"/> when <paramref name="path"/> is a PyTorch pickle.</summary>
    public static void ThrowIfPickle(string path)
    {
        RegularFile.Size(path); // a FIFO or device is refused before it is opened
        Span<byte> head = stackalloc byte[9];
        int n;
        try
        {
            using var f = File.OpenRead(path);
            n = f.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return; } // the reader reports it
        if (!LooksLikePickle(head[..n])) return;
        throw new DataFileException(path,
            "is a PyTorch torch.save file (zip/pickle), which GlobalNtk does not read (unpickling runs code). Save the state dict as safetensors " +
            $"with the settings in its metadata (the keys for each family are in the README; 'globalntk inspect' shows which are missing), e.g. in PyTorch: {SaveHint}");
    }
}
