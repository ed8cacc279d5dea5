"""initlab for Keras 3: native initializers and ``init`` for built models.

Importing this module imports Keras (any backend; the tests use ``KERAS_BACKEND=torch``).

* :func:`get` returns a ``keras.initializers.Initializer`` for any Keras initializer name
  (with Keras's exact semantics: ``"he_normal"`` is Keras's truncated He normal) or any
  initlab scheme; it draws from initlab's stream and serializes with ``get_config`` /
  ``from_config`` (and in saved models).
* :func:`init` initializes a built Keras model layer by layer from the activation each
  layer's output reaches (He before ReLU, Xavier before tanh, ...) and returns a
  :class:`KerasInitReport`.
"""

from initlab.keras.initializer import Initializer, get
from initlab.keras.model import init
from initlab.keras.report import KerasInitReport, KerasRow

__all__ = ["Initializer", "KerasInitReport", "KerasRow", "get", "init"]
