"""The generator side: flow-model adapters (SD3 family, FLUX.1), flow schedules, samplers and LoRA.

Knows nothing of Ray or DeepSpeed. Conventions (DESIGN.md section 3): t in [0, 1], t = 0 clean,
z_t = (1 - t) z0 + t eps, velocity u = eps - z0, Euler step z <- z - d * u.
"""
