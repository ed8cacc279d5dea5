"""numba's cache in a user folder (overridable), and a word on stderr while compiling."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import SRC
from initlab.fastrng import _cache


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("INITLAB_CACHE_DIR", str(tmp_path / "mine"))
    assert _cache.cache_dir() == tmp_path / "mine" / "numba"
    monkeypatch.delenv("INITLAB_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _cache.cache_dir() == tmp_path / "xdg" / "initlab" / "numba"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert _cache.cache_dir() == Path.home() / ".cache" / "initlab" / "numba"


def test_kernels_are_cached_in_the_user_folder_not_the_package(tmp_path):
    """A fresh process compiles one kernel: its cache files land under INITLAB_CACHE_DIR."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "INITLAB_CACHE_DIR": str(tmp_path)}
    env.pop("NUMBA_CACHE_DIR", None)
    code = (
        "import numpy as np; from initlab.fastrng import philox4x32; "
        "print(philox4x32(np.zeros((1, 4), dtype=np.uint32), 0)[0, 0])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(0x6627E8D5)
    files = list((tmp_path / "numba").rglob("*philox_blocks*"))
    assert any(f.suffix == ".nbi" for f in files) and any(f.suffix == ".nbc" for f in files)


def test_locator_registered_after_numba_cache_dir_and_before_in_tree():
    from numba.core import caching

    names = [c.__name__ for c in caching.CacheImpl._locator_classes]
    assert names.index("UserProvidedCacheLocator") < names.index("InitlabCacheLocator")
    assert names.index("InitlabCacheLocator") < names.index("InTreeCacheLocator")


def test_a_slow_first_call_prints_one_line_on_stderr(monkeypatch, capsys):
    monkeypatch.setattr(_cache, "NOTICE_AFTER_S", 0.05)
    calls = []

    def slow_fill(out, distribution, *args, **kwargs):
        calls.append(distribution)
        time.sleep(0.3 if len(calls) == 1 else 0.0)
        return out

    fill = _cache.notice_while_compiling(slow_fill)
    fill([0.0], "normal")
    fill([0.0], "normal")  # the same kind again: no timer, no line
    err = capsys.readouterr().err
    assert err.count("initlab: compiling the normal kernels") == 1
    fill([0.0], "uniform")  # fast: nothing printed
    assert capsys.readouterr().err == ""
