"""No framework is imported unless its adapter is: the core, the NumPy initializers and the
Keras/JAX spellings import neither Keras, JAX nor torch."""

import subprocess
import sys

from conftest import SRC


def test_core_and_numpy_import_no_framework():
    code = (
        "import sys, initlab, initlab.numpy\n"
        "initlab.get_scheme('HeNormal'); initlab.get_scheme('jax.orthogonal(column_axis=0)')\n"
        "initlab.numpy.initialize('keras.orthogonal', (3, 3, 4, 8), layout='keras')\n"
        "print(sorted(m for m in ('keras', 'jax', 'torch', 'tensorflow', 'flax')"
        " if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(SRC)}, check=True)  # fmt: skip
    assert out.stdout.strip() == "[]"
