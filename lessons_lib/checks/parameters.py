"""Exercise parameters: the numbers the exercise texts fix, shared by the checks and the notebooks."""
from __future__ import annotations

import numpy as np

# Hyperparameters fixed by the exercise texts (the notebooks quote the same numbers).
BY_HAND_LR = 0.05          # lesson 03: SGD and framework momentum, three steps by hand
BY_HAND_MOMENTUM = 0.9
ADAGRAD_LR, ADAGRAD_GRAD, ADAGRAD_STEPS = 0.1, 0.4, 10   # lesson 04: AdaGrad after k equal gradients
ADAM_BY_HAND_LR = 0.1      # lesson 05: Adam, three steps by hand
ADAM_FIRST_GRAD = np.array([20.0, 0.2])
ADAM_FIRST_LR = 0.001
CONSTANT_GRAD, CONSTANT_STEPS = 3.0, 5
CLIP_GRAD, CLIP_MAX_NORM = np.array([30.0, 40.0]), 5.0
FP16_GRADS = [1e-3, 1e-5, 1e-7, 1e-8, 1e-9]
SCHEDULE_06 = dict(peak=3e-4, final=3e-5, warmup_steps=2, total_steps=10)
TICKETS_10 = dict(n=3000, seed=0)   # lesson 11: ticket_triage(**TICKETS_10), training rows
TICKETS_12 = dict(n=3000, seed=0)   # lesson 12: the same tickets, lesson 11's model
INITIAL_LOSS_CLASSES = (2, 10)      # lesson 12: the initial loss ln K for these K
LEAN_PARAMS, LEAN_BLOCK_SIZE = 1.3e9, 256   # lesson 13: state bytes of a 1.3e9-parameter model, 8-bit blocks
