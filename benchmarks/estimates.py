"""Run-time and memory estimates of every notebook's FULL mode, on a Colab T4 and on a laptop CPU.

    python benchmarks/estimates.py                 # prints the Markdown table
    python benchmarks/estimates.py --write         # also writes results/estimates.{md,json}

Nothing here is timed (timings on a shared machine mean little): the estimate is
arithmetic on counted work, with the throughput assumptions stated below.

Work. For every training run a notebook does in full mode (``RUNS``: model, input
size, images per epoch, epochs, batch, how often the run is repeated - frameworks,
losses, data sets), the multiply-adds (MACs) per image come from
``course_utils.flops.count_macs_torch`` (the Keras twins have the same layers and
counts; counted at the run's size, at most 128 px, and scaled by the number of pixels, which is exact for
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
image). A laptop CPU (4 cores, AVX2, float32): 0.15 TFLOP/s sustained. Some runs stay
on the CPU even on Colab (``device="cpu"`` in ``RUNS``: lecture 08's quick PyTorch runs, range test and
throughput probe, and lecture 11's child processes, which hide the GPU): on Colab's 2 vCPUs (one physical
core of a 2.2 GHz Xeon, about 70 GFLOP/s float32 peak with AVX2 FMA) the tiny networks they train (8 base
filters, 48-64 px) reach well under half of that, so we assume 0.03 TFLOP/s; they use no GPU memory. Plus 1 minute
per notebook (imports, data, figures) and 20 s per trained model (graph tracing, XLA
compilation, cuDNN autotuning, the first epoch's warm-up). These are assumptions,
stated so that anyone with a T4 can check them against ``benchmarks/model_zoo.py``.

Rows. ``RUNS`` has one row per training run of each lecture (key: the notebook's name) and, in
``SOLUTION_RUNS``, of each solution notebook (key: ``solutions/NAME``; its exercise runs the same cells).
``scripts/nbtool.py`` writes each notebook's estimate into its "Expected run time" line, and
``tests/test_repository.py`` checks that every lecture, solution and exercise has a row and quotes it.
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
COLAB_CPU_TFLOPS = 0.03  # runs a notebook keeps on Colab's CPU (2 vCPUs), see the docstring
NOTEBOOK_OVERHEAD_S = 60.0
PER_MODEL_OVERHEAD_S = 20.0
T4_MEMORY_GB = 16.0
LIMIT_MINUTES, LIMIT_GB = 15.0, 14.0


@dataclass
class Run:
    notebook: str
    label: str
    model: str  # "unet", "fcn8s"/"fcn16s"/"fcn32s", "deeplab8", "deeplabplus8"
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
    predict_size: int = 0  # side of the predicted images (default: val_size, else size)
    classes: int = 3  # output classes (the last layer only)
    device: str = "gpu"  # "cpu": runs on the CPU even on Colab (Colab's CPU throughput, no GPU memory)


UNET_PAPER = {"base_filters": 64, "depth": 4}
CAPSTONE_EPOCHS = 8  # was 12: about 18 min on a T4, over the 15-minute budget
UNET_32 = {"base_filters": 32, "depth": 4}   # 06, the capstone, 11's --preset full
UNET_8 = {"base_filters": 8, "depth": 3}     # 05, 07 (depth 3 at 64 px)
FCN_8 = {"base_filters": 8}
DL_8 = {"base_filters": 8, "atrous_rates": (1, 2, 3)}

# Full-mode settings, read from each notebook's configuration cell (env.pick(full=...)).
RUNS = [
    Run("03_unet_keras", "seed model (20 steps)", "unet", {"base_filters": 64, "depth": 2, "batch_norm": False},
        3, 128, 20 * 8, 1, 8, "fp32", "keras"),
    Run("03_unet_keras", "paper U-Net", "unet", UNET_PAPER, 1, 256, 160, 40, 8, "fp32", "keras", 512, 5),
    Run("04_unet_pytorch", "inline loop", "unet", UNET_PAPER, 1, 256, 160, 5, 8, "amp", "torch"),
    Run("04_unet_pytorch", "paper U-Net, fit", "unet", UNET_PAPER, 1, 256, 160, 40, 8, "amp", "torch", 512, 5),
    # 05: 64-px shapes (4 classes), 64 training images, 48 validation images predicted once after training;
    # the same U-Net trained with 4 losses in each framework; no validation during fit.
    *[Run("05_loss_functions", f"U-Net, shapes, 4 losses ({fw})", "unet", UNET_8, 3, 64, 64, 20, 4, precision,
          fw.lower().replace("pytorch", "torch"), predict_images=48, repeats=4, classes=4)
      for fw, precision in (("Keras", "fp32"), ("PyTorch", "amp"))],
    Run("06_evaluation", "U-Net, weighted CE", "unet", UNET_32, 1, 256, 24, 40, 8, "amp", "torch", 512, 6),
    # 07: 128 images of 64 px (2x2 scenes, 4 classes), 96 train / 32 validation predicted once: FCN-32s/16s/8s
    # (Keras), then U-Net, FCN-8s, DeepLab OS8 and DeepLabV3+ OS8 in both frameworks on the shapes and on membrane tiles
    # (30 slices at 256 px -> 16 tiles each; 22 training slices, 8 validation slices).
    *[Run("07_fcn_deeplab", f"FCN-{v}, shapes (Keras)", f"fcn{v}", FCN_8, 3, 64, 96, 20, 8, "fp32", "keras",
          predict_images=32, classes=4) for v in ("32s", "16s", "8s")],
    *[Run("07_fcn_deeplab", f"{label}, {dataset} ({fw})", model, config, ch, 64, n_train, 20, 8,
          "fp32" if fw == "Keras" else "amp", fw.lower().replace("pytorch", "torch"), predict_images=n_val,
          classes=classes)
      for fw in ("Keras", "PyTorch")
      for dataset, ch, classes, n_train, n_val in (("shapes", 3, 4, 96, 32), ("membrane tiles", 1, 2, 352, 128))
      for label, model, config in (("U-Net", "unet", UNET_8), ("FCN-8s", "fcn8s", FCN_8),
                                   ("DeepLab OS8", "deeplab8", DL_8), ("DeepLabV3+ OS8", "deeplabplus8", DL_8))],
    # 08: 48-px shapes, 128 training / 64 held-out images, 8 epochs. torch_dynamics.train_and_score trains on the
    # CPU (device="cpu") even on Colab: 7 learning rates, pure and weighted CE, and the default rate once more;
    # the range test (100 steps) and the throughput probe (11 steps at each batch 1..64) also use the CPU.
    Run("08_training_dynamics", "U-Net, 10 quick runs (PyTorch)", "unet",
        {"base_filters": 8, "depth": 2}, 3, 48, 128, 8, 8, "fp32", "torch", predict_images=64, repeats=10,
        classes=4, device="cpu"),
    Run("08_training_dynamics", "U-Net, lr range test, 100 steps (PyTorch)", "unet",
        {"base_filters": 8, "depth": 2}, 3, 48, 100 * 8, 1, 8, "fp32", "torch", classes=4, device="cpu"),
    Run("08_training_dynamics", "U-Net, throughput probe (PyTorch)", "unet",
        {"base_filters": 8, "depth": 2}, 3, 48, 11 * (1 + 2 + 4 + 8 + 16 + 32 + 64), 1, 64, "fp32", "torch",
        classes=4, device="cpu"),
    Run("08_training_dynamics", "U-Net, one run (Keras)", "unet", {"base_filters": 8, "depth": 2}, 3, 48, 128, 8, 8,
        "fp32", "keras", predict_images=64, classes=4),
    # 3,680 trainval images, 10 % for validation; 1,000 test images predicted by the model and its reloaded copy
    *[Run("09_capstone", f"U-Net on the Pets ({fw})", "unet", UNET_32, 3, 256, 3312, CAPSTONE_EPOCHS, 16, "amp",
          fw.split(",")[0].lower().replace("pytorch", "torch"), 256, 368, predict_images=2000)
      for fw in ("Keras, mixed_float16", "PyTorch, AMP")],
    # The timing section: 2 warm-up + 20 measured training steps of a fresh model per framework (22 x 16 at 256 px).
    *[Run("09_capstone", f"U-Net, step timing, 22 steps ({fw})", "unet", UNET_32, 3, 256, 22 * 16, 1, 16, "amp",
          fw.lower().replace("pytorch", "torch")) for fw in ("Keras", "PyTorch")],
    # 10: two folders (street scenes, 7 classes; cells) of 400 images at 128 px, 25 % held out: 20 epochs of
    # 50 steps of 8 random 96-px crops, validation on 100 centre crops each epoch, then 100 whole images predicted.
    Run("10_own_data", "U-Net, street scenes and cells (PyTorch)", "unet", {"base_filters": 32, "depth": 3}, 3, 96,
        50 * 8, 20, 8, "amp", "torch", 96, 100, repeats=2, predict_images=100, predict_size=128, classes=7),
    # 11: the training scripts run as child processes with the GPU hidden (CUDA_VISIBLE_DEVICES=""), 60 steps of
    # a global batch of 8 at 64 px (U-Net 8 filters, depth 3, no BatchNorm); Keras's BatchNorm runs take 3 steps.
    Run("11_distributed", "DDP U-Net: 2 processes, 1 process, 2 with bf16 (PyTorch)", "unet",
        {**UNET_8, "batch_norm": False}, 3, 64, 60 * 8, 1, 8, "fp32", "torch", repeats=3, classes=4, device="cpu"),
    Run("11_distributed", "MirroredStrategy U-Net: 2 devices, 1 device (Keras)", "unet",
        {**UNET_8, "batch_norm": False}, 3, 64, 60 * 8, 1, 8, "fp32", "keras", repeats=2, classes=4, device="cpu"),
    Run("11_distributed", "U-Net with BatchNorm, 3 steps: BN 1/2 devices, SyncBN (Keras)", "unet",
        UNET_8, 3, 64, 3 * 8, 1, 8, "fp32", "keras", repeats=3, classes=4, device="cpu"),
]
# The solution notebooks (their exercises run the same cells): keyed "solutions/NAME" in the table.
# 03/04: the paper U-Net on 8 random 256-px crops of each of 20 slices, 30 epochs, validated on 5 corners of
# 128 px, 5 whole test slices predicted; 04 trains with the student's own float32 loop (no autocast), and its
# skip-connection task trains two tiny U-Nets (32 px, 200 steps of 8) on the CPU.
SOLUTION_RUNS = [
    Run("solutions/03_unet_keras", "paper U-Net", "unet", UNET_PAPER, 1, 256, 160, 30, 8, "fp32", "keras", 128, 5,
        predict_images=5, predict_size=512, classes=2),
    Run("solutions/04_unet_pytorch", "paper U-Net, own loop", "unet", UNET_PAPER, 1, 256, 160, 30, 8, "fp32",
        "torch", 128, 5, predict_images=5, predict_size=512, classes=2),
    Run("solutions/04_unet_pytorch", "tiny U-Nets with and without skips (PyTorch)", "unet",
        {"base_filters": 8, "depth": 2}, 1, 32, 200 * 8, 1, 8, "fp32", "torch", repeats=2, classes=2,
        device="cpu"),
    # 05: 96-px shapes, 320 training / 80 validation images, 20 epochs, one U-Net (16 filters, depth 2) per framework
    Run("solutions/05_loss_functions", "U-Net, CE + Dice (Keras)", "unet", {"base_filters": 16, "depth": 2}, 3, 96,
        320, 20, 8, "fp32", "keras", predict_images=80, classes=4),
    Run("solutions/05_loss_functions", "U-Net, CE + Dice (PyTorch)", "unet", {"base_filters": 16, "depth": 2}, 3,
        96, 320, 20, 8, "amp", "torch", 96, 80, predict_images=80, classes=4),
    # 08: eight train_and_score runs (on the CPU, like the lecture's) and a 70-step range test
    Run("solutions/08_training_dynamics", "U-Net, 8 quick runs (PyTorch)", "unet", {"base_filters": 8, "depth": 2},
        3, 48, 128, 8, 8, "fp32", "torch", predict_images=64, repeats=8, classes=4, device="cpu"),
    Run("solutions/08_training_dynamics", "U-Net, lr range test, 70 steps (PyTorch)", "unet",
        {"base_filters": 8, "depth": 2}, 3, 48, 70 * 8, 1, 8, "fp32", "torch", classes=4, device="cpu"),
]
RUNS += SOLUTION_RUNS
# Trained models whose work is negligible but whose set-up (tracing, compilation) still costs PER_MODEL_OVERHEAD_S:
# 07's MobileNetV2-DeepLab head on a frozen backbone (64 px, 20 epochs of 96 images: well under 1 TFLOP).
EXTRA_MODELS = {"07_fcn_deeplab": 1}
# What the paper's sizes would cost (not run by any notebook): shown below the table.
WHAT_IF = [
    *[Run("09_capstone at 12 epochs", f"U-Net on the Pets ({fw})", "unet", UNET_32, 3, 256, 3312, 12, 16, "amp",
          fw.lower(), 256, 368, predict_images=2000) for fw in ("Keras", "torch")],
    *[Run("09_capstone with the paper's U-Net (64 filters)", f"U-Net on the Pets ({fw})", "unet", UNET_PAPER, 3,
          256, 3312, CAPSTONE_EPOCHS, 16, "amp", fw.lower(), 256, 368, predict_images=2000)
      for fw in ("Keras", "torch")],
    Run("03/04 on whole 512 px slices (paper: 572 px tiles)", "paper U-Net (PyTorch)", "unet", UNET_PAPER, 1, 512,
        160, 40, 8, "amp", "torch", 512, 5),
    Run("11's printed `--preset full` on one T4 (300 steps of 64 at 128 px)", "DDP U-Net (PyTorch)", "unet",
        UNET_32, 3, 128, 300 * 64, 1, 64, "amp", "torch", classes=4),
]
NOTEBOOKS = ["00_setup", "01_data", "02_dense_prediction", "03_unet_keras", "04_unet_pytorch", "05_loss_functions",
             "06_evaluation", "07_fcn_deeplab", "08_training_dynamics", "09_capstone", "10_own_data",
             "11_distributed",
             # solutions without training in full mode (09's depends on the student's own data: not estimated)
             *(f"solutions/{name}" for name in ("01_data", "02_dense_prediction", "03_unet_keras", "04_unet_pytorch",
                                                "05_loss_functions", "06_evaluation", "07_fcn_deeplab",
                                                "08_training_dynamics"))]


def build(run: Run):
    from course_utils.torch.deeplab import DeepLabV3
    from course_utils.torch.deeplab_plus import DeepLabV3Plus
    from course_utils.torch.fcn import FCN
    from course_utils.torch.unet import UNet

    if run.model == "deeplabplus8":
        return DeepLabV3Plus(run.channels, run.classes, output_stride=8, **run.config)
    if run.model == "unet":
        return UNet(in_channels=run.channels, num_classes=run.classes, **run.config)
    if run.model.startswith("fcn"):
        return FCN(run.channels, run.classes, variant=run.model[3:], **run.config)
    return DeepLabV3(run.channels, run.classes, output_stride=8, **run.config)


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
        key = (run.model, json.dumps(run.config, sort_keys=True), run.channels, run.classes)
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
        # convolutions' MACs grow with the number of pixels
        for size in {run.size, run.val_size, run.predict_size} - {0}:
            info["macs"][size] = round(info["macs"]["probe"] * (size / info["probe"]) ** 2)
        train_macs = 3 * info["macs"][run.size] * run.train_images
        val_macs = info["macs"][run.val_size] * run.val_images if run.val_images else 0
        predict_macs = info["macs"][run.predict_size or run.val_size or run.size] * run.predict_images
        total_macs = run.repeats * (run.epochs * (train_macs + val_macs) + predict_macs)
        scale = (run.size / info["probe"]) ** 2 * run.batch
        activations = info[run.precision] * scale
        gpu_bytes = 1.3 * activations + 16 * info["params"] + 1e9 if run.device == "gpu" else 0.0
        colab_tflops = T4_TFLOPS[run.precision] if run.device == "gpu" else COLAB_CPU_TFLOPS
        per_run.append({
            "notebook": run.notebook, "label": run.label, "framework": run.framework, "precision": run.precision,
            "params": info["params"], "macs_per_image": info["macs"][run.size], "total_macs": total_macs,
            "activation_gb": activations / 1e9, "gpu_gb": gpu_bytes / 1e9, "repeats": run.repeats,
            "device": run.device,
            "t4_s": 2 * total_macs / (colab_tflops * 1e12) + PER_MODEL_OVERHEAD_S * run.repeats,
            "cpu_s": 2 * total_macs / (CPU_TFLOPS * 1e12) + PER_MODEL_OVERHEAD_S * run.repeats,
        })
    notebooks = {}
    for name in dict.fromkeys([*NOTEBOOKS, *(r.notebook for r in runs)]):
        rows = [r for r in per_run if r["notebook"] == name]
        memory = {fw: max((r["gpu_gb"] for r in rows if r["framework"] == fw), default=0.0) for fw in ("keras", "torch")}
        extra_s = PER_MODEL_OVERHEAD_S * EXTRA_MODELS.get(name, 0) if runs is RUNS else 0.0
        notebooks[name] = {
            "tflop": sum(2 * r["total_macs"] for r in rows) / 1e12,
            "t4_minutes": (NOTEBOOK_OVERHEAD_S + extra_s + sum(r["t4_s"] for r in rows)) / 60,
            "cpu_hours": (NOTEBOOK_OVERHEAD_S + extra_s + sum(r["cpu_s"] for r in rows)) / 3600,
            "t4_gb": sum(memory.values()) if rows else 0.0,
        }
    return {"assumptions": {"t4_tflops": T4_TFLOPS, "cpu_tflops": CPU_TFLOPS, "colab_cpu_tflops": COLAB_CPU_TFLOPS,
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
        where = r["precision"] if r["device"] == "gpu" else "fp32, Colab's CPU"
        lines.append(f"| {r['notebook']} | {r['label']} ({where}) | {r['macs_per_image'] / 1e9:.2f} | "
                     f"{r['repeats']} | {r['activation_gb']:.2f} | {r['gpu_gb']:.1f} |")
    if what_if:
        lines += ["", "What larger settings would cost (no notebook runs these):", "",
                  "| setting | training work (TFLOP) | Colab T4 | T4 memory (GB) |", "|---|---:|---:|---:|"]
        for name, nb in what_if["notebooks"].items():
            if name not in NOTEBOOKS:
                lines.append(f"| {name} | {nb['tflop']:.1f} | {minutes_text(nb['t4_minutes'])} | {nb['t4_gb']:.1f} |")
    a = result["assumptions"]
    lines += ["", f"Assumed sustained throughput: T4 {a['t4_tflops']['amp']} TFLOP/s with mixed precision, "
              f"{a['t4_tflops']['fp32']} TFLOP/s in float32; runs a notebook keeps on Colab's CPU "
              f"{a['colab_cpu_tflops']} TFLOP/s (no GPU memory); laptop CPU {a['cpu_tflops']} TFLOP/s; plus "
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
