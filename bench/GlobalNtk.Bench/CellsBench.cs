using System.Diagnostics;
using GlobalNtk.Dense;
using GlobalNtk.Models.Recurrent;

namespace GlobalNtk.Bench;

/// <summary>
/// Recurrent cell linearisation costs: forward + caches, a full sweep of state JVPs (the work of P),
/// of state VJPs (P*), J_θ and J_θ*, for one vector and a block.
/// Usage: <c>cells [arch=gru] [B=32] [T=90] [H=256] [N=3] [block=30]</c>.
/// </summary>
internal static class CellsBench
{
    public static int Run(string[] args)
    {
        string arch = args.Length > 0 ? args[0] : "gru";
        int Arg(int i, int d) => args.Length > i ? int.Parse(args[i]) : d;
        int b = Arg(1, 32), t = Arg(2, 90), h = Arg(3, 256), n = Arg(4, 3), block = Arg(5, 30);
        var model = RecurrentModel.Create(new RecurrentConfig(arch, n, h, 3) { Seed = 1 });
        var rng = new Random(2);
        var x = new Tensor(Enumerable.Range(0, b * t * n).Select(_ => rng.NextDouble() * 2 - 1).ToArray(), model.InputShape(b, t));
        Console.WriteLine($"{arch} B={b} T={t} H={h} N_in={n} m={model.Parameters.TotalSize} cores={Environment.ProcessorCount}");

        double Time(string what, Action run, int reps = 3)
        {
            run();
            var proc = Process.GetCurrentProcess();
            var cpu0 = proc.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < reps; i++) run();
            double s = sw.Elapsed.TotalSeconds / reps;
            proc.Refresh();
            double cpu = (proc.TotalProcessorTime - cpu0).TotalSeconds / reps;
            // CPU time is the figure to compare on a shared machine; wall time depends on the load.
            Console.WriteLine($"  {what,-38} wall {s * 1e3,9:F1} ms   cpu {cpu * 1e3,9:F1} ms");
            return s;
        }

        Models.ChainLinearization lin = model.Linearize(x);
        Time("forward + linearise", () => lin = model.Linearize(x));
        Time("site variables (fresh)", () => { var l = model.Linearize(x); foreach (var s in l.Sites) _ = s.Variables; });
        int size = lin.StateShape.Size, m = lin.Parameters.TotalSize;
        foreach (int count in new[] { 1, block })
        {
            var v = Enumerable.Range(0, count * size).Select(_ => rng.NextDouble() - 0.5).ToArray();
            var th = new double[count * m];
            Time($"A_k JVP sweep (P work), {count} vec", () => { for (int k = 1; k < t; k++) lin.StateJvpAdd(k, v, v, count); });
            Time($"A_kᵀ VJP sweep (P* work), {count} vec", () => { for (int k = t - 1; k >= 1; k--) lin.StateVjpAdd(k, v, v, count); });
            Time($"J_θ*, {count} vec", () => lin.ParamVjp(v, th, count));
            Time($"J_θ, {count} vec", () => lin.ParamJvp(th, v, count));
        }
        Console.WriteLine($"  peak working set {Process.GetCurrentProcess().PeakWorkingSet64 / 1e6:F0} MB");
        return 0;
    }
}
