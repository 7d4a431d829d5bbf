"""How many cores' worth of titles does this machine give? The same German reviews titled by the shipped llama.cpp
generator three ways, each in a fresh process holding only the generator:

    python scripts/cores_check.py [--n 16]

1. one generator on all usable cores, the reviews one after another (what one review alone gets);
2. one generator on one thread, the same reviews one after another;
3. as many one-thread generators as there are cores, in parallel processes, each on its share of the reviews,
   started together (the most a class could get from these cores if nothing were shared at all).

Prints the three wall times, what all cores buy over one thread (time 2 over time 1), what the parallel processes
buy over one generator on all cores (time 1 over time 3), and whether every title is the same all three ways (thread counts and processes
must not change a title). Why it matters: a class's comparisons per second are bounded by this machine's titles per
second, however the reviews are grouped (README, "Under a classroom")."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def worker(threads: int, lo: int, hi: int, out: str, go: str | None) -> None:
    """Title reviews lo..hi-1 on `threads` threads (after one warm-up title); write the wall time and titles."""
    from core.data import DATA_DIR, load_lab_corpus
    from core.names import MAIN_MODELS
    from core.titles.llama_engine import LlamaTitles

    reviews = [r.body for r in load_lab_corpus(DATA_DIR / "reviews_de.jsonl", "lab_de")]
    models = ROOT / "assets" / "models"
    gen = LlamaTitles({n: models / n for n in MAIN_MODELS}, threads=threads)
    gen.titles(reviews[-1])
    Path(out + ".ready").touch()
    while go and not Path(go).exists():  # start together with the other processes
        time.sleep(0.005)
    t = time.perf_counter()
    titles = [gen.titles(x) for x in reviews[lo:hi]]
    Path(out).write_text(json.dumps({"wall": time.perf_counter() - t, "titles": titles}))
    gen.close()


def run(jobs: list[tuple[int, int, int]], tmp: Path, name: str) -> tuple[float, list]:
    """Start one process per (threads, lo, hi), release them together once all are loaded; (wall, titles)."""
    go = tmp / f"{name}.go"
    outs = [str(tmp / f"{name}{i}.json") for i in range(len(jobs))]
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(t), str(lo), str(hi), out, str(go)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for (t, lo, hi), out in zip(jobs, outs)]
    while not all(Path(o + ".ready").exists() for o in outs):
        if any(p.poll() not in (None, 0) for p in procs):
            sys.exit(f"a {name} process failed")
        time.sleep(0.05)
    go.touch()
    for p in procs:
        if p.wait() != 0:
            sys.exit(f"a {name} process failed")
    done = [json.loads(Path(o).read_text()) for o in outs]
    return max(d["wall"] for d in done), [t for d in done for t in d["titles"]]


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        t, lo, hi, out, go = sys.argv[2:7]
        return worker(int(t), int(lo), int(hi), out, go)
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=16, help="German lab reviews")
    a = ap.parse_args()
    from core.cpu_threads import usable_cores

    cores = usable_cores()
    share = -(-a.n // cores)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        all_cores, titles = run([(cores, 0, a.n)], tmp, "all")
        one, titles1 = run([(1, 0, a.n)], tmp, "one")
        apart, titles2 = run([(1, i * share, min(a.n, (i + 1) * share)) for i in range(cores)], tmp, "apart")
    print(f"{a.n} German reviews, both models' titles, {cores} usable cores")
    rows = [(f"one generator, {cores} threads", f"{all_cores:.2f} s"),
            ("one generator, 1 thread", f"{one:.2f} s ({cores} threads buy x{one / all_cores:.2f})"),
            (f"{cores} generators, 1 thread each, at once",
             f"{apart:.2f} s (x{all_cores / apart:.2f} over one generator on {cores} threads)")]
    for what, figure in rows:
        print(f"{what + ':':42s}{figure}")
    same = titles == titles1 == titles2
    print("titles identical all three ways:", same)
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
