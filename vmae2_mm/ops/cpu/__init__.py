"""CPU inference paths: the compiled fused attention (``csrc/``), oneDNN attention and linears,
and the CPU facts that choose between them. Imports nothing from ``vmae2_mm.models``."""
from .optimize import optimize_for_cpu_inference

__all__ = ['optimize_for_cpu_inference']
