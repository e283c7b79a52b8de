#!/usr/bin/env python
"""Execute every notebook as JupyterLab would: in a Jupyter kernel, through `jupyter nbconvert --execute`, skipping
the cells flagged `slow`, `cuda` or `download` (tagged `skip-execution` in a temporary copy), and fail a notebook
that errors or takes more than LIMIT seconds. Run from the repository root; prints one line per notebook, then the
names of the failed ones on a line starting with 'FAILED:' (nothing when all pass). Tracked files are not touched.

A notebook also fails when a cell prints a warning that is not on the allowlist `.ci/allowed_warnings.txt` (one
regular expression per line, each with a comment saying which lesson it belongs to): what a reader sees in
JupyterLab must be about the lesson."""
import json, re, subprocess, sys, tempfile, time
from pathlib import Path

LIMIT = 180                                                   # seconds per notebook on 2 CPU cores
FLAG = re.compile(r'^#\|\s*(download|slow|cuda)\b', re.M)
WARNING = re.compile(r'(Warning|warn|WARNING)\b')
ALLOWED = [re.compile(l.split('  #')[0].strip()) for l in (Path(__file__).parent / 'allowed_warnings.txt').read_text().splitlines()
           if l.strip() and not l.startswith('#')]

def unexpected_warnings(executed:Path)->list:
    "Lines of the executed notebook's stderr (and warning-looking lines anywhere) that no allowlist entry matches."
    found = []
    for c in json.loads(executed.read_text())['cells']:
        for o in c.get('outputs', []):
            if o.get('output_type') != 'stream': continue
            text = ''.join(o.get('text', ''))
            lines = text.splitlines() if o.get('name') == 'stderr' else [l for l in text.splitlines() if WARNING.search(l)]
            found += [l for l in lines if l.strip() and not any(a.search(l) for a in ALLOWED)]
    return found

def tagged_copy(nb:Path)->Path:
    "A copy of `nb` beside it (so it runs from nbs/), flagged cells tagged skip-execution; nbdev ignores '_' names."
    d = json.loads(nb.read_text())
    for c in d['cells']:
        if c['cell_type'] == 'code' and FLAG.search(''.join(c['source'])):
            c.setdefault('metadata', {}).setdefault('tags', []).append('skip-execution')
    copy = nb.with_name(f'_ci_{nb.name}')
    copy.write_text(json.dumps(d))
    return copy

def main():
    failed, out = [], Path(tempfile.mkdtemp())
    for nb in sorted(p for p in Path('nbs').glob('*.ipynb') if not p.name.startswith('_')):
        copy = tagged_copy(nb)
        t0 = time.time()
        try:
            r = subprocess.run(['jupyter', 'nbconvert', '--to', 'notebook', '--execute', '--output-dir', str(out),
                                f'--ExecutePreprocessor.timeout={LIMIT}', str(copy)], capture_output=True, text=True, timeout=LIMIT + 60)
            ok, why = r.returncode == 0, r.stderr.strip().splitlines()[-1:] if r.returncode else []
            if ok and (bad := unexpected_warnings(out / copy.name)):
                ok, why = False, [f'{len(bad)} unexpected warning line(s), first: {bad[0][:200]!r}']
        except subprocess.TimeoutExpired: ok, why = False, ['timed out']
        finally: copy.unlink()
        secs = time.time() - t0
        if ok and secs > LIMIT: ok, why = False, [f'took {secs:.0f} s, over the {LIMIT} s limit']
        print(f"{'ok  ' if ok else 'FAIL'} {nb.name}: {secs:.0f} s {' '.join(why)}", flush=True)
        if not ok: failed.append(nb.name)
    if failed: print('FAILED: ' + ' '.join(failed))

if __name__ == '__main__': main()
