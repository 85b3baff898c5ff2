"""Scale-out on Ray Serve: N replicas, each holding its own pipeline(s), behind Ray's HTTP proxy.

Every replica runs the same FastAPI app as ``python -m ov_spec.serve`` (same routes, errors, limits,
metrics per replica) over its own :class:`~ov_spec.serve.app.Service`. Ray Serve does the routing,
health checks and restarts: a replica whose process dies is replaced, and requests go to the
others meanwhile. Three ways to start it:

    python -m ov_spec.serve PIPELINE --ray --replicas 2                       # a local Ray instance
    python -m ov_spec.serve PIPELINE --ray --replicas 4 --ray-address auto    # a running cluster
    serve run ov_spec.serve.ray:app_builder pipeline=PIPELINE replicas=2      # Ray's own CLI

On a cluster the pipeline folder (and any ``--devices`` file) must exist at the same path on every
node that runs a replica. A replica is routed traffic only once its constructor returns, that is
once its pipelines are compiled.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ray import serve

from ov_spec.errors import UserError
from ov_spec.serve.app import ServeConfig, Service, create_app

log = logging.getLogger("ov_spec.serve")
APP_NAME = "ov_spec"


@serve.deployment(name="ov_spec")
@serve.ingress()  # the app is built per replica, around that replica's Service
class OVSpecReplica:
    """One Ray Serve replica: a Service (pipelines + fair queue) and the OpenAI routes over it."""

    def __init__(self, config: ServeConfig) -> None:
        logging.basicConfig(level=logging.INFO)
        self.service = Service(config)
        self.service.start()
        self.service.pool.wait_ready()  # raise here (Ray reports it) rather than serve half-loaded

    def __serve_build_asgi_app__(self) -> Any:
        return create_app(self.service)

    def check_health(self) -> None:
        """Ray Serve's periodic health check: every worker thread must still be alive."""
        pool = self.service.pool
        if not pool.ready or not all(w.thread.is_alive() for w in pool.workers):
            raise RuntimeError("an ov_spec worker is not running")


def build_application(config: ServeConfig, replicas: int = 2, cpus_per_replica: float = 1.0) -> Any:
    """The Ray Serve application: ``replicas`` copies of :class:`OVSpecReplica`."""
    # Ray holds the backlog and spreads it over replicas; each replica takes what its workers
    # and its own queue can hold, so its 429 answers only when every replica is full.
    ongoing = config.workers + max(config.max_queue, 1)
    return OVSpecReplica.options(
        num_replicas=replicas,
        max_ongoing_requests=ongoing,
        ray_actor_options={"num_cpus": cpus_per_replica},
    ).bind(config)


def app_builder(args: dict[str, str]) -> Any:
    """For ``serve run ov_spec.serve.ray:app_builder pipeline=DIR [replicas=2] [workers=1] ...``."""
    known = {
        "pipeline",
        "replicas",
        "workers",
        "devices",
        "max_queue",
        "timeout",
        "api_key",
        "model_name",
        "cpus",
    }
    unknown = set(args) - known
    if unknown or "pipeline" not in args:
        raise UserError(f"app_builder takes pipeline=DIR and optionally {sorted(known - {'pipeline'})}")
    config = ServeConfig(
        folder=Path(args["pipeline"]).absolute(),
        devices=args.get("devices"),
        workers=int(args.get("workers", 1)),
        max_queue=int(args.get("max_queue", ServeConfig.max_queue)),
        timeout_s=float(args.get("timeout", ServeConfig.timeout_s)),
        api_key=args.get("api_key"),
        model_name=args.get("model_name"),
    )
    return build_application(config, int(args.get("replicas", 2)), float(args.get("cpus", 1.0)))


def serve_on_ray(
    config: ServeConfig, replicas: int, cpus_per_replica: float, host: str, port: int, address: str | None
) -> int:
    """Start (or join) Ray, run the application behind Ray Serve's proxy on host:port, block until Ctrl-C."""
    import ray

    from ov_spec.manifest import Manifest
    from ov_spec.serve.__main__ import bind

    Manifest.read(config.folder)  # not a pipeline: one line here, not a stack trace per replica
    # Replicas may start elsewhere: give them absolute paths.
    config = replace(
        config,
        folder=Path(config.folder).absolute(),
        devices=str(Path(config.devices).absolute()) if config.devices else None,
        model_name=config.model_name or Path(config.folder).resolve().name,
    )
    if address is None:
        bind(host, port).close()  # a local proxy cannot take a port that is in use
    ray.init(address=address, log_to_driver=False)
    try:
        serve.start(http_options={"host": host, "port": port})
        serve.run(build_application(config, replicas, cpus_per_replica), name=APP_NAME, route_prefix="/")
        log.info(
            "serving %r on http://%s:%d via Ray Serve, %d replicas; Ctrl-C stops",
            config.model_name,
            host,
            port,
            replicas,
        )
        while True:
            time.sleep(1)
    finally:
        serve.shutdown()
        ray.shutdown()
