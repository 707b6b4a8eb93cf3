"""The pipeline that builds a StitchedValue: feature taps, stage-1 search, stage-2 distillation, export."""
