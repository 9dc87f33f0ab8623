"""offload's built-in storage backends (installed as ``offload_backends``)."""
