"""Async batch scoring jobs: inputs, the job service and the runner."""
