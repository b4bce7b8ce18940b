#!/usr/bin/env python3
"""Times the seed's PyTorch library kpflow on the GRU of `bench ntk`, for side-by-side tables.

kpflow is not part of GlobalNtk and is not shipped with it: install it from its own repository
(`pip install -e .` in its root) or put its `src/` folder on PYTHONPATH. Then

    PYTHONPATH=/path/to/kpflow/src /usr/bin/python3 bench/kpflow/kpflow_gru.py            # timing table
    PYTHONPATH=/path/to/kpflow/src /usr/bin/python3 bench/kpflow/kpflow_gru.py --check \\
        --cli src/GlobalNtk.Cli/bin/Release/net10.0/GlobalNtk.Cli.dll                     # cross-check vs ours

Without torch or kpflow it prints one line saying what is missing and exits 2.

What is timed is what kpflow's own examples do (examples/paper_experiment_1/action_of_operator.py):

    model = Model(input_size=N_in, hidden_size=H, output_size=3, rnn=nn.GRU)   # nn.GRU, batch_first
    out, hidden = model(inputs)                                   # } setup
    cell = get_cell_from_model(model)                             # }
    pop = PropagationOperator_LinearForm(cell, inputs, hidden)    # } P: per-step Jacobians [B,T,H,H]
    kop = ParameterOperator(cell, inputs, hidden)                 # } K = J_θ J_θ*
    ntk = pop @ kop @ pop.T                                       # } NTK_S = P K P*
    ntk(q)                                                        # NTK_S on one vector [B,T,H]
    ntk.batched_call(Q)                                           # a block [n,B,T,H]: torch.vmap over the
                                                                  # vectors (kpflow's default; --block-mode
                                                                  # loop times its per-vector fallback)

Timings are the best of --reps runs after a warm-up (the first setup is reported on its own; the
loop block needs none), wall and process CPU seconds (CPU is less sensitive to a shared machine's
load, though OpenMP/OpenBLAS spin-waiting inflates it when cores are oversubscribed); peak memory
is the process's peak RSS (getrusage). Each precision runs in its own process, so each peak is
that precision's own. Set OPENBLAS_CORETYPE (e.g. SKYLAKEX) where OpenBLAS would otherwise pick a
generic core; the table prints the core in use.

float64: kpflow's P casts every vector to float32 (`.float()` in propagation_op.py), so P K P* in
float64 fails; the script probes that on a tiny GRU and reports the error instead of a time.

--check (small GRU, default B=4 T=10 H=8) compares on one vector, in a temporary folder it removes
afterwards (--keep keeps it): kpflow's NTK_S, K and P; an independent PyTorch autograd J Jᵀ q of the
whole nn.GRU in float64; and, with --cli, GlobalNtk's `apply` (NTK, K, P, Pstar) on the same
weights (saved as safetensors under PyTorch's names), inputs and vector. All states are
[trial, time, unit] and exclude h0 = 0 in both libraries. kpflow's P takes the step Jacobian
∂f/∂z at (x_t, z_t) where the propagator needs (x_t, z_{t-1}); the check also builds its P on the
shifted states, which then agrees with ours to float32 rounding.

torch < 2 (Debian's python3-torch 1.13): kpflow uses torch.func, torch.vmap and a bare
`@torch.no_grad` decorator, which arrived in torch 2. The script maps them onto functorch (shipped
with torch 1.13) before importing kpflow, and stubs tqdm if it is missing; on torch >= 2 it
changes nothing. kpflow's own code is used unmodified.
"""
import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import traceback


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, help="B (default 32; 4 with --check)")
    p.add_argument("--steps", type=int, help="T (default 90; 10 with --check)")
    p.add_argument("--hidden", type=int, help="H (default 256; 8 with --check)")
    p.add_argument("--inputs", type=int, default=3, help="N_in (default 3)")
    p.add_argument("--block", type=int, default=30, help="vectors in the block (default 30; 0 skips it)")
    p.add_argument("--reps", type=int, default=3, help="timed runs, the best is reported (default 3)")
    p.add_argument("--threads", type=int, default=2, help="torch/OpenMP/OpenBLAS threads (default 2)")
    p.add_argument("--precision", choices=["f32", "f64", "both"], default="both")
    p.add_argument("--block-mode", choices=["auto", "vmap", "loop", "both"], default="auto",
                   help="vmap: kpflow's batched_call as shipped (torch.vmap); loop: its per-vector fallback "
                        "(Operator.toggle_vmap(False)); auto (default): vmap where this torch can vmap the GRU cell, else loop")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--check", action="store_true", help="cross-check on a small GRU instead of timing")
    p.add_argument("--cli", help="with --check: GlobalNtk.Cli.dll (run with dotnet) or a globalntk executable")
    p.add_argument("--keep", action="store_true", help="with --check: keep the temporary folder")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    big = not a.check
    a.trials = a.trials or (32 if big else 4)
    a.steps = a.steps or (90 if big else 10)
    a.hidden = a.hidden or (256 if big else 8)
    for name in ("trials", "steps", "hidden", "inputs", "reps", "threads"):
        if getattr(a, name) < 1:
            p.error(f"--{name} must be at least 1")
    if a.block < 0:
        p.error("--block must be 0 or more")
    return a


def set_thread_env(n):
    # Before torch is imported: OpenMP and OpenBLAS size their pools when they load.
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[k] = str(n)


def import_kpflow():
    """Imports torch and kpflow (after the torch < 2 shims); returns a namespace or exits 2."""
    try:
        import torch
    except Exception as e:  # noqa: BLE001 - any import failure means the same thing here
        sys.stderr.write(f"kpflow_gru: PyTorch is not importable ({type(e).__name__}: {e}); run with a Python that has torch, e.g. /usr/bin/python3 on Debian\n")
        sys.exit(2)
    shims = install_torch2_shims(torch)
    try:
        from torch import nn
        from kpflow.architecture import Model, get_cell_from_model
        from kpflow.parameter_op import ParameterOperator
        from kpflow.propagation_op import PropagationOperator_LinearForm
        from kpflow.op_common import Operator
    except Exception as e:  # noqa: BLE001
        sys.stderr.write(f"kpflow_gru: kpflow is not importable ({type(e).__name__}: {e}); put kpflow's src/ folder on PYTHONPATH or pip install -e it\n")
        sys.exit(2)
    import kpflow
    return dict(torch=torch, nn=nn, Model=Model, get_cell=get_cell_from_model, K=ParameterOperator,
                P=PropagationOperator_LinearForm, Operator=Operator, shims=shims,
                where=os.path.dirname(getattr(kpflow, "__file__", None) or list(kpflow.__path__)[0]))


def install_torch2_shims(torch):
    """torch.func, torch.vmap and bare @torch.no_grad for torch 1.13 (from its functorch); no-op on torch >= 2."""
    done = []
    try:
        import torch.func  # noqa: F401
    except ImportError:
        import types
        import functorch
        from torch.nn.utils.stateless import functional_call
        func = types.ModuleType("torch.func")
        func.vjp, func.jvp, func.vmap, func.functional_call = functorch.vjp, functorch.jvp, functorch.vmap, functional_call
        sys.modules["torch.func"] = func
        torch.func = func
        done.append("torch.func -> functorch")
    if not hasattr(torch, "vmap"):
        import functorch
        torch.vmap = functorch.vmap
        done.append("torch.vmap -> functorch.vmap")
    try:
        torch.no_grad(lambda: None)
    except TypeError:
        base = torch.no_grad

        class no_grad(base):  # accepts @torch.no_grad without parentheses, as torch >= 2 does
            def __new__(cls, orig_func=None):
                if orig_func is None:
                    return super().__new__(cls)
                return base()(orig_func)

            def __init__(self, orig_func=None):
                super().__init__()

        torch.no_grad = no_grad
        done.append("bare @torch.no_grad")
    try:
        import tqdm  # noqa: F401
    except ImportError:
        import types
        mod = types.ModuleType("tqdm")
        mod.tqdm = lambda it=None, *a, **k: it
        sys.modules["tqdm"] = mod
        done.append("tqdm stub")
    return done


def blas_info():
    """OpenBLAS's core and thread count if torch runs on OpenBLAS (Debian's does), else None."""
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({ln.split()[-1] for ln in f if "openblas" in ln and ".so" in ln})
        import ctypes
        for path in libs:
            lib = ctypes.CDLL(path)
            if hasattr(lib, "openblas_get_corename"):
                lib.openblas_get_corename.restype = ctypes.c_char_p
                return f"OpenBLAS {lib.openblas_get_corename().decode()} core, {lib.openblas_get_num_threads()} threads"
    except Exception:  # noqa: BLE001 - informational only
        pass
    return None


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # ru_maxrss is KiB on Linux


def best(reps, fn, prepare=None):
    """Best wall time of reps runs, with the process CPU seconds of that run; prepare() runs untimed before each."""
    bw, bc = float("inf"), float("nan")
    for _ in range(reps):
        if prepare is not None:
            prepare()
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        w, c = time.perf_counter() - w0, time.process_time() - c0
        if w < bw:
            bw, bc = w, c
    return bw, bc


def build(k, model, x):
    """kpflow's setup as its examples do it: forward pass, P, K and NTK_S = P K P*."""
    _, hidden = model(x)
    cell = k["get_cell"](model)
    pop = k["P"](cell, x, hidden)
    kop = k["K"](cell, x, hidden)
    return pop, kop, pop @ kop @ pop.T


def new_model(k, a, dtype):
    torch = k["torch"]
    torch.set_default_dtype(dtype)  # get_cell_from_model builds its GRUCell in the default dtype
    torch.manual_seed(a.seed)
    model = k["Model"](input_size=a.inputs, hidden_size=a.hidden, output_size=3, rnn=k["nn"].GRU)
    x = 2 * torch.rand(a.trials, a.steps, a.inputs) - 1
    return model, x


def kpflow_frame(exc):
    """file:line of the innermost frame inside kpflow, to say where an error comes from."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f"{os.sep}kpflow{os.sep}" in f.filename]
    f = frames[-1] if frames else traceback.extract_tb(exc.__traceback__)[-1]
    return f"{os.path.basename(f.filename)}:{f.lineno}"


def why(e):
    return f"{type(e).__name__} at {kpflow_frame(e)}: {str(e).splitlines()[0]}"


def probe(k, a, dtype, batched=False):
    """Runs NTK_S (batched=True: its vmap block path) on a tiny GRU in dtype; returns None, or why kpflow cannot."""
    torch = k["torch"]
    tiny = argparse.Namespace(**{**vars(a), "trials": 2, "steps": 3, "hidden": 4})
    model, x = new_model(k, tiny, dtype)
    try:
        _, _, ntk = build(k, model, x)
        k["Operator"].toggle_vmap(True)
        y = ntk.batched_call(torch.randn(2, 2, 3, 4)) if batched else ntk(torch.randn(2, 3, 4))
        if y.dtype != dtype:
            return f"result is {y.dtype}, not {dtype}"
    except Exception as e:  # noqa: BLE001 - reported, not hidden
        return why(e)
    return None


def block_modes(k, a, dtype):
    """The block paths to time, and why vmap is left out where it is."""
    if a.block_mode in ("vmap", "loop"):
        return [a.block_mode], None
    no_vmap = probe(k, a, dtype, batched=True)
    if a.block_mode == "both":
        return ["vmap", "loop"], None
    return (["loop"], no_vmap) if no_vmap else (["vmap"], None)


def run_one(a, prec):
    """Times one precision in this process; returns a dict of results."""
    k = import_kpflow()
    torch = k["torch"]
    torch.set_num_threads(a.threads)
    dtype = torch.float32 if prec == "f32" else torch.float64
    torch.ones(2, 2) @ torch.ones(2, 2)  # loads the BLAS
    r = dict(precision=prec, torch=torch.__version__, threads=torch.get_num_threads(), shims=k["shims"], kpflow=k["where"], blas=blas_info())
    no = probe(k, a, dtype)
    if no is not None:
        r["unsupported"] = no
        return r
    modes, r["no_vmap"] = block_modes(k, a, dtype)
    r["modes"] = modes if a.block > 0 else []
    r["rss_start"] = peak_rss_mb()

    model, x = new_model(k, a, dtype)
    B, T, H = a.trials, a.steps, a.hidden
    ops = {}

    def setup():
        ops["P"], ops["K"], ops["N"] = build(k, model, x)

    def drop():
        ops.clear()
        gc.collect()  # the previous build is garbage, not part of the next one's peak

    r["setup_cold"], r["setup_cold_cpu"] = best(1, setup)
    r["setup"], r["setup_cpu"] = best(a.reps, setup, drop)
    r["rss_setup"] = peak_rss_mb()
    r["jacobians_mb"] = ops["P"].jacs.numel() * ops["P"].jacs.element_size() / 1e6

    q = torch.randn(B, T, H)
    ntk, pop, kop = ops["N"], ops["P"], ops["K"]
    ntk(q)  # warm-up
    r["ntk1"], r["ntk1_cpu"] = best(a.reps, lambda: ntk(q))
    r["k1"], r["k1_cpu"] = best(a.reps, lambda: kop(q))
    r["p1"], r["p1_cpu"] = best(a.reps, lambda: pop(q))
    r["ps1"], r["ps1_cpu"] = best(a.reps, lambda: pop.adjoint_call(q))
    r["rss_single"] = peak_rss_mb()

    if a.block > 0:
        Q = torch.randn(a.block, B, T, H)
        Op = k["Operator"]
        for mode in modes:
            Op.toggle_vmap(mode == "vmap")
            try:
                if mode == "vmap":
                    ntk.batched_call(Q)  # warm-up: vmap traces on first use (the loop needs none)
                r[f"blk_{mode}"], r[f"blk_{mode}_cpu"] = best(min(a.reps, 2), lambda: ntk.batched_call(Q))
            except Exception as e:  # noqa: BLE001
                r[f"blk_{mode}_error"] = why(e)
            r[f"rss_blk_{mode}"] = peak_rss_mb()
        Op.toggle_vmap(True)
    return r


def fmt(v, unit="s"):
    if v is None:
        return "-"
    return f"{v:.0f}" if unit == "MB" else (f"{v:.4f}" if v < 10 else f"{v:.2f}")


def print_table(a, results):
    first = results[0]
    la = os.getloadavg()
    print(f"kpflow GRU B={a.trials} T={a.steps} H={a.hidden} N_in={a.inputs}, torch {first['torch']}, "
          f"{first['threads']} threads, best of {a.reps} (block: best of {min(a.reps, 2)}), load average {la[0]:.1f} {la[1]:.1f} {la[2]:.1f}")
    print(f"kpflow from {first['kpflow']}" + (f"; torch < 2 shims: {', '.join(first['shims'])}" if first["shims"] else ""))
    if first.get("blas"):
        generic = any(c in first["blas"] for c in ("Prescott", "Core2", "Nehalem", "Katmai"))
        print(f"BLAS: {first['blas']}" + ("  <- a generic core: OPENBLAS_CORETYPE=SKYLAKEX (or HASWELL) selects the AVX-512 (AVX2) kernels" if generic else ""))
    for r in results:
        if "unsupported" in r:
            print(f"{r['precision']}: not supported by kpflow: {r['unsupported']}")
    ok = [r for r in results if "unsupported" not in r]
    if not ok:
        return
    head = f"{'operation':<40}" + "".join(f" {r['precision'] + ' wall':>10} {r['precision'] + ' CPU':>9}" for r in ok)
    print(head)

    def row(label, key, per=1):
        cells = []
        for r in ok:
            if f"{key}_error" in r:
                cells.append(f" {'error':>10} {'':>9}")
            elif key in r:
                cells.append(f" {fmt(r[key] / per):>10} {fmt(r[key + '_cpu'] / per):>9}")
            else:
                cells.append(f" {'-':>10} {'-':>9}")
        print(f"{label:<40}" + "".join(cells))

    row("setup (forward + P, K, P K P*)", "setup")
    row("setup, first run", "setup_cold")
    row("NTK_S = P K P* (1 vector)", "ntk1")
    row("K (1 vector)", "k1")
    row("P (1 vector)", "p1")
    row("P* (1 vector)", "ps1")
    modes = [m for m in ("vmap", "loop") if any(m in r["modes"] for r in ok)]
    for mode in modes:
        how = "torch.vmap" if mode == "vmap" else "loop"
        row(f"NTK_S block of {a.block} ({how}), whole", f"blk_{mode}")
        row(f"NTK_S block of {a.block} ({how}), per vector", f"blk_{mode}", a.block)
    print(f"{'peak RSS (MB): torch + kpflow loaded':<40}" + "".join(f" {fmt(r['rss_start'], 'MB'):>10} {'':>9}" for r in ok))
    print(f"{'  after setup':<40}" + "".join(f" {fmt(r['rss_setup'], 'MB'):>10} {'':>9}" for r in ok))
    print(f"{'  after the single-vector runs':<40}" + "".join(f" {fmt(r['rss_single'], 'MB'):>10} {'':>9}" for r in ok))
    for mode in modes:
        print(f"{'  after the block (' + mode + ')':<40}" + "".join(f" {fmt(r.get('rss_blk_' + mode), 'MB'):>10} {'':>9}" for r in ok))
    print(f"{'  of which P Jacobians [B,T,H,H]':<40}" + "".join(f" {fmt(r['jacobians_mb'], 'MB'):>10} {'':>9}" for r in ok))
    for r in ok:
        if r.get("no_vmap"):
            print(f"{r['precision']} block: kpflow's torch.vmap path fails with this torch ({r['no_vmap']}), so the block is its loop fallback")
        for mode in ("vmap", "loop"):
            if f"blk_{mode}_error" in r:
                print(f"{r['precision']} block ({mode}) failed: {r[f'blk_{mode}_error']}")


def timing(a):
    precs = ["f32", "f64"] if a.precision == "both" else [a.precision]
    if a.child:
        print(json.dumps(run_one(a, precs[0])))
        return 0
    results = []
    for prec in precs:
        argv = [sys.executable, os.path.abspath(__file__), "--child", "--precision", prec,
                "--trials", str(a.trials), "--steps", str(a.steps), "--hidden", str(a.hidden),
                "--inputs", str(a.inputs), "--block", str(a.block), "--reps", str(a.reps),
                "--threads", str(a.threads), "--block-mode", a.block_mode, "--seed", str(a.seed)]
        proc = subprocess.run(argv, stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            return proc.returncode  # the child has said why on stderr
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print_table(a, results)
    return 0


# ---------------------------------------------------------------- cross-check (--check)

def write_safetensors(path, tensors, metadata):
    import struct
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().double().numpy().tobytes()
        header[name] = {"dtype": "F64", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "xb") as f:  # never overwrites
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def autograd_ntk(k, model, x, q):
    """J Jᵀ q for the whole nn.GRU (J = dz/dθ, z = all states, h0 = 0), by PyTorch autograd; independent of kpflow."""
    torch = k["torch"]
    rnn = model.rnn
    theta = [getattr(rnn, n).detach().clone().requires_grad_(True) for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")]

    def states(w_ih, w_hh, b_ih, b_hh):
        # nn.GRU's own cell step by step (functional_call cannot swap nn.GRU's flat weights in torch 1.13).
        h, zs = torch.zeros(x.shape[0], rnn.hidden_size), []
        for t in range(x.shape[1]):
            h = torch._VF.gru_cell(x[:, t], h, w_ih, w_hh, b_ih, b_hh)
            zs.append(h)
        return torch.stack(zs, 1)

    z = states(*theta)
    if not torch.allclose(z, rnn(x)[0], rtol=0, atol=1e-12):
        raise AssertionError("the step-by-step GRU differs from the nn.GRU module")
    g = torch.autograd.grad(z, theta, grad_outputs=q)                 # Jᵀ q
    return torch.autograd.functional.jvp(states, tuple(theta), g)[1]  # J (Jᵀ q)


def rel(a, b):
    a, b = a.double().reshape(-1), b.double().reshape(-1)
    return float((a - b).norm() / b.norm())


def check(a):
    k = import_kpflow()
    torch = k["torch"]
    torch.set_num_threads(a.threads)
    import numpy as np
    B, T, H = a.trials, a.steps, a.hidden
    model, x = new_model(k, a, torch.float64)
    torch.manual_seed(a.seed + 1)
    q = torch.randn(B, T, H)
    _, hidden = model(x)
    hidden = hidden.detach()
    print(f"cross-check on GRU B={B} T={T} H={H} N_in={a.inputs} (seed {a.seed}), one vector q [trial, time, unit]")
    print(f"kpflow from {k['where']}" + (f"; torch < 2 shims: {', '.join(k['shims'])}" if k["shims"] else ""))

    ref = autograd_ntk(k, model, x, q).detach()
    cell64 = k["get_cell"](model)
    k64 = k["K"](cell64, x, hidden)(q)

    # kpflow's P in float32, as it computes it (its P casts vectors to float32).
    torch.set_default_dtype(torch.float32)
    m32 = k["Model"](input_size=a.inputs, hidden_size=H, output_size=3, rnn=k["nn"].GRU)
    m32.load_state_dict({n: v.float() for n, v in model.state_dict().items()})
    x32, q32 = x.float(), q.float()
    _, h32 = m32(x32)
    cell32 = k["get_cell"](m32)
    pop32, kop32 = k["P"](cell32, x32, h32), k["K"](cell32, x32, h32)
    ntk32 = pop32 @ kop32 @ pop32.T
    y_kp = ntk32(q32)
    p_kp, ps_kp = pop32(q32), pop32.adjoint_call(q32)
    sh32 = torch.cat([torch.zeros_like(h32[:, :1]), h32[:, :-1]], 1).detach()  # z_{t-1}; h0 = 0 first
    pop32s = k["P"](cell32, x32, sh32)   # the same class, fed z_{t-1} instead of z_t
    y_kp_s = (pop32s @ kop32 @ pop32s.T)(q32)
    p_kp_s, ps_kp_s = pop32s(q32), pop32s.adjoint_call(q32)
    # Its block path against one vector at a time.
    modes, no_vmap = block_modes(k, argparse.Namespace(**{**vars(a), "block_mode": "auto"}), torch.float32)
    Q3 = torch.randn(3, B, T, H)
    k["Operator"].toggle_vmap(modes == ["vmap"])
    yv = ntk32.batched_call(Q3)
    k["Operator"].toggle_vmap(True)
    yl = torch.stack([ntk32(Q3[i]) for i in range(3)])
    why64 = probe(k, a, torch.float64)
    torch.set_default_dtype(torch.float64)

    rows = [
        ("kpflow NTK_S (f32, as shipped) vs autograd J Jᵀ q (f64)", rel(y_kp, ref)),
        ("kpflow NTK_S (f32, P fed z_{t-1}) vs autograd J Jᵀ q", rel(y_kp_s, ref)),
        ("kpflow K (f64) vs its own K in f32", rel(kop32(q32), k64)),
        (f"kpflow block ({modes[0]}) vs one vector at a time (f32)", rel(yv, yl)),
    ]
    ours = {}
    tmp = tempfile.mkdtemp(prefix="kpflow-check-")
    try:
        sd = {f"rnn.{n}": v for n, v in model.rnn.state_dict().items()}
        write_safetensors(os.path.join(tmp, "gru.safetensors"), sd, {"arch": "gru"})
        np.save(os.path.join(tmp, "x.npy"), x.double().numpy())
        np.save(os.path.join(tmp, "q.npy"), q.double().numpy())
        if a.cli:
            cmd = ["dotnet", a.cli] if a.cli.endswith(".dll") else [a.cli]
            for op in ("NTK", "K", "P", "Pstar"):
                out = os.path.join(tmp, f"ours_{op}.npy")
                args = cmd + ["apply", "--model", os.path.join(tmp, "gru.safetensors"), "--inputs", os.path.join(tmp, "x.npy"),
                              "--operator", op, "--vector", os.path.join(tmp, "q.npy"), "--out", out, "--quiet"]
                proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                if proc.returncode != 0:
                    sys.stderr.write(f"kpflow_gru: {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}\n")
                    return 1
                ours[op] = torch.from_numpy(np.load(out))
    finally:
        if a.keep:
            print(f"files kept in {tmp}")
        else:
            for name in os.listdir(tmp):
                os.remove(os.path.join(tmp, name))  # only what this run wrote there
            os.rmdir(tmp)
    if ours:
        rows += [
            ("ours NTK_S (f64) vs autograd J Jᵀ q (f64)", rel(ours["NTK"], ref)),
            ("ours K (f64) vs kpflow K (f64)", rel(ours["K"], k64)),
            ("kpflow NTK_S (f32, as shipped) vs ours NTK_S", rel(y_kp, ours["NTK"])),
            ("kpflow NTK_S (f32, P fed z_{t-1}) vs ours NTK_S", rel(y_kp_s, ours["NTK"])),
            ("kpflow P (f32, as shipped) vs ours P", rel(p_kp, ours["P"])),
            ("kpflow P (f32, P fed z_{t-1}) vs ours P", rel(p_kp_s, ours["P"])),
            ("kpflow P* (f32, as shipped) vs ours P*", rel(ps_kp, ours["Pstar"])),
            ("kpflow P* (f32, P fed z_{t-1}) vs ours P*", rel(ps_kp_s, ours["Pstar"])),
        ]
    else:
        print("(no --cli: GlobalNtk's results are not compared)")
    print(f"{'relative difference ‖a − b‖ / ‖b‖':<58} {'':>10}")
    for label, v in rows:
        print(f"{label:<58} {v:>10.2e}")
    print(f"kpflow float64 P K P*: {'works' if why64 is None else 'fails: ' + why64}")
    if no_vmap:
        print(f"kpflow block with torch.vmap: fails with this torch ({no_vmap}); its loop fallback is used")
    return 0


def main(argv):
    a = parse_args(argv)
    set_thread_env(a.threads)
    return check(a) if a.check else timing(a)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
