using GlobalNtk.Dense;

namespace GlobalNtk.Models;

/// <summary>
/// A chain model z_k = f_k(z_{k-1}, x_k; θ) linearised on one batch (docs/math.md#models-as-chains): the forward
/// trajectory plus everything needed to apply, matrix-free and for blocks of vectors,
/// the step Jacobians A_k = ∂f_k/∂z_{k-1} (JVP/VJP), the immediate parameter Jacobian J_θ
/// (JVP/VJP) and the weight sites of the Kronecker core (docs/math.md#kronecker-core).
/// </summary>
/// <remarks>
/// State layout: <see cref="StateShape"/> is <c>[trial, step, unit axes…]</c>, row-major, with
/// <c>StateSize</c> scalars per (trial, step). Recurrent nets have step = time and shared θ;
/// depth chains (MLP, transformer) have step = layer and per-step weights. Steps are 0-based:
/// state k is f_k(state k−1) and state −1 is the fixed initial state z_0, so A_0 does not exist.
/// A block of <c>count</c> state vectors is vector-major: <c>[count, trial, step, …]</c>.
/// Nothing of size B·T·S² is stored: implementations keep state-sized caches only.
/// </remarks>
public abstract class ChainLinearization
{
    /// <summary>Named axes of the whole state, e.g. (trial, time, unit).</summary>
    public abstract AxisShape StateShape { get; }
    /// <summary>Number of trials B (leading axis).</summary>
    public int Trials => StateShape.Sizes[0];
    /// <summary>Number of steps T (second axis).</summary>
    public int Steps => StateShape.Sizes[1];
    /// <summary>Scalars per (trial, step).</summary>
    public int StateSize => StateShape.Size / Math.Max(1, Trials * Steps);

    /// <summary>Throws unless 1 ≤ <paramref name="step"/> &lt; <see cref="Steps"/>: A_step maps step − 1 to step, and step 0 depends on the input only.</summary>
    private protected void CheckStep(int step, string what)
    {
        if (step < 1 || step >= Steps)
            throw new ArgumentOutOfRangeException(nameof(step), $"{what}: step {step} outside 1..{Steps - 1} for {StateShape} (step 0 depends on the input only).");
    }

    /// <summary>Throws unless both state blocks hold <paramref name="count"/> ≥ 0 state vectors.</summary>
    private protected void CheckStateBlocks(int srcLength, int dstLength, int count, string what)
    {
        long need = (long)count * StateShape.Size;
        if (count < 0 || srcLength < need || dstLength < need)
            throw new ArgumentException($"{what}: blocks of length {srcLength}/{dstLength} cannot hold {count} × {StateShape}.");
    }

    /// <summary>Throws unless dθ holds <paramref name="count"/> parameter vectors and the result as many state vectors (J_θ).</summary>
    private protected void CheckParamJvp(int dThetaLength, int resultLength, int count)
    {
        int m = Parameters.TotalSize, size = StateShape.Size;
        if (dThetaLength < (long)count * m || resultLength < (long)count * size)
            throw new ArgumentException($"ParamJvp: blocks of length {dThetaLength}/{resultLength} cannot hold {count} × (m={m}) / {count} × {StateShape}.");
    }

    /// <summary>Throws unless q holds <paramref name="count"/> state vectors and dθ as many parameter vectors (J_θ*).</summary>
    private protected void CheckParamVjp(int qLength, int dThetaLength, int count)
    {
        int m = Parameters.TotalSize, size = StateShape.Size;
        if (qLength < (long)count * size || dThetaLength < (long)count * m)
            throw new ArgumentException($"ParamVjp: blocks of length {qLength}/{dThetaLength} cannot hold {count} × {StateShape} / {count} × (m={m}).");
    }
    /// <summary>
    /// Parameters θ the Jacobians are taken with respect to (same order as δθ): the values the
    /// model had when it was linearised. Parameters are immutable values, so training (which
    /// makes new models) never changes this linearisation.
    /// </summary>
    public abstract ParameterSet Parameters { get; }
    /// <summary>The precision the derivative maps compute in (their vectors are float64 either way).</summary>
    public virtual Precision Precision => Precision.F64;
    /// <summary>
    /// The forward trajectory z, laid out as <see cref="StateShape"/>, in float64. A linearisation that
    /// keeps its trajectory in float32 (<see cref="StatesSingle"/>) widens it here on first use and
    /// keeps the widened copy.
    /// </summary>
    public abstract ReadOnlyMemory<double> States { get; }

    /// <summary>
    /// The forward trajectory in float32, when a float32 linearisation keeps it so (laid out as
    /// <see cref="StateShape"/>; <see cref="States"/> is these values widened, exactly); empty
    /// otherwise. The trajectory is stored once, in the compute precision: float32 callers read it
    /// here without the float64 copy.
    /// </summary>
    public virtual ReadOnlyMemory<float> StatesSingle => default;

    /// <summary>Throws <see cref="NonFiniteException"/> naming <paramref name="what"/> at the first NaN/Inf state, reading the trajectory in its stored precision.</summary>
    internal void EnsureFiniteStates(string what)
    {
        var single = StatesSingle;
        if (single.Length > 0) Float32.EnsureFinite(single.Span, what);
        else Numerics.EnsureFinite(States.Span, what);
    }

    /// <summary>
    /// dst[j, b, step, :] += alpha · A_step · src[j, b, step−1, :] for j &lt; count, all trials
    /// (1 ≤ step &lt; Steps). src and dst are full-state blocks and may be the same buffer.
    /// </summary>
    public abstract void StateJvpAdd(int step, ReadOnlySpan<double> src, Span<double> dst, int count, double alpha = 1.0);

    /// <summary>
    /// dst[j, b, step−1, :] += alpha · A_stepᵀ · src[j, b, step, :] for j &lt; count, all trials
    /// (1 ≤ step &lt; Steps). src and dst are full-state blocks and may be the same buffer.
    /// </summary>
    public abstract void StateVjpAdd(int step, ReadOnlySpan<double> src, Span<double> dst, int count, double alpha = 1.0);

    /// <summary>
    /// result[j] = J_θ · dTheta[j]: the immediate state change at every step with z_{k−1}
    /// held fixed (docs/math.md#global-ntk). dTheta is [count, m]; result [count, state] is overwritten.
    /// </summary>
    public abstract void ParamJvp(ReadOnlySpan<double> dTheta, Span<double> result, int count);

    /// <summary>
    /// dTheta[j] = J_θ* · q[j] = Σ_k (∂f_k/∂θ)ᵀ q_k summed over trials (docs/math.md#global-ntk).
    /// q is [count, state]; dTheta [count, m] is overwritten.
    /// </summary>
    public abstract void ParamVjp(ReadOnlySpan<double> q, Span<double> dTheta, int count);

    /// <summary>The affine weight sites a_s = W_s u_s + b_s of the Kronecker core (docs/math.md#kronecker-core).</summary>
    public abstract IReadOnlyList<WeightSite> Sites { get; }

    /// <summary>
    /// Whether the float32 state maps (<see cref="StateJvpAdd(int, ReadOnlySpan{float}, Span{float}, int, double)"/>,
    /// <see cref="StateVjpAdd(int, ReadOnlySpan{float}, Span{float}, int, double)"/> and the sites'
    /// float32-state D and D*) run natively: a float32 linearisation whose steps keep float32 rows.
    /// The NTK operators then apply float32 blocks of state vectors without widening them.
    /// </summary>
    internal virtual bool HasSingleStateMaps => false;

    /// <summary><see cref="StateJvpAdd(int, ReadOnlySpan{double}, Span{double}, int, double)"/> on float32 state blocks (only with <see cref="HasSingleStateMaps"/>).</summary>
    internal virtual void StateJvpAdd(int step, ReadOnlySpan<float> src, Span<float> dst, int count, double alpha = 1.0) =>
        throw new NotSupportedException($"{GetType().Name} has no float32 state maps.");

    /// <summary><see cref="StateVjpAdd(int, ReadOnlySpan{double}, Span{double}, int, double)"/> on float32 state blocks (only with <see cref="HasSingleStateMaps"/>).</summary>
    internal virtual void StateVjpAdd(int step, ReadOnlySpan<float> src, Span<float> dst, int count, double alpha = 1.0) =>
        throw new NotSupportedException($"{GetType().Name} has no float32 state maps.");

    /// <summary>
    /// The site part of the Kronecker-core K in one fused pass, when the linearisation has one:
    /// y[j] += Σ_s D_s (Û_s Û_sᵀ ⊗ I) D_s* x[j] over every site of <see cref="Sites"/>
    /// (docs/math.md#kronecker-core). Returns false (the default) when there is none; K then applies
    /// the sites one by one through their D_s and D_s*. Models whose sites share one pre-activation
    /// row (recurrent cells) override it: one D* pass and one D pass serve every site.
    /// </summary>
    public virtual bool TryAddSiteKernel(ReadOnlySpan<double> x, Span<double> y, int count) => false;

    /// <summary>
    /// <see cref="TryAddSiteKernel(ReadOnlySpan{double}, Span{double}, int)"/> on float32 state blocks
    /// (with <see cref="HasSingleStateMaps"/>); false (the default) when there is no fused float32 kernel.
    /// </summary>
    internal virtual bool TryAddSiteKernel(ReadOnlySpan<float> x, Span<float> y, int count) => false;

    /// <summary>
    /// Whether <see cref="TryParamJvp"/> and <see cref="TryParamVjp"/> run natively (J_θ and J_θ* on
    /// float32 blocks, rounding dθ to float32 as the float64 J_θ of this linearisation's float32
    /// engine does on entry), so the generic K = J_θ J_θ* keeps its dθ block in float32.
    /// </summary>
    internal virtual bool HasSingleParamMaps => false;

    /// <summary><see cref="ParamJvp"/> on float32 blocks, natively; false (nothing done, the default) when the model has no float32 J_θ.</summary>
    internal virtual bool TryParamJvp(ReadOnlySpan<float> dTheta, Span<float> result, int count) => false;

    /// <summary><see cref="ParamVjp"/> on float32 blocks, natively; false (nothing done, the default) when the model has no float32 J_θ*.</summary>
    internal virtual bool TryParamVjp(ReadOnlySpan<float> q, Span<float> dTheta, int count) => false;

    /// <summary>
    /// <see cref="ParamJvpSubset"/> on float32 blocks, natively (<see cref="HasSingleParamMaps"/>); false
    /// (nothing done) otherwise. The default scatters into a full float32 δθ and calls
    /// <see cref="TryParamJvp"/>; models override it where the restricted Jacobian is cheaper.
    /// </summary>
    internal virtual bool TryParamJvpSubset(IReadOnlyList<int> parameterIndices, ReadOnlySpan<float> dThetaSubset, Span<float> result, int count)
    {
        if (!HasSingleParamMaps) return false;
        var offsets = SubsetLayout(parameterIndices, out int k);
        int m = Parameters.TotalSize;
        using var full = new Operators.Float32Buffer((long)count * m);
        var f = full.Span;
        f.Clear();
        ScatterSubset(offsets, k, dThetaSubset, f, count);
        return TryParamJvp(f, result, count);
    }

    /// <summary>
    /// <see cref="ParamVjpSubset"/> on float32 blocks, natively (<see cref="HasSingleParamMaps"/>); false
    /// (nothing done) otherwise. The default runs the full <see cref="TryParamVjp"/> and gathers.
    /// </summary>
    internal virtual bool TryParamVjpSubset(IReadOnlyList<int> parameterIndices, ReadOnlySpan<float> q, Span<float> dThetaSubset, int count)
    {
        if (!HasSingleParamMaps) return false;
        var offsets = SubsetLayout(parameterIndices, out int k);
        int m = Parameters.TotalSize;
        using var full = new Operators.Float32Buffer((long)count * m);
        var f = full.Span;
        if (!TryParamVjp(q, f, count)) return false;
        GatherSubset(offsets, k, f, dThetaSubset, count);
        return true;
    }

    /// <summary>
    /// The whole Kronecker-core K (sites and J_rest) step by step, when the linearisation has it:
    /// y[j] += Σ_k E_k J_θ,k J_θ,k* E_kᵀ x[j], where J_θ,k is step k's immediate parameter Jacobian
    /// (K is block-diagonal over steps when every step owns its weights). For a site inside step k,
    /// J_θ,k J_θ,k* restricted to it is D_s (Û Ûᵀ ⊗ I) D_s* (δW = aᵀ Û, then Û δWᵀ), so this is the same
    /// operator; it costs one cotangent and one tangent sweep through each step for all of its sites
    /// and LayerNorm gains together, instead of one partial sweep per site plus one for J_rest.
    /// Returns false (the default) when there is none.
    /// </summary>
    internal virtual bool TryAddStepKernel(ReadOnlySpan<double> x, Span<double> y, int count) => false;

    /// <summary>Whether <see cref="TryAddStepKernel(ReadOnlySpan{double}, Span{double}, int)"/> applies K step by step (block chains).</summary>
    internal virtual bool HasStepKernel => false;

    /// <summary><see cref="TryAddStepKernel(ReadOnlySpan{double}, Span{double}, int)"/> on float32 state blocks (only with <see cref="HasSingleStateMaps"/>).</summary>
    internal virtual bool TryAddStepKernel(ReadOnlySpan<float> x, Span<float> y, int count) => false;

    /// <summary>
    /// NTK_S = P K P* with K applied step by step (<see cref="TryAddStepKernel(ReadOnlySpan{double}, Span{double}, int)"/>),
    /// fused, when the linearisation has it: y = P K P* x (overwrite). P* and K read the same
    /// cotangent w_k at step k, and K's tangent and P's recurrence meet at the same step output, so
    /// one cotangent sweep back through the steps gives both w_{k−1} = x_{k−1} + A_kᵀ w_k and
    /// δθ_k = J_θ,k* w_k, and one tangent sweep forward gives v_k = A_k v_{k−1} + J_θ,k δθ_k: each
    /// step is traversed twice per vector instead of four times. Returns false (the default) when
    /// there is none.
    /// </summary>
    internal virtual bool TryApplyStateNtk(ReadOnlySpan<double> x, Span<double> y, int count) => false;

    /// <summary><see cref="TryApplyStateNtk(ReadOnlySpan{double}, Span{double}, int)"/> on float32 state blocks (only with <see cref="HasSingleStateMaps"/>).</summary>
    internal virtual bool TryApplyStateNtk(ReadOnlySpan<float> x, Span<float> y, int count) => false;

    /// <summary>
    /// result[j] = J_θ · E dThetaSubset[j] (docs/math.md#global-ntk), where E embeds a compact δθ over only the
    /// parameter tensors <paramref name="parameterIndices"/> into θ with zeros elsewhere. The compact
    /// layout is those tensors concatenated in the order listed (<see cref="SubsetLayout"/>);
    /// dThetaSubset is [count, subset size]; result [count, state] is overwritten.
    /// </summary>
    /// <remarks>
    /// Used by the Kronecker core's J_rest J_rest* term (docs/math.md#kronecker-core) for the few parameters no weight
    /// site covers. The default scatters into a full δθ and calls <see cref="ParamJvp"/>; models
    /// override it when the restricted Jacobian is cheaper (e.g. LayerNorm gains only).
    /// </remarks>
    public virtual void ParamJvpSubset(IReadOnlyList<int> parameterIndices, ReadOnlySpan<double> dThetaSubset, Span<double> result, int count)
    {
        var offsets = SubsetLayout(parameterIndices, out int k);
        int m = Parameters.TotalSize;
        using var full = new Operators.BlockBuffer((long)count * m);
        var f = full.Span;
        f.Clear();
        ScatterSubset(offsets, k, dThetaSubset, f, count);
        ParamJvp(f, result, count);
    }

    /// <summary>
    /// dThetaSubset[j] = Eᵀ J_θ* q[j]: the parameter VJP (docs/math.md#global-ntk) kept only for the tensors
    /// <paramref name="parameterIndices"/>, in the compact layout of <see cref="ParamJvpSubset"/>
    /// (its exact adjoint). q is [count, state]; dThetaSubset [count, subset size] is overwritten.
    /// The default runs the full <see cref="ParamVjp"/> and gathers.
    /// </summary>
    public virtual void ParamVjpSubset(IReadOnlyList<int> parameterIndices, ReadOnlySpan<double> q, Span<double> dThetaSubset, int count)
    {
        var offsets = SubsetLayout(parameterIndices, out int k);
        int m = Parameters.TotalSize;
        using var full = new Operators.BlockBuffer((long)count * m);
        var f = full.Span;
        ParamVjp(q, f, count);
        GatherSubset(offsets, k, f, dThetaSubset, count);
    }

    /// <summary>Each listed tensor of compact[j] (the layout <paramref name="offsets"/> of <see cref="SubsetLayout"/>, k scalars per vector) copied to its place in full[j]: full = E compact where full was cleared.</summary>
    private void ScatterSubset<T>(int[] offsets, int k, ReadOnlySpan<T> compact, Span<T> full, int count)
    {
        var ps = Parameters; int m = ps.TotalSize;
        for (int j = 0; j < count; j++)
            for (int i = 0; i < ps.Count; i++)
                if (offsets[i] >= 0) compact.Slice(j * k + offsets[i], ps[i].Size).CopyTo(full.Slice(j * m + ps.OffsetOf(i), ps[i].Size));
    }

    /// <summary>compact[j] = Eᵀ full[j]: the listed tensors of θ copied into the compact layout (the adjoint of <see cref="ScatterSubset{T}"/>).</summary>
    private void GatherSubset<T>(int[] offsets, int k, ReadOnlySpan<T> full, Span<T> compact, int count)
    {
        var ps = Parameters; int m = ps.TotalSize;
        for (int j = 0; j < count; j++)
            for (int i = 0; i < ps.Count; i++)
                if (offsets[i] >= 0) full.Slice(j * m + ps.OffsetOf(i), ps[i].Size).CopyTo(compact.Slice(j * k + offsets[i], ps[i].Size));
    }

    /// <summary>Offsets of every parameter tensor in the full θ: the identity layout, in the form of <see cref="SubsetLayout"/> (computed once).</summary>
    private protected int[] FullLayout() => _fullLayout ??= Enumerable.Range(0, Parameters.Count).Select(Parameters.OffsetOf).ToArray();
    private int[]? _fullLayout;

    /// <summary>
    /// The compact layout of a parameter subset: for every tensor of <see cref="Parameters"/> its
    /// offset in the compact δθ (−1 when not in the subset), and the compact size. Throws on an
    /// index out of range or listed twice.
    /// </summary>
    public int[] SubsetLayout(IReadOnlyList<int> parameterIndices, out int subsetSize)
    {
        var ps = Parameters;
        var offsets = new int[ps.Count];
        Array.Fill(offsets, -1);
        subsetSize = 0;
        foreach (int i in parameterIndices)
        {
            if ((uint)i >= (uint)ps.Count)
                throw new ArgumentOutOfRangeException(nameof(parameterIndices), $"Parameter index {i} is outside 0..{ps.Count - 1}.");
            if (offsets[i] >= 0)
                throw new ArgumentException($"Parameter '{ps[i].Name}' is listed twice in the subset.", nameof(parameterIndices));
            offsets[i] = subsetSize;
            subsetSize += ps[i].Size;
        }
        return offsets;
    }

}

/// <summary>
/// One weight site s of a weight-based model (docs/math.md#kronecker-core): a_s = W_s u_s + b_s evaluated at
/// <see cref="Rows"/> rows (e.g. every (trial, time) pair of an RNN, or every (sequence, token)
/// of one transformer layer). Exposes the site-variable matrix Û = [U, 1…] and the maps D_s
/// (pre-activation → state) and D_s*, so that K_s = D_s (Û Ûᵀ ⊗ I_{m_s}) D_s*.
/// </summary>
/// <remarks>
/// W_s may be stored as several parameter tensors that feed the same pre-activation (e.g.
/// nn.RNN's <c>weight_hh_l0</c> and <c>weight_ih_l0</c>: W_s = [W_hh, W_ih], u = [h; x]); their
/// column blocks appear in U in the order of <see cref="WeightParameters"/>. Each bias
/// parameter (b_ih and b_hh both add to a) contributes one column of ones to Û, in the order of
/// <see cref="BiasParameters"/>; Û Ûᵀ then counts each bias once, exactly as J_θ J_θ* does.
/// </remarks>
public abstract class WeightSite
{
    /// <summary>Display name, e.g. <c>hh</c> or <c>layers.0.self_attn.in_proj</c>.</summary>
    public abstract string Name { get; }
    /// <summary>Weight parameters [OutDim, width_i] whose column blocks form W_s, in U's column order.</summary>
    public abstract IReadOnlyList<string> WeightParameters { get; }
    /// <summary>Bias parameters [OutDim] adding to a_s (each a ones column of Û); may be empty.</summary>
    public abstract IReadOnlyList<string> BiasParameters { get; }
    /// <summary>Number of rows N_s at which the site is evaluated.</summary>
    public abstract int Rows { get; }
    /// <summary>Site width d_s (columns of U, without the bias columns).</summary>
    public abstract int Width { get; }
    /// <summary>Output size m_s (rows of W_s).</summary>
    public abstract int OutDim { get; }
    /// <summary>Columns of Û: Width plus one per bias parameter.</summary>
    public int AugmentedWidth => Width + BiasParameters.Count;
    /// <summary>
    /// Û as a row-major [Rows, AugmentedWidth] matrix (trailing columns of ones for the
    /// biases). Row order follows <see cref="RowShape"/> (RNN: row = b·T + k).
    /// </summary>
    public abstract ReadOnlyMemory<double> Variables { get; }
    /// <summary>Named axes of the rows, e.g. (trial, time) or (sequence, token).</summary>
    public abstract AxisShape RowShape { get; }

    /// <summary>
    /// Û in float32 when a float32 linearisation keeps it so (then K's applications run on it in
    /// float32, and <see cref="Variables"/> widens it only when asked); empty otherwise.
    /// </summary>
    public virtual ReadOnlyMemory<float> VariablesSingle => default;

    /// <summary>Number of elements of Û (Rows × AugmentedWidth), without widening a float32 Û.</summary>
    internal int VariablesLength => VariablesSingle.Length > 0 ? VariablesSingle.Length : Variables.Length;

    /// <summary>
    /// <see cref="ApplyDAdd"/> with a float32 pre-activation block a [count, Rows, OutDim], D applied
    /// in float32 and the result added in float64; false (nothing done) when the site has no float32 maps.
    /// </summary>
    internal virtual bool TryApplyDAddSingle(ReadOnlySpan<float> a, Span<double> dst, int count) => false;

    /// <summary><see cref="ApplyDAdjoint"/> into a float32 block a (with <see cref="TryApplyDAddSingle(ReadOnlySpan{float}, Span{double}, int)"/>); false when the site has none.</summary>
    internal virtual bool TryApplyDAdjointSingle(ReadOnlySpan<double> q, Span<float> a, int count) => false;

    /// <summary>dst[j] += D_s a[j] with float32 a and a float32 state block dst; false (nothing done) when the site has no float32 maps.</summary>
    internal virtual bool TryApplyDAddSingle(ReadOnlySpan<float> a, Span<float> dst, int count) => false;

    /// <summary>a[j] = D_s* q[j] with a float32 state block q; false when the site has no float32 maps.</summary>
    internal virtual bool TryApplyDAdjointSingle(ReadOnlySpan<float> q, Span<float> a, int count) => false;

    /// <summary>dst[j] += D_s · a[j], a is [count, Rows, OutDim], dst a full-state block.</summary>
    public abstract void ApplyDAdd(ReadOnlySpan<double> a, Span<double> dst, int count);

    /// <summary>a[j] = D_s* · q[j] (overwrite), q a full-state block, a is [count, Rows, OutDim].</summary>
    public abstract void ApplyDAdjoint(ReadOnlySpan<double> q, Span<double> a, int count);

    /// <summary>
    /// Declares row-locality: true when D_s maps row <paramref name="row"/>'s pre-activation only
    /// into the contiguous state slice [offset, offset + length) of one state vector, and the
    /// slices of different rows are disjoint (e.g. an MLP layer's row b → state (b, layer, :), a
    /// transformer's token-local site at (sequence, token) → state (sequence, layer, token, :)).
    /// Then D_s*D_s is block-diagonal over rows and tr K_s = Σ_n Ĝ[n,n]‖D_{s,n}‖_F² (docs/math.md#mode-capture).
    /// Default: not declared (false); the Kronecker core still detects sites whose rows are the
    /// state's own (trial, step) grid.
    /// </summary>
    public virtual bool TryGetRowSlice(int row, out int offset, out int length)
    {
        offset = 0; length = 0;
        return false;
    }

    /// <summary>
    /// For a row-local site: a colouring of the positions 0 … <paramref name="colour"/>.Length − 1
    /// of a row's state slice such that D_{s,n}ᵀ e_i and D_{s,n}ᵀ e_j have disjoint supports for
    /// any two positions i ≠ j of one colour (e.g. an elementwise recurrent cell: state unit i
    /// reaches only unit i's gate entries). Then ‖D_{s,n}‖_F² = Σ_c ‖D_{s,n}ᵀ Σ_{i of colour c} e_i‖²:
    /// the Kronecker core needs one D* application per colour instead of one per position.
    /// Fills <paramref name="colour"/> and returns the number of colours; 0 (default): not declared.
    /// </summary>
    internal virtual int SliceColouring(Span<int> colour) => 0;

    /// <summary>
    /// The one step (layer) of the state that D_s maps into, for depth chains with per-layer
    /// weights (docs/math.md#transformers: K is then block-diagonal across layers, so the sites of one step add at
    /// most that step's state size to rank K); null (default) when D_s reaches several steps.
    /// </summary>
    public virtual int? StateStep => null;
}
