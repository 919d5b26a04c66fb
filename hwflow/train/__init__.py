"""Quantization-aware fine-tuning: ``hwflow finetune`` and :func:`hwflow.finetune`.

The float model is trained further under exactly the quantization ``compile`` will
build (the same :class:`~hwflow.quant.config.QuantConfig`, starting from the same
calibration), and written as ONNX with QONNX ``Quant`` nodes that ``compile`` imports
with its quantization fixed. PyTorch (CPU) is the engine, an optional extra:
``pip install 'hwflow[train]'``; nothing else in hwflow imports it.

- :mod:`.net`: the training network, built from hwflow's own float plan (Graph IR);
- :mod:`.export`: the QONNX writer;
- :mod:`.loop`: the training loop, which measures every epoch on the integer
  network ``compile`` builds from the exported model.
"""

from .config import RANGES, TrainConfig
from .loop import FinetuneResult, finetune

__all__ = ["finetune", "FinetuneResult", "TrainConfig", "RANGES"]
