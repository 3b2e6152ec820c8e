"""RQ job functions: importable, re-runnable, exceptions let out."""
