"""What a --partition may be: Hive-style key=value segments (dt=2026-11-29, dt=2026-11-29/hour=07).

Apart from runs.py so that the flag declarations (and the Flex Template's parameter pattern
derived from them) read it without importing Beam.
"""

from __future__ import annotations

import re

_SEGMENT = r"[A-Za-z_][A-Za-z0-9_]*=[A-Za-z0-9_.:+-]+"
PARTITION = re.compile(rf"^{_SEGMENT}(/{_SEGMENT})*$")


def check_partition(partition: str) -> None:
    if partition and not PARTITION.match(partition):
        raise ValueError(f"--partition {partition!r} must be Hive-style key=value segments "
                         "(for example dt=2026-11-29 or dt=2026-11-29/hour=07)")
