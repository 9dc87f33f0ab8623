"""Pointer formats: offload's native one, the AWS extended-client one, and foreign readers."""
