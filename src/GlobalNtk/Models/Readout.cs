using System.Numerics;
using System.Runtime.InteropServices;
using System.Numerics.Tensors;
using GlobalNtk.Dense;
using GlobalNtk.Operators;
using Tensor = GlobalNtk.Dense.Tensor;

namespace GlobalNtk.Models;

/// <summary>
/// Linear readout y = W z_f + b, or y = W z_f without a bias (PyTorch nn.Linear, nn.Linear(bias=False);
/// docs/math.md#models-as-chains) applied to a feature slice
/// z_f = z[FeatureOffset .. FeatureOffset + InputSize) of every row of the state's last axis.
/// </summary>
/// <remarks>
/// The state is [lead, step, …, feature]. With <see cref="LastStepOnly"/> false the readout acts at
/// every step (RNN: every time step, on h, the first H of [h; c] for the LSTM); with it true only
/// the last step is read (transformer: every token of the last layer). The output shape is the
/// state shape with the feature axis replaced by <c>output</c> (and the step axis dropped when
/// only the last step is read).
/// </remarks>
public sealed class Readout
{
    /// <summary>PyTorch name of W [O, In].</summary>
    public const string WeightName = "readout.weight";
    /// <summary>PyTorch name of b [O].</summary>
    public const string BiasName = "readout.bias";

    /// <summary>
    /// Wraps given tensors (validated: weight [O, In], bias [O] or null for nn.Linear(bias=False), finite).
    /// </summary>
    public Readout(Parameter weight, Parameter? bias, int featureOffset = 0, bool lastStepOnly = false)
    {
        if (weight.Shape.Length != 2 || weight.Shape[0] <= 0 || weight.Shape[1] <= 0)
            throw new ArgumentException($"Tensor '{weight.Name}' has shape {weight.ShapeText}, expected [output, input] with both positive.");
        if (bias != null && (bias.Shape.Length != 1 || bias.Shape[0] != weight.Shape[0]))
            throw new ArgumentException($"Tensor '{bias.Name}' has shape {bias.ShapeText}, expected [{weight.Shape[0]}] (rows of '{weight.Name}' {weight.ShapeText}).");
        if (featureOffset < 0) throw new ArgumentException($"Readout: negative feature offset {featureOffset}.");
        Numerics.EnsureFinite(weight.Data, $"parameter '{weight.Name}' {weight.ShapeText}");
        if (bias != null) Numerics.EnsureFinite(bias.Data, $"parameter '{bias.Name}' {bias.ShapeText}");
        Weight = weight; Bias = bias; FeatureOffset = featureOffset; LastStepOnly = lastStepOnly;
        Parameters = new ParameterSet(bias != null ? [weight, bias] : [weight]);
    }

    /// <summary>
    /// The same readout (layout, bias or none) with its weight and bias taken by name from
    /// <paramref name="parameters"/> (e.g. a model's new <c>AllParameters</c>); this one is unchanged.
    /// </summary>
    public Readout WithParameters(ParameterSet parameters)
    {
        var ps = parameters.Take(Parameters);
        return new Readout(ps[0], Bias is null ? null : ps[1], FeatureOffset, LastStepOnly);
    }

    /// <summary>
    /// PyTorch nn.Linear initialisation: W (and b when <paramref name="bias"/>) uniform in ±1/√In,
    /// drawn from <paramref name="rng"/> (W first).
    /// </summary>
    public static Readout Initialize(int inputSize, int outputSize, Random rng, int featureOffset = 0, bool lastStepOnly = false, bool bias = true)
    {
        if (inputSize <= 0 || outputSize <= 0) throw new ArgumentException($"Readout: sizes must be positive, got input {inputSize}, output {outputSize}.");
        double bound = 1.0 / Math.Sqrt(inputSize);
        var wData = new double[checked(outputSize * inputSize)];
        RandomProbes.Uniform(rng, wData, bound);
        var w = Parameter.Own(WeightName, [outputSize, inputSize], wData);
        Parameter? b = null;
        if (bias)
        {
            var bData = new double[outputSize];
            RandomProbes.Uniform(rng, bData, bound);
            b = Parameter.Own(BiasName, [outputSize], bData);
        }
        return new Readout(w, b, featureOffset, lastStepOnly);
    }

    /// <summary>W [O, In].</summary>
    public Parameter Weight { get; }
    /// <summary>b [O]; null for a bias-free readout (nn.Linear(bias=False)).</summary>
    public Parameter? Bias { get; }
    /// <summary>Whether the readout has a bias b.</summary>
    public bool HasBias => Bias != null;
    /// <summary>[W, b] in this order, or [W] without a bias.</summary>
    public ParameterSet Parameters { get; }
    /// <summary>In: the width of the feature slice read.</summary>
    public int InputSize => Weight.Shape[1];
    /// <summary>O.</summary>
    public int OutputSize => Weight.Shape[0];
    /// <summary>First feature read in each row of the state's last axis.</summary>
    public int FeatureOffset { get; }
    /// <summary>Whether only the last step (axis 1) is read.</summary>
    public bool LastStepOnly { get; }

    /// <summary>Shape of y for states of <paramref name="stateShape"/>; throws if the feature slice does not fit.</summary>
    public AxisShape OutputShape(AxisShape stateShape)
    {
        Layout(stateShape);
        var names = stateShape.Names.ToList(); var sizes = stateShape.Sizes.ToList();
        names[^1] = "output"; sizes[^1] = OutputSize;
        if (LastStepOnly) { names.RemoveAt(1); sizes.RemoveAt(1); }
        return new AxisShape(names, sizes);
    }

    /// <summary>Number of rows read (N = rows of the feature matrix Z).</summary>
    public int Rows(AxisShape stateShape) => Layout(stateShape).Sum(g => g.Rows);

    /// <summary>y = W z_f + b (no b when bias-free) for every row read.</summary>
    public Tensor Forward(ReadOnlySpan<double> states, AxisShape stateShape)
    {
        var y = new Tensor(OutputShape(stateShape));
        ApplyLinear(states, stateShape, y.Span);
        if (Bias is null) return y;
        var d = y.Span;
        for (int r = 0; r < d.Length; r += OutputSize) TensorPrimitives.Add(d.Slice(r, OutputSize), Bias.Data, d.Slice(r, OutputSize));
        return y;
    }

    /// <summary>The readout's input rows Z [N, In] (for the readout's own NTK term (Z Zᵀ + 1 1ᵀ) ⊗ I, Z Zᵀ ⊗ I without a bias, docs/math.md#output-ntk).</summary>
    public double[] Features(ReadOnlySpan<double> states, AxisShape stateShape) => FeaturesOf(states, stateShape);

    /// <summary>Z [N, In] read from a float32 trajectory (a float32 linearisation's states), in float32.</summary>
    public float[] Features(ReadOnlySpan<float> states, AxisShape stateShape) => FeaturesOf(states, stateShape);

    private T[] FeaturesOf<T>(ReadOnlySpan<T> states, AxisShape stateShape)
    {
        int f = stateShape.Sizes[^1], n = InputSize, r0 = 0;
        var groups = Layout(stateShape);
        CheckLength(states.Length, stateShape.Size, "states");
        var z = new T[checked(groups.Sum(g => g.Rows) * n)];
        foreach (var (offset, rows) in groups)
        {
            for (int r = 0; r < rows; r++) states.Slice(offset + r * f + FeatureOffset, n).CopyTo(z.AsSpan((r0 + r) * n, n));
            r0 += rows;
        }
        return z;
    }

    /// <summary>The linear part C: state → output (no bias), with its adjoint (docs/math.md#global-ntk).</summary>
    public LinearOperator AsOperator(AxisShape stateShape) => new ReadoutOperator(this, stateShape, single: false);

    /// <summary>
    /// C for <paramref name="precision"/>: with <see cref="Precision.F32"/> the operator applies float32
    /// blocks natively (float32 GEMMs with W rounded once to float32, no float64 block), so a float32
    /// composite around it (the output NTK of a float32 linearisation) stays float32 end to end. Its
    /// float64 blocks run the float64 map either way.
    /// </summary>
    public LinearOperator AsOperator(AxisShape stateShape, Precision precision) =>
        new ReadoutOperator(this, stateShape, single: precision == Precision.F32);

    /// <summary>
    /// y = W z_f + b for every row read of a float32 trajectory: the product in float32 (as the float32
    /// linearisation's own products), the result widened and the bias added in float64.
    /// </summary>
    public Tensor Forward(ReadOnlySpan<float> states, AxisShape stateShape)
    {
        var y = new Tensor(OutputShape(stateShape));
        var y32 = new float[y.Length];
        ApplyLinear(states, stateShape, y32);
        var d = y.Span;
        Float32.Widen(y32, d);
        if (Bias is null) return y;
        for (int r = 0; r < d.Length; r += OutputSize) TensorPrimitives.Add(d.Slice(r, OutputSize), Bias.Data, d.Slice(r, OutputSize));
        return y;
    }

    // W rounded once to float32, for the float32 products (made on first use; the readout is immutable).
    private float[] Weight32 => _weight32 ??= Float32.ToSingle(Weight.Data);
    private float[]? _weight32;

    /// <summary>
    /// Gradients of ⟨dOutput, y⟩: dWeight = Σ_rows dy z_fᵀ [O, In], dBias = Σ_rows dy [O] (both overwritten).
    /// A bias-free readout takes an empty <paramref name="dBias"/>.
    /// </summary>
    public void ParameterVjp(ReadOnlySpan<double> states, AxisShape stateShape, ReadOnlySpan<double> dOutput, Span<double> dWeight, Span<double> dBias)
    {
        int f = stateShape.Sizes[^1], o = OutputSize, n = InputSize;
        var groups = Layout(stateShape);
        CheckLength(states.Length, stateShape.Size, "states");
        CheckLength(dOutput.Length, OutputShape(stateShape).Size, "output gradient");
        CheckLength(dWeight.Length, Weight.Size, $"gradient of '{Weight.Name}'");
        CheckLength(dBias.Length, Bias?.Size ?? 0, Bias is null ? "bias gradient of a bias-free readout" : $"gradient of '{Bias.Name}'");
        dWeight.Clear(); dBias.Clear();
        int r0 = 0;
        foreach (var (offset, rows) in groups)
        {
            Gemm.Multiply(Trans.Yes, Trans.No, o, n, rows, 1.0, dOutput[(r0 * o)..], o, states[(offset + FeatureOffset)..], f, 1.0, dWeight, n);
            r0 += rows;
        }
        if (Bias is null) return;
        for (int r = 0; r < r0; r++) TensorPrimitives.Add(dBias, dOutput.Slice(r * o, o), dBias);
    }

    // W as T: the stored float64, or rounded once to float32 (Weight32).
    private ReadOnlySpan<T> WeightAs<T>() where T : unmanaged, IFloatingPointIeee754<T> =>
        typeof(T) == typeof(float) ? MemoryMarshal.Cast<float, T>(Weight32) : MemoryMarshal.Cast<double, T>(Weight.Data);

    private void ApplyLinear<T>(ReadOnlySpan<T> states, AxisShape stateShape, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int f = stateShape.Sizes[^1], r0 = 0;
        foreach (var (offset, rows) in Layout(stateShape))
        {
            Gemm.Multiply(Trans.No, Trans.Yes, rows, OutputSize, InputSize, T.One, states[(offset + FeatureOffset)..], f,
                WeightAs<T>(), InputSize, T.Zero, y[(r0 * OutputSize)..], OutputSize);
            r0 += rows;
        }
    }

    private void ApplyLinearAdjoint<T>(ReadOnlySpan<T> y, AxisShape stateShape, Span<T> states) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int f = stateShape.Sizes[^1], r0 = 0;
        states.Clear();
        foreach (var (offset, rows) in Layout(stateShape))
        {
            Gemm.Multiply(Trans.No, Trans.No, rows, InputSize, OutputSize, T.One, y[(r0 * OutputSize)..], OutputSize,
                WeightAs<T>(), InputSize, T.Zero, states[(offset + FeatureOffset)..], f);
            r0 += rows;
        }
    }

    /// <summary>Groups of contiguous-stride rows read: (offset of the first row, row count), row stride = feature axis size.</summary>
    private (int Offset, int Rows)[] Layout(AxisShape stateShape)
    {
        if (stateShape.Rank < 2 || (LastStepOnly && stateShape.Rank < 3))
            throw new ShapeMismatchException($"Readout: state shape {stateShape} needs [lead, step, …, feature] axes.");
        int f = stateShape.Sizes[^1];
        if (FeatureOffset + InputSize > f)
            throw new ShapeMismatchException($"Readout: reads features [{FeatureOffset}, {FeatureOffset + InputSize}) but state shape {stateShape} has {f} per row ('{Weight.Name}' is {Weight.ShapeText}).");
        if (!LastStepOnly) return [(0, stateShape.Size / f)];
        int lead = stateShape.Sizes[0], steps = stateShape.Sizes[1], block = stateShape.Size / Math.Max(1, lead * steps);
        var groups = new (int, int)[lead];
        for (int b = 0; b < lead; b++) groups[b] = ((b * steps + steps - 1) * block, block / f);
        return groups;
    }

    private static void CheckLength(int length, int expected, string what)
    {
        if (length != expected) throw new ShapeMismatchException($"Readout: {what} has length {length}, expected {expected}.");
    }

    private sealed class ReadoutOperator(Readout readout, AxisShape stateShape, bool single)
        : LinearOperator(stateShape, readout.OutputShape(stateShape))
    {
        public override string Name => $"Readout C ({readout.Weight.ShapeText})";

        internal override bool AppliesFloat32Natively => single;

        // float32 blocks run the same GEMMs as float64 ones, on W rounded once to float32.
        protected override void ApplyBlockCore(ReadOnlySpan<float> x, Span<float> y, int count) => Map(x, y, count);
        protected override void ApplyAdjointBlockCore(ReadOnlySpan<float> x, Span<float> y, int count) => MapAdjoint(x, y, count);
        protected override void ApplyBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) => Map(x, y, count);
        protected override void ApplyAdjointBlockCore(ReadOnlySpan<double> x, Span<double> y, int count) => MapAdjoint(x, y, count);

        private void Map<T>(ReadOnlySpan<T> x, Span<T> y, int count) where T : unmanaged, IFloatingPointIeee754<T>
        {
            if (!readout.LastStepOnly)
            {
                // Every row is read: the whole block is one [count·rows, feature] matrix, one GEMM.
                int f = Domain.Sizes[^1];
                Gemm.Multiply(Trans.No, Trans.Yes, count * (Domain.Size / f), readout.OutputSize, readout.InputSize, T.One,
                    x[readout.FeatureOffset..], f, readout.WeightAs<T>(), readout.InputSize, T.Zero, y, readout.OutputSize);
                return;
            }
            for (int j = 0; j < count; j++)
                readout.ApplyLinear(x.Slice(j * Domain.Size, Domain.Size), Domain, y.Slice(j * Range.Size, Range.Size));
        }

        private void MapAdjoint<T>(ReadOnlySpan<T> x, Span<T> y, int count) where T : unmanaged, IFloatingPointIeee754<T>
        {
            if (!readout.LastStepOnly)
            {
                int f = Domain.Sizes[^1];
                y.Clear();
                Gemm.Multiply(Trans.No, Trans.No, count * (Domain.Size / f), readout.InputSize, readout.OutputSize, T.One,
                    x, readout.OutputSize, readout.WeightAs<T>(), readout.InputSize, T.Zero, y[readout.FeatureOffset..], f);
                return;
            }
            for (int j = 0; j < count; j++)
                readout.ApplyLinearAdjoint(x.Slice(j * Range.Size, Range.Size), Domain, y.Slice(j * Domain.Size, Domain.Size));
        }
    }
}
