"""Services: gather, decide, act. Trigger functions and platformctl call these, never adapters directly."""
