"""The wire layer: frames, dialects, the JSON rule, error and close codes, offsets and the recovery rule.

It imports nothing else of the package: every layer above speaks it.
"""
