"""Benchmark: host synchronisations per training step and per evaluation batch, align_nb against the authors' algorithm.

A host synchronisation (`.item()`, `bool(t)`, `.tolist()`, a data-dependent shape, ...) makes the host wait until the
GPU's queue drains; the count is a property of the algorithm, not of the device, so it is measured here on a CPU
with `align_nb.syncs.count_syncs` (appendix G). ALIGN (M = N = 4, the paper's preset on the tiny random CLIP of
notebook 03, whose 3 layers cap the prompt depth), B = 4 images, K = 10, 100 and 1000 ImageNet class names. The
authors' algorithm is bench/common.py's (their Sinkhorn with a host synchronisation per iteration, called once per
(image, class) pair, appendix A.8 to A.10); align_nb is the `align` preset at its own tolerance.

    python bench/syncs.py
"""
import argparse, os, sys, time, warnings
import torch, torch.nn.functional as F
sys.path.insert(0, os.path.dirname(__file__))
from common import authors_model, imagenet_classnames
from align_nb.syncs import count_syncs
from align_nb.clip import tiny_clip
from align_nb.model import PromptCLIP

def counts(model, B=4):
    "Host synchronisations of one training step (forward, backward) and of one evaluation batch."
    x, y = torch.randn(B, 3, 32, 32, generator=torch.Generator().manual_seed(0)), torch.arange(B) % len(model.classnames)
    model.eval()
    with torch.no_grad(): model(x)                                                 # warm: caches, temperature
    with torch.no_grad(), count_syncs() as evaluation: model(x)
    model.train()
    with count_syncs() as training: F.cross_entropy(model(x), y).backward()
    return len(training), len(evaluation)

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--K', type=int, nargs='+', default=[10, 100, 1000])
    args = p.parse_args()
    warnings.filterwarnings('ignore', message='this CLIP has')
    clip = tiny_clip()
    rows = []
    for K in args.K:
        names = imagenet_classnames(K)
        for label, make in (("authors' algorithm", lambda: authors_model(clip, names)),
                            ('align_nb', lambda: PromptCLIP(clip, 'align', names))):
            torch.manual_seed(0)
            t0 = time.time(); step, ev = counts(make())
            rows.append((K, label, step, ev, time.time() - t0)); print('.', end='', flush=True, file=sys.stderr)
    print(file=sys.stderr)
    print(f"Host synchronisations, ALIGN on the tiny CLIP, B = 4; torch {torch.__version__}; {time.strftime('%Y-%m-%d')}\n")
    print('| K | algorithm | per training step | per evaluation batch | x fewer (step) |\n|---|---|---|---|---|')
    for K, label, step, ev, _ in rows:
        theirs = next(r[2] for r in rows if r[0] == K and r[1] != 'align_nb')
        print(f"| {K} | {label} | {step:,} | {ev:,} | {theirs / max(step, 1):,.0f} |")

if __name__ == '__main__': main()
