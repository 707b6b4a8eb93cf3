"""Pixel reward models behind one interface, and (from the stitcher on) value functions V(z_t, t, prompts).

Knows nothing of Ray or DeepSpeed. Images are float (B, 3, H, W) in [0, 1]; each reward model does its
own resize and normalisation in torch, so scores are differentiable with respect to the pixels.
"""
