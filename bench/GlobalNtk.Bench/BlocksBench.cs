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
/// float32 (<see cref="Precision"/>), the latter with float64 vectors (f32, as a float64 caller passes them) and
/// with float32 vectors (f32v32, the operators' float32 path). <c>blocks rnn [arch=gru] [B=32] [T=90] [H=256] [N=3] [block=30] [L=1] [h0=0] [stacked=0]</c>:
/// a recurrent net on the generic block chain (<c>RecurrentModel.LinearizeBlocks</c>: cell blocks
/// over time and layers) vs the default path (the fused cell path for one biased layer, else the
/// fused stacked path), and with <c>stacked=1</c> for one layer also the stacked path; <c>h0=1</c> learns the initial state. Setup = forward, linearisation,
/// operators and every site's Û. Process-CPU and wall milliseconds of interleaved rounds.
/// <c>blocks transformer [d=128] [L=4] [S=32] [N=64] [block=30] [rounds=2] [post-ln]</c>: the
/// transformer of <c>bench transformer</c> (4 heads, d_ff = 4d, causal GELU) on the block chain vs
/// the fused TransformerLinearization; setup (forward + operators), NTK_S on one vector and on a
/// block, process CPU seconds, the two paths alternating for <c>rounds</c> rounds (best kept). With
/// <c>f32</c>: the block path in float64 against float32 (with float64 vectors, as a float64 caller
/// applies it, and with float32 vectors through the operators' float32 path) instead of the fused path.
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

        // f32v32: the float32 linearisation applied to float32 vectors (the operators' float32 path).
        if (precision) return Compare(block, ("f64", () => model.Linearize(x)), ("f32", () => model.Linearize(x, Precision.F32)), ("f32v32", () => model.Linearize(x, Precision.F32)));
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
        if (model.Cell != null && Arg(8, 0) != 0) paths.Add(("stacked", () => model.LinearizeStacked(x)));
        return Compare(block, [.. paths]);
    }

    private static int Transformer(string[] args)
    {
        bool postLn = args.Contains("post-ln"), f32 = args.Contains("f32");
        args = args.Where(a => a != "post-ln" && a != "f32").ToArray();
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
        // f32: the block path in float64, in float32 with float64 vectors (as a float64 caller), and in float32 with float32 vectors.
        var paths = f32
            ? new (string Name, Func<ChainLinearization> Make)[] { ("f64", () => model.Linearize(x)), ("f32", () => model.Linearize(x, Precision.F32)), ("f32v32", () => model.Linearize(x, Precision.F32)) }
            : [("blocks", () => model.Linearize(x)), ("fused", () => model.LinearizeFused(x))];
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
                bool single = name == "f32v32";
                var s1 = single ? Float32.ToSingle(v1) : []; var y1 = new float[single ? size : 0];
                double one = Cpu(() => { if (single) ops.NtkS.ApplyBlock(s1, y1, 1); else ops.NtkS.ApplyBlock(v1, 1); });
                double k1 = Cpu(() => { if (single) ops.KKronecker.ApplyBlock(s1, y1, 1); else ops.KKronecker.ApplyBlock(v1, 1); });
                double blk = 0;
                if (block > 0 && round > 0)
                {
                    var vb = Enumerable.Range(0, block * size).Select(_ => rng.NextDouble() - 0.5).ToArray();
                    var sb = single ? Float32.ToSingle(vb) : []; var yb = new float[single ? block * size : 0];
                    blk = Cpu(() => { if (single) ops.NtkS.ApplyBlock(sb, yb, block); else ops.NtkS.ApplyBlock(vb, block); });
                }
                if (round == 0) continue;
                Keep(name, "forward", fwd); Keep(name, "setup", setup); Keep(name, "ntk1", one); Keep(name, "k1", k1); Keep(name, "ntkB", blk);
                Console.WriteLine($"  round {round} {name,-6}: forward {fwd,7:F3}  setup {setup,7:F3}  NTK_S 1 vec {one,7:F3}  K 1 vec {k1,7:F3}  NTK_S {block} vec {blk,8:F3}");
            }
        if (f32)
        {
            Console.WriteLine($"{"CPU s (best)",-22} {"f64",9} {"f32",9} {"f32v32",9} {"f64/f32",9} {"f64/f32v32",11}");
            foreach (var (what, label) in new[] { ("forward", "forward (linearise)"), ("setup", "setup (+ operators)"), ("ntk1", "NTK_S, 1 vector"), ("k1", "K Kronecker, 1 vector"), ("ntkB", $"NTK_S, block of {block}") })
            {
                double a = best[("f64", what)], b = best[("f32", what)], c = best[("f32v32", what)];
                Console.WriteLine($"{label,-22} {a,9:F3} {b,9:F3} {c,9:F3} {(b > 0 ? a / b : double.NaN),9:F3} {(c > 0 ? a / c : double.NaN),11:F3}");
            }
            return 0;
        }
        Console.WriteLine($"{"CPU s (best)",-22} {"blocks",9} {"fused",9} {"blocks/fused",13}");
        foreach (var (what, label) in new[] { ("forward", "forward (linearise)"), ("setup", "setup (+ operators)"), ("ntk1", "NTK_S, 1 vector"), ("k1", "K Kronecker, 1 vector"), ("ntkB", $"NTK_S, block of {block}") })
        {
            double a = best[("blocks", what)], b = best[("fused", what)];
            Console.WriteLine($"{label,-22} {a,9:F3} {b,9:F3} {(b > 0 ? a / b : double.NaN),13:F3}");
        }
        return 0;
    }

    private static int Compare((string Name, Func<ChainLinearization> Make) a, (string Name, Func<ChainLinearization> Make) b, int block) => Compare(block, a, b);

    private static int Compare(int block, params (string Name, Func<ChainLinearization> Make)[] paths)
    {
        // The paths run interleaved, round by round (the order rotating), so that a shared machine's
        // load drifts over all of them alike; each figure is the min and median over the rounds.
        const int rounds = 3;
        int np = paths.Length;
        var ops = new NtkOperators[np];
        NtkOperators Setup(int i)
        {
            var lin = paths[i].Make();
            var o = new NtkOperators(lin);
            _ = o.NtkS;
            foreach (var site in lin.Sites) _ = site.Variables;
            return o;
        }
        for (int i = 0; i < np; i++) ops[i] = Setup(i);   // warm-up (JIT)
        var rng = new Random(3);
        int size = ops[0].Linearization.StateShape.Size;
        var rows = new List<(string What, bool Warm, Func<int, Action> Run)> { ("setup (forward, linearise, Û)", false, i => () => ops[i] = Setup(i)) };
        foreach (int count in new[] { 1, block })
        {
            var v = Enumerable.Range(0, count * size).Select(_ => rng.NextDouble() - 0.5).ToArray();
            var v32 = Float32.ToSingle(v); var y32 = new float[v.Length];
            rows.Add(($"NTK_S, {count} vec", count == 1, i => () =>
            {
                if (paths[i].Name == "f32v32") ops[i].NtkS.ApplyBlock(v32, y32, count);
                else ops[i].NtkS.ApplyBlock(v, count);
            }));
        }
        Console.WriteLine($"  ms, min / median of {rounds} interleaved rounds");
        foreach (var (what, warm, run) in rows)
        {
            if (warm) for (int i = 0; i < np; i++) run(i)();
            var cpu = new double[np][]; var wall = new double[np][];
            for (int i = 0; i < np; i++) { cpu[i] = new double[rounds]; wall[i] = new double[rounds]; }
            for (int r = 0; r < rounds; r++)
                for (int o = 0; o < np; o++)
                {
                    int i = (o + r) % np;
                    var proc = Process.GetCurrentProcess();
                    var cpu0 = proc.TotalProcessorTime;
                    var sw = Stopwatch.StartNew();
                    run(i)();
                    wall[i][r] = sw.Elapsed.TotalMilliseconds;
                    proc.Refresh();
                    cpu[i][r] = (proc.TotalProcessorTime - cpu0).TotalMilliseconds;
                }
            for (int i = 0; i < np; i++)
            {
                static double Median(double[] a) { var s = a.Order().ToArray(); return s[s.Length / 2]; }
                Console.WriteLine($"  {paths[i].Name + ": " + what,-44} cpu {cpu[i].Min(),9:F1} / {Median(cpu[i]),9:F1}   wall {wall[i].Min(),9:F1} / {Median(wall[i]),9:F1}");
            }
        }
        return 0;
    }
}
