"""What every stage shares: the element record, the stage registry, the model handler base,
thread limits, artifacts and progress counters."""
