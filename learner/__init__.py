"""Losses (DiffusionNFT, DRaFT with the value model), the DeepSpeed learner group, weight sync, checkpoints."""
