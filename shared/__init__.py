"""Platform Core: domain logic and adapters for the automation app.

Importing this package must stay cheap: the Functions host imports it on cold start. Heavy SDKs
(azure.mgmt.*, azure.keyvault.*, azure.storage.*, azure.data.tables, kubernetes, cloudflare, gitlab)
are imported inside the adapters' methods, on first use.
"""

__version__ = "0.1.0"

#: Module prefixes that must not be imported when ``function_app`` is indexed (checked by
#: tests/unit/test_function_app.py and measured by bench/cold_start.py).
HEAVY_SDKS = ("azure.mgmt", "azure.keyvault", "azure.storage", "azure.data.tables", "azure.identity",
              "kubernetes", "cloudflare", "gitlab", "mcp", "starlette")
