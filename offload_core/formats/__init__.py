"""Pointer formats: offload's native one, the AWS extended-client one, and foreign readers.

Format plugins parse pointers with the same strict JSON rules (:func:`loads_strict`: no
duplicate keys, bounded size and depth, no NaN) through the names re-exported here.
"""

from ._json import StrictJSONError, loads_strict, unique_pairs

__all__ = ["StrictJSONError", "loads_strict", "unique_pairs"]
