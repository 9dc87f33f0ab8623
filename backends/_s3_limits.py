"""S3's part limits, and how the store sizes parts and ranges within its memory budget.

A write keeps at most :data:`WRITE_WINDOW` bytes of parts in flight, plus the part being filled,
and a read :data:`READ_WINDOW` bytes of ranges, plus the range being handed over; with the
pipeline's own buffers (and what the allocator keeps) a streamed write or read then stays
within about 64 MiB of memory. Within that budget, more and smaller requests
use a network better than fewer and larger ones: one connection to S3 carries about 90 MB/s,
and a request pays a round trip before its bytes flow (2 ms in a region, 70 ms across).
"""

from __future__ import annotations

MiB = 1024 * 1024
#: S3's smallest part (all but the last), largest part, and most parts per upload.
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * 1024 * MiB
MAX_PARTS = 10_000

#: Bytes of parts uploading at once per write, and of ranges downloading per read, by default.
#: A part is held from its first byte written until S3 has it, a range from its request until
#: it is read, so parts take more memory per byte in flight.
WRITE_WINDOW = 30 * MiB
READ_WINDOW = 40 * MiB
#: The default part size, S3's smallest: the most parts in flight within :data:`WRITE_WINDOW`.
AUTO_PART_SIZE = MIN_PART_SIZE
#: Default parts make a 24 GiB stream; past that part, each further :data:`GROW_EVERY` parts
#: are twice as large (and half as many go at once), so a stream never runs out of parts
#: (about 330 GiB with 5 MiB parts at first).
GROW_AFTER = 5_000
GROW_EVERY = 1_000
#: The default ``multipart_threshold``: payloads above it go up as parts in parallel.
AUTO_MULTIPART_THRESHOLD = 8 * MiB

#: Ranges read at once by default, and the smallest and largest range the store chooses.
AUTO_READ_CONCURRENCY = 10
MIN_SPAN = MiB
MAX_SPAN = 4 * MiB
#: Objects of at most this size are read with one ``GetObject``, which also returns S3's
#: full-object checksum (ranged responses do not); parallel ranges save little below it.
SINGLE_READ_MAX = 2 * MiB


def write_concurrency(part_size: int) -> int:
    """Parts uploaded at once by default: as many as :data:`WRITE_WINDOW` holds, at least one."""
    return max(1, WRITE_WINDOW // part_size)


def grown_part_size(part_size: int, number: int) -> int:
    """The size of automatically sized part ``number`` (1-based), the first ones being
    ``part_size``."""
    if number <= GROW_AFTER:
        return part_size
    doublings = (number - GROW_AFTER - 1) // GROW_EVERY + 1
    return min(MAX_PART_SIZE, part_size << doublings)


def read_plan(size: int, concurrency: int | None) -> tuple[int, int]:
    """``(span, concurrency)`` for reading ``size`` bytes as ranges (``concurrency`` ``None``
    for the default): about ``size / concurrency`` bytes per range, from :data:`MIN_SPAN` to
    :data:`MAX_SPAN`, and no more than keeps ``concurrency`` ranges within :data:`READ_WINDOW`. A
    concurrency of 1, or a single span, means one stream."""
    wanted = AUTO_READ_CONCURRENCY if concurrency is None else concurrency
    if wanted <= 1 or size <= MIN_SPAN:
        return max(size, 1), 1
    largest = max(MIN_SPAN, min(MAX_SPAN, READ_WINDOW // wanted))
    span = min(largest, max(MIN_SPAN, -(-size // wanted)))
    return span, min(wanted, -(-size // span))
