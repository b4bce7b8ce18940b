using GlobalNtk.Dense;
using GlobalNtk.IO;
using GlobalNtk.Models.Recurrent;

namespace GlobalNtk.Tests;

/// <summary>A tiny GRU saved to disk with inputs, targets and a state-shaped vector, for CLI tests.</summary>
internal sealed class CliFixture : IDisposable
{
    public const int B = 2, T = 5, In = 3, H = 4, O = 2;

    public CliFixture()
    {
        Model = RecurrentModel.Create("gru", In, H, O, seed: 3);
        ModelFile.Save(Dir.File("m.safetensors"), Model);
        var rng = new Random(5);
        Inputs = Random(rng, ("trial", B), ("time", T), ("input", In));
        Targets = Random(rng, ("trial", B), ("time", T), ("output", O));
        Vector = Random(rng, ("trial", B), ("time", T), ("unit", H));
        Npy.Write(Dir.File("x.npy"), Inputs);
        Npy.Write(Dir.File("y.npy"), Targets);
        Npy.Write(Dir.File("q.npy"), Vector);
    }

    public TempDir Dir { get; } = new();
    public RecurrentModel Model { get; }
    public Tensor Inputs { get; }
    public Tensor Targets { get; }
    public Tensor Vector { get; }
    public string ModelPath => Dir.File("m.safetensors");
    public string X => Dir.File("x.npy");
    public string Y => Dir.File("y.npy");
    public string Q => Dir.File("q.npy");

    /// <summary>Small estimator budgets so the analysis runs in well under a second.</summary>
    public static readonly string[] FastAnalysis = ["--top-k", "3", "--probes", "6", "--partial-budget", "6", "--quiet"];

    /// <summary>A tensor with entries uniform in [−1, 1) (<see cref="TestMath.Uniform(Random, AxisShape)"/>).</summary>
    public static Tensor Random(Random rng, params (string, int)[] axes) => TestMath.Uniform(rng, new AxisShape(axes));

    /// <summary>Files and folders in the fixture folder other than the given ones (to prove nothing partial was left).</summary>
    public string[] Extra(params string[] allowed) =>
        Directory.EnumerateFileSystemEntries(Dir.Path).Select(Path.GetFileName).Where(n => !allowed.Contains(n) && n is not ("m.safetensors" or "x.npy" or "y.npy" or "q.npy")).ToArray()!;

    public void Dispose() => Dir.Dispose();
}
