"""What to invoke and how: the endpoint options (each declared once), payloads, the AWS session and
credentials, SigV4, the two transports (fast, boto3), the client and ``SageMakerUser``. Knows nothing of
the measurements: the client fires Locust's request event with a record (``smload.record``)."""
