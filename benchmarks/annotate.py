"""Annotation throughput: our stages against the prototype's way, on the same frames.

Three measurements, one run:

1. decode overlap (`--part decode`): a stub stage that computes at `--stub-fps` frames/s
   in batches of 16 (it sleeps, as a GPU kernel leaves the CPU free) over a real H.264
   session. Ours decodes once on a thread and streams each shard to the stage as it fills,
   a shard ahead; the prototype kept a 32-frame queue smaller than a 256-frame shard and
   started a shard only when it was complete, so decoding stalled behind compute. Printed:
   wall time of each, compute alone and decode alone (hidden decoding: ours ~= the max).
2. range read (`--part range`): what a Ray actor decodes for one frame range (the last
   256 frames of the session): a seek to the keyframe before it against decoding from
   the first frame.
3. stages (`--part stages`): each stage's `process` on in-memory 1080p frames with labels,
   steady state (one shard of warm-up, then timed shards; CUDA events on GPU, excluding
   loading and writing), FLOPs of one shard counted by torch.utils.flop_counter, frames/s
   and MFU per stage and for the full stack (embed every frame, SAM 3 box-prompt tracking,
   event captions, V-JEPA 2 clips), against the prototype's way on the same frames: one
   frame per call (batch 1) in fp32. With `--compile`, embed and video are timed again
   compiled (the warm-up shard compiles), against their eager rate.

On CUDA the default architectures are built with random weights (throughput does not depend
on the weights): DINOv3 ViT-7B/16, SAM 3, V-JEPA 2 ViT-L (Qwen3-VL keeps the test width:
an 8B random checkpoint is 17 GB to write). On a CPU they do not finish; `--scale small`
(the default without CUDA) uses a ViT-S/16 DINOv3 and the test widths of the others, at the
same 1080p input, and MFU is against the CPU's own measured fp32 matmul rate.

    python benchmarks/annotate.py [--part all] [--frames 64] [--scale default|small]
"""

from __future__ import annotations

import argparse
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from capture import FrameRecord, Session, SessionWriter, VideoFrame
from capture._video import VideoWriter
from pipeline.annotate import AnnotateSettings, ShardInput, ShardOutput, annotate, register_stage
from pipeline.annotate._engine import resolve_device
from pipeline.annotate._inputs import _frame_label
from pipeline.annotate._registry import create_stage
from tests.pipeline.annotate_fixtures import build_tiny_models, frame_label

H100_BF16_FLOPS = 989e12  # dense bf16 peak of an H100/H200 SXM
STUB_FPS = [100.0]


# -- 1. decode overlap -------------------------------------------------------------------

@register_stage("stub")
class StubStage:
    """Computes at STUB_FPS frames/s without holding the CPU (a GPU model's shape)."""

    name, needs_labels, overlap, settings_keys = "stub", False, 0, ()

    def __init__(self, settings: AnnotateSettings) -> None:
        self.settings = settings

    def load(self) -> dict[str, Any]:
        return {"model_id": "stub"}

    def process(self, shard: ShardInput) -> ShardOutput:
        for start in range(0, len(shard.frames), 16):  # batches of 16, as a model takes them
            batch = shard.frames[start:start + 16]
            time.sleep(len(batch) / STUB_FPS[0])
        return ShardOutput(counts={"frames": len(shard.frames)})

    def close(self) -> None:
        pass


def write_session(parent: Path, frames: int, width: int, height: int) -> Path:
    writer = SessionWriter.create(parent, "bench")
    pts = [i * 33_000 for i in range(frames)]
    writer.append_frames(FrameRecord(index=i, pts_us=p, grab_start_ns=10**9 + p * 1000,
                                     grab_end_ns=10**9 + p * 1000 + 500,
                                     wall_ns=1_700_000_000 * 10**9 + p * 1000).model_dump()
                         for i, p in enumerate(pts))
    with VideoWriter(writer.path / "video.mkv", width, height, fps_hint=30, crf=23) as video:
        for i, p in enumerate(pts):
            video.write(render(i, width, height), p)
    writer.finalize()
    return writer.path


def prototype_wall(session: Path, shard: int, depth: int = 32) -> float:
    """The prototype's loop: a `depth`-frame decode queue, a shard processed when full."""
    items: queue.Queue[VideoFrame | None] = queue.Queue(maxsize=depth)

    def decode() -> None:
        for frame in Session.open(session).iter_frames():
            items.put(frame)
        items.put(None)

    start = time.perf_counter()
    threading.Thread(target=decode, daemon=True).start()
    batch: list[VideoFrame] = []
    while (frame := items.get()) is not None:
        batch.append(frame)
        if len(batch) == shard:
            time.sleep(len(batch) / STUB_FPS[0])
            batch = []
    time.sleep(len(batch) / STUB_FPS[0])
    return time.perf_counter() - start


def decode_part(args: argparse.Namespace, root: Path) -> None:
    STUB_FPS[0] = args.stub_fps
    width, height = args.decode_size
    session = write_session(root / "decode", args.decode_frames, width, height)
    start = time.perf_counter()
    n = sum(1 for _ in Session.open(session).iter_frames())
    decode_s = time.perf_counter() - start
    compute_s = n / args.stub_fps
    prototype_s = prototype_wall(session, 256)
    resolve_device(AnnotateSettings(device="cpu"))  # imports torch/transformers untimed
    start = time.perf_counter()
    annotate([session], ["stub"], AnnotateSettings(device="cpu", shard_frames=256))
    ours_s = time.perf_counter() - start
    print(f"decode overlap: {n} frames of {width}x{height}, stub stage at "
          f"{args.stub_fps:.0f} frames/s, shards of 256")
    print(f"  decode alone {decode_s:6.2f} s ({n / decode_s:.0f} frames/s), compute alone "
          f"{compute_s:6.2f} s")
    print(f"  prototype (32-frame queue) {prototype_s:6.2f} s, ours (streamed shards) "
          f"{ours_s:6.2f} s, ratio {prototype_s / ours_s:.2f}x; ideal max(decode, compute) "
          f"{max(decode_s, compute_s):.2f} s")


def range_part(args: argparse.Namespace, root: Path) -> None:
    """A Ray actor's read of one frame range: the last shard of the session, by
    `iter_frames(start)` (a seek to the keyframe before it) against a sequential PyAV read
    that decodes from the first frame and converts only the range's frames to RGB."""
    width, height = args.decode_size
    session = Session.open(write_session(root / "range", args.decode_frames, width, height))
    start = max(0, args.decode_frames - 256)
    session.read_frames()  # the frame table's first read imports pyarrow's parts: untimed

    begin = time.perf_counter()
    ours = sum(1 for _ in session.iter_frames(start))
    ours_s = time.perf_counter() - begin
    import av

    first_pts = session.read_frames()["pts_us"][start].as_py()
    begin = time.perf_counter()
    peer = 0
    with av.open(str(session.path / "video.mkv")) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):  # every frame decoded, only the range kept
            if round(frame.pts * stream.time_base * 1_000_000) >= first_pts:
                frame.to_ndarray(format="rgb24")
                peer += 1
    peer_s = time.perf_counter() - begin
    assert ours == peer == args.decode_frames - start
    print(f"range read: frames {start}..{args.decode_frames - 1} of {args.decode_frames} "
          f"({width}x{height}, keyframe every 60)")
    print(f"  seek {ours_s:6.2f} s, decode from the start {peer_s:6.2f} s, "
          f"ratio {peer_s / ours_s:.2f}x")


# -- 2. stages -----------------------------------------------------------------------------

def render(index: int, width: int, height: int) -> np.ndarray:
    image = np.full((height, width, 3), 40, np.uint8)
    image[height * 3 // 4:] = (60, 120, 60)
    x0, y0, x1, y1 = (int(v) for v in box(index, width, height))
    image[y0:y1, x0:x1] = (220, 30, 30)
    return image


def box(index: int, width: int, height: int) -> tuple[float, ...]:
    x0 = (width // 32 + 12 * index) % (width - width // 6)
    return (x0, height * 0.4, x0 + width / 6, height * 0.4 + height / 4)


def frames_and_labels(count: int, width: int, height: int):
    frames = [VideoFrame(i, i * 33_333, render(i, width, height)) for i in range(count)]
    labels = {}
    for i in range(count):
        row = frame_label(i)
        row["objects"][0]["box_xyxy"] = list(box(i, width, height))
        row["objects"][1]["box_xyxy"] = [width * 0.7, height * 0.1, width * 0.85, height * 0.3]
        labels[i] = _frame_label(row)
    return frames, labels


def default_models(root: Path, scale: str) -> dict[str, str]:
    """Random-weight folders of the default architectures (or small widths of them)."""
    import transformers as tf

    small = scale == "small"
    paths = build_tiny_models(root / "tiny")
    dino = tf.DINOv3ViTConfig(
        hidden_size=384 if small else 4096, num_hidden_layers=12 if small else 40,
        num_attention_heads=6 if small else 32, intermediate_size=1536 if small else 8192,
        use_gated_mlp=not small, num_register_tokens=4, patch_size=16)
    tf.DINOv3ViTModel(dino).to(torch.bfloat16).save_pretrained(root / "embed")
    paths["embed"] = str(root / "embed")
    if not small:
        sam = tf.Sam3VideoModel(tf.Sam3VideoConfig()).to(torch.bfloat16)
        sam.save_pretrained(root / "segment")
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(paths["segment"]).save_pretrained(root / "segment")
        paths["segment"] = str(root / "segment")
        tf.VJEPA2Model(tf.VJEPA2Config()).to(torch.bfloat16).save_pretrained(root / "video")
        paths["video"] = str(root / "video")
    return paths


def timed(fn: Callable[[], Any], cuda: bool) -> float:
    if cuda:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1000
    start_s = time.perf_counter()
    fn()
    return time.perf_counter() - start_s


def cpu_peak() -> float:
    """Achieved fp32 FLOP/s of a large matmul on this CPU (the MFU reference off-GPU)."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    start = time.perf_counter()
    for _ in range(5):
        a @ b
    return 5 * 2 * 2048**3 / (time.perf_counter() - start)


def measure(stage_name: str, settings: AnnotateSettings, shards: list[ShardInput],
            cuda: bool, count_flops: bool = True) -> tuple[float, float]:
    """(frames/s, FLOPs per frame) of a stage in steady state: warm-up on the first shard,
    the others timed, FLOPs counted on the last (0 when not `count_flops`: a compiled model
    is not counted, it does the eager model's work). Compiled, the second shard is run
    before timing too: its look-back frames give the video stage another clip batch, a new
    shape that torch.compile compiles at first sight."""
    from torch.utils.flop_counter import FlopCounterMode

    stage = create_stage(stage_name, settings)
    stage.load()
    try:
        for shard in shards[:2] if settings.compile_models else shards[:1]:  # warm-up
            stage.process(shard)
        seconds = sum(timed(lambda s=s: stage.process(s), cuda) for s in shards[1:])
        fps = sum(len(s.frames) for s in shards[1:]) / seconds
        if not count_flops:
            return fps, 0.0
        counter = FlopCounterMode(display=False)
        with counter:
            stage.process(shards[-1])
        return fps, counter.get_total_flops() / len(shards[-1].frames)
    finally:
        stage.close()


def stages_part(args: argparse.Namespace, root: Path) -> None:
    cuda = torch.cuda.is_available()
    scale = args.scale or ("default" if cuda else "small")
    models = default_models(root / "models", scale)
    ours = AnnotateSettings(device="cuda" if cuda else "cpu", dtype="bf16" if cuda else "fp32",
                            models=models, batch_size=args.batch_size,
                            shard_frames=args.frames, max_side=args.max_side,
                            caption_every=2.0, max_new_tokens=args.max_new_tokens,
                            clip_frames=16, clip_stride=8, vocabulary=("tree",),
                            allow_large_on_cpu=True)
    prototype = replace(ours, dtype="fp32", batch_size=1)
    frames, labels = frames_and_labels(args.frames * (args.shards + 1), 1920, 1080)
    # one jump + land per shard: one event caption per shard (a busy session; the 2 s
    # periodic captions come on top where a shard crosses a window)
    events = tuple(e for k in range(args.shards + 1)
                   for e in (_event("jump", k * args.frames + 1, k * args.frames + 3),
                             _event("land", k * args.frames + 4, k * args.frames + 4)))
    shards = [ShardInput(k, frames[k * args.frames:(k + 1) * args.frames],
                         frames[max(0, k * args.frames - 15):k * args.frames], labels, events)
              for k in range(args.shards + 1)]
    peak = H100_BF16_FLOPS if cuda else cpu_peak()
    reference = ("H100 bf16 peak" if cuda
                 else f"this CPU's fp32 matmul rate, {peak / 1e9:.0f} GFLOP/s")
    print(f"stages: {scale} architectures, 1080p frames, {args.shards} timed shards of "
          f"{args.frames} after one warm-up; {'CUDA events' if cuda else 'perf_counter'}; "
          f"MFU against {reference}")
    total_ours = total_proto = 0.0
    for name in args.stages.split(","):
        fps, flops = measure(name, ours, shards, cuda)
        proto_fps, _ = measure(name, prototype, shards, cuda)
        total_ours += 1 / fps
        total_proto += 1 / proto_fps
        print(f"  {name:8s} ours {fps:8.2f} frames/s  {flops / 1e9:9.2f} GFLOP/frame  MFU "
              f"{flops * fps / peak:6.1%}   prototype (batch 1, fp32) {proto_fps:8.2f} frames/s"
              f"  ratio {fps / proto_fps:.2f}x")
        if args.compile and name in ("embed", "video"):
            compiled_fps, _ = measure(name, replace(ours, compile_models=True), shards, cuda,
                                      count_flops=False)
            print(f"  {name:8s} --compile {compiled_fps:8.2f} frames/s  MFU "
                  f"{flops * compiled_fps / peak:6.1%}   ratio to eager "
                  f"{compiled_fps / fps:.2f}x")
    if len(args.stages.split(",")) < 4:
        return
    print(f"  full stack ours {1 / total_ours:.2f} frames/s, prototype {1 / total_proto:.2f} "
          f"frames/s, ratio {total_proto / total_ours:.2f}x")


def _event(kind: str, start: int, end: int):
    from pipeline.annotate import LabelEvent

    return LabelEvent(kind, start, end)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["all", "decode", "range", "stages"],
                        default="all")
    parser.add_argument("--stub-fps", type=float, default=100.0)
    parser.add_argument("--decode-frames", type=int, default=800)
    parser.add_argument("--decode-size", type=int, nargs=2, default=[640, 360])
    parser.add_argument("--scale", choices=["default", "small"])
    parser.add_argument("--frames", type=int, default=32, help="frames per shard")
    parser.add_argument("--shards", type=int, default=2, help="timed shards")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-side", type=int, default=512)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--stages", default="embed,segment,caption,video",
                        help="stages timed (the full stack needs all four)")
    parser.add_argument("--compile", action="store_true",
                        help="also time embed and video with torch.compile")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"cuda {torch.cuda.is_available()}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.part in ("all", "decode"):
            decode_part(args, Path(tmp))
        if args.part in ("all", "range"):
            range_part(args, Path(tmp))
        if args.part in ("all", "stages"):
            stages_part(args, Path(tmp))


if __name__ == "__main__":
    main()
