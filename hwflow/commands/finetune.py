"""``hwflow finetune``: quantization-aware fine-tuning into a QONNX model ``compile`` imports fixed."""

from __future__ import annotations

import json
import sys

import click

from .._files import jsonable
from ..errors import OptionError
from ._quant_options import quant_config, quant_options

__all__ = ["finetune_cmd"]


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f} %"


@click.command("finetune")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--data", "data", required=True, type=click.Path(dir_okay=False),
              help="Training data: .npz with x and integer labels y.")
@click.option("--val", "val", default=None, type=click.Path(dir_okay=False),
              help="Validation data (labelled), on which the best epoch is chosen "
                   "(default: --val-fraction of --data, held out).")
@click.option("--calib", "calib", default=None, type=click.Path(dir_okay=False),
              help="Calibration data of the starting quantization (default: --calib-samples training samples). "
                   "Give compile's --calib file to start from exactly its quantization.")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False),
              help="The fine-tuned model (ONNX with QONNX Quant nodes), written atomically.")
@click.option("--epochs", type=int, default=10, show_default=True, help="Passes over the training data.")
@click.option("--lr", type=float, default=3e-2, show_default=True,
              help="Adam's learning rate (cosine decay), in weight quantization steps per step.")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Samples per step.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds shuffling and the validation split.")
@click.option("--ranges", default="learned", show_default=True, metavar="fixed|learned",
              help="learned: the scales (clipping ranges) train too, LSQ-style; fixed: they stay the calibration's.")
@click.option("--scale-lr", type=float, default=0.1, show_default=True,
              help="The learned scales' learning rate, relative to --lr (their own parameter group).")
@click.option("--warmup", type=float, default=0.0, show_default=True,
              help="Share of the steps over which the learning rate ramps up linearly before the cosine.")
@click.option("--distill", type=float, default=0.0, show_default=True,
              help="Weight in [0, 1] of distillation from the float model's logits (temperature 2).")
@click.option("--epoch-samples", type=int, default=None,
              help="Training samples per epoch (a fresh draw each epoch; default all).")
@click.option("--val-fraction", type=float, default=0.1, show_default=True,
              help="Without --val, the share of --data held out for validation.")
@click.option("--calib-samples", type=int, default=256, show_default=True,
              help="Without --calib, how many training samples calibrate the start.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@quant_options
def finetune_cmd(model, data, val, calib, output, epochs, lr, batch_size, seed, ranges, scale_lr, warmup, distill,
                 epoch_samples, val_fraction, calib_samples, as_json, **kwargs):
    """Fine-tune MODEL under the quantization `compile` builds; write the best epoch to -o.

    \b
    Trains the float model with the integer network's quantization in the loop
    (straight-through rounding), measures every epoch on that integer network, and
    keeps the best. Compile the result with the same --scheme and --mbits: its
    accuracy is the one reported here. Ctrl-C stops and keeps the best model so far.
    pot, binary and ternary weights (--weights, per layer too) and sign activations
    (--abits 1) train as compile builds them. Needs PyTorch: pip install 'hwflow[train]'.

    \b
    Example:
      hwflow finetune examples/models/ic_resnet8.onnx --data train.npz \\
          --val examples/models/ic_resnet8_test.npz --calib examples/models/ic_resnet8_calib.npz \\
          --wbits 2 --abits 4 --epochs 8 -o r8_w2a4.onnx
      hwflow compile r8_w2a4.onnx --calib examples/models/ic_resnet8_calib.npz
      hwflow finetune examples/models/digits784_sfc.onnx --data train28.npz \\
          --weights binary --abits 1 --epochs 6 -o sfc_w1a1.onnx
    """
    from ..train import TrainConfig, finetune

    if kwargs.get("auto_bits"):
        raise OptionError("--auto-bits is not supported by finetune: choose the widths with --wbits/--abits/--bits")
    quant = quant_config(calib if calib is not None else data, **kwargs)
    train = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, ranges=ranges,
                        scale_lr=scale_lr, warmup=warmup, distill=distill, epoch_samples=epoch_samples,
                        val_fraction=val_fraction, calib_samples=calib_samples)
    tty = sys.stderr.isatty()

    def on_batch(epoch: int, batch: int, loss: float) -> None:
        if tty:
            click.echo(f"\repoch {epoch}/{epochs}  step {batch + 1}  loss {loss:.4f}", err=True, nl=False)

    def on_epoch(rec: dict) -> None:
        loss = "-" if rec["loss"] is None else f"{rec['loss']:.4f}"
        line = (f"epoch {rec['epoch']}/{rec['epochs']}  loss {loss}  val acc {_pct(rec['accuracy'])} "
                f"loss {rec['val_loss']:.4f} (integer)  "
                f"best {_pct(rec['best_accuracy'])} @ {rec['best_epoch']}  {rec['seconds']:.1f} s")
        click.echo(("\r\033[K" if tty else "") + line, err=True)

    res = finetune(model, data, out=output, val=val, calib=calib, quant=quant, train=train,
                   on_epoch=on_epoch, on_batch=on_batch)
    if as_json:
        click.echo(json.dumps(jsonable(res.summary()), indent=2, allow_nan=True))
        return
    if res.interrupted:
        click.echo("interrupted: kept the best epoch so far", err=True)
    click.echo(f"float acc    {_pct(res.float_accuracy)}  ({res.samples['val']} validation samples)")
    click.echo(f"post-train   {_pct(res.ptq_accuracy)}")
    click.echo(f"fine-tuned   {_pct(res.accuracy)}  (epoch {res.best_epoch}; the integer network compile builds)")
    click.echo(f"wrote        {res.path}  ({res.seconds:.1f} s)")
    click.echo(f"next         hwflow compile {res.path} --scheme {quant.scheme} --mbits {quant.mbits}")
