"""Pick the device and compute dtype through torch's own availability checks; set up torchrun ranks.

    device = select_device("auto")            # cuda, else mps, else cpu
    dtype, use_scaler = select_dtype(device, "auto")
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch

from core.io import UserError

logger = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# Dense bf16 peak FLOP/s by GPU name fragment (for MFU); unknown GPUs report no MFU.
PEAK_BF16_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "A10G": 125e12, "L40S": 362e12,
                   "L4": 121e12, "4090": 165e12, "3090": 71e12, "V100": 125e12, "T4": 65e12}


def cuda_alloc_conf() -> None:
    """Expandable segments cut fragmentation OOMs; must be set before CUDA's allocator starts."""
    if "PYTORCH_CUDA_ALLOC_CONF" not in os.environ and "PYTORCH_ALLOC_CONF" not in os.environ:
        os.environ["PYTORCH_CUDA_ALLOC_CONF"] = "expandable_segments:True"


def mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def select_device(requested: str, local_rank: int | None = None) -> torch.device:
    """'auto' -> cuda (this process's local rank under torchrun), else mps, else cpu."""
    req = requested.strip().lower()
    if req == "auto":
        req = "cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu"
    if req.startswith("cuda"):
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise UserError(f"--device {requested}: CUDA is not available ({why}, torch {torch.__version__}); "
                            "use --device auto or --device cpu")
        if req == "cuda" and local_rank is not None:
            req = f"cuda:{local_rank}"
        dev = torch.device(req)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"--device {requested}: only {torch.cuda.device_count()} CUDA device(s) visible")
        return dev
    if req == "mps":
        if not mps_available():
            raise UserError(f"--device mps: Apple Metal (MPS) is not available here (torch {torch.__version__}); "
                            "use --device auto or --device cpu")
        return torch.device("mps")
    if req == "cpu":
        return torch.device("cpu")
    raise UserError(f"--device {requested}: expected auto, cuda, cuda:N, mps or cpu")


def _mps_supports(dtype: torch.dtype) -> bool:
    try:
        x = torch.ones(2, 2, device="mps", dtype=dtype)
        return bool((x @ x).sum().item() == 8)
    except (RuntimeError, TypeError):
        return False


def select_dtype(device: torch.device, requested: str) -> tuple[torch.dtype, bool]:
    """(autocast dtype, whether fp16 needs a GradScaler). fp32 means no autocast.

    auto: bf16 on CUDA that supports it, else fp16 with a GradScaler; fp32 on MPS and CPU
    (MPS bf16/fp16 autocast depends on the macOS and torch versions, so it is opt-in).
    """
    if requested == "auto":
        if device.type == "cuda":
            requested = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            requested = "fp32"
    dtype = DTYPES[requested]
    if device.type == "cuda" and dtype is torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise UserError("dtype bf16: this GPU has no bf16 support; use dtype fp16 or auto")
    if device.type == "mps" and dtype is not torch.float32 and not _mps_supports(dtype):
        raise UserError(f"dtype {requested}: not supported on MPS by this torch/macOS; use dtype fp32")
    if device.type == "cpu" and dtype is torch.float16:
        raise UserError("dtype fp16: not supported on CPU; use fp32 or bf16")
    return dtype, device.type == "cuda" and dtype is torch.float16


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int | None = None

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(requested_device: str) -> Dist:
    """Under torchrun (WORLD_SIZE > 1): join the process group (NCCL on CUDA, gloo otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = requested_device in ("auto", "cuda") and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return Dist(rank, world, local if cuda else None)
