"""The typed API that domain apps call, one module per service (docs/business-services.md)."""
