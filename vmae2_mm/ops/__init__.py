"""Operators outside the model definitions (the CPU inference kernels and their dispatch)."""
