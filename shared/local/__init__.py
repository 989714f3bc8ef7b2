"""Local development tooling: the sandbox emulators, Azurite control and the local Functions host.

Not imported by ``function_app``; excluded from deployment by ``.funcignore``.
"""
