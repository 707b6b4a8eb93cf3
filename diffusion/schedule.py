"""Flow-matching time schedules, computed the way diffusers' `FlowMatchEulerDiscreteScheduler` does.

The sampler's times are sigmas: t = 1 is noise, t = 0 is clean (diffusers' timestep = 1000 * sigma).
"""

import math

import torch


def shift_time(t: torch.Tensor, shift: float) -> torch.Tensor:
    """Static shift (SD3): t' = s t / (1 + (s - 1) t); s = 3 for SD3.5."""
    return shift * t / (1 + (shift - 1) * t)


def exponential_time_shift(t: torch.Tensor, mu: float) -> torch.Tensor:
    """Resolution-dependent shift (FLUX): t' = e^mu / (e^mu + 1/t - 1)."""
    return math.exp(mu) / (math.exp(mu) + (1 / t - 1))


def flux_mu(
    image_seq_len: int, base_seq_len: int = 256, max_seq_len: int = 4096, base_shift: float = 0.5, max_shift: float = 1.15
) -> float:
    """FLUX's mu, linear in the number of packed image tokens (diffusers' `calculate_shift`)."""
    slope = (max_shift - base_shift) / (max_seq_len - base_seq_len)
    return base_shift + slope * (image_seq_len - base_seq_len)


def flow_schedule(
    num_steps: int, *, shift: float = 1.0, mu: float | None = None, num_train_timesteps: int = 1000
) -> torch.Tensor:
    """Times (num_steps + 1,) float32 from 1 to 0, equal to the scheduler's `sigmas` after `set_timesteps`.

    With `mu` (dynamic shifting) the exponential shift replaces the static one. Like diffusers, the
    static path spaces the unshifted times between 1 and the *shifted* smallest training sigma and then
    shifts them again, which is what the scheduler does (so the last nonzero time matches it).
    """
    if num_steps < 1:
        raise ValueError(f"num_steps={num_steps} must be at least 1")
    train = torch.linspace(1, num_train_timesteps, num_train_timesteps, dtype=torch.float64) / num_train_timesteps
    if mu is None:
        train = shift_time(train, shift)
    t = torch.linspace(train[-1].item(), train[0].item(), num_steps, dtype=torch.float64)
    t = exponential_time_shift(t, mu) if mu is not None else shift_time(t, shift)
    return torch.cat([t, torch.zeros(1, dtype=t.dtype)]).to(torch.float32)


def stop_window(horizon: str, num_steps: int, *, key: str) -> tuple[int, int] | None:
    """A rollout horizon -> (first, last) stop step, or None for "full" (sample to t = 0).

    horizon: "full" | "k" (stop after step k) | "a-b" (a stop drawn from steps a..b); stops lie in
    1..num_steps, and a stop at num_steps is a whole rollout scored by the value at t = 0 instead of
    decoded and scored by the pixel reward (a latent reward's use without a decode). key: the setting that holds it (e.g. "rollout.horizon"), named in errors along with
    its sampler's `<section>.sampler.num_steps`.
    """
    if horizon == "full":
        return None
    try:
        first, _, last = str(horizon).partition("-")
        first, last = int(first), int(last or first)
    except ValueError:
        raise ValueError(f"{key}={horizon!r} is not 'full', a step 'k' or a window 'a-b'") from None
    if first > last:
        raise ValueError(f"{key}={horizon!r}: a window 'a-b' runs from its first stop to its last; write '{last}-{first}'")
    if not 1 <= first <= last <= num_steps:
        section = key.rpartition(".")[0]
        raise ValueError(
            f"{key}={horizon!r}: stops must lie in 1..{num_steps} ({section}.sampler.num_steps={num_steps}); "
            f"'full' samples to the end and scores with the pixel reward, '{num_steps}' with the value"
        )
    return first, last
