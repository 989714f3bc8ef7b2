"""One Blueprint per capability. ``function_app.py`` registers each module's ``bp``."""
