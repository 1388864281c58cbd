"""Silence library warnings a SepSum user can do nothing about (installed at start-up, before the imports).

- bitsandbytes, on CPUs with AVX512-BF16, tries at import to fetch a compiled 4-bit matmul from the
  Hugging Face Hub through the optional ``kernels`` package and logs a warning when it cannot. SepSum
  never fetches from a hub at run time (:mod:`app.offline`), so installing ``kernels`` would not help;
  without it ``--quant 4bit`` on the CPU runs bitsandbytes' own C++ kernel
  (``gemv_4bit_inference_cpu_*`` in ``libbitsandbytes_cpu.so``), and the default CPU decode path does
  not use bitsandbytes at all (it reads :mod:`sepllm_core.int4` weights).
- bitsandbytes logs on every int8 matmul on the CPU that the inputs are cast to fp16.
- peft asks the model ``is_gradient_checkpointing``, which transformers 5 deprecates with a
  FutureWarning: a note for peft's developers, not for the user.

Each filter matches one message, so any other warning of these libraries still shows.
"""

from __future__ import annotations

import logging
import warnings

# (logger name, the start of the messages it drops)
_LOG_MESSAGES = (
    ("bitsandbytes.backends.cpu.ops", "Failed to load CPU gemm_4bit_forward from kernels-community"),
    ("bitsandbytes.autograd._functions", "MatMul8bitLt: inputs will be cast from"),
)
_FUTURE_WARNINGS = ("`is_gradient_checkpointing` is deprecated",)  # regexes matched at the start


class _DropMessage(logging.Filter):
    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


def silence() -> None:
    """Install the filters (idempotent): call it before bitsandbytes, transformers or peft is imported."""
    for name, prefix in _LOG_MESSAGES:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessage) and f.prefix == prefix for f in logger.filters):
            logger.addFilter(_DropMessage(prefix))
    for message in _FUTURE_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=FutureWarning)
