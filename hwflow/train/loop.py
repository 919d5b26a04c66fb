"""``finetune``: quantization-aware training under exactly the quantization ``compile`` builds.

Steps:

1. import and optimize the model as every command does (:func:`hwflow.flow.load_graph`),
   lower it to the quantizer's float plan and quantize it with the given
   :class:`~hwflow.quant.config.QuantConfig` and calibration data: the QGraph
   ``compile`` would build (:func:`hwflow.quant.quantize_plan`);
2. build the training network from the plan with that QGraph's quantizers
   (:class:`~hwflow.train.net.QuantNet`), its weights and biases those of the QGraph
   (rounding and bias correction included), so training starts from the
   post-training quantization;
3. train: Adam, cosine learning rate (after an optional linear warmup), cross-entropy on
   the logits (optionally distilled from the float model's), straight-through rounding;
   the scales too with ``ranges="learned"``, in their own parameter group;
4. after every epoch (and before the first: epoch 0), export the network as QONNX
   (:func:`~hwflow.train.export.to_qonnx`), import that model again exactly as
   ``compile`` does (:func:`~hwflow.flow.load_graph`, :func:`~hwflow.flow.quantize_graph`)
   and measure the integer reference's accuracy on the validation data;
5. keep the epoch with the best such accuracy (the earliest on ties) and write its
   model atomically.

So the accuracy reported is that of the integer network ``hwflow compile OUT.onnx``
builds with the same quantization options (scheme and ``mbits`` decide the
requantizer; widths, scales and zero points come from the model): ``hwflow eval`` and
``Build.predict`` give the same figure on the same data. Ctrl-C stops training and
still writes the best model so far.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._files import atomic_write
from ..errors import DataError, ModelError, OptionError
from ..quant.config import QuantConfig
from .config import TrainConfig

__all__ = ["finetune", "FinetuneResult"]

#: The distillation temperature (TrainConfig.distill).
DISTILL_T = 2.0


@dataclass
class FinetuneResult:
    """What :func:`finetune` did.

    Attributes
    ----------
    model : onnx.ModelProto
        The kept model (QONNX), also written to ``path``.
    path : Path or None
        Where it was written.
    accuracy : float
        The integer network's accuracy on the validation data at the kept epoch.
    best_epoch : int
        The kept epoch (0: the post-training quantization, no epoch improved on it).
    float_accuracy, ptq_accuracy : float
        The float model's and the post-training quantization's accuracy on the same data.
    history : list of dict
        Per epoch: ``epoch``, ``loss`` (mean training loss; None for epoch 0),
        ``accuracy``, ``seconds``.
    interrupted : bool
        Training stopped early (Ctrl-C); the best epoch so far was kept.
    samples : dict
        ``train``, ``val`` and ``calib`` sample counts and where each came from.
    quant : QuantConfig
    train : TrainConfig
    seconds : float
    """

    model: Any
    path: Path | None
    accuracy: float
    best_epoch: int
    float_accuracy: float
    ptq_accuracy: float
    history: list[dict]
    interrupted: bool
    samples: dict
    quant: QuantConfig
    train: TrainConfig
    seconds: float = 0.0

    def summary(self) -> dict:
        """Everything but the model, as plain JSON values (``hwflow finetune --json``)."""
        d = {k: v for k, v in asdict(self).items() if k != "model"}
        d["path"] = None if self.path is None else str(self.path)
        d["quant"]["layer_bits"] = {k: list(v) for k, v in self.quant.layer_bits.items()}
        return d


def _data(source, shape, what: str) -> tuple[np.ndarray, np.ndarray | None, str]:
    """``(x, y, description)`` of a path or an ``(x, y)`` pair."""
    from ..data import load_data

    if isinstance(source, (str, Path)):
        x, y = load_data(source, shape)
        return x, y, str(source)
    try:
        x, y = source
    except (TypeError, ValueError):
        raise DataError(f"{what} must be a .npz/.npy path or an (x, y) pair, not {type(source).__name__}") from None
    with tempfile.TemporaryDirectory(prefix="hwflow-finetune-") as tmp:  # load_data's checks, on arrays
        path = Path(tmp) / "data.npz"
        np.savez(path, x=np.asarray(x), **({} if y is None else {"y": np.asarray(y)}))
        x, y = load_data(path, shape)
    return x, y, f"{what} arrays"


def _labels(y: np.ndarray | None, k: int, where: str) -> np.ndarray:
    if y is None:
        raise DataError(f"{where} has no labels: fine-tuning trains on them; save it with np.savez(path, x=..., y=...)")
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= k:
        raise DataError(f"{where}: labels span {lo}..{hi}, but the model has {k} outputs (classes 0..{k - 1})")
    return y


def _accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    return float((np.asarray(logits).reshape(len(y), -1).argmax(1) == y).mean())


def integer_accuracy(model, quant: QuantConfig, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of the integer network ``compile`` builds from the ONNX ``model`` on ``(x, y)``.

    The model is saved and read back through :func:`hwflow.flow.load_graph` and
    :func:`hwflow.flow.quantize_graph` (as ``compile`` and ``eval`` read it), then run by
    the integer reference.
    """
    import onnx

    from ..flow import load_graph, quantize_graph
    from ..quant.evaluate import quant_logits

    with tempfile.TemporaryDirectory(prefix="hwflow-finetune-") as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(model, str(path))
        qg = quantize_graph(load_graph(path), None, quant).qgraph
    return _accuracy(quant_logits(qg, x), y)


def _lr_factor(step: int, warm: int, steps: int) -> float:
    """The learning rate's factor at ``step``: linear from 0 over ``warm`` steps, then a cosine to 0."""
    if step < warm:
        return (step + 1) / (warm + 1)
    return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))


def _distill_loss(torch, logits, teacher):
    """``T² KL(softmax(teacher/T) || softmax(logits/T))``, batch mean."""
    f = torch.nn.functional
    t = DISTILL_T
    return f.kl_div(f.log_softmax(logits / t, 1), f.log_softmax(teacher / t, 1), log_target=True,
                    reduction="batchmean") * t * t


@contextlib.contextmanager
def _deterministic(torch):
    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was)


def finetune(model: str | Path, data, *, out: str | Path | None = None, val=None, calib=None,
             quant: QuantConfig | None = None, train: TrainConfig | None = None,
             on_epoch: Callable[[dict], None] | None = None,
             on_batch: Callable[[int, int, float], None] | None = None) -> FinetuneResult:
    """Fine-tune a float model under the quantization ``compile`` builds; keep the best epoch.

    Parameters
    ----------
    model : str or Path
        The ONNX model: float, or pre-quantized (its quantization is the start).
    data : str, Path or (x, y)
        Training data: ``.npz`` with ``x`` and integer labels ``y``, or the arrays.
    out : str or Path, optional
        Where to write the kept model (atomically); nothing is written without it.
    val : str, Path or (x, y), optional
        Validation data (labelled); default ``train.val_fraction`` of ``data``, held out.
    calib : str, Path or (x, y), optional
        Calibration data for the starting quantization (labels not needed); default
        ``train.calib_samples`` training samples. Give the file ``compile --calib`` would
        get to start from exactly its quantization.
    quant : QuantConfig, optional
        The quantization to train under (default ``QuantConfig()``).
    train : TrainConfig, optional
        Epochs, learning rate, batch size, seed, scale learning (default ``TrainConfig()``).
    on_epoch : callable, optional
        Called with each epoch's record (``epoch``, ``loss``, ``accuracy``, ``best``...),
        epoch 0 (the starting point) included.
    on_batch : callable, optional
        Called as ``on_batch(epoch, batch, loss)`` after every training step.

    Returns
    -------
    FinetuneResult

    Raises
    ------
    ToolError
        PyTorch is not installed (``pip install 'hwflow[train]'``).
    DataError
        Unreadable data, no labels, labels outside the model's classes.
    ModelError, UnsupportedOpError, OptionError
        A model or option hwflow cannot use (one line, as ``compile`` says it).
    """
    from ._torch import require_torch

    torch = require_torch()
    from ..flow import load_graph
    from ..quant._lower import lower
    from ..quant.qonnx import is_qonnx
    from ..quant.quantize import quantize_plan
    from .export import to_qonnx
    from .net import QuantNet

    t0 = time.monotonic()
    quant = QuantConfig() if quant is None else quant
    train = TrainConfig() if train is None else train
    if not quant.int_only:  # the training network models int weights and >= 2-bit activations only
        raise OptionError("finetune trains int weights and activations of 2 bits or more; pot/binary/ternary "
                          "weights (--weights) and 1-bit activations (--abits 1) are not supported yet")
    graph = load_graph(model)
    if is_qonnx(graph):
        raise ModelError(f"{Path(model).name} is a QONNX model, trained with its quantization already; finetune "
                         "trains a float model (or a QDQ one): give the model before its QAT export")
    plan = lower(graph)
    quant.check_layers([l.name for l in plan.layers])
    shape = graph.shape(graph.inputs[0])
    classes = int(np.prod(plan.shapes[plan.output][1:]))

    x, y, where = _data(data, shape, "training data")
    y = _labels(y, classes, f"training data {where!r}")
    rng = np.random.default_rng(train.seed)
    if val is None:
        order = rng.permutation(len(x))
        n_val = max(1, int(round(train.val_fraction * len(x))))
        if len(x) - n_val < 1:
            raise DataError(f"training data {where!r} has {len(x)} sample(s): too few to hold some out for validation; "
                            f"pass validation data")
        xv, yv, vwhere = x[order[:n_val]], y[order[:n_val]], f"{n_val} held out of {where}"
        x, y = x[order[n_val:]], y[order[n_val:]]
    else:
        xv, yv, vwhere = _data(val, shape, "validation data")
        yv = _labels(yv, classes, f"validation data {vwhere!r}")
    if calib is None:
        xc = x[np.sort(rng.permutation(len(x))[:train.calib_samples])]
        cwhere = f"{len(xc)} of the training samples"
    else:
        xc, _, cwhere = _data(calib, shape, "calibration data")
    fixed = graph.meta.get("fixed_qparams")
    qg = quantize_plan(plan, quant, None if quant.calibration == "none" else xc, fixed)

    net = QuantNet(plan, qg, learn=train.ranges == "learned")
    record = {"quant": {"scheme": quant.scheme, "mbits": quant.mbits}, "train": asdict(train)}

    def evaluate_float() -> float:
        net.quantize = False
        with torch.no_grad():
            logits = torch.cat([net(torch.from_numpy(xv[i:i + 256])) for i in range(0, len(xv), 256)])
        net.quantize = True
        return _accuracy(logits.numpy(), yv)

    float_acc = evaluate_float()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    teacher = None
    if train.distill > 0:  # the float model's logits, once, before the weights start from the codes
        net.quantize = False
        with torch.no_grad():
            teacher = torch.cat([net(xt[i:i + 256]) for i in range(0, len(x), 256)])
        net.quantize = True
    net.start_from_codes()

    def snapshot(epoch: int):
        m = to_qonnx(net, graph, {**record, "epoch": epoch})
        return m, integer_accuracy(m, quant, xv, yv)

    history: list[dict] = []
    best = None

    def finish_epoch(epoch: int, loss: float | None, t_start: float) -> None:
        nonlocal best
        m, acc = snapshot(epoch)
        if best is None or acc > best[2]:
            best = (epoch, m, acc)
        rec = {"epoch": epoch, "loss": loss, "accuracy": acc, "seconds": time.monotonic() - t_start,
               "best_epoch": best[0], "best_accuracy": best[2]}
        history.append(rec)
        if on_epoch is not None:
            on_epoch(dict(rec, epochs=train.epochs))

    interrupted = False
    scales = [p for n, p in net.named_parameters() if n.endswith("scale.value")]
    others = [p for n, p in net.named_parameters() if not n.endswith("scale.value")]
    per_epoch = len(x) if train.epoch_samples is None else min(train.epoch_samples, len(x))
    steps = train.epochs * -(-per_epoch // train.batch_size)
    warm = int(round(train.warmup * steps))
    opt = torch.optim.Adam([{"params": others}, {"params": scales, "lr": train.lr * train.scale_lr}], lr=train.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: _lr_factor(k, warm, steps))
    gen = torch.Generator().manual_seed(train.seed)
    try:
        with _deterministic(torch):
            finish_epoch(0, None, time.monotonic())
            for epoch in range(1, train.epochs + 1):
                t_start = time.monotonic()
                net.train()
                order = torch.randperm(len(x), generator=gen)[:per_epoch]
                total, count = 0.0, 0
                for k, s in enumerate(range(0, per_epoch, train.batch_size)):
                    idx = order[s:s + train.batch_size]
                    logits = net(xt[idx])
                    loss = torch.nn.functional.cross_entropy(logits, yt[idx])
                    if teacher is not None:
                        loss = (1 - train.distill) * loss + train.distill * _distill_loss(torch, logits, teacher[idx])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    sched.step()
                    lv = float(loss.detach())
                    total, count = total + lv * len(idx), count + len(idx)
                    if on_batch is not None:
                        on_batch(epoch, k, lv)
                net.eval()
                finish_epoch(epoch, total / count, t_start)
    except KeyboardInterrupt:
        interrupted = True
        if best is None:
            raise
    epoch, kept, acc = best
    path = None
    if out is not None:
        path = Path(out)
        atomic_write(path, kept.SerializeToString())
    samples = {"train": len(x), "val": len(xv), "calib": len(xc),
               "train_from": where, "val_from": vwhere, "calib_from": cwhere}
    return FinetuneResult(kept, path, acc, epoch, float_acc, history[0]["accuracy"], history, interrupted,
                          samples, quant, train, time.monotonic() - t0)
