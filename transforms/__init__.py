"""Pipeline stages: one module per stage (read, fetch, decode, features, tagger, detect,
zero_shot, expand, write) plus the shared pieces they use."""

from transforms.gcs_emulator import use_anonymous_gcs_if_emulated

use_anonymous_gcs_if_emulated()
