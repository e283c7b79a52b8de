"""Benchmark: one ALIGN training step on ViT-B/16 (random weights: they do not change the cost), align_nb against
the authors' algorithm, with each of align_nb's optimisations switched off in turn.

B = 4 images of 224 px, M = N = 4 prompts of b = 2 tokens, depth 9, projected coupling, K classes (ImageNet's first
K class names), the authors' semantics (mode, token sets and Sinkhorn of the 'align_authors' preset), so that every
row computes the same function and only the algorithm differs (bench/common.py describes the authors' algorithm).
A step is forward, cross-entropy, backward and an SGD step; the first step's loss is printed so that one sees every
row compute the same thing. Each configuration runs in a fresh process: one warm-up
step (which also gives the peak memory: the rise of the process's peak resident set on CPU, the CUDA allocator's peak
on a GPU), then the median of --repeats timed steps.

    python bench/train_step.py                          # K = 10 and 100, all configurations
    python bench/train_step.py --K 1000 --configs align_nb "align_nb + text checkpointing"   # memory at ImageNet scale
"""
import argparse, json, sys, os
import torch
sys.path.insert(0, os.path.dirname(__file__))
from common import authors_model, authors_head, imagenet_classnames, timed, run_configs, device_name

B = 4

def build(config, K, device):
    "The model of one configuration, on a seeded random ViT-B/16."
    from align_nb.protocols import ClipSpec, make_clip
    from align_nb.model import PromptCLIP, preset
    clip = make_clip(ClipSpec('ViT-B-16', None, 0), device)
    names = imagenet_classnames(K)
    torch.manual_seed(0)
    if config == "authors' algorithm": return authors_model(clip, names).to(device)
    cfg = preset('align_authors', text_buckets='no length buckets' not in config,
                 checkpoint_text='checkpointing' in config, compile='compile' in config)
    model = PromptCLIP(clip, cfg, names).to(device)
    if 'no truncation' in config:                                  # the authors' 77-token text side, our OT head
        auth = authors_model(clip, names).to(device)
        auth.load_prompt_state_dict(model.prompt_state_dict())
        auth.head = model.head
        return auth
    if 'loop OT head' in config:                                   # our text side, the authors' OT head
        model.head = lambda img, cls, return_plans=False: authors_head(img.z.float(), cls.h.float(), img.tokens.float(),
                                                                       cls.tokens.float(), cls.mask, model.tau)
    return model

CONFIGS = ["authors' algorithm", 'align_nb, no truncation (77 tokens)', 'align_nb, no length buckets',
           'align_nb, loop OT head', 'align_nb', 'align_nb + text checkpointing']

def one(config, K, device, repeats):
    model = build(config, K, device).train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(B, 3, 224, 224, generator=g).to(device), torch.randint(0, K, (B,), generator=g).to(device)
    losses = []
    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(); loss.backward(); opt.step()
        losses.append(loss.item())
    t, peak = timed(step, device, repeats)
    print(json.dumps(dict(config=config, K=K, median_s=t, peak_mib=peak, loss0=losses[0])))

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default='cpu')
    p.add_argument('--K', type=int, nargs='+', default=[10, 100])
    p.add_argument('--repeats', type=int, default=2)
    p.add_argument('--configs', nargs='+', default=CONFIGS)
    p.add_argument('--one', help=argparse.SUPPRESS)
    p.add_argument('--k1', type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one: return one(a.one, a.k1, a.device, a.repeats)
    rows = []
    for K in a.K:
        for r in run_configs(__file__, a.configs, ['--device', a.device, '--repeats', str(a.repeats), '--k1', str(K)]):
            rows.append(dict(r, K=K))
    print(table(rows, a))

def table(rows, a):
    out = [f"One training step, ViT-B/16 (random weights), B={B}, M=N=4, b=2, depth 9, the authors' semantics; "
           f"{device_name(a.device)}; torch {torch.__version__}; median of {a.repeats} steps after a warm-up", '',
           "| K | configuration | median step (s) | x faster than the authors' algorithm | peak memory (MiB) | first loss |",
           '|---|---|---|---|---|---|']
    for K in a.K:
        rs = [r for r in rows if r['K'] == K]
        ref = next((r.get('median_s') for r in rs if r['config'] == "authors' algorithm"), None)
        for r in rs:
            if 'error' in r: out.append(f"| {K} | {r['config']} | {r['error']} | | | |"); continue
            ratio = f"{ref / r['median_s']:.1f}" if ref else ''
            out.append(f"| {K} | {r['config']} | {r['median_s']:.2f} | {ratio} | {r['peak_mib']:.0f} | {r['loss0']:.6f} |")
    return '\n'.join(out)

if __name__ == '__main__': main()
