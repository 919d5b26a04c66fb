"""Without PyTorch, fine-tuning says how to install it, in one line (this test needs no torch)."""

import sys

import pytest

from hwflow.errors import ToolError


def test_no_torch_one_line(monkeypatch):
    import hwflow

    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    with pytest.raises(ToolError, match=r"^fine-tuning needs PyTorch.*pip install 'hwflow\[train\]'$"):
        hwflow.finetune("model.onnx", "train.npz")
