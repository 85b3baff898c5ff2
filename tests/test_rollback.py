"""Which KV-cache rollback each model of a pipeline uses (ov_spec.runtime.stateful).

- Drafts never pay for ``trim``: their numerics change only the acceptance rate, never the
  output, so they roll back by ``mask`` whatever the target uses.
- The target's default, ``auto``, uses ``mask`` on CPU whatever its cache precision (a trim costs
  two cache copies per rejection; reading an f16 cache back is slow); ``trim`` stays available
  and is exact with an f16/f32 cache. The measurements behind that are in the README's
  *Numerics* section (``scripts/numerics.py``) and the bench's rollback study.
"""

from __future__ import annotations

import pytest

import ov_spec
from ov_spec.errors import UserError
from ov_spec.runtime.stateful import DEFAULT_ROLLBACK


@pytest.mark.parametrize("target_rollback", ["trim", "mask", "paged"])
@pytest.mark.parametrize("draft_rollback", ["auto", "mask"])
def test_drafts_roll_back_by_their_own_mode_whatever_the_target_uses(
    random_pipeline, target_rollback, draft_rollback
):
    pipe = ov_spec.load(random_pipeline, rollback=target_rollback, draft_rollback=draft_rollback)
    target, *drafts = pipe.manifest.names()
    assert drafts, "the pipeline needs a draft for this test"
    assert pipe.models[target].rollback_mode == target_rollback
    # "auto" (the default) on CPU: the paged graph, whose 1-token passes keep their input shapes
    want = "paged" if draft_rollback == "auto" else draft_rollback
    assert {pipe.models[name].rollback_mode for name in drafts} == {want}
    # And the drafts really do roll back during a speculative run (else the check means nothing).
    result = pipe.generate("def f(x):", max_new_tokens=16, draft_tokens=4)
    assert any(pipe.models[name].stats.rollbacks > 0 for name in drafts), result.metrics


@pytest.mark.parametrize("kv", ["u8", "f16", "f32"])
def test_auto_rollback_is_paged_on_cpu_unless_the_cache_is_f32(random_pipeline, kv):
    assert DEFAULT_ROLLBACK == "auto"
    pipe = ov_spec.load(random_pipeline, property_overrides=[f"target.KV_CACHE_PRECISION={kv}"])
    # (the paged graph has no f32 cache: a target given one stays stateful, with mask)
    assert pipe.models["target"].rollback_mode == ("mask" if kv == "f32" else "paged")
    assert ov_spec.load(random_pipeline, rollback="trim").models["target"].rollback_mode == "trim"
    # The drafts' rollback does not follow the target's cache: paged, as "auto" is on CPU.
    assert {pipe.models[n].rollback_mode for n in pipe.manifest.names()[1:]} == {"paged"}


def test_an_unknown_rollback_is_a_user_error_listing_the_choices(random_pipeline):
    with pytest.raises(UserError, match="rollback must be one of auto, trim, mask, paged, got 'copy'"):
        ov_spec.load(random_pipeline, rollback="copy")
    with pytest.raises(UserError, match="got 'copy'"):
        ov_spec.load(random_pipeline, draft_rollback="copy")


def test_paged_with_an_f32_cache_is_a_user_error(random_pipeline):
    with pytest.raises(UserError, match="rollback 'paged' keeps the KV cache in u8 or f16, not f32"):
        ov_spec.load(random_pipeline, rollback="paged", property_overrides=["target.KV_CACHE_PRECISION=f32"])
