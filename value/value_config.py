"""`ValueConfig` (mirrored by configs/value/*.yaml) and the one function that builds a value from it.

Every job that reads a value (rollout workers scoring partial rollouts, DRaFT maximising it, steering
guiding with it, the benchmarks) configures it with this one block under its own key (`rollout.value`,
`draft.value`, `steer.value`).
"""

from dataclasses import dataclass

from diffusion.flow_model import FlowModel
from diffusion.model_config import ModelConfig, build_flow_model
from value.baselines import MonteCarloValue, TweedieValue
from value.latent_reward_checkpoint import load_latent_reward
from value.reward_model import RewardModel
from value.stitched import load_stitched
from value.value_model import ValueModel
from value.weighted_reward import WeightedReward

VALUE_KINDS = ("stitched", "latent_reward", "tweedie", "monte_carlo")


@dataclass(kw_only=True)
class ValueConfig:
    """kind: stitched (StitchVM: the folder at `path` that python launch/stitch.py exports) | latent_reward
    (DiNa-LRM: the folder at `path` that python launch/latent_reward.py exports, or the released
    checkpoint's folder; scores on its own scale, not the reward's) | tweedie (the
    base generator's one-step estimate r(D(z_t - t u)), nothing trained) | monte_carlo (the mean reward of
    `rollouts` continuations of the base generator on its `num_steps` schedule).

    cfg_scale, prompted: how tweedie and monte_carlo run the base generator (a stitched value records its
    own). A sampler that reuses its velocity for the Tweedie value needs the sampler's cfg_scale.
    """

    kind: str = "stitched"
    path: str = ""
    cfg_scale: float = 1.0
    prompted: bool = True
    rollouts: int = 1
    num_steps: int = 10

    def __post_init__(self):
        if self.kind not in VALUE_KINDS:
            raise ValueError(f"value.kind={self.kind!r} is not one of {VALUE_KINDS}")

    def check_path(self, key: str, why: str) -> None:
        """Refuse a stitched value or a latent reward without a folder; `key` is where this block sits (e.g.
        "rollout.value")."""
        if self.kind in ("stitched", "latent_reward") and not self.path:
            builder = "stitch.py" if self.kind == "stitched" else "latent_reward.py"
            raise ValueError(f"{why} with a {self.kind} value: set {key}.path to the folder python launch/{builder} "
                             f"exports (or {key}.kind=tweedie, nothing trained)")


def build_value(cfg: ValueConfig, model: FlowModel, reward: RewardModel, *, key: str) -> ValueModel:
    """The value of `model`'s rollouts under `reward`; `key` names the config block in errors."""
    match cfg.kind:
        case "stitched":
            return load_stitched(cfg.path, model, reward, setting=f"{key}.path").to(reward.device)
        case "latent_reward":
            return load_latent_reward(cfg.path, model, setting=f"{key}.path").to(reward.device)
        case "tweedie":
            return TweedieValue(model, reward, cfg_scale=cfg.cfg_scale, prompted=cfg.prompted)
        case "monte_carlo":
            return MonteCarloValue(model, reward, rollouts=cfg.rollouts, num_steps=cfg.num_steps,
                                   cfg_scale=cfg.cfg_scale, prompted=cfg.prompted)
        case _:
            raise AssertionError(f"unreachable: kind {cfg.kind!r} passed validation")


def build_frozen_value(cfg: ValueConfig, model: ModelConfig, reward: WeightedReward, *, key: str) -> ValueModel:
    """The value on a frozen copy of the base generator `model` (a policy's weights move; a value's must
    not), with the one training reward term it scores: what rollout workers and DRaFT learners read."""
    if len(reward.models) != 1:
        raise ValueError(f"{key} scores one reward: give exactly one reward term, not {sorted(reward.models)}")
    (term,) = reward.models.values()
    base = build_flow_model(model).to(term.device).eval().requires_grad_(False)
    return build_value(cfg, base, term, key=key)
