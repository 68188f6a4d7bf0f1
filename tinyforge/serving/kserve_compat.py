"""Import ``kserve`` without letting it read this process's command line.

``kserve.model_server`` parses ``sys.argv`` with its own argparse parser at import time
(kserve 0.21: ``args, _ = parser.parse_known_args()``) and uses the result as defaults, so a
``tinyforge serve ... --http-port`` or a builder service flag could be taken for one of its
options, or make it exit on a value it cannot parse. Importing with a bare ``argv`` keeps the
defaults predictable; every setting we need is passed explicitly.
"""

from __future__ import annotations

import sys
from types import ModuleType


def import_kserve() -> ModuleType:
    """``import kserve`` with ``sys.argv`` reduced to the program name during the import."""
    if "kserve" in sys.modules:
        return sys.modules["kserve"]
    saved = sys.argv
    sys.argv = saved[:1] or ["tinyforge"]
    try:
        import kserve
    finally:
        sys.argv = saved
    return kserve
