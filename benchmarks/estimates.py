"""Run-time and memory estimates of every notebook's FULL mode, on a Colab T4 and on a laptop CPU.

    python benchmarks/estimates.py                 # prints the Markdown table
    python benchmarks/estimates.py --write         # also writes results/estimates.{md,json}

Nothing here is timed (timings on a shared machine mean little): the estimate is
arithmetic on counted work, with the throughput assumptions stated below.

Work. For every training run a notebook does in full mode (``RUNS``: model, input
size, images per epoch, epochs, batch, how often the run is repeated - frameworks,
losses, data sets), the multiply-adds (MACs) per image come from
``course_utils.flops.count_macs_torch`` (the Keras twins have the same layers and
counts; counted at 128 px and scaled by the number of pixels, which is exact for
these fully convolutional nets up to the ASPP's 1x1 image-pooling branch). One training step of an image costs 3x its forward MACs (forward, and a
backward pass about twice the forward); validation costs 1x per image and epoch.
Epoch counts are the notebooks' maxima (early stopping may end sooner).

Memory. The activations one training step keeps for the backward pass are measured
in PyTorch on the CPU with ``torch.autograd.graph.saved_tensors_hooks`` (bytes of
every distinct saved tensor), once in float32 and once under ``torch.autocast``
(bfloat16 on the CPU, the same 2 bytes per value as float16 on a GPU), per image and
at most 128 px, then scaled to the run's batch and size: these networks are fully
convolutional, so the saved activations grow exactly with the number of pixels.
GPU memory = activations x 1.3 (gradient buffers of the backward pass and allocator
fragmentation) + 16 bytes per parameter (weights, gradients, Adam's two moments)
+ 1 GB (CUDA context, cuDNN workspace). A notebook that trains in both frameworks
holds TensorFlow's peak (memory growth on, ``env.setup_notebook``) and PyTorch's at once: their sum.

Throughput assumptions (sustained, not peak). A T4 peaks at 65 TFLOP/s in float16 on
its tensor cores and 8.1 TFLOP/s in float32. Training small convolutional nets at
batch 8-16 keeps it far below peak: BatchNorm, ReLU, pooling, resizing and
concatenation are memory-bound (320 GB/s) and run at every pixel of every level.
We assume 6 TFLOP/s (about 9 % of the fp16 peak) with mixed precision (PyTorch's
``fit`` on CUDA; the capstone's Keras half) and 3 TFLOP/s (about 37 % of the fp32
peak) in float32 (Keras elsewhere) - the order of what ResNet-50 training reaches on
a T4 (a few hundred images/s with AMP, about a hundred in fp32, at ~25 GFLOP per
image). A laptop CPU (4 cores, AVX2, float32): 0.15 TFLOP/s sustained. Plus 1 minute
per notebook (imports, data, figures) and 20 s per trained model (graph tracing, XLA
compilation, cuDNN autotuning, the first epoch's warm-up). These are assumptions,
stated so that anyone with a T4 can check them against ``benchmarks/model_zoo.py``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"

T4_TFLOPS = {"amp": 6.0, "fp32": 3.0}
CPU_TFLOPS = 0.15
NOTEBOOK_OVERHEAD_S = 60.0
PER_MODEL_OVERHEAD_S = 20.0
T4_MEMORY_GB = 16.0
LIMIT_MINUTES, LIMIT_GB = 15.0, 14.0


@dataclass
class Run:
    notebook: str
    label: str
    model: str  # "unet", "fcn8s"/"fcn16s"/"fcn32s", "deeplab8"
    config: dict
    channels: int
    size: int  # training crop / image side
    train_images: int  # per epoch
    epochs: int
    batch: int
    precision: str  # "amp" or "fp32" on a GPU
    framework: str  # "keras" or "torch" (memory: the two are summed)
    val_size: int = 0
    val_images: int = 0
    repeats: int = 1  # identical runs (losses, data sets)
    predict_images: int = 0  # forward passes once after training (test set, reloaded checkpoints)


UNET_PAPER = {"base_filters": 64, "depth": 4}
CAPSTONE_EPOCHS = 8  # was 12: about 18 min on a T4, over the 15-minute budget
UNET_07 = {"base_filters": 32, "depth": 4}
UNET_05 = {"base_filters": 16, "depth": 3}
DL_07 = {"base_filters": 32, "atrous_rates": (2, 4, 6)}
FCN_07 = {"base_filters": 32}

# Full-mode settings, read from each notebook's configuration cell.
RUNS = [
    Run("03_unet_keras", "seed model (20 steps)", "unet", {"base_filters": 64, "depth": 2, "batch_norm": False},
        3, 128, 20 * 8, 1, 8, "fp32", "keras"),
    Run("03_unet_keras", "paper U-Net", "unet", UNET_PAPER, 1, 256, 160, 40, 8, "fp32", "keras", 512, 5),
    Run("04_unet_pytorch", "inline loop", "unet", UNET_PAPER, 1, 256, 160, 5, 8, "amp", "torch"),
    Run("04_unet_pytorch", "paper U-Net, fit", "unet", UNET_PAPER, 1, 256, 160, 40, 8, "amp", "torch", 512, 5),
    Run("05_loss_functions", "U-Net, shapes, 4 losses (Keras)", "unet", UNET_05, 3, 128, 480, 30, 8, "fp32",
        "keras", 128, 120, repeats=4),
    Run("05_loss_functions", "U-Net, membranes, 4 losses (Keras)", "unet", UNET_05, 1, 128, 192, 30, 8, "fp32",
        "keras", 128, 48, repeats=4),
    Run("05_loss_functions", "U-Net, shapes, 4 losses (PyTorch)", "unet", UNET_05, 3, 128, 480, 30, 8, "amp",
        "torch", 128, 120, repeats=4),
    Run("05_loss_functions", "U-Net, membranes, 4 losses (PyTorch)", "unet", UNET_05, 1, 128, 192, 30, 8, "amp",
        "torch", 128, 48, repeats=4),
    Run("06_evaluation", "U-Net, weighted CE", "unet", UNET_07, 1, 256, 24, 40, 8, "amp", "torch", 512, 6),
    # 07: FCN-32s/16s/8s (Keras); U-Net, FCN-8s, DeepLab OS8 on the shapes and on membrane tiles, both frameworks
    *[Run("07_fcn_deeplab", f"FCN-{v} (Keras)", f"fcn{v}", FCN_07, 3, 128, 600, 20, 8, "fp32", "keras", 128, 200)
      for v in ("32s", "16s", "8s")],
    *[Run("07_fcn_deeplab", f"{label}, {data} ({fw})", model, config, ch, 128, n_train, 20, 8,
          "fp32" if fw == "Keras" else "amp", fw.lower().replace("pytorch", "torch"), 128, n_val)
      for fw in ("Keras", "PyTorch")
      for data, ch, n_train, n_val in (("shapes", 3, 600, 200), ("membrane tiles", 1, 88, 32))
      for label, model, config in (("U-Net", "unet", UNET_07), ("FCN-8s", "fcn8s", FCN_07),
                                   ("DeepLab OS8", "deeplab8", DL_07))],
    # 3,680 trainval images, 10 % for validation; 1,000 test images predicted by the model and its reloaded copy
    *[Run("09_capstone", f"U-Net on the Pets ({fw})", "unet", UNET_07, 3, 256, 3312, CAPSTONE_EPOCHS, 16, "amp",
          fw.split(",")[0].lower().replace("pytorch", "torch"), 256, 368, predict_images=2000)
      for fw in ("Keras, mixed_float16", "PyTorch, AMP")],
]
# What the paper's sizes would cost (not run by any notebook): shown below the table.
WHAT_IF = [
    *[Run("09_capstone at 12 epochs", f"U-Net on the Pets ({fw})", "unet", UNET_07, 3, 256, 3312, 12, 16, "amp",
          fw.lower(), 256, 368, predict_images=2000) for fw in ("Keras", "torch")],
    *[Run("09_capstone with the paper's U-Net (64 filters)", f"U-Net on the Pets ({fw})", "unet", UNET_PAPER, 3,
          256, 3312, CAPSTONE_EPOCHS, 16, "amp", fw.lower(), 256, 368, predict_images=2000)
      for fw in ("Keras", "torch")],
    Run("03/04 on whole 512 px slices (paper: 572 px tiles)", "paper U-Net (PyTorch)", "unet", UNET_PAPER, 1, 512,
        160, 40, 8, "amp", "torch", 512, 5),
]
# 07's frozen MobileNetV2-DeepLab head is left out (at 128 px it costs less than one of the runs above).
NOTEBOOKS = ["00_setup", "01_data", "02_dense_prediction", "03_unet_keras", "04_unet_pytorch", "05_loss_functions",
             "06_evaluation", "07_fcn_deeplab", "09_capstone"]


def build(run: Run):
    from course_utils.torch.deeplab import DeepLabV3
    from course_utils.torch.fcn import FCN
    from course_utils.torch.unet import UNet

    if run.model == "unet":
        return UNet(in_channels=run.channels, num_classes=3, **run.config)
    if run.model.startswith("fcn"):
        return FCN(run.channels, 3, variant=run.model[3:], **run.config)
    return DeepLabV3(run.channels, 3, output_stride=8, **run.config)


def saved_activation_bytes(model, channels: int, size: int, autocast: bool) -> int:
    """Bytes per image of the distinct activations autograd saves for the backward pass of one training step.

    Counts every saved tensor whose first axis is the batch (5 images: no layer of these models has 5
    channels, so weights and their autocast copies are never counted), each storage once, divided by 5.
    """
    import torch

    batch = 5
    seen, total = set(), [0]

    def pack(tensor):
        key = tensor.untyped_storage().data_ptr()
        if tensor.dim() >= 1 and tensor.shape[0] == batch and key not in seen:
            seen.add(key)
            total[0] += tensor.untyped_storage().nbytes()
        return tensor

    model.train()
    x = torch.rand(batch, channels, size, size)
    context = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else torch.autocast("cpu", enabled=False)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), context:
        model(x).float().sum()
    return total[0] // batch


_CACHE: dict = {}  # per model configuration: parameters, MACs and saved activations (measured once)


def estimate(runs=RUNS) -> dict:
    import torch

    from course_utils import flops

    torch.manual_seed(0)
    per_run, cache = [], _CACHE
    for run in runs:
        key = (run.model, json.dumps(run.config, sort_keys=True), run.channels)
        if key not in cache:
            model = build(run)
            probe = min(run.size, 128)
            cache[key] = {
                "params": sum(p.numel() for p in model.parameters()),
                "probe": probe,
                "fp32": saved_activation_bytes(model, run.channels, probe, autocast=False),
                "amp": saved_activation_bytes(model, run.channels, probe, autocast=True),
                "macs": {},
            }
        info = cache[key]
        if not info["macs"]:
            info["macs"]["probe"] = flops.count_macs_torch(build(run), (run.channels, info["probe"], info["probe"]))
        for size in {run.size, run.val_size} - {0}:  # convolutions' MACs grow with the number of pixels
            info["macs"][size] = round(info["macs"]["probe"] * (size / info["probe"]) ** 2)
        train_macs = 3 * info["macs"][run.size] * run.train_images
        val_macs = info["macs"][run.val_size] * run.val_images if run.val_images else 0
        predict_macs = info["macs"][run.val_size or run.size] * run.predict_images
        total_macs = run.repeats * (run.epochs * (train_macs + val_macs) + predict_macs)
        scale = (run.size / info["probe"]) ** 2 * run.batch
        activations = info[run.precision] * scale
        gpu_bytes = 1.3 * activations + 16 * info["params"] + 1e9
        per_run.append({
            "notebook": run.notebook, "label": run.label, "framework": run.framework, "precision": run.precision,
            "params": info["params"], "macs_per_image": info["macs"][run.size], "total_macs": total_macs,
            "activation_gb": activations / 1e9, "gpu_gb": gpu_bytes / 1e9, "repeats": run.repeats,
            "t4_s": 2 * total_macs / (T4_TFLOPS[run.precision] * 1e12) + PER_MODEL_OVERHEAD_S * run.repeats,
            "cpu_s": 2 * total_macs / (CPU_TFLOPS * 1e12) + PER_MODEL_OVERHEAD_S * run.repeats,
        })
    notebooks = {}
    for name in dict.fromkeys([*NOTEBOOKS, *(r.notebook for r in runs)]):
        rows = [r for r in per_run if r["notebook"] == name]
        memory = {fw: max((r["gpu_gb"] for r in rows if r["framework"] == fw), default=0.0) for fw in ("keras", "torch")}
        notebooks[name] = {
            "tflop": sum(2 * r["total_macs"] for r in rows) / 1e12,
            "t4_minutes": (NOTEBOOK_OVERHEAD_S + sum(r["t4_s"] for r in rows)) / 60,
            "cpu_hours": (NOTEBOOK_OVERHEAD_S + sum(r["cpu_s"] for r in rows)) / 3600,
            "t4_gb": sum(memory.values()) if rows else 0.0,
        }
    return {"assumptions": {"t4_tflops": T4_TFLOPS, "cpu_tflops": CPU_TFLOPS,
                            "notebook_overhead_s": NOTEBOOK_OVERHEAD_S, "per_model_overhead_s": PER_MODEL_OVERHEAD_S},
            "runs": per_run, "notebooks": notebooks}


def minutes_text(minutes: float) -> str:
    """'about 3 min' (rounded up to whole minutes; 'about 1 min' at least)."""
    return f"about {max(1, math.ceil(minutes))} min"


def markdown(result: dict, what_if: dict | None = None) -> str:
    lines = [
        "| notebook | training work (TFLOP) | Colab T4, full mode | T4 memory (GB) | laptop CPU, full mode |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, nb in result["notebooks"].items():
        lines.append(f"| {name} | {nb['tflop']:.1f} | {minutes_text(nb['t4_minutes'])} | "
                     f"{nb['t4_gb']:.1f} | {nb['cpu_hours']:.1f} h |")
    lines += ["", "| notebook | training run | GMAC/image | runs | activations (GB) | GPU memory (GB) |",
              "|---|---|---:|---:|---:|---:|"]
    for r in result["runs"]:
        lines.append(f"| {r['notebook']} | {r['label']} ({r['precision']}) | {r['macs_per_image'] / 1e9:.2f} | "
                     f"{r['repeats']} | {r['activation_gb']:.2f} | {r['gpu_gb']:.1f} |")
    if what_if:
        lines += ["", "What larger settings would cost (no notebook runs these):", "",
                  "| setting | training work (TFLOP) | Colab T4 | T4 memory (GB) |", "|---|---:|---:|---:|"]
        for name, nb in what_if["notebooks"].items():
            if name not in NOTEBOOKS:
                lines.append(f"| {name} | {nb['tflop']:.1f} | {minutes_text(nb['t4_minutes'])} | {nb['t4_gb']:.1f} |")
    a = result["assumptions"]
    lines += ["", f"Assumed sustained throughput: T4 {a['t4_tflops']['amp']} TFLOP/s with mixed precision, "
              f"{a['t4_tflops']['fp32']} TFLOP/s in float32; laptop CPU {a['cpu_tflops']} TFLOP/s; plus "
              f"{a['notebook_overhead_s']:.0f} s per notebook and {a['per_model_overhead_s']:.0f} s per trained "
              "model. Why: see the docstring of benchmarks/estimates.py. Epochs are the notebooks' maxima."]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="write results/estimates.md and .json")
    args = parser.parse_args(argv)
    result = estimate()
    text = markdown(result, estimate(WHAT_IF))
    print(text)
    over = [n for n, nb in result["notebooks"].items() if nb["t4_minutes"] > LIMIT_MINUTES or nb["t4_gb"] > LIMIT_GB]
    if over:
        print(f"\nOver {LIMIT_MINUTES:.0f} min or {LIMIT_GB:.0f} GB on a T4: {', '.join(over)}")
    if args.write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "estimates.md").write_text("# Full-mode estimates (benchmarks/estimates.py)\n\n" + text + "\n")
        (RESULTS / "estimates.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
