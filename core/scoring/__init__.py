"""The sentiment scoring engine (onnxruntime + tokenizers; no torch)."""
