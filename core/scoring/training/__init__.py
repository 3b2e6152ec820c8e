"""Training, export and evaluation of the Tonehub sentiment model.

This package is the only place in the project that imports torch (and
transformers). The runtime never imports it: ``core.scoring.engine`` serves the
exported ONNX files with onnxruntime and ``tokenizers`` only. Run it with
``python -m core.scoring.training --help`` or ``make model``.
"""
