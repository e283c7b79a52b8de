"""The paper's tables in miniature, in the world of notebook 06a, offline, on two CPU cores.

Every preset (zero-shot CLIP, CoOp, CoCoOp, VPT, IVLP, MaPLe, PLOT, PLOT++, UPT, ALIGN as the paper states it, ALIGN
as the authors' code computes it) on the world's CLIP (`load_clip('world-vit', 'world')`), over seeds 1, 2, 3:

- base to new on `world` (24 base, 24 new colour-and-shape classes, 16 shots), like Table 1: Base, New, H;
- few-shot on `world` (all 48 classes, 1, 2, 4, 8, 16 shots), like Fig. 3;
- cross-dataset (like Table 2) and domain generalisation (like Table 3): one model per seed trained on all of `world`
  (16 shots), tested on the five other world sets (shapes, colours, patterns, sizes, places) and on the four shifted
  domains of `world` (v2, sketch, clutter, palette). That training is the few-shot part's 16-shot run (the same
  recipe), so a transfer run starts from its finished checkpoint and only evaluates;
- ablations of ALIGN (paper form) on base to new: the uniform prompt-level plan, and beta = 0 and 0.5 (beta = 1 is
  ALIGN itself).

The recipe is the world's of notebook 08 (`recipe(protocol, 'world')`: SGD at lr 0.0035, batches of 4, no warm-up, no
random crop; 4 epochs base to new, 6/3/2/1/1 epochs for 1/2/4/8/16 shots, 1 epoch cross-dataset), the same for every
preset: a miniature sized for about an hour, not anyone's tuned recipe. Each run is a `run` of notebook 08 in its own
folder under --out (resumable: an interrupted bench continues where it stopped; a finished run is read back, not
recomputed, only if its settings are the same). Tables and every run's numbers and wall time go to --out/RESULTS.md
and --out/results.json.

The runs are independent (a transfer run waits for its 16-shot training), so --jobs of them run at a time, each in a
process of its own with --threads torch threads. The default shares 2 cores between 2 runs of 1 thread: these small
models keep two threads busy poorly, and two runs at a time finished seed 1 of base to new 1.2 to 1.4 times sooner
than one run at a time on 2 threads (bench/RESULTS.md). A run's numbers can differ in their last digits with its
thread count (sums taken in another order); a resumed bench reads finished runs back whatever thread count made them.

    python bench/world.py                                  # everything (31 to 50 min on 2 CPU cores: bench/RESULTS.md)
    python bench/world.py --seeds 1 --parts base2new       # a part
    python bench/world.py --jobs 4 --threads 2             # on 8 cores
"""
import argparse, concurrent.futures, json, math, multiprocessing, os, shutil, statistics, sys, time, warnings
from pathlib import Path
import torch
from align_nb.protocols import run, recipe, ClipSpec, WORLD_XD_TARGETS, WORLD_DG_TARGETS
from align_nb.train import CKPT, METRICS, RESULTS

PRESETS = ('zeroshot', 'coop', 'cocoop', 'vpt', 'ivlp', 'maple', 'plot', 'plotpp', 'upt', 'align', 'align_authors')
NAMES = dict(zeroshot='CLIP (zero-shot)', coop='CoOp', cocoop='CoCoOp', vpt='VPT', ivlp='IVLP', maple='MaPLe',
             plot='PLOT', plotpp='PLOT++', upt='UPT', align='ALIGN (paper)', align_authors="ALIGN (authors' code)")
ABLATIONS = {'uniform plan': dict(plan='uniform'), 'beta = 0': dict(beta=0.0), 'beta = 0.5': dict(beta=0.5)}
SHOTS = (1, 2, 4, 8, 16)
PARTS = ('base2new', 'fewshot', 'transfer', 'ablations')
CLIP = ClipSpec('world-vit', 'world')

def one(out, preset, seed, protocol, shots=16, subsample='all', eval_on=(), model_changes=None, log=None):
    "One run (or its saved results), with its wall time."
    cfg, changes = recipe(protocol, 'world', 'world', shots)
    t, out = time.time(), Path(out)
    read_back = (out / RESULTS).exists()                 # a finished run: `run` reads its results back (same settings)
    res = run('world', None, preset, CLIP, shots, seed, subsample, cfg, {**changes, **(model_changes or {})},
              eval_on=eval_on, out_dir=out, resume=read_back or (out / CKPT).exists(), quiet=True)
    row = dict(preset=preset, seed=seed, protocol=protocol, shots=shots, model_changes=model_changes or {},
               test=res['test'], train_time=res['train_time'], time=res['time'], wall_now=time.time() - t,
               read_back=read_back)
    if log is not None: log.append(row)
    print(f"  {protocol:9s} {preset:14s} seed {seed} shots {shots:2d} {json.dumps(model_changes or {}):18s} "
          f"{res['time']:6.1f} s  " + '  '.join(f"{k} {v:.1f}" for k, v in res['test'].items()), flush=True)
    return res

def reuse_training(src, dst):
    """Start the transfer run `dst` from the finished 16-shot few-shot run `src`: the same recipe, only the test sets
    differ, so `run` takes it up, trains nothing and evaluates the targets (it refuses if the settings differ)."""
    same = recipe('fewshot', 'world', 'world', 16) == recipe('crossdataset', 'world', 'world', 16)
    if not same or not (src / RESULTS).exists() or not (src / CKPT).exists(): return   # zero-shot: nothing trained
    if (dst / CKPT).exists() or (dst / RESULTS).exists(): return
    dst.mkdir(parents=True, exist_ok=True)
    for f in (CKPT, METRICS): shutil.copy(src / f, dst / f)

def ms(xs):
    "mean ± std (sample std over seeds; one seed: the mean alone)."
    m = statistics.mean(xs)
    return f"{m:.1f} ± {statistics.stdev(xs):.1f}" if len(xs) > 1 else f"{m:.1f}"

def hmean(b, n): return 2 * b * n / (b + n) if b + n else 0.

def ranked(title, intro, rows, columns, by, mean_name)->list:
    "Markdown lines of a table of rows (preset, {column: values over seeds}), ranked by the mean of the `by` columns."
    score = lambda acc: statistics.mean(statistics.mean(acc[c]) for c in by)
    header = "| rank | method | " + ' | '.join(columns.values()) + f" | {mean_name} |"
    lines = [f"## {title}\n\n{intro}\n\n{header}\n|---|---|" + '---|' * (len(columns) + 1)]
    lines += [f"| {i + 1} | {NAMES[pr]} | " + ' | '.join(ms(acc[c]) for c in columns) + f" | {score(acc):.1f} |"
              for i, (pr, acc) in enumerate(sorted(rows, key=lambda r: -score(r[1])))]
    return lines + ['']

WEIGHT = dict(align=10, align_authors=10, plot=4, plotpp=4, cocoop=3)    # rough cost per run, to start long ones first

def plan(parts, presets, seeds, out):
    """Every run the parts need: {key: (folder, keyword arguments of `one`)}, in the order one process runs them. The
    ablations' beta = 1 is base to new's ALIGN run (one key); a transfer run starts from its few-shot 16-shot run."""
    runs = {}
    if 'base2new' in parts or 'ablations' in parts:                      # the ablations compare with ALIGN's run
        for pr in dict.fromkeys((presets if 'base2new' in parts else []) + (['align'] if 'ablations' in parts else [])):
            for s in seeds: runs['base2new', pr, s] = out / 'base2new' / pr / f'seed{s}', dict(
                preset=pr, seed=s, protocol='base2new', subsample='base', eval_on=(('world', 'new'),))
    if 'fewshot' in parts:
        for pr in presets:
            for k in SHOTS:
                for s in seeds: runs['fewshot', pr, k, s] = out / 'fewshot' / pr / f'shots{k}' / f'seed{s}', dict(
                    preset=pr, seed=s, protocol='fewshot', shots=k)
    if 'transfer' in parts:
        targets = tuple((t, 'all') for t in (*WORLD_XD_TARGETS, *WORLD_DG_TARGETS))
        for pr in presets:
            for s in seeds: runs['transfer', pr, s] = out / 'transfer' / pr / f'seed{s}', dict(
                preset=pr, seed=s, protocol='crossdataset', eval_on=targets)
    if 'ablations' in parts:
        for name, changes in ABLATIONS.items():
            for s in seeds:
                runs['ablations', name, s] = out / 'ablations' / name.replace(' ', '').replace('=', '') / f'seed{s}', \
                    dict(preset='align', seed=s, protocol='base2new', subsample='base', eval_on=(('world', 'new'),),
                         model_changes=changes)
    return runs

def _worker_init(threads):
    torch.set_num_threads(threads)
    warnings.filterwarnings('ignore', message='this CLIP has')

def _one(folder, kw):
    "A run in a worker process: its row (the printing is `one`'s)."
    log = []
    one(folder, log=log, **kw)
    return log[0]

def execute(runs, jobs, threads)->dict:
    """Run every run of `plan` -> {key: row}: in this process one after the other (jobs = 1), or in `jobs` processes of
    `threads` threads each, the longest first (by WEIGHT); a transfer run starts once its 16-shot run has finished."""
    def ready(key):                                # a transfer run starts from its 16-shot training, if planned
        src = ('fewshot', key[1], 16, key[2])
        if key[0] != 'transfer' or src not in runs: return True
        if src not in done: return False
        reuse_training(runs[src][0], runs[key][0])
        return True
    done = {}
    if jobs == 1:
        for key, (folder, kw) in runs.items():
            ready(key)
            done[key] = _one(folder, kw)
        return done
    weight = lambda key: -WEIGHT.get(runs[key][1]['preset'], 1) * (2 if key[0] in ('base2new', 'ablations') else 1)
    waiting, running = sorted(runs, key=weight), {}
    ctx = multiprocessing.get_context('spawn')               # fresh interpreters: no threads inherited from this one
    with concurrent.futures.ProcessPoolExecutor(jobs, ctx, initializer=_worker_init, initargs=(threads,)) as pool:
        try:
            while waiting or running:
                while len(running) < jobs and (key := next((k for k in waiting if ready(k)), None)) is not None:
                    waiting.remove(key)                          # the longest ready run takes a free process
                    running[pool.submit(_one, *runs[key])] = key
                finished, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
                for f in finished: done[running.pop(f)] = f.result()
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    return {key: done[key] for key in runs}                  # in plan order

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default='bench/out/world', help='folder for the runs and the results')
    p.add_argument('--seeds', default='1,2,3')
    p.add_argument('--presets', default=','.join(PRESETS))
    p.add_argument('--parts', default=','.join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    cores = min(2, os.cpu_count() or 1)
    p.add_argument('--jobs', type=int, default=cores, help=f'runs at a time, each in its own process (default {cores})')
    p.add_argument('--threads', type=int, default=None,
                   help='torch threads per run (default: the 2 cores shared by the jobs)')
    a = p.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(',')]
    presets = [x for x in a.presets.split(',') if x]
    parts = [x for x in a.parts.split(',') if x]
    bad = [x for x in presets if x not in PRESETS] + [x for x in parts if x not in PARTS]
    if bad: p.error(f"unknown presets or parts: {bad}")
    if a.jobs < 1 or (a.threads is not None and a.threads < 1): p.error("--jobs and --threads must be at least 1")
    threads = a.threads or max(1, cores // a.jobs)
    _worker_init(threads)
    out, t0, md = Path(a.out), time.time(), []
    md.append(f"# The paper's tables in miniature (`bench/world.py`)\n\nworld-vit ('world' weights), seeds {a.seeds}, "
              f"torch {torch.__version__}, {a.jobs} run{'s' if a.jobs > 1 else ''} at a time on {threads} thread"
              f"{'s' if threads > 1 else ''} each. Mean ± std over seeds; accuracies in %.\n")
    runs = plan(parts, presets, seeds, out)
    print(f"{len(runs)} runs, {a.jobs} at a time, {threads} thread{'s' if threads > 1 else ''} each", flush=True)
    done = execute(runs, a.jobs, threads)
    test = lambda key: done[key]['test']
    if 'base2new' in parts:
        rows = []
        for pr in presets:
            b = [test(('base2new', pr, s))['world/base'] for s in seeds]
            n = [test(('base2new', pr, s))['world/new'] for s in seeds]
            t = sum(done['base2new', pr, s]['time'] for s in seeds)
            rows.append((pr, b, n, [hmean(x, y) for x, y in zip(b, n)], t))
        rows.sort(key=lambda r: -statistics.mean(r[3]))
        md.append("## Base to new (Table 1 in miniature)\n\n24 base classes (16 shots) to 24 new ones; ranked by H.\n\n"
                  "| rank | method | Base | New | H | time (s, all seeds) |\n|---|---|---|---|---|---|")
        md += [f"| {i + 1} | {NAMES[pr]} | {ms(b)} | {ms(n)} | {ms(h)} | {t:.0f} |"
               for i, (pr, b, n, h, t) in enumerate(rows)]
        md.append('')
    if 'fewshot' in parts:
        rows = [(pr, {k: [test(('fewshot', pr, k, s))['world/all'] for s in seeds] for k in SHOTS}) for pr in presets]
        md += ranked("Few-shot (Fig. 3 in miniature)", "All 48 classes; ranked by the mean over shot counts.", rows,
                     {k: f'{k} shot{"s" if k > 1 else ""}' for k in SHOTS}, list(SHOTS), 'mean')
    if 'transfer' in parts:
        targets = (*WORLD_XD_TARGETS, *WORLD_DG_TARGETS)
        rows = [(pr, {k: [test(('transfer', pr, s))[f'{k}/all'] for s in seeds] for k in ('world', *targets)})
                for pr in presets]
        for title, names, what in (
                ("Cross-dataset transfer (Table 2 in miniature)", WORLD_XD_TARGETS, 'the five other world sets'),
                ("Domain generalisation (Table 3 in miniature)", WORLD_DG_TARGETS, "world's four shifted domains")):
            md += ranked(title, f"Trained on all of `world` (16 shots), tested on {what}; ranked by the targets' mean.",
                         rows, {'world': 'world (source)', **{t: t.replace('world_', '') for t in names}}, list(names),
                         'mean (targets)')
    if 'ablations' in parts:
        rows = []
        for name in ('ALIGN (paper), beta = 1', *ABLATIONS):
            keys = [('base2new', 'align', s) if name not in ABLATIONS else ('ablations', name, s) for s in seeds]
            b, n = [test(k)['world/base'] for k in keys], [test(k)['world/new'] for k in keys]
            rows.append((name, b, n, [hmean(x, y) for x, y in zip(b, n)]))
        md.append("## Ablations of ALIGN (base to new)\n\n| ALIGN | Base | New | H |\n|---|---|---|---|")
        md += [f"| {name} | {ms(b)} | {ms(n)} | {ms(h)} |" for name, b, n, h in rows]
        md.append('')
    total, log = time.time() - t0, list(done.values())
    computed = sum(r['wall_now'] for r in log if not r.get('read_back'))
    md.append(f"Wall time of this invocation: {total / 60:.1f} min ({len(log)} runs, {a.jobs} at a time; runs' own "
              f"recorded times sum to {sum(r['time'] for r in log) / 60:.1f} min; computed now: "
              f"{computed / 60:.1f} min of run time).\n")
    out.mkdir(parents=True, exist_ok=True)
    everything = (a.seeds, a.presets, a.parts) == ('1,2,3', ','.join(PRESETS), ','.join(PARTS))
    tag = '' if everything else '-partial-' + str(os.getpid())
    (out / f'RESULTS{tag}.md').write_text('\n'.join(md))
    (out / f'results{tag}.json').write_text(json.dumps(dict(seeds=seeds, presets=presets, parts=parts, jobs=a.jobs,
                                                            threads=threads, wall_time=total, runs=log), indent=1))
    print('\n'.join(md))

if __name__ == '__main__': main()
