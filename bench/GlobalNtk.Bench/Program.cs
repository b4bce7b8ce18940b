Console.WriteLine("GlobalNtk benchmarks: see bench/README (to be filled by the kernel work).");
