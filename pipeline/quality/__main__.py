"""python -m pipeline.quality: the key's figures (pipeline/quality/command.py)."""

from pipeline.quality.command import main

main()
