"""Benchmark: every OT solver a PyTorch user would pick for thousands of small entropic problems, forward and
forward+backward, each at the same plan accuracy.

The problems are those of ALIGN's token level: P problems of J = 198 image tokens x L = 8 text tokens, uniform
weights, eps = 0.1, cost C = 1 - cos between unit features (d = 32, sharing a low-rank subspace so that the cosines
spread). Shapes: 'train' is a training step's token level at K = 100 classes (B = 4 images, M = N = 4 prompts:
P = 6,400); 'eval' is an ImageNet test batch (K = 1000, B = 100: P = 1,600,000), solved in chunks of 64,000
problems (as align_nb's head chunks classes), for the GPU.

Equal accuracy. Every solver stops by its own rule, so each is given the loosest setting of its own knob (align_nb
and POT: the marginal tolerance; the authors' loop: their threshold on mean|dr|; GeomLoss: its eps-scaling factor
or its iteration count) at which its plans are within --target (max abs entry error; a uniform plan's entries are
1/(J L) = 6.3e-4) of a converged float64 reference (align_nb's log-domain Sinkhorn at tol 1e-13), found on the first
256 problems and used for all. The table states each knob.

Rows, each in a fresh process (time: median after a warm-up; peak memory: the rise of the process's peak resident
set on CPU, torch's peak allocation above the inputs on CUDA):
- forward: the plans and <T, C> per problem, under no_grad;
- forward+backward: the gradient of sum <T, C> with respect to the features, by each solver's gradient mode:
  'envelope' (the plan held fixed: d<T,C>/dC = T, what PLOT and ALIGN train with; align_nb's grad='detach', POT's
  'envelope', the authors' code, GeomLoss's own gradient of its entropic value, which is the same by the envelope
  theorem), POT's 'last_step', and 'autodiff' (through every iteration: align_nb's grad='unroll', POT's 'autodiff');
- half precision: forward with float16 / bfloat16 features, where the solver accepts them.

    pip install -e ".[bench]"                         # GeomLoss: a benchmark-only extra
    python bench/ot_solvers.py                      # CPU: the train shape (about 15 minutes on 2 cores)
    python bench/ot_solvers.py --device cuda --shapes train eval
"""
import argparse, json, math, os, subprocess, sys, time
import torch
sys.path.insert(0, os.path.dirname(__file__))
from common import authors_sinkhorn, timed, device_name

J, L, D, EPS, CALIB = 198, 8, 32, 0.1, 256
SHAPES = dict(train=int(os.environ.get('OT_SOLVERS_TRAIN_P', 6_400)), eval=1_600_000)
CHUNK = 64_000                                               # problems per call at the eval shape

def features(P, device, dtype=torch.float32, seed=0):
    "Unit image and text features (P,J,D), (P,L,D) sharing an 8-dimensional subspace."
    g = torch.Generator().manual_seed(seed)
    basis = torch.randn(8, D, generator=g)
    def unit(*shape):
        x = torch.randn(*shape, 8, generator=g) @ basis + 0.5 * torch.randn(*shape, D, generator=g)
        return torch.nn.functional.normalize(x, dim=-1)
    return unit(P, J).to(device, dtype), unit(P, L).to(device, dtype)

def cost(X, Y): return 1 - X @ Y.transpose(-1, -2)                                    # (P,J,L)

# ---- the solvers: f(X, Y, knob, grad) -> (plans (P,J,L), the loss sum <T,C>) ----
def ours(X, Y, tol, grad='detach'):
    from align_nb.sinkhorn import sinkhorn
    C = cost(X, Y)
    T = sinkhorn(C, eps=EPS, n_iters=2000, tol=tol, grad='unroll' if grad == 'autodiff' else 'detach')
    return T, (T * C.to(T.dtype)).sum()

def authors(X, Y, thresh, grad='envelope'):
    "Their loop: one call per (image, class) pair, i.e. per 16 problems (M = N = 4), from r = c = 1."
    C, out = cost(X, Y).float(), []
    for i in range(0, len(C), 16):
        c = C[i:i + 16]
        with torch.no_grad():
            out.append(authors_sinkhorn(torch.exp(-c / EPS), torch.full(c.shape[:2], 1 / J, device=c.device),
                                        torch.full((len(c), L), 1 / L, device=c.device), 2000, thresh))
    T = torch.cat(out)
    return T, (T * C).sum()

def pot(method):
    def f(X, Y, tol, grad='envelope'):
        import ot
        C = cost(X, Y)
        res = ot.solve_batch(C, EPS, max_iter=2000, tol=tol, method=method, grad=grad)
        return res.plan, res.value_linear.sum()
    return f

def geomloss_tensorized(X, Y, scaling, grad='envelope'):
    "GeomLoss's SamplesLoss on the point clouds (its p = 2 cost |x-y|^2/2 is 1 - cos for unit vectors); plans from its potentials."
    from geomloss import SamplesLoss
    kw = dict(p=2, blur=EPS ** 0.5, debias=False, scaling=scaling, backend='tensorized')
    if torch.is_grad_enabled(): return None, SamplesLoss('sinkhorn', **kw)(X, Y).sum()   # its own gradient
    f, g = SamplesLoss('sinkhorn', potentials=True, **kw)(X, Y)
    C = cost(X, Y)
    T = torch.exp((f[:, :, None] + g[:, None, :] - C) / EPS) / (J * L)
    return T, (T * C).sum()

def geomloss_batch(X, Y, max_iter, grad='envelope'):
    import geomloss.ot as go
    res = go.solve_batch(cost(X, Y), reg=EPS, max_iter=int(max_iter))
    return res.plan, res.value.sum()

SOLVERS = {   # name: (function, knob name, knob values from loose to strict, gradient modes it has)
    'align_nb': (ours, 'tol', [1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 3e-7], ('envelope', 'autodiff')),
    "authors' loop": (authors, 'thresh', [1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7], ('envelope',)),
    'POT solve_batch (log)': (pot('log_sinkhorn'), 'tol', [1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 3e-7],
                              ('envelope', 'last_step', 'autodiff')),
    'POT solve_batch (scaling)': (pot('sinkhorn'), 'tol', [1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 3e-7],
                                  ('envelope', 'last_step', 'autodiff')),
    'GeomLoss SamplesLoss (tensorized)': (geomloss_tensorized, 'scaling', [0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99],
                                          ('envelope',)),
    'GeomLoss ot.solve_batch': (geomloss_batch, 'max_iter', [10, 20, 50, 100, 200, 500, 1000], ('envelope',)),
}

def reference(X, Y):
    from align_nb.sinkhorn import sinkhorn
    return sinkhorn(cost(X.double(), Y.double()), eps=EPS, n_iters=20_000, tol=1e-13, method='log')

def calibrate(name, device, target):
    "The loosest knob value whose plans are within `target` of the float64 reference on the first CALIB problems."
    f, _, values, _ = SOLVERS[name]
    X, Y = features(CALIB, device)
    ref = reference(X, Y)
    for v in values:
        with torch.no_grad(): T, _ = f(X, Y, v)
        err = (T.double() - ref).abs().max().item()
        if err <= target: return v, err
    return values[-1], err                                          # the strictest it has (the table shows its error)

def run_one(name, shape, mode, grad, dtype, device, repeats, knob):
    "Time one row in this process; print a JSON line."
    f = SOLVERS[name][0]
    P = SHAPES[shape]
    dt = dict(float32=torch.float32, float16=torch.float16, bfloat16=torch.bfloat16)[dtype]
    X, Y = features(min(P, CHUNK), device, dt)
    chunks = math.ceil(P / CHUNK)                                   # eval: the same chunk solved `chunks` times
    def call():
        for _ in range(chunks):
            if mode == 'forward':
                with torch.no_grad(): f(X, Y, knob, grad)
            else:
                Xg = X.detach().requires_grad_(); Yg = Y.detach().requires_grad_()
                _, loss = f(Xg, Yg, knob, grad); loss.backward()
    median, peak = timed(call, device, repeats)                     # a warm-up (peak memory), then the repeats
    with torch.no_grad(): T, _ = f(X[:CALIB], Y[:CALIB], knob, grad)
    err = (T.double() - reference(X[:CALIB].float(), Y[:CALIB].float())).abs().max().item()
    print(json.dumps(dict(name=name, shape=shape, mode=mode, grad=grad, dtype=dtype, median_s=median,
                          peak_mib=peak, err=err, knob=knob)))

def rows_to_run(shapes, half):
    for shape in shapes:
        for name, (_, _, _, grads) in SOLVERS.items():
            yield name, shape, 'forward', 'envelope', 'float32'
            if shape == 'train':                                     # evaluation has no backward pass
                for g in grads: yield name, shape, 'forward+backward', g, 'float32'
        if half and shape == 'train':
            for name in ('align_nb', 'POT solve_batch (log)', 'GeomLoss SamplesLoss (tensorized)'):
                for dtype in ('float16', 'bfloat16'): yield name, shape, 'forward', 'envelope', dtype

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default='cpu')
    p.add_argument('--shapes', nargs='+', default=['train'], choices=list(SHAPES))
    p.add_argument('--target', type=float, default=1e-6, help='max abs plan error against the float64 reference')
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--solvers', nargs='+', default=list(SOLVERS))
    p.add_argument('--no-half', action='store_true')
    p.add_argument('--one', nargs=7, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        name, shape, mode, grad, dtype, knob, reps = args.one
        return run_one(name, shape, mode, grad, dtype, args.device, int(reps), float(knob))
    knobs = {n: calibrate(n, args.device, args.target) for n in args.solvers}
    rows = []
    for name, shape, mode, grad, dtype in rows_to_run(args.shapes, not args.no_half):
        if name not in args.solvers: continue
        slow = (mode != 'forward' and grad in ('autodiff', 'last_step')) or name.startswith('GeomLoss')
        reps = 1 if slow or shape == 'eval' else args.repeats
        cmd = [sys.executable, __file__, '--device', args.device, '--one', name, shape, mode, grad, dtype,
               str(knobs[name][0]), str(reps)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            why = (r.stderr.strip().splitlines() or [f'exit code {r.returncode}'])[-1][:120]
            rows.append(dict(name=name, shape=shape, mode=mode, grad=grad, dtype=dtype, error=why))
        else: rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
        print('.', end='', flush=True, file=sys.stderr)
    print(file=sys.stderr)
    print(table(rows, knobs, args))

def table(rows, knobs, args):
    import ot
    try: import geomloss; gl = geomloss.__version__
    except ImportError: gl = 'not installed (pip install -e ".[bench]")'
    lines = [f"OT solvers, {', '.join(f'{s}: {SHAPES[s]:,} problems' for s in args.shapes)} of {J} x {L}, eps {EPS}, "
             f"equal accuracy: plan error <= {args.target:g}; {device_name(args.device)}; torch {torch.__version__}, "
             f"POT {ot.__version__}, GeomLoss {gl}; {time.strftime('%Y-%m-%d')}", '',
             'Each solver\'s knob for that accuracy (found on 256 problems): ' +
             '; '.join(f"{n}: {SOLVERS[n][1]} = {v:g} (error {e:.1e})" for n, (v, e) in knobs.items()), '',
             '| shape | pass | gradient | input | solver | median time (s) | x align_nb | peak memory (MiB) | plan error |',
             '|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        base = next((q for q in rows if q['name'] == 'align_nb' and q['shape'] == r['shape'] and q['mode'] == r['mode']
                     and q['dtype'] == r['dtype'] and q['grad'] == 'envelope' and 'error' not in q), None)
        head = f"| {r['shape']} | {r['mode']} | {r['grad'] if r['mode'] != 'forward' else ''} | {r['dtype']} | {r['name']} |"
        if 'error' in r: lines.append(head + f" refused: {r['error']} | | | |"); continue
        ratio = f"{r['median_s'] / base['median_s']:.1f}" if base else ''
        lines.append(head + f" {r['median_s']:.3f} | {ratio} | {r['peak_mib']:.0f} | {r['err']:.1e} |")
    return '\n'.join(lines)

if __name__ == '__main__': main()
