"""The tiny world: the embedded default every launch script, test and benchmark runs on (DESIGN.md section 5).

Scenes of coloured handwritten digits (scikit-learn's bundled `load_digits`, real data shipped inside
the package) on a 2x2 grid, captions in GenEval's six task families, a verifier that scores prompt
fidelity the way GenEval does, and the builders of its generator and reward models, saved in the
formats of the real checkpoints so that the real loaders read them.

Why a package of its own (the design card fixes the other top-level names): the world trains both a
generator and rewards and is read by every layer, so inside `diffusion/` or `value/` it would make one
of them depend on the other.
"""
