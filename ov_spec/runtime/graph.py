"""Load-time edits of the exported graph.

The exported IR returns logits for every fed position. Prefill needs only the last row and a
verification pass only ``k + 1`` rows, yet the LM head would run over the whole prompt: on a 150k
vocabulary a 500-token prompt costs ~300 MB of logits and most of the head's compute for nothing.
:func:`keep_last_logits` slices the hidden states before the LM head to the last ``n`` positions,
with ``n`` fed at run time (the same idea as openvino.genai's slice-before-matmul, made dynamic).
"""

from __future__ import annotations

import numpy as np
import openvino as ov
import openvino.opset13 as ops

LOGITS_TO_KEEP = "logits_to_keep"
# Element-wise ops allowed between the LM head's MatMul and the logits output
# (precision converts; Gemma-style soft-capping of logits).
# Element-wise ops between the LM head MatMul and the logits output (casts, soft-capping).
PASS_THROUGH_OPS = {"Convert", "Tanh", "Multiply", "Divide"}


def keep_last_logits(model: ov.Model, axis: int = 1) -> bool:
    """Add an input ``logits_to_keep`` (int64 ``[1]``) that limits the logits to the last rows.

    ``axis`` is the token axis of the hidden states: 1 in the exported ``[batch, tokens, hidden]``
    graph, 0 in the paged-attention graph (``[tokens, 1, hidden]``, ov_spec.runtime.paged).
    Returns False (and leaves the model untouched) when the LM head cannot be found.
    """
    if any(LOGITS_TO_KEEP in i.get_names() for i in model.inputs):
        return True
    head = model.output("logits").get_node().input_value(0).get_node()
    while head.get_type_name() in PASS_THROUGH_OPS:
        head = head.input_value(0).get_node()
    if head.get_type_name() != "MatMul" or head.get_input_partial_shape(0).rank.get_length() != 3:
        return False
    keep = ops.parameter([1], ov.Type.i64, name=LOGITS_TO_KEEP)
    keep.output(0).get_tensor().set_names({LOGITS_TO_KEEP})
    hidden = head.input_value(0)
    sliced = ops.slice(
        hidden,
        start=ops.negative(keep),
        stop=ops.constant(np.array([np.iinfo(np.int64).max], dtype=np.int64)),
        step=ops.constant(np.array([1], dtype=np.int64)),
        axes=ops.constant(np.array([axis], dtype=np.int64)),
    )
    head.input(0).replace_source_output(sliced.output(0))
    model.add_parameters([keep])
    model.validate_nodes_and_infer_types()
    return True
