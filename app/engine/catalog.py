"""The curated model catalog (``resources/models.toml``): what can be downloaded, and what it needs.

``load()`` reads and validates the file once; ``find(name_or_repo)`` returns one entry;
``languages_for(name_or_repo)`` says which languages a model writes (None for a model the
catalog does not know). ``model_info(entry)`` builds the :class:`ModelInfo` the memory estimate
reads, from the catalog's config numbers, so a model can be sized before it is downloaded.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from app.engine.model_info import ModelInfo, TensorGroups
from app.errors import ModelError

CATALOG_FILE = Path(__file__).resolve().parents[2] / "resources" / "models.toml"
#: config.json ``model_type`` -> the transformers class the catalog's models load as.
ARCHITECTURE_CLASSES = {
    "llama": "LlamaForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "mistral": "MistralForCausalLM",
}
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_LANGUAGE = re.compile(r"^[a-z]{2}$")
_SEPARATOR_SETS = ("default", "sentence")  # sepllm_core.adapt.SEPARATOR_SETS (not imported: no torch here)
_INT_FIELDS = ("parameters", "trained_context", "layers", "hidden_size", "intermediate_size", "heads",
               "kv_heads", "head_dim", "vocab_size")
_BOOL_FIELDS = ("verified", "gated", "chat_template", "thinking", "tied_embeddings", "attention_bias", "qk_norm",
                "head_in_file")
_STR_FIELDS = ("name", "label", "repo", "revision", "licence", "licence_url", "architecture", "separators",
               "notes")


@dataclass(frozen=True)
class CatalogFile:
    """A file of a catalog model whose size (and maybe sha256) is known in advance."""

    size: int
    sha256: str | None = None


@dataclass(frozen=True)
class CatalogModel:
    """One curated model: where it comes from, its licence, languages and architecture numbers."""

    name: str
    label: str
    repo: str
    revision: str
    verified: bool
    licence: str
    licence_url: str
    gated: bool
    architecture: str
    parameters: int
    trained_context: int
    languages: tuple[str, ...]
    chat_template: bool
    thinking: bool  # writes a <think> block before answering
    separators: str
    layers: int
    hidden_size: int
    intermediate_size: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    tied_embeddings: bool
    attention_bias: bool
    qk_norm: bool
    head_in_file: bool
    notes: str = ""
    files: dict[str, CatalogFile] = field(default_factory=dict)

    @property
    def download_bytes(self) -> int:
        """Bytes of the bf16 weights (what a download mostly is; the tokenizer adds a few MB)."""
        return self.parameters * 2

    @property
    def page_url(self) -> str:
        return f"https://huggingface.co/{self.repo}"


def tensor_groups(model: CatalogModel) -> TensorGroups:
    """Parameter counts as ``model_info.count_tensors`` would read them from the model's safetensors.

    A decoder layer holds q/k/v/o projections and a gated MLP (the Linear weights that bitsandbytes
    quantizes), two norms, q/k/v biases (Qwen2) and q/k norms (Qwen3); outside the layers the
    embedding, a final norm and the output head when it is stored (untied, or tied but saved anyway).
    """
    q = model.heads * model.head_dim
    kv = model.kv_heads * model.head_dim
    hidden, inter, layers = model.hidden_size, model.intermediate_size, model.layers
    linear = layers * (hidden * q + 2 * hidden * kv + q * hidden + 3 * hidden * inter)
    rows = layers * (q + 2 * kv + hidden + 2 * inter + hidden)
    other = model.vocab_size * hidden + layers * 2 * hidden + hidden
    if not model.tied_embeddings or model.head_in_file:
        other += model.vocab_size * hidden
    if model.attention_bias:
        other += layers * (q + 2 * kv)
    if model.qk_norm:
        other += layers * 2 * model.head_dim
    return TensorGroups(linear_params=linear, linear_rows=rows, other_params=other,
                        file_bytes=2 * (linear + other))


def model_info(model: CatalogModel) -> ModelInfo:
    """The :class:`ModelInfo` of a catalog model before it is downloaded (bf16 safetensors assumed)."""
    groups = tensor_groups(model)
    return ModelInfo(
        path=Path(model.repo),
        architecture=ARCHITECTURE_CLASSES[model.architecture],
        model_type=model.architecture,
        layers=model.layers,
        heads=model.heads,
        kv_heads=model.kv_heads,
        head_dim=model.head_dim,
        hidden_size=model.hidden_size,
        intermediate_size=model.intermediate_size,
        vocab_size=model.vocab_size,
        max_context=model.trained_context,
        dtype="bfloat16",
        size_on_disk=groups.file_bytes,
        has_chat_template=model.chat_template,
        groups=groups,
    )


def _check(condition: bool, where: str, problem: str) -> None:
    if not condition:
        raise ModelError(f"{where}: {problem}: fix the catalog entry")


def parse_entry(raw: dict, where: str) -> CatalogModel:
    """One ``[[models]]`` table, validated (types, names, revision form, architecture, languages)."""
    known = set(_INT_FIELDS) | set(_BOOL_FIELDS) | set(_STR_FIELDS) | {"languages", "files"}
    unknown = sorted(set(raw) - known)
    _check(not unknown, where, f"unknown field {unknown[0] if unknown else ''}")
    missing = sorted((set(known) - {"notes", "files"}) - set(raw))
    _check(not missing, where, f"missing field {missing[0] if missing else ''}")
    for key in _INT_FIELDS:
        _check(type(raw[key]) is int and raw[key] > 0, where, f"{key} must be a positive integer")
    for key in _BOOL_FIELDS:
        _check(type(raw[key]) is bool, where, f"{key} must be true or false")
    for key in _STR_FIELDS:
        _check(isinstance(raw.get(key, ""), str), where, f"{key} must be text")
    _check(bool(_NAME.match(raw["name"])), where, f"name {raw['name']!r} must be lower-case letters, digits, . _ -")
    _check(raw["repo"].count("/") == 1, where, f"repo {raw['repo']!r} must be owner/name")
    if raw["verified"]:
        _check(bool(_COMMIT.match(raw["revision"])), where, "a verified revision must be a 40-hex commit hash")
    else:
        _check(not _COMMIT.match(raw["revision"]) and bool(raw["revision"]), where,
               "an unverified revision is a branch name, not a hash")
    _check(raw["architecture"] in ARCHITECTURE_CLASSES, where,
           f"architecture {raw['architecture']!r} is not one of {', '.join(ARCHITECTURE_CLASSES)}")
    _check(raw["separators"] in _SEPARATOR_SETS, where, f"separators must be one of {', '.join(_SEPARATOR_SETS)}")
    languages = raw["languages"]
    _check(isinstance(languages, list) and bool(languages) and all(
        isinstance(code, str) and _LANGUAGE.match(code) for code in languages), where,
        "languages must be a non-empty list of ISO 639-1 codes")
    _check(raw["kv_heads"] <= raw["heads"] and raw["heads"] % raw["kv_heads"] == 0, where,
           "heads must be a multiple of kv_heads")
    files = {}
    for file_name, meta in (raw.get("files") or {}).items():
        _check(isinstance(meta, dict) and type(meta.get("size")) is int, where, f"file {file_name} needs a size")
        sha = meta.get("sha256")
        _check(sha is None or bool(re.match(r"^[0-9a-f]{64}$", sha)), where, f"file {file_name}: bad sha256")
        files[file_name] = CatalogFile(size=meta["size"], sha256=sha)
    values = {key: raw[key] for key in known - {"languages", "files"} if key in raw}
    return CatalogModel(**values, languages=tuple(languages), files=files)


def parse(text: str, source: str = "models.toml") -> dict[str, CatalogModel]:
    """Parse and validate a catalog's TOML text; names are unique; parameters match the config numbers."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"{source} is not valid TOML ({exc}): fix the catalog") from exc
    if raw.get("schema") != 1 or not isinstance(raw.get("models"), list):
        raise ModelError(f"{source} lacks 'schema = 1' or a [[models]] list: fix the catalog")
    entries: dict[str, CatalogModel] = {}
    for index, table in enumerate(raw["models"]):
        where = f"{source} entry {index + 1} ({table.get('name', '?')})"
        entry = parse_entry(table, where)
        _check(entry.name not in entries, where, "name used twice")
        counted = tensor_groups(entry).parameters
        _check(counted == entry.parameters, where,
               f"the config numbers give {counted:,} parameters, the entry says {entry.parameters:,}")
        entries[entry.name] = entry
    return entries


@lru_cache(maxsize=4)
def _load_file(path: str) -> dict[str, CatalogModel]:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelError(f"the model catalog {file} is unreadable ({exc}): reinstall SepSum") from exc
    return parse(text, file.name)


def load(path: Path | None = None) -> dict[str, CatalogModel]:
    """The catalog by name, in file order (read once per path).

    ``SEPSUM_CATALOG`` names another catalog file to use instead of the shipped one (an organisation's
    own list, or a test's loopback models).
    """
    return _load_file(str(path or os.environ.get("SEPSUM_CATALOG") or CATALOG_FILE))


def find(name_or_repo: str, path: Path | None = None) -> CatalogModel | None:
    """An entry by catalog name or Hugging Face repo id (case-insensitive); None when not listed."""
    key = (name_or_repo or "").strip().lower()
    for entry in load(path).values():
        if key in (entry.name, entry.repo.lower()):
            return entry
    return None


def get(name: str, path: Path | None = None) -> CatalogModel:
    """An entry by name or repo; a :class:`ModelError` naming the choices when it is not listed."""
    entry = find(name, path)
    if entry is None:
        names = ", ".join(load(path))
        raise ModelError(f"'{name}' is not in the model catalog (choose one of: {names}): "
                         "run 'sepsum models catalog'")
    return entry


def languages_for(name_or_repo: str | None) -> tuple[str, ...] | None:
    """ISO 639-1 codes of the languages a model writes, by catalog name, repo id or registry name.

    A registered model downloaded from the catalog is found through its registry notes; None means
    the catalog does not know the model (an imported folder or GGUF): the caller cannot tell.
    ``None`` as argument is the default model.
    """
    if name_or_repo is None:
        from app.engine.default_model import DEFAULT_MODEL_NAME

        name_or_repo = DEFAULT_MODEL_NAME
    entry = find(name_or_repo)
    if entry is None:
        entry = _catalog_entry_of_registered(name_or_repo)
    return entry.languages if entry is not None else None


def _catalog_entry_of_registered(name: str) -> CatalogModel | None:
    from app.engine import registry

    try:
        registered = registry.load().get(name)
    except ModelError:
        return None
    if registered is None:
        return None
    notes = registered.notes or {}
    keys = [notes["base"]] if registered.source == "adapter" and notes.get("base") else []
    keys += [key for key in (notes.get("catalog"), notes.get("repo")) if key]
    return next((entry for entry in map(find, keys) if entry is not None), None)
