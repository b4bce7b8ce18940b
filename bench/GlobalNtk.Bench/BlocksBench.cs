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
/// <c>blocks transformer [d=128] [L=4] [S=32] [N=64] [block=30] [rounds=2] [post-ln]</c>: the
/// transformer of <c>bench transformer</c> (4 heads, d_ff = 4d, causal GELU) on the block chain vs
/// the fused TransformerLinearization; setup (forward + operators), NTK_S on one vector and on a
/// block, process CPU seconds, the two paths alternating for <c>rounds</c> rounds (best kept).
/// </summary>
internal static class BlocksBench
{
    public static int Run(string[] args)
    {
        if (args.Length > 0 && args[0] == "rnn") return Recurrent(args[1..]);
        if (args.Length > 0 && args[0] == "transformer") return Transformer(args[1..]);
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

    private static int Transformer(string[] args)
    {
        bool postLn = args.Contains("post-ln");
        args = args.Where(a => a != "post-ln").ToArray();
        int Arg(int i, int d) => args.Length > i ? int.Parse(args[i]) : d;
        int d = Arg(0, 128), layers = Arg(1, 4), seqs = Arg(2, 32), tokens = Arg(3, 64), block = Arg(4, 30), rounds = Arg(5, 2);
        var config = new Models.Transformer.TransformerConfig(Models.Transformer.TransformerInput.Linear, 3, d, 4, layers, 4 * d, Activation.Gelu, Causal: true)
            { NormFirst = !postLn };
        var model = Models.Transformer.TransformerModel.Create(config, 3, seed: 1);
        var rng = new Random(2);
        var x = new Tensor(Enumerable.Range(0, seqs * tokens * 3).Select(_ => 2 * rng.NextDouble() - 1).ToArray(),
            new AxisShape(("sequence", seqs), ("token", tokens), ("input", 3)));
        Console.WriteLine($"transformer d={d} heads=4 L={layers} d_ff={4 * d} causal GELU {(postLn ? "post-LN" : "pre-LN")} {seqs}×{tokens} tokens, " +
                          $"θ = {model.Parameters.TotalSize}, cores={Environment.ProcessorCount}; CPU seconds, best of {rounds} alternating rounds");
        var paths = new (string Name, Func<ChainLinearization> Make)[] { ("blocks", () => model.Linearize(x)), ("fused", () => model.LinearizeFused(x)) };
        static double Cpu(Action run)
        {
            var proc = Process.GetCurrentProcess();
            var cpu0 = proc.TotalProcessorTime;
            run();
            proc.Refresh();
            return (proc.TotalProcessorTime - cpu0).TotalSeconds;
        }
        var best = new Dictionary<(string, string), double>();
        void Keep(string path, string what, double s) =>
            best[(path, what)] = best.TryGetValue((path, what), out var b) ? Math.Min(b, s) : s;
        int size = 0;
        for (int round = 0; round <= rounds; round++) // round 0 warms up (JIT) and is not kept
            foreach (var (name, make) in paths)
            {
                double fwd = Cpu(() => make());
                NtkOperators ops = null!;
                double setup = Cpu(() => { ops = new NtkOperators(make()); _ = ops.NtkS; });
                size = ops.Linearization.StateShape.Size;
                var v1 = Enumerable.Range(0, size).Select(_ => rng.NextDouble() - 0.5).ToArray();
                double one = Cpu(() => ops.NtkS.ApplyBlock(v1, 1));
                double k1 = Cpu(() => ops.KKronecker.ApplyBlock(v1, 1));
                double blk = 0;
                if (block > 0 && round > 0)
                {
                    var vb = Enumerable.Range(0, block * size).Select(_ => rng.NextDouble() - 0.5).ToArray();
                    blk = Cpu(() => ops.NtkS.ApplyBlock(vb, block));
                }
                if (round == 0) continue;
                Keep(name, "forward", fwd); Keep(name, "setup", setup); Keep(name, "ntk1", one); Keep(name, "k1", k1); Keep(name, "ntkB", blk);
                Console.WriteLine($"  round {round} {name,-6}: forward {fwd,7:F3}  setup {setup,7:F3}  NTK_S 1 vec {one,7:F3}  K 1 vec {k1,7:F3}  NTK_S {block} vec {blk,8:F3}");
            }
        Console.WriteLine($"{"CPU s (best)",-22} {"blocks",9} {"fused",9} {"blocks/fused",13}");
        foreach (var (what, label) in new[] { ("forward", "forward (linearise)"), ("setup", "setup (+ operators)"), ("ntk1", "NTK_S, 1 vector"), ("k1", "K Kronecker, 1 vector"), ("ntkB", $"NTK_S, block of {block}") })
        {
            double a = best[("blocks", what)], b = best[("fused", what)];
            Console.WriteLine($"{label,-22} {a,9:F3} {b,9:F3} {(b > 0 ? a / b : double.NaN),13:F3}");
        }
        return 0;
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
