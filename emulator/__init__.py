"""The SageMaker runtime emulator (``smload emulator``): a local endpoint with a capacity model."""
