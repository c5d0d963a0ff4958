"""Model runtimes a stage's handler loads: the TF.js graph reader and the pose model."""
