"""mtbench: train and compare multi-task RL agents on Meta-World MT10/MT50.

The Python API in a few lines (see README.md):

```python
from mtbench import GridRequest, build_report, run_grid

result = run_grid(GridRequest(agents=("mt_sac",), suite="mt10", seeds=(0, 1), preset="quick"))
build_report(result.paths, "reports/mine")
```
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "GridRequest": "mtbench.grids.grid",
    "RunOptions": "mtbench.run.runner",
    "Grid": "mtbench.grids.grid",
    "GridResult": "mtbench.grids.grid",
    "run_grid": "mtbench.grids.grid",
    "LocalPool": "mtbench.grids.executors",
    "RayCluster": "mtbench.grids.executors",
    "build_report": "mtbench.report",
}
__all__ = [*_API, "__version__"]


def __getattr__(name: str) -> Any:
    """The API names, imported on first use (``import mtbench`` and the CLI's help stay light)."""
    if name not in _API:
        raise AttributeError(f"module 'mtbench' has no attribute {name!r}")
    return getattr(importlib.import_module(_API[name]), name)
