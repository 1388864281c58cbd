"""Device and dtype choice."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from app.engine import devices
from app.errors import ModelError, ResourceError

NO_CUDA = not torch.cuda.is_available()


def test_auto_picks_cuda_then_mps_then_cpu():
    if torch.cuda.is_available():
        expected = "cuda"
    elif torch.backends.mps.is_available():
        expected = "mps"
    else:
        expected = "cpu"
    assert devices.choose_device("auto") == expected
    assert devices.choose_device("cpu") == "cpu"


@pytest.mark.skipif(not NO_CUDA, reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_a_one_line_resource_error():
    with pytest.raises(ResourceError) as caught:
        devices.choose_device("cuda")
    message = str(caught.value)
    assert "no CUDA GPU is visible" in message and "--device cpu" in message and "\n" not in message


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (devices.choose_device, ("tpu",)),
        (devices.choose_dtype, ("cpu", "fp8")),
        (devices.check_quant, ("3bit",)),
    ],
)
def test_unknown_choices_are_refused(call, args):
    with pytest.raises(ModelError, match="unknown"):
        call(*args)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("flags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_bf16 avx512_vnni", True),
        ("flags\t\t: fpu sse2 avx2 amx_bf16 amx_tile", True),
        ("flags\t\t: fpu sse2 avx2 fma", False),
        ("processor\t: 0\nmodel name\t: Some CPU", False),
    ],
)
def test_cpu_flags_decide_bf16(flags, expected):
    assert devices.cpu_flags_have_bf16(flags) is expected


def test_cpu_auto_dtype_follows_the_hardware():
    auto = devices.choose_dtype("cpu", "auto")
    assert auto == (torch.bfloat16 if devices.cpu_supports_bf16() else torch.float32)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists() and devices.cpu_flags_have_bf16(cpuinfo.read_text()):
        assert auto == torch.bfloat16  # the development and CI machines (STACK.md: bf16 is faster here)


def test_explicit_dtype_wins_and_names_round_trip():
    assert devices.choose_dtype("cpu", "fp32") == torch.float32
    assert devices.choose_dtype("cpu", "fp16") == torch.float16
    assert [devices.dtype_name(d) for d in (torch.bfloat16, torch.float16, torch.float32)] == [
        "bf16",
        "fp16",
        "fp32",
    ]
    assert devices.dtype_bytes(torch.bfloat16) == 2 and devices.dtype_bytes("fp32") == 4
