"""The pipeline folder on disk: staged in a temp folder beside the output, moved into place at the end.

A failed or interrupted export never leaves a half-written pipeline: everything is written to
``.<name>.ov_spec-tmp-XXXX`` next to the output (same filesystem, so the final move is a rename)
and that folder is removed on any failure.

Layout::

    OUT/
      ov_spec.json          the manifest (ov_spec.manifest.Manifest)
      recipe.toml           the resolved recipe: `python -m ov_spec.export --recipe OUT/recipe.toml --output OUT2`
      tokenizer/            openvino_tokenizer.xml, openvino_detokenizer.xml (+ HF tokenizer files)
      target/               a complete optimum-intel export (openvino_model.xml/.bin, config.json,
      self_draft/           generation_config.json, tokenizer files, tokenizer IRs) that
      draft1/ ...           openvino_genai.LLMPipeline can load on its own
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ov_spec.errors import UserError
from ov_spec.export.convert import MODEL_XML
from ov_spec.manifest import MANIFEST_NAME

if TYPE_CHECKING:
    import openvino as ov

MODEL_BIN = "openvino_model.bin"
TOKENIZER_DIR = "tokenizer"
RECIPE_NAME = "recipe.toml"
TMP_MARK = ".ov_spec-tmp-"
# Files of an optimum export that describe the model rather than the tokenizer.
_MODEL_FILES = {MODEL_XML, MODEL_BIN, "config.json", "generation_config.json", "openvino_config.json"}


def check_output(output: Path, force: bool) -> None:
    """Refuse to overwrite anything but an empty folder or (with ``--force``) an earlier pipeline."""
    if output.is_file():
        raise UserError(f"--output {output} is a file; pass a folder path")
    if not output.is_dir() or not any(output.iterdir()):
        return
    if not force:
        raise UserError(
            f"output folder {output} exists and is not empty; pass --force to replace it or choose another --output"
        )
    if not (output / MANIFEST_NAME).is_file():
        # --force replaces pipelines, never arbitrary folders (think `--output ~ --force`).
        raise UserError(
            f"output folder {output} is not an ov_spec pipeline (no {MANIFEST_NAME}); "
            "--force only replaces earlier pipelines: choose an empty or new --output"
        )


class Staging:
    """A temp folder beside ``output``; :meth:`publish` moves it into place, :meth:`discard` removes it."""

    def __init__(self, output: Path) -> None:
        self.output = output
        parent = output.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            _remove_stale(parent, f".{output.name}{TMP_MARK}")
            # The PID in the name tells a later export whether this one is still running.
            prefix = f".{output.name}{TMP_MARK}{os.getpid()}-"
            self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
            # mkdtemp makes a private (0700) folder; the pipeline should get the usual permissions.
            umask = os.umask(0)
            os.umask(umask)
            self.path.chmod(0o777 & ~umask)
        except OSError as err:
            raise UserError(
                f"cannot create a folder in {parent} ({err.strerror or err}); choose another --output"
            ) from None

    def publish(self) -> None:
        """Replace ``output`` with the staged folder (rename; the old pipeline is removed after)."""
        old = None
        if self.output.is_dir():
            if any(self.output.iterdir()):
                old = self.output.with_name(f".{self.output.name}{TMP_MARK}{os.getpid()}-old")
                self.output.rename(old)
            else:
                self.output.rmdir()
        self.path.rename(self.output)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _remove_stale(parent: Path, prefix: str) -> None:
    """Delete temp folders left by exports that died without cleaning up (killed, out of memory).

    Their names carry the exporting process's PID; folders of live processes are left alone.
    """
    for path in parent.iterdir():  # not glob(): output names may contain [ ] * ?
        if not path.name.startswith(prefix):
            continue
        pid = path.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def write_model_folder(
    base: Path, dest: Path, model: ov.Model | None, compress_to_fp16: bool = False
) -> None:
    """Write one complete model folder from its base conversion.

    ``model`` None: the weights are the base IR unchanged (hard-linked when possible: the base is
    deleted at the end, and a 14 GB copy of a 7B fp16 model is worth avoiding). Otherwise the given
    (compressed) model is serialised.
    """
    import openvino as ov

    dest.mkdir()
    for item in base.iterdir():
        if item.is_file() and item.name not in (MODEL_XML, MODEL_BIN):
            shutil.copy2(item, dest / item.name)
    if model is None:
        for name in (MODEL_XML, MODEL_BIN):
            _link_or_copy(base / name, dest / name)
    else:
        ov.save_model(model, dest / MODEL_XML, compress_to_fp16=compress_to_fp16)


def write_tokenizer_folder(base: Path, dest: Path) -> None:
    """The shared tokenizer folder: tokenizer IRs and HF tokenizer files from the target's export."""
    dest.mkdir()
    for item in base.iterdir():
        if item.is_file() and item.name not in _MODEL_FILES:
            shutil.copy2(item, dest / item.name)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
