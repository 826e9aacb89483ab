"""One local Ray cluster for the scale tests, limited to 2 CPUs and no GPU."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="package")
def ray_cluster(tmp_path_factory):
    """``ray`` connected to a local cluster of 2 CPUs (started once, shut down after the last test here)."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    if not ray.is_initialized():
        ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
