"""What the tests share: helper modules, apps served to subprocesses, probes run as scripts.

Test modules import from here and from nothing else in tests/; fixtures
shared by several modules live in the conftest.py files.
"""
