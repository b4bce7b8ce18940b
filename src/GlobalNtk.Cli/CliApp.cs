using System.Reflection;
using GlobalNtk.Cli.Commands;
using GlobalNtk.Cli.Common;
using Spectre.Console;
using Spectre.Console.Cli;

namespace GlobalNtk.Cli;

/// <summary>
/// Builds the <c>globalntk</c> command tree and enforces the CLI's shared contract: every error
/// becomes exactly one line on stderr and a non-zero exit code (2 = bad input, 70 = internal),
/// results go to stdout (text, or JSON with <c>--json</c>), progress to stderr.
/// </summary>
/// <remarks>
/// Conventions for command authors: derive from <see cref="CliCommand{TSettings}"/> with settings
/// derived from <see cref="CommonSettings"/>; report bad input by throwing
/// <see cref="CliInputException"/> (or let the library's exceptions through); write outputs only via
/// <see cref="OutputFolder"/> (folders) or <see cref="OutputFile"/> (files), which apply the output policy
/// of <see cref="OutputTarget"/> (never replace what globalntk did not write; <c>--force</c>); show long work with <see cref="CliProgress"/>; register the
/// command below with a description and at least one example.
/// </remarks>
public static class CliApp
{
    /// <summary>Runs the CLI on the process console; returns the exit code.</summary>
    public static int Run(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Runs the CLI in-process with the given writers; returns the exit code.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr) => Run(args, new CliIO(stdout, stderr));

    /// <summary>Runs the CLI in-process with the given I/O (writers and crash-log folder; used by the tests); returns the exit code.</summary>
    public static int Run(string[] args, CliIO io)
    {
        var (stdout, stderr) = (io.Out, io.Err);
        CliIO.Current = io;
        var catalog = new CliCatalog();
        var app = new CommandApp();
        app.Configure(c =>
        {
            c.SetApplicationName("globalntk");
            c.ConfigureConsole(AnsiConsole.Create(new AnsiConsoleSettings
            {
                Out = new AnsiConsoleOutput(stdout),
                Ansi = ReferenceEquals(stdout, Console.Out) && !Console.IsOutputRedirected ? AnsiSupport.Detect : AnsiSupport.No,
                Interactive = InteractionSupport.No,
            }));
            c.PropagateExceptions();
            c.CaseSensitivity(CaseSensitivity.None);
            c.UseStrictParsing();
            Configure(catalog.Recording(c));
        });
        try
        {
            if (args is ["--version"])
            {
                stdout.WriteLine($"globalntk {Version}");
                return 0;
            }
            return app.Run(HelpAsOption(args, catalog));
        }
        catch (Exception ex)
        {
            // A misspelt command or option: name it and suggest the closest known one.
            string? unknown = ex is CommandParseException or CommandRuntimeException ? CliSuggest.Explain(args, catalog) : null;
            if (unknown is not null)
            {
                stderr.WriteLine("error: " + unknown);
                stderr.Flush();
                return CliErrors.BadInput;
            }
            return CliErrors.Report(ex, args, io);
        }
    }

    /// <summary>The registered commands and their options (what help and did-you-mean use).</summary>
    public static CliCatalog Catalog()
    {
        var catalog = new CliCatalog();
        new CommandApp().Configure(c => Configure(catalog.Recording(c)));
        return catalog;
    }

    /// <summary>The tool's version (the package version, without build metadata).</summary>
    public static string Version { get; } =
        (typeof(CliApp).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0").Split('+')[0];

    // "help" → "--help"; "help CMD" → "CMD --help" (an unknown CMD gets the did-you-mean error).
    private static string[] HelpAsOption(string[] args, CliCatalog catalog)
    {
        if (args.Length == 0 || !string.Equals(args[0], "help", StringComparison.OrdinalIgnoreCase) || catalog.Find("help") is not null) return args;
        if (args.Length == 1) return ["--help"];
        if (catalog.Find(args[1]) is null) throw new CliInputException(CliSuggest.Explain(args[1..], catalog) ?? $"unknown command '{args[1]}'.");
        return [args[1], "--help"];
    }

    private static void Configure(IConfigurator c)
    {
        c.AddCommand<DemoCommand>("demo")
            .WithDescription("The main job: train a small GRU on flip-flop, analyse its global NTK at init and after training, write a report folder.")
            .WithExample("demo")
            .WithExample("demo", "--out", "my-demo", "--quiet");
        c.AddCommand<Commands.TrainCommand>("train").WithDescription("Train a model on a generated task; checkpoints (safetensors, PyTorch names), log.csv and summary.json go to --out.")
            .WithExample("train", "--task", "flip-flop", "--arch", "gru", "--hidden", "64", "--steps", "2000", "--lr", "0.001", "--optimizer", "adam", "--gain", "1.5", "--seed", "1", "--out", "runs/gru-ff")
            .WithExample("train", "--resume", "--out", "runs/gru-ff", "--steps", "4000");
        c.AddCommand<ForwardCommand>("forward")
            .WithDescription("Run a model on inputs [[B,T,N_in]] and write its states [[B,T,S]] as .npy.")
            .WithExample("forward", "--model", "run/ckpt-000500.safetensors", "--inputs", "X.npy", "--out", "Z.npy");
        c.AddCommand<InspectCommand>("inspect")
            .WithDescription("Show how a model file will be read, before anything runs: family, sizes, which tensor feeds which block, readout, ignored tensors, parameter count, and each setting with its source.")
            .WithExample("inspect", "model.safetensors")
            .WithExample("inspect", "model.safetensors", "--option", "norm_first=false", "--json");
        c.AddCommand<ApplyCommand>("apply")
            .WithDescription("Apply P, P*, P⁻¹, K or NTK_S (matrix-free) to a state-shaped vector and write the result as .npy.")
            .WithExample("apply", "--model", "M.safetensors", "--inputs", "X.npy", "--operator", "NTK", "--vector", "Q.npy", "--out", "Y.npy")
            .WithExample("apply", "--model", "M.safetensors", "--inputs", "X.npy", "--operator", "Pstar", "--vector", "Q.npy", "--out", "W.npy", "--json");
        c.AddCommand<AnalyzeCommand>("analyze")
            .WithDescription("Spectra, effective ranks, Kronecker core, SRB(r) and task-mode learnability of a model or of every checkpoint of a run folder; writes a report folder.")
            .WithExample("analyze", "--model", "M.safetensors", "--task", "flip-flop", "--out", "report")
            .WithExample("analyze", "--model", "M.safetensors", "--inputs", "X.npy", "--targets", "Y.npy", "--out", "report", "--json")
            .WithExample("analyze", "--model", "runs/gru-ff", "--task", "flip-flop", "--out", "report");
        c.AddCommand<SweepCommand>("sweep")
            .WithDescription("Train at each initial recurrent gain and relate NTK_S's effective rank at init to what gets learned.")
            .WithExample("sweep", "--task", "flip-flop", "--arch", "gru", "--gains", "0,0.5,1,1.5,2", "--out", "sweep");
        c.AddCommand<ReproduceCommand>("reproduce")
            .WithDescription("The paper's claims as a pre-registered study: runs every unit (or one --shard), states each criterion, gives verdicts with bootstrap CIs; writes report.md, figures, CSVs and results.json. float64 only (no --precision): claim C1 holds the operators to 1e-10 of each other, a float64 rounding level; float32 is checked by selfcheck --precision f32.")
            .WithExample("reproduce", "--scale", "quick", "-o", "study")
            .WithExample("reproduce", "--scale", "paper", "--shard", "0/8", "-o", "shard-0")
            .WithExample("reproduce", "--scale", "paper", "--merge", "shard-0", "shard-1", "-o", "study");
        c.AddCommand<VersionCommand>("version").WithDescription("Print the version (also: globalntk --version).").WithExample("version");
        c.AddCommand<Commands.SelfCheckCommand>("selfcheck").WithDescription("Run the randomised estimators against exact values on random operators with known spectra, and check the NTK operators of two small models (f64 or f32).").WithExample("selfcheck", "--seed", "1").WithExample("selfcheck", "--precision", "f32");
    }
}

/// <summary><c>globalntk version</c>: "globalntk X.Y.Z" (with <c>--json</c>: the command and version only).</summary>
public sealed class VersionCommand : CliCommand<CommonSettings>
{
    /// <inheritdoc/>
    protected override CommandOutcome Run(CommonSettings settings, CliProgress progress, CancellationToken cancellationToken) =>
        new(new { }, [$"globalntk {CliApp.Version}"]);
}
