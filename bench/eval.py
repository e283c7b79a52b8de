"""Benchmark: evaluation throughput (test images per second) of ALIGN on ViT-B/16 (random weights), with and without
the class-feature cache and the vectorised, chunked OT, against the authors' algorithm.

The authors' code re-encodes all K*N class prompts (77 tokens each) for every test batch and runs the OT head as a
Python loop over the batch's images and the K classes (appendix A.12, bench/common.py). Rows:
- authors' algorithm: no cache, 77-token text, loop OT head;
- align_nb, no cache: the class prompts re-encoded every batch (truncated, in length buckets), vectorised OT;
- align_nb: class features encoded once and reused, vectorised and chunked OT.
Every row computes the same logits (the authors' semantics). Each runs in a fresh process: a warm-up batch (which
fills the cache, where there is one, and gives the peak memory), then --batches timed batches; images/s is the test
batch size over the median batch time. The 'non-image' column is the time per batch beyond the image tower, i.e. the
part of the work the algorithms differ in.

    python bench/eval.py                    # K = 100 and 1000
"""
import argparse, json, sys, os, statistics, time
import torch
sys.path.insert(0, os.path.dirname(__file__))
from common import authors_model, imagenet_classnames, timed, run_configs, device_name, sync

CONFIGS = ["authors' algorithm", 'align_nb, no cache', 'align_nb']

def one(config, K, device, batch, batches):
    from align_nb.protocols import ClipSpec, make_clip
    from align_nb.model import PromptCLIP, preset
    clip = make_clip(ClipSpec('ViT-B-16', None, 0), device)
    names = imagenet_classnames(K)
    torch.manual_seed(0)
    model = (authors_model(clip, names) if config == "authors' algorithm" else PromptCLIP(clip, 'align_authors', names)).to(device).eval()
    if config == 'align_nb, no cache': model.class_features = model._encode_classes
    x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(device)
    with torch.no_grad():
        t, peak = timed(lambda: model(x), device, batches)
        t0 = time.perf_counter(); model.encode_images(x); sync(device); t_img = time.perf_counter() - t0
    print(json.dumps(dict(config=config, K=K, median_s=t, images_per_s=batch / t, non_image_s=max(t - t_img, 0.), peak_mib=peak)))

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default='cpu')
    p.add_argument('--K', type=int, nargs='+', default=[100, 1000])
    p.add_argument('--batch', type=int, default=25, help='test batch size')
    p.add_argument('--batches', type=int, default=2, help='timed batches per configuration')
    p.add_argument('--configs', nargs='+', default=CONFIGS)
    p.add_argument('--one', help=argparse.SUPPRESS)
    p.add_argument('--k1', type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one: return one(a.one, a.k1, a.device, a.batch, a.batches)
    rows = []
    for K in a.K:
        for r in run_configs(__file__, a.configs, ['--device', a.device, '--batch', str(a.batch), '--batches', str(a.batches), '--k1', str(K)]):
            rows.append(dict(r, K=K))
    out = [f"Evaluation, ViT-B/16 (random weights), M=N=4, test batch {a.batch}, the authors' semantics; "
           f"{device_name(a.device)}; torch {torch.__version__}; median of {a.batches} batches after a warm-up", '',
           "| K | configuration | images/s | x faster than the authors' algorithm | non-image time per batch (s) | x less | peak memory (MiB) |",
           '|---|---|---|---|---|---|---|']
    for K in a.K:
        rs = [r for r in rows if r['K'] == K]
        ref = next((r for r in rs if r['config'] == "authors' algorithm" and 'error' not in r), None)
        for r in rs:
            if 'error' in r: out.append(f"| {K} | {r['config']} | {r['error']} | | | | |"); continue
            x = f"{r['images_per_s'] / ref['images_per_s']:.1f}" if ref else ''
            y = f"{ref['non_image_s'] / max(r['non_image_s'], 1e-3):.0f}" if ref else ''
            out.append(f"| {K} | {r['config']} | {r['images_per_s']:.2f} | {x} | {r['non_image_s']:.2f} | {y} | {r['peak_mib']:.0f} |")
    print('\n'.join(out))

if __name__ == '__main__': main()
