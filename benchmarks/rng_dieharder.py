"""Battery tests of initlab's streams with dieharder (``apt-get install dieharder``).

dieharder reads 32-bit words from stdin (``-g 200``). Three sources, each a stream drawn the
way initializers draw it:

* ``philox``: the raw Philox4x32-10 words, blocks in counter order (the hash itself);
* ``uniform``: single-precision uniforms (24-bit values, the tile layout with its low-byte
  row), their top 16 bits, two per word;
* ``normal``: single-precision Box-Muller normals mapped back through the normal CDF
  (``u = Phi(z)`` must be i.i.d. uniform), top 16 bits, two per word: tests the whole normal
  pipeline, pairs, rows and tiles included.

Each runs the selected dieharder tests (default: birthdays, operm5, 32x32 and 6x8 ranks,
bitstream, count-the-1s, the three STS tests, and rgb_lagged_sum); a report prints dieharder's
own PASSED/WEAK/FAILED lines and a rich summary. This is a quality measurement, not a timed
test: a full run reads about 1e10 bytes and takes tens of minutes on one core.

    PYTHONPATH=src python benchmarks/rng_dieharder.py [--source philox,uniform,normal]
        [--tests 0,1,2,3,4,8,100,101,102,209] [--resolve]

``--resolve`` is dieharder's ``-Y 1``: a WEAK result (p < 0.005 or p > 0.995, expected in
about 1% of results by chance) is re-run with more samples until it passes or fails.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy import special

from initlab import fastrng

CHUNK = 1 << 22  # values per block written to dieharder


def _words(source: str, start: int) -> np.ndarray:
    """32-bit words [chunk k] of a source, the k-th chunk starting at value ``start``."""
    if source == "philox":
        counters = np.zeros((CHUNK // 4, 4), dtype=np.uint32)
        blocks = np.arange(start // 4, start // 4 + CHUNK // 4, dtype=np.uint64)
        counters[:, 0] = blocks & 0xFFFFFFFF
        counters[:, 1] = blocks >> 32
        return fastrng.philox4x32(counters, 0x5EED).reshape(-1)
    values = np.empty(CHUNK, np.float32)
    fastrng.fill(values, source, 0x5EED, offset=start)
    u = values.astype(np.float64)
    if source == "normal":
        u = special.ndtr(u)
    top16 = np.minimum(np.floor(u * 65536.0), 65535).astype(np.uint32)
    return (top16[0::2] << 16) | top16[1::2]


def _feed(source: str, pipe) -> None:
    start = 0
    try:
        while True:
            pipe.write(_words(source, start).astype("<u4").tobytes())
            start += CHUNK
    except (BrokenPipeError, OSError):
        return


def run(source: str, test: int, resolve: bool = False) -> list[str]:
    command = ["dieharder", "-g", "200", "-d", str(test)] + (["-Y", "1"] if resolve else [])
    proc = subprocess.Popen(
        command,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=False,
    )  # fmt: skip
    feeder = threading.Thread(target=_feed, args=(source, proc.stdin), daemon=True)
    feeder.start()
    out = proc.stdout.read()  # not communicate(): it would close the feeder's stdin
    proc.wait()
    lines = out.decode(errors="replace").splitlines()
    return [line for line in lines if any(v in line for v in ("PASSED", "WEAK", "FAILED"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="philox,uniform,normal")
    parser.add_argument("--tests", default="0,1,2,3,4,8,100,101,102,209")
    parser.add_argument("--resolve", action="store_true",
                        help="dieharder -Y 1: re-run WEAK results with more samples")  # fmt: skip
    args = parser.parse_args(argv)
    console = Console(width=max(110, Console().width))
    if shutil.which("dieharder") is None:
        console.print("dieharder is not installed (apt-get install dieharder).")
        return 1
    summary = Table(title="dieharder on initlab streams", title_justify="left")
    for col in ("source", "test", "p-value", "assessment"):
        summary.add_column(col)
    for source in args.source.split(","):
        for test in (int(t) for t in args.tests.split(",")):
            for line in run(source, test, args.resolve):
                console.print(f"[dim]{source}[/dim] {line}")
                fields = [f.strip() for f in line.split("|")]
                summary.add_row(source, f"{fields[0]} (ntup {fields[1]})", fields[4], fields[5])
    console.print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
