using System.Globalization;
using GlobalNtk.Dense;
using GlobalNtk.IO;
using GlobalNtk.Models;
using GlobalNtk.Operators;
using GlobalNtk.Tasks;

namespace GlobalNtk.Cli.Common;

/// <summary>
/// Reads and checks what commands are given (models, arrays, tasks, lists), so every bad input
/// becomes one clear message naming the option, the file and the shapes at fault.
/// </summary>
public static class CliInputs
{
    /// <summary>An option that must be given.</summary>
    public static string Required(string? value, string option) =>
        string.IsNullOrWhiteSpace(value) ? throw new CliInputException($"missing required option {option}.") : value;

    /// <summary>
    /// A regular file that must exist and hold data: folders, FIFOs, sockets and devices are
    /// refused before anything opens them (a FIFO would block, <c>/dev/zero</c> never ends).
    /// </summary>
    public static string ExistingFile(string? path, string option)
    {
        Required(path, option);
        if (Directory.Exists(path)) throw new CliInputException($"{option} '{path}' is a folder, expected a file.");
        if (!File.Exists(path)) throw new CliInputException($"{option} '{path}': file not found.");
        try { RegularFile.Size(path!); }
        catch (DataFileException ex) { throw new CliInputException($"{option} {ex.Message}"); }
        return path!;
    }

    /// <summary>
    /// Loads a model file (safetensors) given by <paramref name="option"/>; <paramref name="settings"/>
    /// are <c>--option KEY=VALUE</c> model settings that override the file's metadata.
    /// </summary>
    public static LoadedModel Model(string? path, string? arch, string option = "--model", string[]? settings = null)
    {
        ExistingFile(path, option);
        return ModelFile.Load(path!, string.IsNullOrWhiteSpace(arch) ? null : arch, KeyValues(settings, "--option"));
    }

    /// <summary>Parses repeated <c>KEY=VALUE</c> options (a repeated key keeps the last value).</summary>
    public static Dictionary<string, string> KeyValues(string[]? values, string option)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var o in values ?? [])
        {
            int eq = o.IndexOf('=');
            if (eq <= 0 || eq == o.Length - 1) throw new CliInputException($"{option} '{o}' must look like KEY=VALUE.");
            d[o[..eq].Trim().ToLowerInvariant()] = o[(eq + 1)..].Trim();
        }
        return d;
    }

    /// <summary>
    /// Reads a float .npy array as model inputs: [trial, time, input] (rank 3) or [sample, input]
    /// (rank 2); the model checks the sizes. With <paramref name="timeMajor"/> a rank-3 array is
    /// [time, trial, input] and is transposed. NaN/Inf are rejected with the file named.
    /// </summary>
    public static Tensor Inputs(string? path, string option = "--inputs", bool timeMajor = false)
    {
        ExistingFile(path, option);
        var a = Npy.Read(path!);
        Numerics.EnsureFinite(a.Data, $"{option} '{path}'");
        if (timeMajor)
        {
            if (a.Shape.Length != 3)
                throw new CliInputException($"{option} '{path}' has shape {a.ShapeText}; --time-major expects [steps, trials, inputs].");
            int t = a.Shape[0], b = a.Shape[1], n = a.Shape[2];
            var x = new double[a.Data.Length];
            for (int k = 0; k < t; k++)
                for (int i = 0; i < b; i++) a.Data.AsSpan((k * b + i) * n, n).CopyTo(x.AsSpan((i * t + k) * n, n));
            return new Tensor(x, new AxisShape(("trial", b), ("time", t), ("input", n)));
        }
        return a.Shape.Length switch
        {
            3 => a.ToTensor($"{option} '{path}'", "trial", "time", "input"),
            2 => a.ToTensor($"{option} '{path}'", "sample", "input"),
            _ => throw new CliInputException($"{option} '{path}' has shape {a.ShapeText}; expected [trials, steps, inputs] (or [samples, inputs])."),
        };
    }

    /// <summary>Reads an array that must have exactly <paramref name="expected"/>'s sizes (targets, vectors).</summary>
    public static Tensor Matching(string? path, AxisShape expected, string option, string what)
    {
        ExistingFile(path, option);
        var a = Npy.Read(path!);
        Numerics.EnsureFinite(a.Data, $"{option} '{path}'");
        if (!a.Shape.SequenceEqual(expected.Sizes))
            throw new ShapeMismatchException($"{option} '{path}' has shape {a.ShapeText} but the model's {what} are [{string.Join(", ", expected.Sizes)}] {expected}.");
        return new Tensor(a.Data, expected);
    }

    /// <summary>
    /// Linearises <paramref name="model"/> on <paramref name="inputs"/>, naming the inputs file when
    /// the shapes do not fit, or when the states alone could not fit in memory (checked first).
    /// </summary>
    public static ChainLinearization Linearize(IChainModel model, Tensor inputs, string inputsPath, Precision precision = Dense.Precision.F64)
    {
        var sizes = inputs.Shape.Sizes;
        double rows = sizes.Count >= 3 ? (double)sizes[0] * sizes[1] : sizes.Count > 0 ? sizes[0] : 1;
        // A lower bound: the states and one more state-sized array (the cells keep more).
        var memory = new MemoryEstimate().AddDoubles("states and linearisation", 2 * rows * model.Readout.InputSize);
        RequireMemory(memory, $"--inputs '{inputsPath}' {inputs.Shape}");
        try { return model.Linearize(inputs, precision); }
        catch (ArgumentException ex) when (ex is not ShapeMismatchException)
        {
            throw new ShapeMismatchException($"--inputs '{inputsPath}' {inputs.Shape}: {ex.Message}");
        }
    }

    /// <summary>Help text of <c>--precision</c>, shared by every command that linearises a model.</summary>
    public const string PrecisionDescription =
        "f64 or f32: the precision the linearisation computes in. f32 keeps the caches in float32 and runs the products in float32 " +
        "(vectors, traces, Gram matrices and Krylov reductions stay float64); operator results typically agree with f64 within 1e-6 relative.";

    /// <summary>The precision named by <c>--precision</c> (f64 when not given).</summary>
    public static Precision ParsePrecision(string? text) =>
        text is null ? Dense.Precision.F64
        : PrecisionNames.TryParse(text, out var p) ? p
        : throw new CliInputException($"--precision must be f64 or f32, got '{text}'.");

    /// <summary>Refuses work whose <paramref name="estimate"/> cannot fit in memory; the one-line error starts with <paramref name="what"/> (the option at fault).</summary>
    public static void RequireMemory(MemoryEstimate estimate, string what)
    {
        try { MemoryBudget.Require(estimate, what); }
        catch (MemoryBudgetException ex) { throw new CliInputException(ex.Message); }
    }

    /// <summary>Runs <paramref name="create"/>; when the library refuses it for memory, the error names <paramref name="option"/> (e.g. <c>--hidden 20000</c>).</summary>
    public static T WithinMemory<T>(string option, Func<T> create)
    {
        try { return create(); }
        catch (MemoryBudgetException ex) { throw new CliInputException($"{option}: {ex.Message}"); }
    }

    /// <summary>Creates a task by name (unknown names list the valid ones).</summary>
    public static ITask Task(string name, TaskOptions options)
    {
        if (!TaskRegistry.Names.Contains(name.Trim().ToLowerInvariant()) && !TaskRegistry.Names.Contains(name))
            throw new CliInputException($"unknown task '{name}' (valid: {string.Join(", ", TaskRegistry.Names)}).");
        return TaskRegistry.Create(name, options);
    }

    /// <summary>Parses a comma-separated list of numbers (e.g. <c>--gains 0,0.5,1</c>).</summary>
    public static double[] Numbers(string? list, string option)
    {
        Required(list, option);
        var parts = list!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new CliInputException($"{option} '{list}' holds no numbers.");
        return parts.Select(p => double.TryParse(p, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v)
            ? v : throw new CliInputException($"{option}: '{p}' is not a finite number (in '{list}').")).ToArray();
    }

    /// <summary>Throws unless <paramref name="value"/> ≥ <paramref name="min"/>.</summary>
    public static int AtLeast(int value, int min, string option) =>
        value >= min ? value : throw new CliInputException($"{option} must be ≥ {min}, got {value}.");
}
