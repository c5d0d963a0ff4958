"""TaggerNet, the paper's MLP: feature extraction, datasets, training, evaluation, metrics and
the model card."""
