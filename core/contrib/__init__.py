"""Ready-made integrations: web frameworks' notification endpoints and OpenTelemetry.

A notification endpoint does the same in every framework: verify, guard, decide, answer (see
`answer`). `paymux.contrib.flask`, `paymux.contrib.fastapi` and the Django app
`paymux.contrib.django` do it for their framework; `paymux.contrib.otel` records traces and
metrics. Each needs its extra (`paymux[flask]`, `paymux[fastapi]`, `paymux[django]`,
`paymux[otel]`) and is imported only by the host that uses it.
"""

from paymux.contrib._handling import AsyncShop, Reply, Shop, answer, answer_async, handle

__all__ = ["AsyncShop", "Reply", "Shop", "answer", "answer_async", "handle"]
