"""Time-budgeted training on the CPU, with periodic validation and best-checkpoint saving: classifiers
(`train_classifier`, validated by accuracy) and causal language models (`train_lm`, next-token loss, validated
by held-out perplexity).

Batches are tuples `(*model_inputs, labels)`; the model returns logits ([B, C], or [B, T, V] for a language
model with labels [B, T]). The budget is wall-clock minutes rather than epochs because the examples promise
"N minutes on a laptop CPU".
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

Batch = tuple[torch.Tensor, ...]


@dataclasses.dataclass
class TrainResult:
    best_val_acc: float  # the best validation metric (accuracy; for train_lm the lowest perplexity)
    best_step: int
    steps: int
    minutes: float
    checkpoint: Path | None
    # One entry per validation: minutes, step, examples (tokens) seen, mean train loss since last, the
    # validation metric (val_acc, or val_ppl for train_lm), examples (tokens) per second since last.
    history: list[dict[str, float]]


@dataclasses.dataclass(frozen=True)
class Objective:
    """What a run minimises and how it is validated: loss(logits, labels), metric(model, batches) -> value."""

    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    metric: Callable[[nn.Module, Iterable[Batch]], float]
    name: str  # history key val_<name> and the log line's "val <name>"
    higher_is_better: bool = True
    unit: str = "examples"


def start_run(seed: int, threads: int | None, out_dir: str | Path) -> Path:
    """Seed torch, set its threads (None: torch's default) and create the run's output directory."""
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


@torch.no_grad()
def accuracy(model: nn.Module, batches: Iterable[Batch]) -> float:
    was_training = model.training
    model.eval()
    correct = total = 0
    for *inputs, labels in batches:
        correct += int((model(*inputs).argmax(-1) == labels).sum())
        total += len(labels)
    model.train(was_training)
    return correct / max(total, 1)


def next_token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross entropy of logits [B, T, V] against the next tokens labels [B, T] (-100: ignored)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100)


@torch.no_grad()
def perplexity(model: nn.Module, batches: Iterable[Batch]) -> float:
    """exp(mean next-token loss) over every labelled token of the batches (input_ids, labels)."""
    was_training = model.training
    model.eval()
    nll = 0.0
    count = 0
    for *inputs, labels in batches:
        logits = model(*inputs)
        nll += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(), labels.reshape(-1),
                                     ignore_index=-100, reduction="sum"))
        count += int((labels != -100).sum())
    model.train(was_training)
    return math.exp(nll / max(count, 1))


CLASSIFY = Objective(loss=F.cross_entropy, metric=accuracy, name="acc")
LM = Objective(loss=next_token_loss, metric=perplexity, name="ppl", higher_is_better=False, unit="tokens")


def _lr_scale(step: int, warmup_steps: int, frac: float) -> float:
    """Linear warm-up, then a cosine over the fraction of the time budget used (down to 10%)."""
    return min(1.0, (step + 1) / max(warmup_steps, 1)) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def _train_step(model: nn.Module, opt: torch.optim.Optimizer, inputs: list[torch.Tensor], labels: torch.Tensor,
                lr: float, grad_clip: float, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> float:
    """One optimizer step at learning rate `lr`; returns the batch loss."""
    for group in opt.param_groups:
        group["lr"] = lr
    loss = loss_fn(model(*inputs), labels)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    return float(loss.detach())


@dataclasses.dataclass
class _Progress:
    """What the loop tracks: steps, the loss since the last validation, the best model so far."""

    eval_every_s: float
    objective: Objective = CLASSIFY
    start: float = dataclasses.field(default_factory=time.monotonic)
    step: int = 0
    seen: int = 0
    loss_sum: float = 0.0
    loss_n: int = 0
    best_acc: float = -1.0  # the best metric so far (for a lower-is-better metric: its lowest)
    best_step: int = 0
    saved: Path | None = None
    next_eval_s: float = 0.0
    last_seen: int = 0
    last_s: float = 0.0
    history: list[dict[str, float]] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self.next_eval_s = self.eval_every_s
        if not self.objective.higher_is_better:
            self.best_acc = math.inf

    def better(self, value: float) -> bool:
        return value > self.best_acc if self.objective.higher_is_better else value < self.best_acc

    def elapsed_s(self) -> float:
        return time.monotonic() - self.start

    def add(self, loss: float, examples: int) -> None:
        self.step += 1
        self.seen += examples
        self.loss_sum += loss
        self.loss_n += 1

    def eval_due(self, every_steps: int | None) -> bool:
        return self.step % every_steps == 0 if every_steps else self.elapsed_s() >= self.next_eval_s

    def validate(self, model: nn.Module, batches: Iterable[Batch], save_dir: str | Path | None,
                 log: Callable[[str], Any]) -> None:
        from ..models import save_pretrained

        now = self.elapsed_s()
        rate = (self.seen - self.last_seen) / max(now - self.last_s, 1e-9)
        self.last_seen, self.last_s = self.seen, now
        value = self.objective.metric(model, batches)
        name = self.objective.name
        elapsed = now / 60.0
        self.history.append({"minutes": round(elapsed, 3), "step": self.step, self.objective.unit: self.seen,
                             "train_loss": round(self.loss_sum / max(self.loss_n, 1), 4), f"val_{name}": round(value, 4),
                             f"{self.objective.unit}_per_s": round(rate, 1)})
        self.loss_sum, self.loss_n = 0.0, 0
        mark = ""
        if self.better(value):
            self.best_acc, self.best_step = value, self.step
            if save_dir is not None:
                self.saved = save_pretrained(model, save_dir)
                mark = " (best, saved)"
        log(f"[{elapsed:6.2f} min] step {self.step:5d}  train loss {self.history[-1]['train_loss']:.4f}  "
            f"val {name} {value:.4f}  {rate:.0f} {self.objective.unit}/s{mark}")
        self.next_eval_s = self.elapsed_s() + self.eval_every_s


def train_classifier(model: nn.Module, train_batches: Callable[[int], Iterable[Batch]],
                     val_batches: Callable[[], Iterable[Batch]], **options: Any) -> TrainResult:
    """Train a classifier (cross entropy; validated by accuracy, the highest kept); options as `train`."""
    return train(model, train_batches, val_batches, objective=CLASSIFY, **options)


def train_lm(model: nn.Module, train_batches: Callable[[int], Iterable[Batch]],
             val_batches: Callable[[], Iterable[Batch]], **options: Any) -> TrainResult:
    """Train a causal LM on batches (input_ids, next-token labels): next-token cross entropy, validated by
    held-out perplexity (the lowest kept; `best_val_acc` holds it). With `max_steps` the cosine runs over the
    steps (or the time budget, whichever is used up faster), so runs of the same steps have the same schedule."""
    options.setdefault("schedule_steps", options.get("max_steps"))
    return train(model, train_batches, val_batches, objective=LM, **options)


def train(
    model: nn.Module,
    train_batches: Callable[[int], Iterable[Batch]],
    val_batches: Callable[[], Iterable[Batch]],
    *,
    minutes: float,
    max_steps: int | None = None,
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    warmup_steps: int = 50,
    eval_every_minutes: float = 1.0,
    eval_every_steps: int | None = None,
    save_dir: str | Path | None = None,
    grad_clip: float = 1.0,
    progress: bool = True,
    log: Callable[[str], Any] = print,
    objective: Objective = CLASSIFY,
    schedule_steps: int | None = None,
) -> TrainResult:
    """Train until `minutes` (or `max_steps`) run out; validate periodically; save the best model.

    train_batches(epoch) yields a fresh (shuffled) pass over the training data. The learning rate
    warms up linearly, then follows a cosine over the time budget (to 10%), so a shorter budget
    still ends with a small learning rate; with `schedule_steps` over those steps, or the time budget,
    whichever runs out first.
    """
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    budget_s = minutes * 60.0
    run = _Progress(eval_every_s=eval_every_minutes * 60.0, objective=objective)
    bar = tqdm(total=round(budget_s), unit="s", disable=not progress, desc="train", leave=False, mininterval=2.0)
    model.train()
    epoch, done = 0, False
    while not done:
        for *inputs, labels in train_batches(epoch):
            elapsed = run.elapsed_s()
            if elapsed >= budget_s or (max_steps is not None and run.step >= max_steps):
                done = True
                break
            frac = elapsed / budget_s
            if schedule_steps:
                frac = max(frac, run.step / schedule_steps)
            scale = _lr_scale(run.step, warmup_steps, min(frac, 1.0))
            run.add(_train_step(model, opt, inputs, labels, lr * scale, grad_clip, objective.loss), labels.numel())
            bar.n = min(round(run.elapsed_s()), bar.total)
            bar.set_postfix(step=run.step, loss=f"{run.loss_sum / run.loss_n:.3f}", refresh=False)
            bar.update(0)  # redraws at most every `mininterval` seconds
            if run.eval_due(eval_every_steps):
                run.validate(model, val_batches(), save_dir, log)
        else:
            epoch += 1
            if max_steps is None and run.step == 0:
                raise ValueError("the training data yielded no batches")
    bar.close()
    if not run.history or run.history[-1]["step"] != run.step:
        run.validate(model, val_batches(), save_dir, log)
    model.eval()
    return TrainResult(best_val_acc=run.best_acc, best_step=run.best_step, steps=run.step,
                       minutes=run.elapsed_s() / 60.0, checkpoint=run.saved, history=run.history)
