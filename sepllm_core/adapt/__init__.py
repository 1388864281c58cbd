"""SepLLM post-training by self-distillation: a LoRA student under the SepLLM mask matches its full-attention self.

The teacher is the same model with its adapter disabled and full causal attention (no grad, one
forward per batch); the student is the model with a LoRA adapter (``peft``) under
:func:`sepllm_core.training_mask.sepllm_mask`. The loss is KL(teacher || student) over next-token
distributions. Because the student matches its own full-attention outputs, no labelled data is
needed and instruction following is kept.

With ``recall_share > 0`` a share of the training rows are recall sequences
(:mod:`sepllm_core.recall_data`): plain text with synthetic facts planted at random depths and
questions about some of them at the end, whose answer tokens weigh ``answer_weight`` times more
in the loss. They give the student a reason to condense each segment into its separator. With
``full_answer_weight > 0`` the recall rows also run the student under full attention, and its KL
to the teacher on the answer tokens keeps the (merged) adapter from hurting full-attention copying.

Modules, one job each: :mod:`.config` (``AdaptConfig``; research options in ``ExperimentOptions``),
:mod:`.data` (texts, rows), :mod:`.mask` (separator sets, the student's mask), :mod:`.losses`,
:mod:`.route` (the route loss's attention), :mod:`.io` (checkpoints, the saved adapter) and
:mod:`.loop` (``adapt(...)``, a generator of :class:`AdaptStep`, :class:`CheckpointSaved`,
:class:`AdaptDone`; a run resumes from its checkpoint with ``resume=True``).
"""

from __future__ import annotations

from sepllm_core.adapt.config import SEPARATOR_SETS, AdaptConfig, ExperimentOptions
from sepllm_core.adapt.data import (
    TrainingBatch,
    read_texts,
    sample_batch,
    sample_training_batch,
    split_tokens,
    strip_gutenberg,
    training_batch,
)
from sepllm_core.adapt.io import (
    ADAPT_META,
    CHECKPOINT_DIR,
    HISTORY_CSV,
    TRAINER_STATE,
    load_adapted,
    load_adapter_weights,
    load_checkpoint,
    save_adapter,
    save_checkpoint,
)
from sepllm_core.adapt.loop import (
    AdaptDone,
    AdaptEvent,
    AdaptStep,
    CheckpointSaved,
    adapt,
    attach_lora,
    lr_at,
)
from sepllm_core.adapt.losses import (
    AnswerTarget,
    LossParts,
    answer_target,
    distill_loss,
    full_answer_kl,
    route_loss,
    weighted_distill_loss,
)
from sepllm_core.adapt.mask import separator_lookup, student_mask
from sepllm_core.adapt.route import ROUTE_ATTENTION, captured_route_loss, use_route_attention

__all__ = [
    "ADAPT_META", "CHECKPOINT_DIR", "HISTORY_CSV", "ROUTE_ATTENTION", "SEPARATOR_SETS", "TRAINER_STATE",
    "AdaptConfig", "AdaptDone", "AdaptEvent", "AdaptStep", "AnswerTarget", "CheckpointSaved", "ExperimentOptions",
    "LossParts", "TrainingBatch", "adapt", "answer_target", "attach_lora", "captured_route_loss", "distill_loss",
    "full_answer_kl", "load_adapted", "load_adapter_weights", "load_checkpoint", "lr_at", "read_texts",
    "route_loss", "sample_batch", "sample_training_batch", "save_adapter", "save_checkpoint", "separator_lookup",
    "split_tokens", "strip_gutenberg", "student_mask", "training_batch", "use_route_attention",
    "weighted_distill_loss",
]
