"""offload's built-in transports (installed as ``offload_transports``)."""
