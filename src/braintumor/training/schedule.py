"""The optimiser every training run uses: AdamW, warm-up then cosine decay, optional EMA."""

from __future__ import annotations

from braintumor.training.recipe import TrainConfig


def make_optimizer(config: TrainConfig, steps_per_epoch: int, epochs: int, lr: float):
    """AdamW with ``lr`` reached after one epoch's warm-up, then a cosine decay to 1%."""
    # TensorFlow is heavy: imported only by the commands that train
    import keras

    total = max(steps_per_epoch * epochs, 2)
    warmup = min(steps_per_epoch, total // 2)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=lr / 10, decay_steps=total - warmup, alpha=0.01,
        warmup_target=lr, warmup_steps=warmup,
    )
    return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay,
                                  use_ema=config.ema > 0, ema_momentum=config.ema or 0.99)
