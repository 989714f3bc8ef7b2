"""The Functions app: create it and register one Blueprint per capability. Nothing else.

Heavy SDKs load on first use inside the adapters, so indexing this module stays fast (bench/cold_start.py).
"""

import azure.functions as func

from functions import certificates, chatops, compliance, gpu_scaling, health, housekeeping, mcp, models
from functions import cost as cost_functions
from functions import drift as drift_functions
from shared import logs

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

for blueprint in (health.bp, housekeeping.bp, certificates.bp, gpu_scaling.bp, drift_functions.bp,
                  compliance.bp, chatops.bp, cost_functions.bp, models.bp, mcp.bp):
    app.register_functions(blueprint)

# The Functions host owns the log handlers; make sure whatever it emits is redacted.
logs.install_host_filter()
