"""The one device mesh of the project: a 1-D axis "data" (batches split, the rest replicated).

Stage 1 (the frozen encoders) runs on the local devices of each process, training on all
devices of the job; both build their mesh here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P


def make_mesh(devices: Sequence[Any] | None = None) -> Mesh:
    """A 1-D mesh ("data",) over `devices` (default: every device of the job).

    Auto axis types: the default explicit axes reject plain gathers on sharded ids.
    """
    devices = list(devices) if devices is not None else jax.devices()
    return jax.make_mesh(
        (len(devices),), ("data",), axis_types=(jax.sharding.AxisType.Auto,), devices=devices
    )


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding of parameters, state, teacher and scalars: a full copy on every device."""
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Sharding of batch arrays: the leading (batch) axis split over "data"."""
    return NamedSharding(mesh, P("data"))
