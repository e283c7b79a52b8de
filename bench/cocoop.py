"""Benchmark: CoCoOp on ViT-B/16 (random weights: they do not change the cost), align_nb's `cocoop` preset against the
authors' per-image loop, for one training step and one evaluation batch.

CoCoOp gives every image its own K class prompts, so the text tower runs on B x K sequences per batch and nothing can
be cached between test batches; that is the method's cost. The authors' forward (CoOp repository,
`trainers/cocoop.py`, `CustomCLIP.forward`) is written here with open_clip's modules and the `cocoop` model's own
parameters (so that both rows compute the same function): for each image, its K prompts on all 77 text positions
through the text tower in one call, 100 cos. align_nb runs the same B x K sequences truncated to their length
bucket's longest prompt, in buckets of at most `text_tokens` tokens per call (classes, and images when needed, are
chunked), and optionally recomputes the text tower's activations in the backward pass.

A training step is forward, cross-entropy, backward, SGD step, at CoCoOp's batch of 1; an evaluation is the forward of
a batch of --eval_batch images under no_grad. The first step's loss (or the sum of the logits) is printed so that one
sees every row compute the same thing. Each configuration runs in a fresh process (one warm-up, then the median of
--repeats), with its address space capped at --mem_limit_gb on the CPU so that a configuration that does not fit
fails with an error instead of waking the kernel's OOM killer.

    python bench/cocoop.py                                   # K = 100 and 1000
    python bench/cocoop.py --device cuda --eval_batch 100    # on a GPU (bench/gpu.sh)
"""
import argparse, json, os, resource, sys
import torch
import torch.nn.functional as F
sys.path.insert(0, os.path.dirname(__file__))
from common import imagenet_classnames, timed, run_configs, device_name

def authors_forward(model, images):
    "CoCoOp's CustomCLIP.forward: image by image, that image's K prompts on all 77 positions, 100 cos."
    c, tp = model.clip, model.text
    z = F.normalize(c.encode_image(images), dim=-1)                              # (B,d)
    bias = model.meta(z)                                                          # (B,d_t)
    ids = model._authors_ids                                                      # (K,77)
    emb = c.token_embedding(ids)
    logits = []
    for i in range(len(images)):
        ctx = (tp.ctx[0] + bias[i]).expand(len(ids), -1, -1)
        x = torch.cat([emb[:, :1], ctx, emb[:, 1 + tp.n_ctx:]], 1) + c.positional_embedding
        x = c.ln_final(c.transformer(x, attn_mask=c.attn_mask))
        t = F.normalize(x[torch.arange(len(ids), device=x.device), ids.argmax(-1)] @ c.text_projection, dim=-1)
        logits.append(c.logit_scale.exp() * z[i] @ t.T)
    return torch.stack(logits)

CONFIGS = ["authors' per-image loop", 'align_nb', 'align_nb + text checkpointing']

def build(config, K, device):
    import open_clip
    from align_nb.protocols import ClipSpec, make_clip
    from align_nb.model import PromptCLIP, preset
    clip = make_clip(ClipSpec('ViT-B-16', None, 0), device)
    names = imagenet_classnames(K)
    torch.manual_seed(0)
    model = PromptCLIP(clip, preset('cocoop', checkpoint_text='checkpointing' in config), names).to(device)
    if config.startswith('authors'):
        model._authors_ids = open_clip.tokenize([f"a photo of a {n}." for n in model.classnames]).to(device)
        model.forward = lambda images: authors_forward(model, images)
    return model

def one(config, K, what, device, repeats, eval_batch, mem_limit_gb):
    if device == 'cpu' and mem_limit_gb:
        lim = int(mem_limit_gb * 2**30); resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    model = build(config, K, device)
    g = torch.Generator().manual_seed(0)
    if what == 'train':
        model.train()
        opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
        x, y = torch.randn(1, 3, 224, 224, generator=g).to(device), torch.randint(0, K, (1,), generator=g).to(device)
        check = []
        def f():
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(); loss.backward(); opt.step()
            check.append(loss.item())
    else:
        model.eval()
        x = torch.randn(eval_batch, 3, 224, 224, generator=g).to(device)
        check = []
        def f():
            with torch.no_grad(): check.append(model(x).sum().item())
    t, peak = timed(f, device, repeats)
    print(json.dumps(dict(config=config, K=K, what=what, median_s=t, peak_mib=peak, check=check[0])))

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default='cpu')
    p.add_argument('--K', type=int, nargs='+', default=[100, 1000])
    p.add_argument('--what', nargs='+', default=['train', 'eval'])
    p.add_argument('--repeats', type=int, default=1)
    p.add_argument('--eval_batch', type=int, default=2)
    p.add_argument('--mem_limit_gb', type=float, default=20)
    p.add_argument('--configs', nargs='+', default=CONFIGS)
    p.add_argument('--one', help=argparse.SUPPRESS)
    p.add_argument('--k1', type=int, help=argparse.SUPPRESS)
    p.add_argument('--w1', help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one: return one(a.one, a.k1, a.w1, a.device, a.repeats, a.eval_batch, a.mem_limit_gb)
    rows = []
    for K in a.K:
        for what in a.what:
            configs = [c for c in a.configs if what == 'train' or 'checkpointing' not in c]   # checkpointing: training only
            args = ['--device', a.device, '--repeats', str(a.repeats), '--eval_batch', str(a.eval_batch),
                    '--mem_limit_gb', str(a.mem_limit_gb), '--k1', str(K), '--w1', what]
            rows += [dict(r, K=K, what=what) for r in run_configs(__file__, configs, args)]
    print(table(rows, a))

def table(rows, a):
    out = [f"CoCoOp (n_ctx 4, meta-net), ViT-B/16 (random weights); training step at batch 1, evaluation of a batch of "
           f"{a.eval_batch} images; {device_name(a.device)}; torch {torch.__version__}; median of {a.repeats} after a warm-up"
           + (f"; CPU address space capped at {a.mem_limit_gb:g} GiB" if a.device == 'cpu' else ''), '',
           "| K | what | configuration | median (s) | x faster than the authors' loop | peak memory (MiB) | check (loss / sum of logits) |",
           '|---|---|---|---|---|---|---|']
    for K in a.K:
        for what in a.what:
            rs = [r for r in rows if r['K'] == K and r['what'] == what]
            ref = next((r.get('median_s') for r in rs if r['config'].startswith('authors')), None)
            for r in rs:
                if 'error' in r: out.append(f"| {K} | {what} | {r['config']} | {r['error']} | | | |"); continue
                ratio = f"{ref / r['median_s']:.1f}" if ref else ''
                out.append(f"| {K} | {what} | {r['config']} | {r['median_s']:.2f} | {ratio} | {r['peak_mib']:.0f} | {r['check']:.6f} |")
    return '\n'.join(out)

if __name__ == '__main__': main()
