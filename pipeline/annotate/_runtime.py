"""Torch plumbing shared by the stages: device and dtype, model loading with SDPA, batches
that halve on out-of-memory, and on-device image preprocessing.

Everything here imports torch lazily: the module itself is light.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from pipeline._errors import MissingExtraError, PipelineError

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def import_torch() -> Any:
    """torch, or a MissingExtraError naming the `models` extra."""
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(exc.name or "torch", "models") from None
    return torch


def torch_device(device: str) -> Any:
    """The torch device; asking for CUDA where there is none is an error, not a fallback."""
    torch = import_torch()
    if device == "cuda" and not torch.cuda.is_available():
        raise PipelineError("--device cuda was asked for but torch sees no CUDA device; "
                            "pass --device cpu or install a CUDA build of torch")
    return torch.device(device)


def torch_dtype(dtype: str) -> Any:
    return getattr(import_torch(), _DTYPES[dtype])


def load_pretrained(loader: Any, model_id: str, *, dtype: str, device: str,
                    compile_model: bool = False) -> tuple[Any, dict]:
    """`loader.from_pretrained(model_id)` in eval mode with SDPA attention (eager where the
    architecture has no SDPA path); returns the model and what to record about it.

    The device is checked before anything loads; on CUDA with accelerate installed the
    weights load straight onto the GPU instead of passing through host memory. Downloads
    show huggingface_hub's progress bars. With `compile_model` the model is wrapped in
    `torch.compile` (compiled at its first call for each new input shape)."""
    import importlib.util

    torch = import_torch()
    target = torch_device(device)
    kwargs: dict[str, Any] = {"dtype": torch_dtype(dtype)}
    if target.type == "cuda" and importlib.util.find_spec("accelerate") is not None:
        kwargs["device_map"] = str(target)
    try:
        try:
            model = loader.from_pretrained(model_id, attn_implementation="sdpa", **kwargs)
        except ValueError as exc:
            if "sdpa" not in str(exc).lower():
                raise
            logger.info("%s has no SDPA attention; using eager", model_id)
            model = loader.from_pretrained(model_id, **kwargs)
    except OSError as exc:
        raise _load_error(model_id, exc) from None
    model = model.to(target).eval()
    torch.set_grad_enabled(False)
    record = {**model_record(model, model_id, dtype), "compiled": compile_model}
    return (torch.compile(model) if compile_model else model), record


def _load_error(model_id: str, exc: OSError) -> PipelineError:
    """What to tell the user when `from_pretrained` fails: the hub's answer (gated, unknown
    id) with what to do about it, else the loader's own message."""
    from huggingface_hub import constants
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, RepositoryNotFoundError):
        cause = cause.__cause__
    login = "log in with `hf auth login` (or set HF_TOKEN) and run again"
    if isinstance(cause, GatedRepoError):
        return PipelineError(
            f"model {model_id!r} is gated on the hub: accept its licence at "
            f"{constants.ENDPOINT}/{model_id} with your account, then {login}")
    if isinstance(cause, RepositoryNotFoundError):
        status = cause.response.status_code if cause.response is not None else "an error"
        return PipelineError(
            f"model {model_id!r} is not a local folder, and the hub ({constants.ENDPOINT}) "
            f"answered {status}: no such model, or a private one. Check the id (org/name) "
            f"or the folder's path; for a private model {login}")
    return PipelineError(f"cannot load model {model_id!r} ({exc}); pass a hub id you can "
                         "download or a local folder made with save_pretrained")


def model_record(model: Any, model_id: str, dtype: str) -> dict[str, Any]:
    """Model id, class, revision (commit hash when loaded from the hub) and dtype."""
    config = getattr(model, "config", None)
    return {"model_id": model_id, "model_class": type(model).__name__,
            "revision": hub_revision(model_id), "dtype": dtype,
            "attn_implementation": getattr(config, "_attn_implementation", None)}


def hub_revision(model_id: str) -> str | None:
    """The commit a hub id's files were just loaded from: the one its cached `main` points
    to (transformers resolves `main` to a commit before loading and records it there).
    None for a local folder."""
    if Path(model_id).is_dir():
        return None
    from huggingface_hub import try_to_load_from_cache
    from transformers.utils.hub import extract_commit_hash

    found = try_to_load_from_cache(model_id, "config.json")
    return extract_commit_hash(found, None) if isinstance(found, str) else None


def repo_file(model_id: str, name: str) -> Path | None:
    """A file of a local folder or hub repository (downloaded once), None when absent."""
    folder = Path(model_id)
    if folder.is_dir():
        path = folder / name
        return path if path.is_file() else None
    from transformers.utils import cached_file

    found = cached_file(model_id, name, _raise_exceptions_for_missing_entries=False)
    return Path(found) if found else None


def preprocessor_dict(model_id: str, name: str = "preprocessor_config.json") -> dict[str, Any]:
    """The model's `preprocessor_config.json` (or `name`) as a dict ({} when absent)."""
    path = repo_file(model_id, name)
    return json.loads(path.read_text()) if path is not None else {}


def run_batched(fn: Callable[[Sequence[T]], list[R]], items: Sequence[T],
                batch_size: int) -> list[R]:
    """`fn` over `items` in batches; a CUDA out-of-memory halves the batch and retries."""
    torch = import_torch()
    results: list[R] = []
    start, size = 0, max(1, batch_size)
    while start < len(items):
        chunk = items[start:start + size]
        try:
            results.extend(fn(chunk))
        except torch.cuda.OutOfMemoryError:
            if size == 1:
                raise PipelineError("out of GPU memory with a batch of 1; use a smaller model, "
                                    "--dtype bf16 or a smaller --max-side") from None
            size = max(1, size // 2)
            torch.cuda.empty_cache()
            logger.warning("CUDA out of memory: retrying with batch size %s", size)
            continue
        start += len(chunk)
    return results


def images_to_tensor(images: Sequence[np.ndarray], device: Any) -> Any:
    """Stack HxWx3 uint8 frames into a float [B, 3, H, W] tensor in [0, 1] on `device`
    (the upload is uint8 from pinned host memory on CUDA, asynchronous, and the conversion
    runs on the device)."""
    torch = import_torch()
    host = torch.from_numpy(np.stack(images))
    if torch.device(device).type == "cuda":
        host = host.pin_memory()
    batch = host.to(device, non_blocking=True)
    return batch.permute(0, 3, 1, 2).float().div_(255.0)


def patch_multiple_size(height: int, width: int, patch: int, max_side: int) -> tuple[int, int]:
    """Aspect-preserving size whose sides are multiples of `patch`, the longer side at most
    `max_side` (never upscaled, never below one patch)."""
    scale = min(1.0, max_side / max(height, width))
    h = max(patch, round(height * scale / patch) * patch)
    w = max(patch, round(width * scale / patch) * patch)
    return h, w


def resize_normalize(batch: Any, size: tuple[int, int], mean: Sequence[float],
                     std: Sequence[float]) -> Any:
    """Bilinear (antialiased) resize of a [B, 3, H, W] batch in [0, 1], then normalize."""
    torch = import_torch()
    if tuple(batch.shape[-2:]) != tuple(size):
        batch = torch.nn.functional.interpolate(batch, size=size, mode="bilinear",
                                                align_corners=False, antialias=True)
    mean_t = torch.tensor(mean, device=batch.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=batch.device).view(1, 3, 1, 1)
    return (batch - mean_t) / std_t


def free_device_memory() -> None:
    """Return a dropped model's memory to the device (one model resident at a time)."""
    import gc

    torch = import_torch()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
