"""Annotation throughput: our stages vs the naive peer, on the same session, in one run.

The peer is the prototype's way: one frame at a time, fp32, squashed to 224x224. Ours:
batched, decode prefetched on a thread, on-device resize keeping the aspect ratio, bf16 on
CUDA. With CUDA, full-size architectures with random weights (throughput does not depend
on the weights); without, the tiny test models on CPU.

    python benchmarks/annotate.py [--frames 240] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from capture import Session
from pipeline.annotate import AnnotateSettings, annotate
from pipeline.annotate._runtime import patch_multiple_size
from tests.pipeline.annotate_fixtures import (
    HEIGHT,
    WIDTH,
    build_tiny_models,
    make_session,
)

H100_BF16_FLOPS = 989e12


def full_size_embed(folder: Path) -> str:
    """A ViT-L/16 DINOv3 with random weights (GPU runs)."""
    import transformers as tf

    tf.DINOv3ViTModel(tf.DINOv3ViTConfig(hidden_size=1024, intermediate_size=4096,
                                         num_hidden_layers=24, num_attention_heads=16,
                                         num_register_tokens=4)).save_pretrained(folder)
    return str(folder)


def naive_embed(session: Path, model_id: str, device: str) -> float:
    """Per frame, unbatched, fp32, 224x224 squash: frames/s."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(model_id).to(device).eval()
    frames = 0
    start = time.perf_counter()
    with torch.no_grad():
        for frame in Session.open(session).iter_frames():
            x = torch.from_numpy(frame.image).permute(2, 0, 1)[None].float().div(255).to(device)
            x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear")
            model(pixel_values=x)
            frames += 1
    if device == "cuda":
        torch.cuda.synchronize()
    return frames / (time.perf_counter() - start)


def timed(session: Path, stage: str, settings: AnnotateSettings) -> tuple[float, dict]:
    start = time.perf_counter()
    [report] = annotate([session], [stage], settings)
    if settings.device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, report.summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    device, dtype = ("cuda", "bf16") if cuda else ("cpu", "fp32")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models = build_tiny_models(root / "models")
        if cuda:
            models["embed"] = full_size_embed(root / "embed-large")
        session = make_session(root, "bench", frames=args.frames)
        settings = AnnotateSettings(device=device, dtype=dtype, models=models,
                                    batch_size=args.batch_size, max_side=224, dense_every=10,
                                    caption_every=10, max_new_tokens=16)
        print(f"device {device}, dtype {dtype}, {args.frames} frames of 96x64, "
              f"torch threads {torch.get_num_threads()}")
        peer = naive_embed(session, models["embed"], device)
        results = {}
        for stage in ("embed", "segment", "caption", "video"):
            seconds, summary = timed(session, stage, settings)
            results[stage] = seconds
            print(f"  {stage:8s} {args.frames / seconds:9.1f} frames/s  {summary}")
        total = sum(results.values())
        print(f"  end to end {args.frames / total:7.1f} frames/s (4 stages)")
        ours = args.frames / results["embed"]
        print(f"embed: ours {ours:.1f} frames/s, naive peer {peer:.1f} frames/s, "
              f"ratio {ours / peer:.2f}x")
        from transformers import AutoModel

        model = AutoModel.from_pretrained(models["embed"])
        params = sum(p.numel() for p in model.parameters())
        h, w = patch_multiple_size(HEIGHT, WIDTH, 16, settings.max_side)
        tokens = 1 + model.config.num_register_tokens + (h // 16) * (w // 16)
        print(f"embed input: ours {w}x{h} (aspect kept, never upscaled), peer 224x224 squash")
        flops = 2 * params * tokens * ours
        print(f"embed model: {params / 1e6:.2f} M params, ~{flops / 1e9:.2f} GFLOP/s achieved")
        if cuda:
            print(f"embed MFU vs H100 bf16 peak: {flops / H100_BF16_FLOPS:.1%}; peak GPU "
                  f"memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak host memory (max RSS): {rss:.0f} MiB")


if __name__ == "__main__":
    main()
