"""Ray Serve: a local Ray instance with 2 replicas answers the openai client, and survives a kill.

Slow: starting Ray and two replicas takes about a minute on 2 cores (one module-scoped fixture).
Skipped when ray is not installed (the ``ray`` extra).
"""

from __future__ import annotations

import os
import signal
import time

import pytest

pytestmark = pytest.mark.slow

ray = pytest.importorskip(
    "ray", reason="the Ray Serve tests need the `ray` extra (pip install 'ov_spec[ray]')"
)
serve = pytest.importorskip("ray.serve", reason="the Ray Serve tests need ray[serve]")
openai = pytest.importorskip("openai")

import ov_spec  # noqa: E402
from ov_spec.serve.__main__ import bind  # noqa: E402
from ov_spec.serve.app import ServeConfig  # noqa: E402
from ov_spec.serve.ray import APP_NAME, build_application  # noqa: E402

MODEL = "tiny"


STRICT = "trim"


@pytest.fixture(scope="module")
def ray_url(random_pipeline):
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()
    # A loaded 2-core machine can take longer than Ray's default 30 s to register its node.
    os.environ.setdefault("RAY_raylet_start_wait_time_s", "180")
    # Logical CPUs: two replicas reserve one each; the controller and proxy need none.
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        # trim: outputs then do not depend on a replica's history of pass sizes (the default,
        # paged, equals target-only but at near-ties, and a replaced replica learns afresh)
        config = ServeConfig(folder=random_pipeline, model_name=MODEL, rollback=STRICT)
        serve.run(build_application(config, replicas=2, cpus_per_replica=1), name=APP_NAME, route_prefix="/")
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()


def replica_pids() -> list[int]:
    """Process ids of this application's live replicas, through Ray's actor API."""
    pids = []
    for entry in ray.util.list_named_actors(all_namespaces=True):
        if "REPLICA" in entry["name"] and APP_NAME in entry["name"]:
            try:
                actor = ray.get_actor(entry["name"], namespace=entry["namespace"])
                pids.append(ray.get(actor.__ray_call__.remote(lambda self: os.getpid()), timeout=30))
            except (ValueError, ray.exceptions.RayError):  # a replica that is dying or restarting
                continue
    return pids


def test_two_replicas_answer_and_survive_a_killed_one(ray_url, random_pipeline):
    pipe = ov_spec.load(random_pipeline, rollback=STRICT)
    prompts = [f"def f{i}(x):" for i in range(6)]
    refs = {p: pipe.generate(p, streamer=lambda c: None, max_new_tokens=12).text for p in prompts}
    client = openai.OpenAI(base_url=ray_url + "/v1", api_key="none")

    def check_all():
        for p in prompts:
            out = client.completions.create(model=MODEL, prompt=p, max_tokens=12, temperature=0)
            assert out.choices[0].text == refs[p]
            assert out.usage.completion_tokens == 12
        stream = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=8,
            temperature=0,
            stream=True,
        )
        assert (
            "".join(c.choices[0].delta.content or "" for c in stream)
            == pipe.generate("hi", chat=True, streamer=lambda c: None, max_new_tokens=8).text
        )

    check_all()
    assert client.models.list().data[0].id == MODEL
    with pytest.raises(openai.BadRequestError, match="n=1"):
        client.completions.create(model=MODEL, prompt="x", n=2)
    pids = replica_pids()
    assert len(pids) == 2, pids
    os.kill(pids[0], signal.SIGKILL)
    time.sleep(0.5)
    check_all()  # the other replica answers (the openai client retries a connection Ray dropped)
    deadline = time.monotonic() + 120  # and Ray Serve replaces the dead one
    while len(set(replica_pids()) - {pids[0]}) < 2:
        assert time.monotonic() < deadline, "the killed replica was not replaced"
        time.sleep(1)
    check_all()
