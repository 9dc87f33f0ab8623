"""The AWS kit: what the built-in plugins know about AWS, in one place.

- :mod:`~offload_core.aws.errors`: botocore's errors, read without importing botocore, as
  offload's storage and transport errors; one table of the codes worth retrying.
- :mod:`~offload_core.aws.arn`: ARNs, regions and S3's HTTP(S) host names.
- :mod:`~offload_core.aws.events`: AWS message JSON (SQS messages, Lambda SQS, SNS and
  EventBridge events) and message attributes in boto3's shape.
- :mod:`~offload_core.aws.limits`: what SQS and SNS accept: message size as they count it,
  body characters and attribute names.

It ships with the core distribution so that ``offload_backends`` and ``offload_transports`` (and
``offload_core.testing``) share it, but the core's own modules never import it: the core knows
nothing about AWS. Importing the kit imports neither boto3 nor botocore.
"""
