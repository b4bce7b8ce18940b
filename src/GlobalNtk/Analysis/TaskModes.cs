using GlobalNtk.Dense;
using GlobalNtk.Operators;

namespace GlobalNtk.Analysis;

/// <summary>
/// Task-mode learnability (docs/math.md#task-mode-learnability): the SVD of the target matrix <c>Y = Σ σ_i a_i b_iᵀ</c>
/// (rows = every output position, e.g. trial×step; columns = output channels), the output-NTK
/// Rayleigh quotient <c>ρ_i = ⟨M_i, Θ_y M_i⟩ / ⟨M_i, M_i⟩</c> of each mode <c>M_i = a_i b_iᵀ</c>, and
/// the learned fraction <c>‖a_iᵀ Ŷ‖ / σ_i</c> of the model's outputs Ŷ.
/// </summary>
public sealed class TaskModes
{
    private readonly double[] _left;   // [modes, rows]: a_i
    private readonly double[] _right;  // [modes, outputs]: b_i

    private TaskModes(int rows, int outputs, double[] sigma, double[] left, double[] right)
    {
        Rows = rows; Outputs = outputs; SingularValues = sigma; _left = left; _right = right;
    }

    /// <summary>Number of rows of Y (output positions).</summary>
    public int Rows { get; }
    /// <summary>Number of output channels (columns of Y).</summary>
    public int Outputs { get; }
    /// <summary>σ_i, decreasing (modes with σ_i ≤ 1e-10·σ_1 are dropped).</summary>
    public double[] SingularValues { get; }
    /// <summary>Number of modes kept.</summary>
    public int Count => SingularValues.Length;

    /// <summary>Left vector a_i (over rows).</summary>
    public ReadOnlySpan<double> Left(int i) => _left.AsSpan(i * Rows, Rows);
    /// <summary>Right vector b_i (over output channels).</summary>
    public ReadOnlySpan<double> Right(int i) => _right.AsSpan(i * Outputs, Outputs);

    /// <summary>
    /// SVD of the targets (row-major [rows, outputs]) via the small eigenproblem YᵀY
    /// (outputs × outputs), then a_i = Y b_i / σ_i.
    /// </summary>
    public static TaskModes Of(ReadOnlySpan<double> targets, int outputs)
    {
        if (outputs <= 0 || targets.Length % outputs != 0 || targets.Length == 0)
            throw new ShapeMismatchException($"Task modes: {targets.Length} target values are not rows of {outputs} outputs.");
        Numerics.EnsureFinite(targets, "targets");
        int rows = targets.Length / outputs;
        var yty = new double[outputs * outputs];
        Gemm.Multiply(Trans.Yes, Trans.No, outputs, outputs, rows, 1.0, targets, outputs, targets, outputs, 0.0, yty, outputs);
        var m = MathNet.Numerics.LinearAlgebra.Matrix<double>.Build.Dense(outputs, outputs, (i, j) => 0.5 * (yty[i * outputs + j] + yty[j * outputs + i]));
        var evd = m.Evd(MathNet.Numerics.LinearAlgebra.Symmetricity.Symmetric);
        var order = Enumerable.Range(0, outputs).OrderByDescending(i => evd.EigenValues[i].Real).ToArray();
        double top = Math.Sqrt(Math.Max(0, evd.EigenValues[order[0]].Real));
        var keep = order.Where(i => Math.Sqrt(Math.Max(0, evd.EigenValues[i].Real)) > 1e-10 * top && top > 0).ToArray();
        var sigma = new double[keep.Length];
        var right = new double[keep.Length * outputs];
        var left = new double[keep.Length * rows];
        for (int k = 0; k < keep.Length; k++)
        {
            for (int j = 0; j < outputs; j++) right[k * outputs + j] = evd.EigenVectors[j, keep[k]];
            var a = left.AsSpan(k * rows, rows);
            Gemm.Multiply(Trans.No, Trans.No, rows, 1, outputs, 1.0, targets, outputs, right.AsSpan(k * outputs, outputs), 1, 0.0, a, 1);
            // σ from the vector itself (more accurate than √λ for small modes)
            sigma[k] = Numerics.Norm(a);
            Numerics.Scale(a, 1.0 / sigma[k]);
        }
        return new TaskModes(rows, outputs, sigma, left, right);
    }

    /// <summary>The mode matrix M_i = a_i b_iᵀ (row-major [rows, outputs], unit Frobenius norm).</summary>
    public double[] ModeMatrix(int i)
    {
        var mi = new double[Rows * Outputs];
        var a = Left(i); var b = Right(i);
        for (int r = 0; r < Rows; r++)
            for (int j = 0; j < Outputs; j++) mi[r * Outputs + j] = a[r] * b[j];
        return mi;
    }

    /// <summary>
    /// ρ_i = ⟨M_i, Θ_y M_i⟩ / ⟨M_i, M_i⟩ for every mode (one block application of Θ_y). For a Θ_y that
    /// applies float32 natively (<c>--precision f32</c>) the block is float32 (each M_i entry formed in
    /// float64 and rounded once) and both inner products are summed in float64.
    /// </summary>
    public double[] Learnability(LinearOperator outputNtk)
    {
        int size = Rows * Outputs;
        if (outputNtk.Domain.Size != size || outputNtk.Range.Size != size)
            throw new ShapeMismatchException($"Task modes: targets are [{Rows}, {Outputs}] but the output NTK maps {outputNtk.Domain} -> {outputNtk.Range}.");
        if (Count == 0) return [];
        if (ProbeBlock.UsesFloat32(outputNtk)) return LearnabilitySingle(outputNtk, size);
        var block = new double[Count * size];
        for (int i = 0; i < Count; i++) ModeMatrix(i).CopyTo(block, i * size);
        var image = outputNtk.ApplyBlock(block, Count);
        var rho = new double[Count];
        for (int i = 0; i < Count; i++)
        {
            var mi = block.AsSpan(i * size, size);
            rho[i] = Numerics.Dot(mi, image.AsSpan(i * size, size)) / Numerics.Dot(mi, mi);
        }
        Numerics.EnsureFinite(rho, "task-mode learnability ρ");
        return rho;
    }

    private double[] LearnabilitySingle(LinearOperator outputNtk, int size)
    {
        var block = new float[Count * size];
        for (int i = 0; i < Count; i++) Float32.Narrow(ModeMatrix(i), block.AsSpan(i * size, size));
        var image = new float[Count * size];
        outputNtk.ApplyBlock(block, image, Count);
        var rho = new double[Count];
        for (int i = 0; i < Count; i++)
        {
            var mi = block.AsSpan(i * size, size);
            rho[i] = Float32.DotWide(mi, image.AsSpan(i * size, size)) / Float32.DotWide(mi, mi);
        }
        Numerics.EnsureFinite(rho, "task-mode learnability ρ");
        return rho;
    }

    /// <summary>Learned fraction ‖a_iᵀ Ŷ‖ / σ_i of each mode for outputs Ŷ (row-major [rows, outputs]).</summary>
    public double[] LearnedFractions(ReadOnlySpan<double> outputs)
    {
        if (outputs.Length != Rows * Outputs)
            throw new ShapeMismatchException($"Task modes: outputs have {outputs.Length} values, targets are [{Rows}, {Outputs}].");
        var f = new double[Count];
        var proj = new double[Outputs];
        for (int i = 0; i < Count; i++)
        {
            Gemm.Multiply(Trans.Yes, Trans.No, Outputs, 1, Rows, 1.0, outputs, Outputs, Left(i), 1, 0.0, proj, 1);
            f[i] = Numerics.Norm(proj) / SingularValues[i];
        }
        return f;
    }
}

/// <summary>Task-mode learnability at one checkpoint (docs/math.md#task-mode-learnability).</summary>
/// <param name="SingularValues">σ_i of the target matrix.</param>
/// <param name="OutputDirections">b_i: each mode's direction over output channels.</param>
/// <param name="Learnability">ρ_i = ⟨M_i, Θ_y M_i⟩ / ⟨M_i, M_i⟩.</param>
/// <param name="LearnedFraction">‖a_iᵀ Ŷ‖ / σ_i.</param>
public sealed record LearnabilityResult(double[] SingularValues, double[][] OutputDirections, double[] Learnability, double[] LearnedFraction);
