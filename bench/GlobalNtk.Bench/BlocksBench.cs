using System.Diagnostics;
using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Models.Mlp;
using GlobalNtk.Ntk;

namespace GlobalNtk.Bench;

/// <summary>
/// Generic paths against hand-fused ones, in the same run: setup, NTK_S on one vector and on a
/// block. <c>blocks [B=256] [H=256] [L=8] [N=16] [block=30]</c>: the MLP on the block chain vs the
/// fused MLP linearisation. <c>blocks rnn [arch=gru] [B=32] [T=90] [H=256] [N=3] [block=30] [L=1] [h0=0]</c>:
/// a recurrent net on the generic block chain (<c>RecurrentModel.LinearizeBlocks</c>: cell blocks
/// over time and layers) vs the default path (the fused cell path for one biased layer, else the
/// fused stacked path), and for one layer also the stacked path; <c>h0=1</c> learns the initial state. Setup = forward, linearisation,
/// operators and every site's Û. Wall and process-CPU milliseconds, mean of 3 after a warm-up.
/// </summary>
internal static class BlocksBench
{
    public static int Run(string[] args)
    {
        if (args.Length > 0 && args[0] == "rnn") return Recurrent(args[1..]);
        int Arg(int i, int d) => args.Length > i ? int.Parse(args[i]) : d;
        int b = Arg(0, 256), h = Arg(1, 256), l = Arg(2, 8), n = Arg(3, 16), block = Arg(4, 30);
        var model = MlpModel.Create(n, h, l, 3, Activation.Tanh, seed: 1);
        var rng = new Random(2);
        var x = new Tensor(Enumerable.Range(0, b * n).Select(_ => rng.NextDouble() * 2 - 1).ToArray(), new AxisShape(("sample", b), ("input", n)));
        Console.WriteLine($"mlp B={b} H={h} L={l} N_in={n} m={model.Parameters.TotalSize} cores={Environment.ProcessorCount}");

        return Compare(("blocks", () => model.Linearize(x)), ("fused", () => model.LinearizeFused(x)), block);
    }

    private static int Recurrent(string[] args)
    {
        string arch = args.Length > 0 ? args[0] : "gru";
        int Arg(int i, int d) => args.Length > i ? int.Parse(args[i]) : d;
        int b = Arg(1, 32), t = Arg(2, 90), h = Arg(3, 256), n = Arg(4, 3), block = Arg(5, 30), layers = Arg(6, 1), h0 = Arg(7, 0);
        var model = Models.Recurrent.RecurrentModel.Create(new Models.Recurrent.RecurrentConfig(arch, n, h, 3) { Seed = 1, Layers = layers, LearnInitialState = h0 != 0 });
        var rng = new Random(2);
        var x = new Tensor(Enumerable.Range(0, b * t * n).Select(_ => rng.NextDouble() * 2 - 1).ToArray(), model.InputShape(b, t));
        Console.WriteLine($"{arch} B={b} T={t} H={h} N_in={n} L={layers} h0={h0 != 0} m={model.Parameters.TotalSize} cores={Environment.ProcessorCount}");
        var paths = new List<(string, Func<ChainLinearization>)> { ("blocks", () => model.LinearizeBlocks(x)), (model.Cell != null ? "fused" : "fused stacked", () => model.Linearize(x)) };
        if (model.Cell != null) paths.Add(("stacked", () => model.LinearizeStacked(x)));
        return Compare(block, [.. paths]);
    }

    private static int Compare((string Name, Func<ChainLinearization> Make) a, (string Name, Func<ChainLinearization> Make) b, int block) => Compare(block, a, b);

    private static int Compare(int block, params (string Name, Func<ChainLinearization> Make)[] paths)
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

        foreach (var (name, make) in paths)
        {
            ChainLinearization lin = null!;
            NtkOperators ops = null!;
            void Setup()
            {
                lin = make();
                ops = new NtkOperators(lin);
                _ = ops.NtkS;
                foreach (var site in lin.Sites) _ = site.Variables;
            }
            Setup();
            Time($"{name}: setup (forward, linearise, Û)", Setup);
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
