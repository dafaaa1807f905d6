"""Routing of policies whose network routes between modules: per-task heatmaps and a t-SNE, drawn
from the ``routing.npz`` that such a run writes into its run directory (`mtbench.run.routing`).

The report reads that file only: it loads no model, agent or environment. A run from before runs
wrote it gets it from ``mtbench routing RUN_DIR``; an unreadable one is listed among what the report
left out.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass

import numpy as np
from sklearn.manifold import TSNE

from mtbench.report.data import Collection, Run
from mtbench.run.rundir import RunDir


@dataclass(frozen=True)
class Routing:
    """Routing vectors of one run: ``vectors [N, D]`` for samples of ``task_ids [N]``."""

    run: Run
    vectors: np.ndarray
    task_ids: np.ndarray
    columns: list[str]

    def per_task(self, num_tasks: int) -> np.ndarray:
        """``[T, D]`` mean routing vector of each task."""
        return np.stack([self.vectors[self.task_ids == t].mean(axis=0) for t in range(num_tasks)])

    @property
    def collapsed(self) -> bool:
        """Every vector is the same: the routing took one path on every observation.

        t-SNE has nothing to embed then (scikit-learn's crashes the process on such input).
        """
        return bool((np.ptp(self.vectors, axis=0) == 0).all())

    @property
    def perplexity(self) -> float:
        """The t-SNE's perplexity: scikit-learn's default 30, below the number of vectors."""
        return float(min(30, len(self.vectors) - 1))

    def tsne(self, seed: int) -> np.ndarray:
        """``[N, 2]`` t-SNE embedding of the routing vectors (not `collapsed`)."""
        return TSNE(2, perplexity=self.perplexity, init="pca", random_state=seed).fit_transform(self.vectors)


def _read(run: Run, num_tasks: int) -> Routing:
    with np.load(RunDir(run.path).routing_file, allow_pickle=False) as arrays:
        vectors, task_ids, columns = arrays["vectors"], arrays["task_ids"], arrays["columns"]
    if vectors.ndim != 2 or vectors.shape != (len(task_ids), len(columns)) or not np.isfinite(vectors).all():
        raise ValueError(f"arrays of shapes {vectors.shape}, {task_ids.shape} and {columns.shape} do not fit")
    if not set(np.unique(task_ids)) <= set(range(num_tasks)):
        raise ValueError(f"task ids outside 0-{num_tasks - 1}")
    return Routing(run, vectors, task_ids, [str(c) for c in columns])


def collect_routing(collection: Collection) -> list[Routing]:
    """The routing of every run that wrote one."""
    routings = []
    for run in collection.runs:
        if not RunDir(run.path).routing_file.exists():
            continue
        try:
            routings.append(_read(run, len(collection.tasks)))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            collection.left_out.append(
                f"{RunDir(run.path).routing_file} is unreadable ({exc}); its routing is not shown "
                f"(mtbench routing {run.path} writes it again)"
            )
    return routings
