"""What the sampling scripts (generate, stitch) start with: torch seeded, the device resolved, the model
and the reward built on it."""

import torch

from diffusion.device import resolve_device
from diffusion.flow_model import FlowModel
from diffusion.model_config import build_flow_model
from value.reward_config import build_reward_model
from value.reward_model import RewardModel


def model_and_reward(cfg) -> tuple[FlowModel, RewardModel, torch.device]:
    """cfg: a job config with model, reward, seed and device ("auto" picks cuda when there is one)."""
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    return build_flow_model(cfg.model).to(device), build_reward_model(cfg.reward).to(device), device
