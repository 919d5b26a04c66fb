"""The float reference interpreter (:mod:`hwflow.ref.float`: numpy, equal to onnxruntime).

The bit-exact integer reference lives beside the QGraph contract it executes, in
:mod:`hwflow.quant.reference`.
"""
