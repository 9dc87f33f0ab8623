"""S3's part limits, for the store's checks and its multipart writer."""

MiB = 1024 * 1024
#: S3's smallest part (all but the last), largest part, and most parts per upload.
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * 1024 * MiB
MAX_PARTS = 10_000
