"""ChatOps over HTTP: Slack slash commands and buttons, Teams outgoing webhooks, one command grammar.

- ``verify``: request authentication on the raw bytes (Slack v0 signatures, Teams HMAC), pure.
- ``grammar``: the command language both chats share, and ``help``; pure.
- ``access``: who may do what per environment (``infra/chatops-access.yaml``), deny by default; pure.
- ``approvals``: production changes wait for a second operator; a small table, ETag-guarded.
- ``commands``: what each command does, through the same services as ``platformctl``.
- ``service``: the request path (verify, parse, authorize, acknowledge or enqueue) and the queue worker.
"""
