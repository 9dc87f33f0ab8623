"""``offload demo``: the claim-check pattern across accounts and regions, on an embedded AWS.

:func:`run_demo` reproduces the seed architecture on a moto server (needs the ``demo`` extra);
:func:`run_local` is the same publish-and-verify round trip over a local directory, with no AWS
at all. Both return a :class:`Report`: a row per message, and checks; ``ok`` when all passed.
"""

from __future__ import annotations

from ._local import run_local
from ._payloads import Progress
from ._report import Report, Resolution, Row
from ._seed import ACCOUNTS, FAR, HOME, run_demo

__all__ = [
    "ACCOUNTS",
    "FAR",
    "HOME",
    "Progress",
    "Report",
    "Resolution",
    "Row",
    "run_demo",
    "run_local",
]
