"""The data plane of the Kong AWS Masker stack for local and CI use: a Kong-compatible masking
gateway, the backend application and a mock AI upstream (`python -m kongmasker_dataplane`).

`kongmasker_dataplane.masking` is the pure masking engine; everything else does I/O.
"""
