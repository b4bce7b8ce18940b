using System.Globalization;
using System.Numerics.Tensors;
using GlobalNtk.IO;
using GlobalNtk.Models;

namespace GlobalNtk.Training;

/// <summary>
/// A first-order optimizer over a <see cref="ParameterSet"/>: a step takes θ and a gradient and
/// returns new values θ' (θ itself is an immutable value and stays as it was). Its own state
/// (moments, step count) advances with every step and round-trips through tensors so a resumed
/// run continues exactly.
/// </summary>
public abstract class Optimizer
{
    /// <summary>Creates an optimizer with learning rate <paramref name="learningRate"/> (&gt; 0, finite).</summary>
    protected Optimizer(double learningRate)
    {
        if (!(learningRate > 0) || !double.IsFinite(learningRate))
            throw new ArgumentException($"Learning rate must be a finite number > 0, got {learningRate}.");
        LearningRate = learningRate;
    }

    /// <summary>Names accepted by <see cref="Create"/>.</summary>
    public static IReadOnlyList<string> Names { get; } = ["adam", "sgd"];

    /// <summary>Name (<c>sgd</c> or <c>adam</c>).</summary>
    public abstract string Name { get; }
    /// <summary>Learning rate η.</summary>
    public double LearningRate { get; }
    /// <summary>Updates applied so far.</summary>
    public long StepCount { get; protected set; }

    /// <summary>
    /// θ' = update(θ, g) as a new set with <paramref name="parameters"/>' names and shapes;
    /// <paramref name="gradient"/> is flat in their order. Advances the optimizer's own state.
    /// </summary>
    public ParameterSet Step(ParameterSet parameters, ReadOnlySpan<double> gradient)
    {
        CheckLength(parameters, gradient);
        var theta = parameters.Flatten();
        Update(theta, gradient);
        return parameters.WithValues(theta);
    }

    /// <summary>θ ← update(θ, g) on the flat vector <paramref name="theta"/> (a fresh copy the optimizer owns).</summary>
    protected abstract void Update(Span<double> theta, ReadOnlySpan<double> gradient);

    /// <summary>The state as named tensors (names derived from the parameters').</summary>
    public abstract IEnumerable<Parameter> StateTensors(ParameterSet parameters);

    /// <summary>Restores the state saved by <see cref="StateTensors"/> (and the step count).</summary>
    public abstract void LoadState(TensorLookup tensors, ParameterSet parameters, long stepCount);

    /// <summary>Creates <c>sgd</c> or <c>adam</c>; an unknown name throws listing the valid ones.</summary>
    public static Optimizer Create(string name, double learningRate) => (name ?? "").Trim().ToLowerInvariant() switch
    {
        "sgd" => new Sgd(learningRate),
        "adam" => new Adam(learningRate),
        _ => throw new ArgumentException($"Unknown optimizer '{name}' (valid: {string.Join(", ", Names)})."),
    };

    /// <summary>Checks the gradient length against the parameters.</summary>
    protected static void CheckLength(ParameterSet parameters, ReadOnlySpan<double> gradient)
    {
        if (gradient.Length != parameters.TotalSize)
            throw new ArgumentException($"Optimizer: gradient has length {gradient.Length}, parameters {parameters.TotalSize}.");
    }
}

/// <summary>Plain stochastic gradient descent θ ← θ − η g (no momentum); stateless.</summary>
public sealed class Sgd(double learningRate) : Optimizer(learningRate)
{
    /// <inheritdoc/>
    public override string Name => "sgd";

    /// <inheritdoc/>
    protected override void Update(Span<double> theta, ReadOnlySpan<double> gradient)
    {
        TensorPrimitives.MultiplyAdd(gradient, -LearningRate, theta, theta);
        StepCount++;
    }

    /// <inheritdoc/>
    public override IEnumerable<Parameter> StateTensors(ParameterSet parameters) => [];

    /// <inheritdoc/>
    public override void LoadState(TensorLookup tensors, ParameterSet parameters, long stepCount) => StepCount = stepCount;
}

/// <summary>
/// Adam with PyTorch's update (torch.optim.Adam, no weight decay): m ← β₁m + (1−β₁)g,
/// v ← β₂v + (1−β₂)g², θ ← θ − η (m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε).
/// </summary>
public sealed class Adam(double learningRate, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8) : Optimizer(learningRate)
{
    private double[]? _m, _v;

    /// <summary>Prefix of the first-moment tensors (PyTorch's state key).</summary>
    public const string FirstMomentPrefix = "exp_avg.";
    /// <summary>Prefix of the second-moment tensors.</summary>
    public const string SecondMomentPrefix = "exp_avg_sq.";

    /// <inheritdoc/>
    public override string Name => "adam";
    /// <summary>β₁.</summary>
    public double Beta1 { get; } = beta1;
    /// <summary>β₂.</summary>
    public double Beta2 { get; } = beta2;
    /// <summary>ε.</summary>
    public double Epsilon { get; } = epsilon;

    /// <inheritdoc/>
    protected override void Update(Span<double> theta, ReadOnlySpan<double> g)
    {
        _m ??= new double[g.Length];
        _v ??= new double[g.Length];
        StepCount++;
        double c1 = 1 - Math.Pow(Beta1, StepCount), c2 = 1 - Math.Pow(Beta2, StepCount);
        double stepSize = LearningRate / c1, sqrtC2 = Math.Sqrt(c2);
        for (int j = 0; j < theta.Length; j++)
        {
            double gj = g[j];
            double m = _m[j] = Beta1 * _m[j] + (1 - Beta1) * gj;
            double v = _v[j] = Beta2 * _v[j] + (1 - Beta2) * gj * gj;
            theta[j] -= stepSize * m / (Math.Sqrt(v) / sqrtC2 + Epsilon);
        }
    }

    /// <inheritdoc/>
    public override IEnumerable<Parameter> StateTensors(ParameterSet parameters)
    {
        var m = _m ?? new double[parameters.TotalSize];
        var v = _v ?? new double[parameters.TotalSize];
        for (int i = 0; i < parameters.Count; i++)
        {
            var p = parameters[i];
            int off = parameters.OffsetOf(i);
            yield return Parameter.Own(FirstMomentPrefix + p.Name, p.Shape, m.AsSpan(off, p.Size).ToArray());
            yield return Parameter.Own(SecondMomentPrefix + p.Name, p.Shape, v.AsSpan(off, p.Size).ToArray());
        }
    }

    /// <inheritdoc/>
    public override void LoadState(TensorLookup tensors, ParameterSet parameters, long stepCount)
    {
        _m = new double[parameters.TotalSize];
        _v = new double[parameters.TotalSize];
        for (int i = 0; i < parameters.Count; i++)
        {
            var p = parameters[i];
            foreach (var (prefix, dst) in new[] { (FirstMomentPrefix, _m), (SecondMomentPrefix, _v) })
            {
                var t = tensors.File.Tensors.Contains(prefix + p.Name) ? tensors.File.Tensors[prefix + p.Name]
                    : throw tensors.Error($"missing optimizer tensor '{prefix + p.Name}' (expected shape {p.ShapeText}).");
                tensors.RequireShape(t, p.Shape, $"shape of parameter '{p.Name}'");
                t.Data.CopyTo(dst, parameters.OffsetOf(i));
            }
        }
        StepCount = stepCount;
    }

    /// <summary>β/ε as metadata strings.</summary>
    internal IReadOnlyDictionary<string, string> Hyperparameters() => new Dictionary<string, string>
    {
        ["adam_beta1"] = Beta1.ToString("R", CultureInfo.InvariantCulture),
        ["adam_beta2"] = Beta2.ToString("R", CultureInfo.InvariantCulture),
        ["adam_eps"] = Epsilon.ToString("R", CultureInfo.InvariantCulture),
    };
}
