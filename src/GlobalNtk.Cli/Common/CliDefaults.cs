namespace GlobalNtk.Cli.Common;

/// <summary>
/// The CLI's default values, each defined once. Options cite these in <c>[DefaultValue]</c>, so
/// help shows them in its DEFAULT column and the code uses the same numbers.
/// </summary>
public static class CliDefaults
{
    /// <summary>Seed of every command that draws random numbers (training, analysis, self-check).</summary>
    public const int Seed = 1;

    /// <summary>Analysis budget preset (the presets' numbers live in AnalysisOptions.ForBudget).</summary>
    public const string Budget = "default";

    /// <summary><c>train</c>: architecture.</summary>
    public const string Arch = "gru";
    /// <summary><c>train</c>: hidden units.</summary>
    public const int Hidden = 64;
    /// <summary><c>train</c>: total updates.</summary>
    public const int Steps = 1000;
    /// <summary><c>train</c>: learning rate.</summary>
    public const double LearningRate = 0.001;
    /// <summary><c>train</c>: optimizer.</summary>
    public const string Optimizer = "adam";
    /// <summary>Initial gain on the recurrent weights.</summary>
    public const double Gain = 1.0;
    /// <summary><c>train</c>: trials per batch.</summary>
    public const int Batch = 32;
    /// <summary><c>train</c>: checkpoint interval (0: start and end only).</summary>
    public const int CheckpointEvery = 100;
    /// <summary><c>train</c>: gradient-norm clip (0: off).</summary>
    public const double Clip = 1.0;
    /// <summary><c>train</c>: early-stop loss (0: never).</summary>
    public const double LossTolerance = 0;
    /// <summary><c>train</c>: input noise.</summary>
    public const double Noise = 0;

    /// <summary><c>sweep</c>: gains.</summary>
    public const string SweepGains = "0,0.5,1,1.5,2";
    /// <summary><c>sweep</c>: hidden units.</summary>
    public const int SweepHidden = 32;
    /// <summary><c>sweep</c>: training steps per gain.</summary>
    public const int SweepSteps = 300;
    /// <summary><c>sweep</c>: Adam learning rate.</summary>
    public const double SweepLearningRate = 0.01;
    /// <summary><c>sweep</c>: batch size.</summary>
    public const int SweepBatch = 16;
    /// <summary><c>sweep</c>: evaluation trials.</summary>
    public const int SweepTrials = 12;

    /// <summary><c>demo</c>: report folder.</summary>
    public const string DemoOut = "globalntk-demo";
}
