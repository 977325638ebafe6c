"""Adapters: License Guard's ports to the outside world, each with a real and an in-memory twin.

Among them:

* `shared.adapters.queues`: `MessageQueue` (send/receive/delete/peek typed messages) over
  Storage queues, Base64-encoded as the Functions queue trigger expects; `InMemoryQueue`.
* `shared.adapters.tables`: `EntityStore` (get/insert/upsert/update-if-unchanged/delete/query)
  over Azure Tables with optimistic concurrency by ETag; `InMemoryTable`.

Each storage port has ONE contract test suite that runs against both the fake and Azurite, so
code tested against the fake behaves the same against Azure. The pure core (`shared.core`)
never imports from here; services receive these ports from the composition root.
"""
