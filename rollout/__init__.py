"""Generation: sampling groups of prompts with a flow model and scoring them (the rollout workers, made
Ray actors at group construction, build on this), and inference-time steering."""
