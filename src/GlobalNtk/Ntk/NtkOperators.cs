using GlobalNtk.Dense;
using GlobalNtk.Models;
using GlobalNtk.Operators;

namespace GlobalNtk.Ntk;

/// <summary>
/// The global empirical NTK operators of one linearised chain model (docs/math.md#global-ntk), all
/// matrix-free, with adjoints and block applies. Built only from the
/// <see cref="ChainLinearization"/> contract, so recurrent cells, MLPs and transformers share
/// them. Construction is cheap (no forward pass, no matrices); each operator keeps nothing
/// but references, and an application allocates at most a few blocks of its own size.
/// </summary>
public sealed class NtkOperators
{
    private readonly Lazy<KroneckerKernelOperator> _kKron;
    private readonly Lazy<StateNtkOperator> _ntkS;
    private readonly Lazy<KroneckerCore> _core;
    private readonly Lazy<LinearOperator> _ntkSApplied;

    /// <summary>Operators of <paramref name="linearization"/> (sites are validated on first use of the Kronecker form).</summary>
    /// <param name="linearization">The linearised model on one batch.</param>
    /// <param name="seed">
    /// Seed of the only randomised part, the <see cref="KroneckerCore"/>'s Hutchinson traces of
    /// costly sites (every operator is exact); callers split it from the user's seed with <see cref="RngKey"/>.
    /// </param>
    /// <param name="kroneckerExactLimit">
    /// Passed to <see cref="KroneckerCore"/>: a non-row-local site whose exact traces would cost more than
    /// this many applications of D_s is estimated with Hutchinson probes.
    /// </param>
    /// <param name="kroneckerProbes">Passed to <see cref="KroneckerCore"/>: Hutchinson probes per estimated site (and rest term).</param>
    /// <param name="kroneckerRestExactLimit">
    /// Passed to <see cref="KroneckerCore"/>: the trace of the θ scalars outside every site is estimated
    /// when its exact form would cost more than this many JVPs (default: always exact).
    /// </param>
    public NtkOperators(ChainLinearization linearization, int seed = 0,
        long kroneckerExactLimit = KroneckerCore.DefaultExactApplicationLimit, int kroneckerProbes = KroneckerCore.DefaultProbes,
        long kroneckerRestExactLimit = long.MaxValue)
    {
        Linearization = linearization ?? throw new ArgumentNullException(nameof(linearization));
        linearization.EnsureFiniteStates("chain states z");
        P = new PropagationOperator(linearization);
        PAdjoint = new PropagationOperator(linearization, adjoint: true);
        PInverse = new PropagationInverseOperator(linearization);
        Jtheta = new ParameterJacobianOperator(linearization);
        K = Jtheta.Gram();
        WholeModelJacobian = new WholeModelJacobianOperator(linearization);
        WholeModelNtk = WholeModelJacobian.Gram();
        _kKron = new(() => new KroneckerKernelOperator(linearization));
        _ntkS = new(() => new StateNtkOperator(linearization, KKronecker));
        _ntkSApplied = new(() => ReferenceEquals(KApplied, K) ? NtkSWith(K) : NtkS);
        _core = new(() => new KroneckerCore(linearization, kroneckerExactLimit, kroneckerProbes, seed, kroneckerRestExactLimit));

    }

    /// <summary>The linearisation the operators act on.</summary>
    public ChainLinearization Linearization { get; }

    /// <summary>The θ-space shape <c>(parameter = m)</c> of a linearisation.</summary>
    public static AxisShape ParameterShape(ChainLinearization lin) => AxisShape.Vector(lin.Parameters.TotalSize, "parameter");

    /// <summary>P: v_k = q_k + A_k v_{k−1} (docs/math.md#global-ntk).</summary>
    public LinearOperator P { get; }
    /// <summary>P*: back-propagation through time, w_k = q_k + A_{k+1}ᵀ w_{k+1}.</summary>
    public LinearOperator PAdjoint { get; }
    /// <summary>P⁻¹ = ∂F/∂z: (P⁻¹q)_k = q_k − A_k q_{k−1}.</summary>
    public LinearOperator PInverse { get; }
    /// <summary>J_θ: θ (parameter = m) → state; its adjoint is J_θ*.</summary>
    public LinearOperator Jtheta { get; }
    /// <summary>K = J_θ J_θ* through the generic parameter JVP/VJP.</summary>
    public LinearOperator K { get; }
    /// <summary>K = Σ_s D_s (Ĝ_s ⊗ I) D_s* + J_rest J_rest* (Kronecker core, docs/math.md#kronecker-core).</summary>
    public LinearOperator KKronecker => _kKron.Value;
    /// <summary>NTK_S = P K P* with the Kronecker-core K.</summary>
    public LinearOperator NtkS => _ntkS.Value;
    /// <summary>
    /// The cheaper of the two exact forms of K for this model, for estimators that only apply it:
    /// <see cref="KKronecker"/>, except when a depth step holds several weight sites and the
    /// linearisation cannot apply K step by step (the hand-fused transformer): there the Kronecker
    /// form runs a partial backward and forward pass through the layer for each site, and the generic
    /// <see cref="K"/> = J_θ J_θ* one for all. Block chains (the transformer and MLPs) apply the
    /// Kronecker K as one cotangent and one tangent sweep per step, which measured 0.097 against
    /// 0.106 s per vector for the generic form on the flip-flop transformer (d = 64, 2 layers,
    /// 32 × 100 tokens); recurrent cells use their fused site kernel.
    /// </summary>
    public LinearOperator KApplied => SitesShareSteps(Linearization) && !Linearization.HasStepKernel ? K : KKronecker;
    /// <summary>NTK_S = P K P* with <see cref="KApplied"/> (the same operator as <see cref="NtkS"/> up to rounding).</summary>
    public LinearOperator NtkSApplied => _ntkSApplied.Value;

    private static bool SitesShareSteps(ChainLinearization lin) =>
        lin.Sites.Where(s => s.StateStep is not null).GroupBy(s => s.StateStep).Any(g => g.Count() > 1);

    /// <summary>NTK_S = P K P* for a given K on the state space (e.g. the generic <see cref="K"/>).</summary>
    public LinearOperator NtkSWith(LinearOperator k) => new StateNtkOperator(Linearization, k);
    /// <summary>dz/dθ = P J_θ as one fused tangent sweep; adjoint J_θ* P*.</summary>
    public LinearOperator WholeModelJacobian { get; }
    /// <summary>(dz/dθ)(dz/dθ)*: the NTK of the unrolled model (the check of NTK_S).</summary>
    public LinearOperator WholeModelNtk { get; }
    /// <summary>
    /// The output NTK Θ_y = C NTK_S Cᵀ + (Z Zᵀ + 1 1ᵀ) ⊗ I_out (no 1 1ᵀ without a readout bias) of a readout on these states
    /// (docs/math.md#global-ntk), using the Kronecker-core NTK_S. On a float32 linearisation it reads the
    /// float32 trajectory and applies float32 blocks natively (see <see cref="OutputNtkOperator"/>).
    /// </summary>
    public LinearOperator OutputNtk(Readout readout)
    {
        ArgumentNullException.ThrowIfNull(readout);
        var single = Linearization.StatesSingle;
        return single.Length > 0
            ? new OutputNtkOperator(NtkS, readout, single.Span, Linearization.StateShape)
            : new OutputNtkOperator(NtkS, readout, Linearization.States.Span, Linearization.StateShape);
    }

    /// <summary>Per-site Kronecker cores (Û, spectra, modes) and the model-level summary (built once, on first use).</summary>
    public KroneckerCore KroneckerCore => _core.Value;
}
