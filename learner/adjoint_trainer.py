"""`AdjointTrainer`: the controller of an AM or EAM run: DRaFT's step (the learners sample the step's rows
themselves and take one optimizer step), with `adjoint.method`'s learner."""

from learner.adjoint_config import AdjointJobConfig
from learner.adjoint_learner import LEARNERS, AdjointSetup
from learner.draft_trainer import DraftTrainer
from learner.learner import Learner, LearnerSetup


class AdjointTrainer(DraftTrainer):
    name = "adjoint"

    @staticmethod
    def learner_setup(cfg: AdjointJobConfig) -> tuple[type[Learner], LearnerSetup]:
        return LEARNERS[cfg.adjoint.method], AdjointSetup(
            model=cfg.model, finetune=cfg.finetune, rewards=cfg.rewards, adjoint=cfg.adjoint, learner=cfg.learner,
            rows_per_step=cfg.train.rows_per_step, height=cfg.height, width=cfg.width, seed=cfg.seed, device=cfg.device,
        )
