using System.Diagnostics;
using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Ntk;

namespace GlobalNtk.Bench;

/// <summary>
/// Generic paths against hand-fused ones, in the same run: setup, NTK_S on one vector and on a
/// block. <c>blocks [B=256] [H=256] [L=8] [N=16] [block=30]</c>: the MLP on the block chain vs the
/// fused MLP linearisation; <c>blocks f32 […]</c>: the same MLP on the block chain in float64 vs
/// float32 (<see cref="Precision"/>). <c>blocks rnn [arch=gru] [B=32] [T=90] [H=256] [N=3] [block=30]</c>:
/// a single-layer recurrent net on the stacked (generic over layers) path vs the fused cell path.
/// </summary>
internal static class BlocksBench
{
    public static int Run(string[] args)
    {
        if (args.Length > 0 && args[0] == "rnn") return Recurrent(args[1..]);
        bool precision = args.Length > 0 && args[0] == "f32";
        if (precision) args = args[1..];
        int Arg(int i, int d) => args.Length > i ? int.Parse(args[i]) : d;
        int b = Arg(0, 256), h = Arg(1, 256), l = Arg(2, 8), n = Arg(3, 16), block = Arg(4, 30);
        var model = MlpModel.Create(n, h, l, 3, Activation.Tanh, seed: 1);
        var rng = new Random(2);
        var x = new Tensor(Enumerable.Range(0, b * n).Select(_ => rng.NextDouble() * 2 - 1).ToArray(), new AxisShape(("sample", b), ("input", n)));
        Console.WriteLine($"mlp B={b} H={h} L={l} N_in={n} m={model.Parameters.TotalSize} cores={Environment.ProcessorCount}");

        if (precision) return Compare(("f64", () => model.Linearize(x)), ("f32", () => model.Linearize(x, Precision.F32)), block);
        return Compare(("blocks", () => model.Linearize(x)), ("fused", () => model.LinearizeFused(x)), block);
    }

    private static int Recurrent(string[] args)
    {
        string arch = args.Length > 0 ? args[0] : "gru";
        int Arg(int i, int d) => args.Length > i ? int.Parse(args[i]) : d;
        int b = Arg(1, 32), t = Arg(2, 90), h = Arg(3, 256), n = Arg(4, 3), block = Arg(5, 30);
        var model = Models.Recurrent.RecurrentModel.Create(new Models.Recurrent.RecurrentConfig(arch, n, h, 3) { Seed = 1 });
        var rng = new Random(2);
        var x = new Tensor(Enumerable.Range(0, b * t * n).Select(_ => rng.NextDouble() * 2 - 1).ToArray(), model.InputShape(b, t));
        Console.WriteLine($"{arch} B={b} T={t} H={h} N_in={n} m={model.Parameters.TotalSize} cores={Environment.ProcessorCount}");
        return Compare(("stacked", () => model.LinearizeStacked(x)), ("fused", () => model.Linearize(x)), block);
    }

    private static int Compare((string Name, Func<ChainLinearization> Make) a, (string Name, Func<ChainLinearization> Make) b, int block)
    {
        var rng = new Random(3);
        static double Time(string what, Action run, int reps = 3)
        {
            run();
            var proc = Process.GetCurrentProcess();
            var cpu0 = proc.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < reps; i++) run();
            double s = sw.Elapsed.TotalSeconds / reps;
            proc.Refresh();
            double cpu = (proc.TotalProcessorTime - cpu0).TotalSeconds / reps;
            Console.WriteLine($"  {what,-40} wall {s * 1e3,9:F1} ms   cpu {cpu * 1e3,9:F1} ms");
            return s;
        }

        foreach (var (name, make) in new[] { a, b })
        {
            ChainLinearization lin = make();
            Time($"{name}: forward + linearise", () => lin = make());
            var ops = new NtkOperators(lin);
            int size = lin.StateShape.Size;
            foreach (int count in new[] { 1, block })
            {
                var v = Enumerable.Range(0, count * size).Select(_ => rng.NextDouble() - 0.5).ToArray();
                Time($"{name}: NTK_S, {count} vec", () => ops.NtkS.ApplyBlock(v, count));
            }
        }
        return 0;
    }
}
