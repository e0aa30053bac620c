"""Many processes (one per host, or several on one machine) with JAX's own runtime.

``jax.distributed.initialize`` connects the processes; every process then sees the global
device list, the training mesh spans all of them, each process feeds only its own block of
every global batch, and only process 0 writes logs and console output. On CPU the
collectives run over gloo.

Launch (same command on every process; on SLURM / Open MPI / Kubernetes / TPU the three
values are detected from the environment and may be left out):

    python train.py --config ... --coordinator_address=HOST:PORT --num_processes=N --process_id=I
"""
from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

_CLUSTER_ENV = ("SLURM_JOB_ID", "OMPI_COMM_WORLD_SIZE", "TPU_WORKER_HOSTNAMES",
                "JOBSET_NAME")


def define_flags() -> None:
    """The multi-process flags every command shares (absl): ``--coordinator_address``,
    ``--num_processes``, ``--process_id``; :func:`initialize_from_flags` reads them."""
    from absl import flags
    flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0 (multi-process)")
    flags.DEFINE_integer("num_processes", None, "number of processes in the job")
    flags.DEFINE_integer("process_id", None, "this process's index, 0..N-1")


def initialize_from_flags() -> None:
    from absl import flags
    f = flags.FLAGS
    initialize(f.coordinator_address, f.num_processes, f.process_id)


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
    """Joins the job when one is described (flags or a cluster environment); else a no-op."""
    explicit = num_processes is not None and num_processes > 1
    detected = any(k in os.environ for k in _CLUSTER_ENV) and num_processes is None
    if not (explicit or detected):
        return
    if jax.config.jax_platforms in (None, "", "cpu") or os.environ.get("JAX_PLATFORMS") == "cpu":
        # CPU collectives across processes need gloo (the default has none)
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kwargs = {}
    if explicit:
        kwargs = dict(coordinator_address=coordinator_address, num_processes=num_processes,
                      process_id=process_id)
    jax.distributed.initialize(**kwargs)


def is_main() -> bool:
    return jax.process_index() == 0


def data_mesh() -> Mesh:
    """A 1-D mesh ('data') over every device of every process."""
    return Mesh(np.array(jax.devices()), ("data",))


def replicate(tree, mesh: Mesh):
    """The same host value on every device of every process."""
    return jax.device_put(tree, NamedSharding(mesh, P()))


def global_batch(local: dict, mesh: Mesh) -> dict:
    """The global batch from this process's block (leading axis split over 'data')."""
    sharding = NamedSharding(mesh, P("data"))
    return jax.tree.map(lambda a: jax.make_array_from_process_local_data(sharding, a), local)


def to_host(tree):
    """NumPy values of replicated arrays (the local copy where not fully addressable)."""
    def get(a):
        if isinstance(a, jax.Array) and not a.is_fully_addressable:
            return np.asarray(a.addressable_data(0))
        return np.asarray(a)
    return jax.tree.map(get, tree)


def barrier(name: str) -> None:
    """Waits for every process (no-op for one)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(name)
