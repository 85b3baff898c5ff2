"""Checkpoint -> uncompressed stateful OpenVINO IR (+ tokenizer IRs), through optimum-intel.

Each distinct source is converted once, in fp32 or fp16, with the KV cache inside the model
(``text-generation-with-past``, stateful). Weight formats are applied afterwards by
:mod:`ov_spec.export.compress`, so the self-draft reuses the target's conversion.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

from ov_spec.errors import UserError

TASK = "text-generation-with-past"
MODEL_XML = "openvino_model.xml"
TOKENIZER_XML = "openvino_tokenizer.xml"
DETOKENIZER_XML = "openvino_detokenizer.xml"


def convert_checkpoint(checkpoint: Path, output: Path, dtype: str, who: str, verbose: bool = False) -> None:
    """Export ``checkpoint`` to ``output`` as an uncompressed stateful IR with tokenizer IRs.

    ``dtype`` is ``"fp32"`` or ``"fp16"``. Passing an explicit ``OVConfig(dtype=...)`` matters:
    without it optimum-intel silently compresses models over 1B parameters to int8.
    """
    assert dtype in ("fp32", "fp16"), dtype
    with quiet_libraries(verbose):
        from optimum.exporters.openvino import main_export
        from optimum.intel.openvino.configuration import OVConfig

        main_export(
            str(checkpoint),
            output=str(output),
            task=TASK,
            ov_config=OVConfig(dtype=dtype),
            stateful=True,
            convert_tokenizer=True,
            local_files_only=True,
            library_name="transformers",
            framework="pt",
        )
    if not (output / MODEL_XML).is_file():
        raise RuntimeError(f"optimum-intel did not write {output / MODEL_XML}")
    # optimum-intel only warns when openvino-tokenizers cannot convert a tokenizer; the runtime needs it.
    for name in (TOKENIZER_XML, DETOKENIZER_XML):
        if not (output / name).is_file():
            raise UserError(
                f"{who}: openvino-tokenizers could not convert the tokenizer of {checkpoint} (no {name}); "
                "check that openvino-tokenizers matches the openvino version (pip install -U openvino-tokenizers)"
            )


def is_stateful(model_xml: Path) -> bool:
    """True if the IR keeps its KV cache inside (ReadValue/Assign pairs)."""
    import openvino as ov

    from ov_spec.runtime.stateful import is_stateful as model_is_stateful

    return model_is_stateful(ov.Core().read_model(model_xml))


@contextlib.contextmanager
def quiet_libraries(verbose: bool = False) -> Iterator[None]:
    """Silence optimum/transformers/NNCF chatter (tracer warnings, progress bars) unless ``verbose``.

    Library output goes to Python's sys.stdout/sys.stderr, so redirecting those is enough; our own
    progress lines are written to the stream captured before entering.
    """
    if verbose:
        yield
        return
    loggers = ["transformers", "optimum", "nncf", "torch", "openvino"]
    levels = {name: logging.getLogger(name).level for name in loggers}
    sink = io.StringIO()
    try:
        for name in loggers:
            logging.getLogger(name).setLevel(logging.ERROR)
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(sink),
            contextlib.redirect_stderr(sink),
            _no_notebook_widgets(),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def _no_notebook_widgets() -> Iterator[None]:
    """Keep progress bars on the (redirected) text streams inside Jupyter.

    In a notebook, NNCF's rich progress bars and tqdm.auto bars render as widgets through IPython's
    display machinery, which ``redirect_stdout`` does not catch. Telling rich it is not in Jupyter
    and turning off the Hugging Face bars sends everything back through the streams we silence.
    """
    import sys

    patched = []
    rich_console = sys.modules.get("rich.console")
    if rich_console is None:
        with contextlib.suppress(ImportError):
            import rich.console as rich_console
    if rich_console is not None and hasattr(rich_console, "_is_jupyter"):
        patched.append((rich_console, "_is_jupyter", rich_console._is_jupyter))
        rich_console._is_jupyter = lambda: False
        # rich.progress draws on the global console, which may have been made (as a Jupyter one)
        # before this point: swap in a plain one for the duration.
        rich = sys.modules["rich"]
        patched.append((rich, "_console", getattr(rich, "_console", None)))
        rich._console = rich_console.Console()
    hf_bars = None
    with contextlib.suppress(ImportError):
        from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars

        hf_bars = not are_progress_bars_disabled()
        disable_progress_bars()
    try:
        yield
    finally:
        for module, name, value in patched:
            setattr(module, name, value)
        if hf_bars:
            from huggingface_hub.utils import enable_progress_bars

            enable_progress_bars()
