"""Benchmark: ALIGN's token-level OT head, align_nb against the authors' loop and POT's batched solver.

The head takes image token sets (B,M,J,d) and class token sets (K,N,L_k,d) and returns the token-level OT
distances (B,K,M,N) of Eq. 5: the cost 1 - cos between every pair of tokens, an entropic plan per (b,k,m,n) with
eps = 0.1 and uniform weights, and <T, C>. Three implementations:

- align_nb: `align_nb.hierarchical_ot.token_ot`, all (b,k,m,n) at once, padded and masked, chunked over classes;
- authors: their algorithm as appendix A.8 and A.9 of the course describe it, written here: a Python loop over images and
  classes, one einsum and one Sinkhorn call per (b,k) with the M*N problems of that pair batched, scaling
  iterations from r = c = 1, a host sync per iteration, stop when mean|dr| < 1e-2 or after 100 iterations;
- POT: `ot.solve_batch` on all problems at once (padded columns get zero weight), at the same tolerance as align_nb,
  with its default log-domain solver and with its scaling-domain one.

Each is timed end to end (cost matrix, plans, reduction) under `torch.no_grad()`, the median of several runs after a
warm-up. Peak memory is measured in a fresh subprocess per (method, K): on CPU the rise of the process's peak resident
set (VmHWM) over its resident set before the run; on CUDA `torch.cuda.max_memory_allocated` above the inputs.
The error column is the largest |d - d_ref| over all (b,k,m,n), where d_ref is align_nb at tol 1e-7 in float64.

    python bench/ot_head.py                  # CPU, K in 10 100 1000
    python bench/ot_head.py --device cuda    # GPU

Then it runs bench/ot_solvers.py (every solver a PyTorch user would pick, forward and backward, at equal accuracy).
"""
import argparse, json, math, os, statistics, subprocess, sys, time
import torch
sys.path.insert(0, os.path.dirname(__file__))
from common import authors_sinkhorn, rss_kb, sync

B, M, N, J, D, EPS = 4, 4, 4, 198, 512, 0.1

def make_inputs(K, device='cpu', dtype=torch.float32, seed=0):
    """Token sets like ViT-B/16 ALIGN's: J = 198 image tokens, class token sets of 5 to 17 tokens, d = 512.

    Image and text tokens share a low-rank subspace so that cosines spread over a realistic range
    (with full-rank random features all cosines are ~0 and every plan is uniform)."""
    g = torch.Generator().manual_seed(seed)
    basis = torch.randn(16, D, generator=g)
    def tokens(*shape):
        x = torch.randn(*shape, 16, generator=g) @ basis + 0.5 * torch.randn(*shape, D, generator=g)
        return torch.nn.functional.normalize(x, dim=-1)
    lengths = torch.randint(5, 18, (K,), generator=g)                       # L_k = k_l + 5, appendix A.6
    L = int(lengths.max())
    img, txt = tokens(B, M, J), tokens(K, N, L)
    mask = (torch.arange(L)[None, None] < lengths[:, None, None]).expand(K, N, L).contiguous()
    txt = txt * mask[..., None]
    return img.to(device, dtype), txt.to(device, dtype), mask.to(device), lengths.tolist()

# ---- the authors' algorithm (appendix A.8 and A.9): their Sinkhorn is in common.py ----
def authors_head(img, txt, mask, lengths):
    out = torch.empty(B, len(lengths), M, N, device=img.device, dtype=img.dtype)
    for b in range(B):
        for k, Lk in enumerate(lengths):
            S = torch.einsum('vnd,tld->vtnl', img[b], txt[k, :, :Lk]).reshape(M * N, J, Lk)   # (MN,J,L_k)
            Kmat = torch.exp(-(1 - S) / EPS)
            u = torch.full((M * N, J), 1 / J, device=img.device, dtype=img.dtype)
            v = torch.full((M * N, Lk), 1 / Lk, device=img.device, dtype=img.dtype)
            T = authors_sinkhorn(Kmat, u, v)
            out[b, k] = (1 - (T * S).sum((-2, -1))).view(M, N)                              # distance = 1 - sim
    return out

# ---- POT's batched solver ----
def pot_head(img, txt, mask, lengths, tol, method):
    "POT's batched solver on the same problems, grouped by length the way align_nb groups them (so only the solver differs)."
    import ot
    from align_nb.hierarchical_ot import token_similarity, length_buckets
    K = txt.shape[0]
    out = torch.empty(B, K, M, N, device=img.device, dtype=img.dtype)
    for ks in length_buckets(lengths, B * M * N * J, 2**25):
        Lc = max(lengths[k] for k in ks)
        ids = torch.tensor(ks, device=img.device)
        C = 1 - token_similarity(img, txt[ids, :, :Lc])                                     # (B,k,M,N,J,Lc)
        m = mask[ids, :, :Lc]
        bw = (m / m.sum(-1, keepdim=True))[None, :, None].expand(B, len(ks), M, N, Lc)
        res = ot.solve_batch(C.reshape(-1, J, Lc), EPS, b=bw.reshape(-1, Lc), tol=tol, max_iter=100, method=method,
                             grad='detach')
        out[:, ids] = (res.plan * C.reshape(-1, J, Lc)).sum((-2, -1)).view(B, len(ks), M, N)
    return out

def ours_head(img, txt, mask, lengths, tol):
    from align_nb.hierarchical_ot import token_ot
    return token_ot(img, txt, mask, eps=EPS, tol=tol)

METHODS = {
    'align_nb': lambda i, t, m, l, tol: ours_head(i, t, m, l, tol),
    'authors loop': lambda i, t, m, l, tol: authors_head(i, t, m, l),
    'POT solve_batch (log)': lambda i, t, m, l, tol: pot_head(i, t, m, l, tol, 'log_sinkhorn'),
    'POT solve_batch (scaling)': lambda i, t, m, l, tol: pot_head(i, t, m, l, tol, 'sinkhorn'),
}

def run_one(method, K, device, tol, repeats):
    "Time one method at one K in this process; print a JSON line."
    img, txt, mask, lengths = make_inputs(K, device)
    f = METHODS[method]
    with torch.no_grad():
        if device.startswith('cuda'):
            torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated()
        else:
            open('/proc/self/clear_refs', 'w').write('5')                                 # reset VmHWM
            base = rss_kb('VmRSS')
        out = f(img, txt, mask, lengths, tol); sync(device)
        peak = ((torch.cuda.max_memory_allocated() - base) / 2**20 if device.startswith('cuda')
                else (rss_kb('VmHWM') - base) / 1024)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter(); f(img, txt, mask, lengths, tol); sync(device); times.append(time.perf_counter() - t0)
        ref = ours_head(img.double(), txt.double(), mask, lengths, 1e-7)
    err = (out.double() - ref).abs().max().item()
    print(json.dumps(dict(method=method, K=K, median_s=statistics.median(times), peak_mib=peak, err=err)))

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default='cpu')
    p.add_argument('--K', type=int, nargs='+', default=[10, 100, 1000])
    p.add_argument('--tol', type=float, default=1e-4, help='row-marginal tolerance for align_nb and POT')
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--methods', nargs='+', default=list(METHODS))
    p.add_argument('--solver-shapes', nargs='*', default=['train'], help="ot_solvers.py's shapes after this table (none: skip it)")
    p.add_argument('--one', nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one: return run_one(args.one[0], int(args.one[1]), args.device, args.tol, args.repeats)
    rows = []
    for K in args.K:
        for method in args.methods:
            reps = args.repeats if K < 1000 else max(1, args.repeats // 2)
            cmd = [sys.executable, __file__, '--device', args.device, '--tol', str(args.tol), '--repeats', str(reps), '--one', method, str(K)]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode: print(f'{method} K={K} failed:\n{r.stderr[-2000:]}', file=sys.stderr); continue
            rows.append(json.loads(r.stdout.strip().splitlines()[-1])); print('.', end='', flush=True, file=sys.stderr)
    print(file=sys.stderr)
    print(table(rows, args))
    if args.solver_shapes:                                  # the solvers at equal accuracy, forward and backward
        import ot_solvers
        print()
        ot_solvers.main(['--device', args.device, '--shapes', *args.solver_shapes])

def table(rows, args):
    dev = torch.cuda.get_device_name() if args.device.startswith('cuda') else f'CPU ({torch.get_num_threads()} threads)'
    lines = [f'Token-level OT head, B={B}, M=N={M}, J={J}, L=5..17 (masked), d={D}, eps={EPS}, tol={args.tol}; '
             f'{dev}; torch {torch.__version__}', '',
             '| K | method | median time (s) | x slower than align_nb | peak memory (MiB) | max abs error vs float64 reference |',
             '|---|---|---|---|---|---|']
    for K in sorted({r['K'] for r in rows}):
        rs = [r for r in rows if r['K'] == K]
        ours = next((r['median_s'] for r in rs if r['method'] == 'align_nb'), float('nan'))
        for r in rs:
            lines.append(f"| {K} | {r['method']} | {r['median_s']:.3f} | {r['median_s'] / ours:.1f} | {r['peak_mib']:.0f} | {r['err']:.1e} |")
    return '\n'.join(lines)

if __name__ == '__main__': main()
