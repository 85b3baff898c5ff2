"""``python -m ov_spec.serve PIPELINE``: serve a pipeline over the OpenAI HTTP API.

Checks everything it can before serving, each failure one line and exit code 2: the folder is a
pipeline, every device is present, the workers fit in memory, the port is free. Then the port is
bound, the pipelines load in their worker threads (``GET /health`` answers 503 until all are
compiled) and uvicorn serves. ``--ray`` runs the same routes as a Ray Serve application instead.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import socket
import sys
from pathlib import Path

from ov_spec.cli import add_placement_arguments, run_cli
from ov_spec.errors import UserError
from ov_spec.serve.app import (
    API_KEY_ENV,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_QUEUE,
    DEFAULT_TIMEOUT_S,
    ServeConfig,
)

log = logging.getLogger("ov_spec.serve")
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ov_spec.serve", description=__doc__.splitlines()[0])
    p.add_argument("folder", type=Path, help="pipeline folder written by `python -m ov_spec.export`")
    add_placement_arguments(p)
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="pipelines loaded, one request each at a time")
    p.add_argument(
        "--max-queue", type=int, default=DEFAULT_MAX_QUEUE, help="requests that may wait; more get HTTP 429"
    )
    p.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per request, queue wait included"
    )
    p.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV),
        help=f"require `Authorization: Bearer KEY` (default: ${API_KEY_ENV}; none = no auth)",
    )
    p.add_argument("--model-name", help="the model id clients use (default: the folder's name)")
    p.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    ray = p.add_argument_group("Ray Serve (scale-out)")
    ray.add_argument("--ray", action="store_true", help="run as a Ray Serve application instead of uvicorn")
    ray.add_argument("--replicas", type=int, default=2, help="Ray Serve replicas, one pipeline each")
    ray.add_argument(
        "--ray-address", help="an existing cluster (`ray start --head` prints it); default: local"
    )
    ray.add_argument("--cpus-per-replica", type=float, default=1.0, help="Ray CPUs reserved per replica")
    return p


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    """Check the numbers and build the config (one line per mistake)."""
    for name in ("workers", "replicas"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.max_queue < 0:
        raise UserError(f"--max-queue must be 0 or more, got {args.max_queue}")
    if args.timeout <= 0:
        raise UserError(f"--timeout must be more than 0 seconds, got {args.timeout}")
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be in 0..65535, got {args.port}")
    if args.max_body_bytes < 1024:
        raise UserError(f"--max-body-bytes must be at least 1024, got {args.max_body_bytes}")
    return ServeConfig(
        folder=args.folder,
        devices=args.devices,
        device_overrides=args.device,
        property_overrides=args.property,
        rollback=args.rollback,
        separate_decode=False if args.one_graph else None,
        workers=args.workers,
        max_queue=args.max_queue,
        timeout_s=args.timeout,
        api_key=args.api_key or None,
        model_name=args.model_name,
        max_body_bytes=args.max_body_bytes,
    )


def preflight(config: ServeConfig) -> int:
    """Fail fast before loading: not a pipeline, a missing device, too little memory. Returns bytes/worker."""
    import openvino as ov

    from ov_spec.manifest import Manifest
    from ov_spec.runtime import devices as placement
    from ov_spec.serve.workers import check_memory

    manifest = Manifest.read(config.folder)
    placements = placement.load_placements(
        config.devices, manifest.names(), config.device_overrides, config.property_overrides
    )
    placement.validate(ov.Core(), placements)
    return check_memory(manifest, Path(config.folder), config.workers)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a one-line error (port in use, no such address)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UserError(
            f"--host {host} is not an address of this machine; use 127.0.0.1 or 0.0.0.0"
        ) from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT only; a live listener still fails
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise UserError(
                f"port {port} on {host} is already in use; stop what holds it or pick another --port"
            ) from None
        raise UserError(f"cannot listen on {host}:{port} ({err.strerror}); check --host and --port") from None
    sock.set_inheritable(True)
    return sock


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
    if args.ray:
        from ov_spec.serve.ray import serve_on_ray

        return serve_on_ray(
            config, args.replicas, args.cpus_per_replica, args.host, args.port, args.ray_address
        )
    per_worker = preflight(config)
    sock = bind(args.host, args.port)
    import uvicorn

    from ov_spec.serve.app import Service, create_app

    service = Service(config)
    server = uvicorn.Server(
        uvicorn.Config(create_app(service), log_level=args.log_level, timeout_graceful_shutdown=5)
    )
    service.pool.on_load_error = lambda err: setattr(server, "should_exit", True)
    if args.host not in LOOPBACK and not config.api_key:
        log.warning("listening on %s without --api-key: anyone who can reach it can use it", args.host)
    log.info(
        "serving %r on http://%s:%d with %d worker(s), about %.0f MiB each; GET /health is 200 once loaded",
        service.model_name,
        args.host,
        sock.getsockname()[1],
        config.workers,
        per_worker / 2**20,
    )
    server.run(sockets=[sock])
    err = service.pool.load_error
    if err is not None:
        raise err if isinstance(err, UserError) else UserError(f"loading the pipeline failed: {err}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
