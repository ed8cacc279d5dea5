"""Thread safety: torch.fx's tracer patches ``nn.Module`` process-wide while it traces.

10 fresh processes, each: one single-thread reference run, then 3 threads x 30
``initlab.init`` calls on models that fx traces (attribute access in forward,
MultiheadAttention, LSTM) and one that it cannot (a recorded forward pass on example inputs,
which must never run while another thread's trace patches ``nn.Module``). Every call must
succeed with the same bits as the reference, and ``nn.Module`` must be untouched afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from conftest import SRC

WORKER = r"""
import hashlib, sys, threading
import torch
import torch.nn.functional as F
from torch import nn
import initlab

ORIGINAL = {k: nn.Module.__dict__[k] for k in ("__call__", "__getattr__")}


class Attr(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 16), nn.Linear(16, 4)
        self.scale = 0.5

    def forward(self, x):
        h = F.gelu(self.fc1(x)) * self.scale
        return self.fc2(h.view(-1, self.fc1.out_features))


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)
        self.fc = nn.Linear(16, 16)

    def forward(self, x):
        x = x + self.attn(x, x, x, need_weights=False)[0]
        return torch.tanh(self.fc(x))


class Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm, self.head = nn.LSTM(8, 8, batch_first=True), nn.Linear(8, 2)

    def forward(self, x):
        return self.head(torch.relu(self.lstm(x)[0]))


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x):
        h = self.fc1(x)
        if h.sum() > -1e9:  # data-dependent: fx cannot trace it
            h = F.silu(h)
        return self.fc2(h)


CASES = [(Attr, None), (Attention, None), (Recurrent, None), (Untraceable, torch.ones(2, 8))]


def digest(i):
    build, inputs = CASES[i % len(CASES)]
    model = build()
    initlab.init(model, seed=i, example_inputs=inputs, measure=False)
    h = hashlib.sha256()
    for t in model.state_dict().values():
        h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


reference = [digest(i) for i in range(30)]
errors, mismatches = [], []


def worker(k):
    for j in range(30):
        i = (j + 7 * k) % 30
        try:
            if digest(i) != reference[i]:
                mismatches.append(i)
        except BaseException as error:
            errors.append(f"{type(error).__name__}: {error}")


threads = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
patched = [k for k, v in ORIGINAL.items() if nn.Module.__dict__[k] is not v]
nn.Linear(2, 2)(torch.ones(1, 2))
print("errors", len(errors), errors[:2], "mismatches", mismatches, "patched", patched)
sys.exit(1 if errors or mismatches or patched else 0)
"""


def _run(_: int) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.run(
        [sys.executable, "-c", WORKER], capture_output=True, text=True, timeout=300, env=env
    )


def test_concurrent_init_calls_in_ten_fresh_processes():
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(_run, range(10)))
    for result in results:
        assert result.returncode == 0, result.stdout + result.stderr[-3000:]
