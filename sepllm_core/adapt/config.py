"""Hyper-parameters of one adaptation run: the shipped recipe's knobs, and the research options apart."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Named separator sets: (characters that end a separator token, whether line breaks count).
SEPARATOR_SETS: dict[str, tuple[str | None, bool]] = {"default": (None, True), "sentence": (".!?", False)}


@dataclass
class ExperimentOptions:
    """Options tried in research sessions that the shipped recipe leaves at these defaults.

    The recipe is in docs/benchmarks/adapt_cpu_s7.md (its config in the shipped adapter's
    ``sepllm_adapt.json``); ``sepsum adapt --experiment NAME=VALUE`` sets these.
    """

    #: Weight of the LM loss added to the KL.
    lm_weight: float = 0.0
    #: Weight of the LM loss on answer value tokens only (labels are the planted values).
    answer_lm_weight: float = 0.0
    #: Recall rows: all facts of a row are of one kind, so an answer must pick its fact by subject.
    recall_same_kind: bool = False
    #: The route loss counts layers from this fraction of the depth on (0.5: upper half; 0: all).
    route_from: float = 0.5
    #: Modules that get LoRA: ``"all-linear"`` or a list of names (``["k_proj", "v_proj"]``).
    target_modules: str | list[str] = "all-linear"


@dataclass
class AdaptConfig:
    """Hyper-parameters of one adaptation run (saved with the adapter).

    The loss is KL(teacher || student) (weight 1, temperature 1) plus the weighted terms below;
    gradients are clipped to norm 1.
    """

    steps: int = 300
    seq_len: int = 1024
    batch_size: int = 1
    lr: float = 2e-4
    warmup_steps: int = 20
    #: The learning rate's cosine decay ends at this fraction of ``lr`` (0.1: to a tenth).
    lr_final: float = 0.1
    lora_r: int = 8
    lora_alpha: int = 16
    initial: int = 4
    local: int = 128
    #: Local window of the SepLLM mask on plain-text rows (0: ``local``). A wider one than the recall
    #: rows' keeps the adapter close to the base model where the evaluated cache holds many recent
    #: tokens (perplexity), while the narrow window of the recall rows forces facts through separators.
    plain_local: int = 0
    #: Separator set: ``"default"`` (``sepllm_core.separators``: punctuation and line breaks) or
    #: ``"sentence"`` (sentence enders ``. ! ?`` only: ~6x sparser, so a bounded cache spans more text).
    separators: str = "default"
    holdout_fraction: float = 0.1
    checkpoint_every: int = 50
    seed: int = 0
    gradient_checkpointing: bool = False
    #: dtype of the saved adapter weights ("" keeps the training dtype).
    save_dtype: str = "bfloat16"
    #: Share of training rows that are recall sequences (facts planted, asked at the end); 0 = plain text only.
    recall_share: float = 0.0
    #: Loss weight of answer value tokens in recall sequences (other tokens weigh 1).
    answer_weight: float = 20.0
    #: Weight of the LM loss on the FIRST token of each answer value only: the one that needs the
    #: fact (later tokens of a multi-token value follow from the first).
    first_value_lm_weight: float = 0.0
    #: Recall rows: every fact ends at least this many tokens before the questions (0: anywhere).
    recall_min_distance: int = 0
    #: Recall rows: questions per row (0: 1 to 4).
    recall_questions: int = 0
    #: Recall rows: values made up per fact (names, numbers, codes) instead of the closed lists.
    recall_open_values: bool = False
    #: With ``recall_open_values``, the share of recall rows whose values are made up; the rest use the
    #: closed lists (disjoint from the evaluation's), so one run learns both kinds.
    recall_open_share: float = 1.0
    #: Weight of the route loss (:func:`~sepllm_core.adapt.losses.route_loss`): at each first value
    #: token, the best head of the upper layers should attend its fact's separator. The model trains
    #: on :data:`~sepllm_core.adapt.route.ROUTE_ATTENTION` (sdpa, plus the probabilities of the routed
    #: query rows only).
    route_weight: float = 0.0
    #: Weight of KL(teacher || student under FULL attention) on the answer tokens of recall rows: a
    #: second student forward without the SepLLM mask (adapter on), so that the merged adapter keeps
    #: full attention copying the value (0: off, no second forward).
    full_answer_weight: float = 0.0
    #: Start from this adapter's LoRA weights (same rank and targets) instead of a fresh LoRA; the
    #: teacher is still the base model.
    init_adapter: str = ""
    #: Options the shipped recipe does not use.
    experiment: ExperimentOptions = field(default_factory=ExperimentOptions)

    def validate(self) -> None:
        """Raise ValueError naming the first setting that cannot work."""
        if self.steps < 1 or self.seq_len < 8 or self.batch_size < 1:
            raise ValueError(f"need steps >= 1, seq_len >= 8, batch_size >= 1 (got {self.steps}, "
                             f"{self.seq_len}, {self.batch_size})")
        if self.local < 1 or self.initial < 0:
            raise ValueError(f"need local >= 1 and initial >= 0 (got {self.local}, {self.initial})")
        for name, window in (("local", self.local), ("plain_local", self.plain_local)):
            if window >= self.seq_len:
                raise ValueError(f"{name} window {window} must be shorter than seq_len {self.seq_len}, "
                                 "or the student sees everything the teacher sees")
        if self.plain_local < 0:
            raise ValueError(f"plain_local must be >= 0 (0: the same as local), got {self.plain_local}")
        if not 0.0 <= self.holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction must be in [0, 1), got {self.holdout_fraction}")
        if self.separators not in SEPARATOR_SETS:
            raise ValueError(f"separators must be one of {', '.join(SEPARATOR_SETS)}, got {self.separators!r}")
        if not 0.0 <= self.recall_share <= 1.0:
            raise ValueError(f"recall_share must be in [0, 1], got {self.recall_share}")
        answer_lm = self.experiment.answer_lm_weight
        if self.answer_weight <= 0 or answer_lm < 0 or self.first_value_lm_weight < 0:
            raise ValueError(f"need answer_weight > 0 and answer_lm_weight, first_value_lm_weight >= 0 (got "
                             f"{self.answer_weight}, {answer_lm}, {self.first_value_lm_weight})")
        if self.experiment.lm_weight < 0:
            raise ValueError(f"lm_weight must be >= 0, got {self.experiment.lm_weight}")
        if self.route_weight < 0 or (self.route_weight > 0 and self.recall_share <= 0):
            raise ValueError(f"route_weight {self.route_weight} needs recall_share > 0 and must be >= 0")
        if not 0.0 <= self.experiment.route_from < 1.0:
            raise ValueError(f"route_from must be in [0, 1), got {self.experiment.route_from}")
        if self.full_answer_weight < 0 or (self.full_answer_weight > 0 and self.recall_share <= 0):
            raise ValueError(f"full_answer_weight {self.full_answer_weight} needs recall_share > 0 and must be >= 0")
        if not 0.0 <= self.lr_final <= 1.0:
            raise ValueError(f"lr_final must be in [0, 1], got {self.lr_final}")
        if not 0.0 <= self.recall_open_share <= 1.0:
            raise ValueError(f"recall_open_share must be in [0, 1], got {self.recall_open_share}")
        if self.recall_min_distance < 0 or not 0 <= self.recall_questions <= 8:
            raise ValueError(f"need recall_min_distance >= 0 and recall_questions in 0..8 (got "
                             f"{self.recall_min_distance}, {self.recall_questions})")

    def recall_data_config(self) -> Any:
        """The :class:`sepllm_core.recall_data.RecallDataConfig` these settings describe."""
        from sepllm_core.recall_data import RecallDataConfig

        questions = {} if not self.recall_questions else {
            "min_questions": self.recall_questions, "max_questions": self.recall_questions,
            "min_facts": max(3, self.recall_questions), "max_facts": max(8, self.recall_questions)}
        return RecallDataConfig(answer_weight=self.answer_weight, min_distance=self.recall_min_distance,
                                same_kind=self.experiment.recall_same_kind, open_values=self.recall_open_values,
                                open_share=self.recall_open_share, **questions)
