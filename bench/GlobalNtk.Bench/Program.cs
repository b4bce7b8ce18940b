using GlobalNtk.Bench;

// Dispatcher only: each benchmark lives in its own file and registers one line here.
var benches = new Dictionary<string, (string Help, Func<string[], int> Run)>
{
    ["gemm"] = ("dense dgemm/sgemm: managed kernel vs OpenBLAS (if installed) in GFLOP/s", GemmBench.Run),
    ["gemmkernel"] = ("the AVX-512 GEMM microkernel alone: operands in L1, B̄ from L2, stored A; GFLOP/s by thread CPU time (--hash: output bits)", GemmKernelBench.Run),
    ["ntk"] = ("NTK operators on a GRU (B=32, T=90, H=256): setup, NTK_S/K/P per vector and per block, GFLOP/s, memory", NtkBench.Run),
    ["transformer"] = ("NTK operators on a pre-LN transformer (d=128, 4 heads, L=4, 32×64 tokens): setup, NTK_S per vector/block, memory, rank bound, PR(K), PR(NTK_S)", TransformerBench.Run),
    ["blocks"] = ("generic block chains vs fused linearisations: MLP (args: B H L N block); 'blocks rnn' recurrent (args: arch B T H N block L h0 stacked); 'blocks transformer [d L S N block rounds] [post-ln]'", BlocksBench.Run),
    ["analysis"] = ("estimators on a saved model: old per-index vs budgeted partial ranks (--compare partial), quick vs thorough preset (--compare presets), Kronecker-core per-site trace costs (--compare kronecker [--exact-limit N])", AnalysisBench.Run),
    ["train"] = ("training steps on the demo's GRU (H=32, batch 16, T=60): ms per Adam step and per stage (args: steps H batch T)", TrainBench.Run),
    ["cells"] = ("recurrent cells: forward, state JVP/VJP sweeps, J_θ, J_θ* (args: arch B T H N block)", CellsBench.Run),
};

if (args.Length == 0 || !benches.TryGetValue(args[0], out var bench))
{
    Console.WriteLine("usage: dotnet run --project bench/GlobalNtk.Bench -c Release -- <name> [options]");
    foreach (var (name, b) in benches) Console.WriteLine($"  {name,-12} {b.Help}");
    return args.Length == 0 ? 0 : 2;
}
return bench.Run(args[1..]);
