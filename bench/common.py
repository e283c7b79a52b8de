"""Shared pieces of the benchmarks: the authors' algorithm on align_nb's building blocks, and a harness that runs each
configuration in a fresh process and measures its time (median) and peak memory.

The authors' algorithm (appendix A.8 to A.15 of the course, nbs/A_authors_code.ipynb), written with align_nb's towers and prompt learners so that only the
algorithm differs from align_nb's:
- the text tower runs every class prompt on all 77 positions (no truncation, no length buckets);
- class features are never cached: they are re-encoded at every call, in training and at every test batch;
- the OT head is a Python loop over images and classes, one einsum and one Sinkhorn call per (b,k) (their scaling
  algorithm with a host sync per iteration), the token-level similarity computed with autograd on and its graph kept
  alive until the loss is computed, as in their code.
"""
import json, os, statistics, subprocess, sys, time
import torch
from torch import nn

def imagenet_classnames(K):
    "The first K ImageNet class names (CLIP's curated names, shipped with open_clip)."
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES
    return list(IMAGENET_CLASSNAMES[:K])

def authors_sinkhorn(K, u, v, max_iter=100, thresh=1e-2):
    "Appendix A.8: scaling iterations from r = c = 1, stop when mean|dr| < thresh (a host sync per iteration)."
    r, c = torch.ones_like(u), torch.ones_like(v)
    for _ in range(max_iter):
        r0 = r
        r = u / torch.matmul(K, c.unsqueeze(-1)).squeeze(-1)
        c = v / torch.matmul(K.permute(0, 2, 1).contiguous(), r.unsqueeze(-1)).squeeze(-1)
        if (r - r0).abs().mean().item() < thresh: break
    return torch.matmul(r.unsqueeze(-1), c.unsqueeze(-2)) * K

def authors_head(z, h, img_tokens, txt_tokens, txt_mask, tau, eps=0.1):
    "Appendix A.9, A.10: the (b,k) loop for the token level, one prompt-level call, logits <T, cos>/tau."
    B, M, K, N = z.shape[0], z.shape[1], h.shape[0], h.shape[1]
    lengths = txt_mask[:, 0].sum(-1).tolist()
    sims = []
    for b in range(B):
        for k in range(K):
            L = int(lengths[k])
            S = torch.einsum('vjd,tld->vtjl', img_tokens[b], txt_tokens[k][txt_mask[k]].view(N, L, -1)).flatten(0, 1)
            with torch.no_grad():
                T = authors_sinkhorn(torch.exp(-(1 - S) / eps), torch.full(S.shape[:2], 1 / S.shape[1], device=S.device),
                                     torch.full((M * N, L), 1 / L, device=S.device))
            sims.append((T * S).sum((-2, -1)).view(M, N))                                 # graph kept, as theirs
    sim_tok = torch.stack(sims).view(B * K, M, N)
    cos = torch.einsum('bmd,knd->bkmn', z, h).flatten(0, 1)
    with torch.no_grad():
        T = authors_sinkhorn(torch.exp(-(1 - cos + sim_tok) / eps), torch.full((B * K, M), 1 / M, device=z.device),
                             torch.full((B * K, N), 1 / N, device=z.device))
    return (T * cos).sum((-2, -1)).view(B, K) / tau

def authors_model(clip, classnames, **changes):
    "A PromptCLIP that computes the authors' algorithm (see the module docstring)."
    from align_nb.model import PromptCLIP, preset, ClassFeatures
    from align_nb.clip import encode_text
    class Authors(PromptCLIP):
        def _encode_classes(self):
            embeds, eot, deep, _ = self.text()
            S, T, d_t = embeds.shape
            ctx_len = self.clip.positional_embedding.shape[0]
            pad = self.clip.token_embedding.weight[0].expand(S, ctx_len - T, d_t)     # the id-0 padding, to 77
            f = encode_text(self.clip, torch.cat([embeds, pad.to(embeds.dtype)], 1), eot, deep, truncate=False)
            K, N, d = len(self.classnames), self.cfg.n_text, f.h.shape[-1]
            mask = nn.functional.pad(self.text.token_mask(self.cfg.token_set), (0, ctx_len - T))
            return ClassFeatures(f.h.view(K, N, d), f.tokens.view(K, N, ctx_len, d), mask.view(K, N, ctx_len))
        def class_features(self): return self._encode_classes()                      # no cache
        def head(self, img, cls, return_plans=False):
            return authors_head(img.z.float(), cls.h.float(), img.tokens.float(), cls.tokens.float(), cls.mask, self.tau)
    return Authors(clip, preset('align_authors', **changes), classnames)

# ---- harness ----
def rss_kb(field):
    for line in open('/proc/self/status'):
        if line.startswith(field): return int(line.split()[1])

def reset_peak(device):
    "Start a peak-memory measurement; returns the baseline."
    if device.startswith('cuda'):
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); return torch.cuda.memory_allocated()
    open('/proc/self/clear_refs', 'w').write('5')                                         # reset VmHWM
    return rss_kb('VmRSS') * 1024

def peak_since(device, base):
    "Peak memory (MiB) above the baseline since `reset_peak`."
    if device.startswith('cuda'): return (torch.cuda.max_memory_allocated() - base) / 2**20
    return (rss_kb('VmHWM') * 1024 - base) / 2**20

def sync(device):
    if device.startswith('cuda'): torch.cuda.synchronize()

def timed(f, device, repeats):
    "Run f once to warm up and measure peak memory, then `repeats` times; (median seconds, peak MiB)."
    base = reset_peak(device)
    f(); sync(device)
    peak = peak_since(device, base)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter(); f(); sync(device); times.append(time.perf_counter() - t0)
    return statistics.median(times), peak

def run_configs(script, configs, extra_args=()):
    "Run `script --one NAME` per config name in a fresh process; collect the JSON line each prints."
    rows = []
    for name in configs:
        r = subprocess.run([sys.executable, script, *extra_args, '--one', name], capture_output=True, text=True)
        if r.returncode:
            err = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f'exit code {r.returncode}'
            if r.returncode in (-9, 137): err = 'killed (out of memory)'
            print(f'{name}: {err}', file=sys.stderr)
            rows.append(dict(config=name, error=err)); continue
        rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
        print('.', end='', flush=True, file=sys.stderr)
    print(file=sys.stderr)
    return rows

def device_name(device):
    return torch.cuda.get_device_name() if device.startswith('cuda') else f'CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads)'
