"""Webhook delivery library: endpoints, dialect signers, durable SQLite outbox, delivery engine, reference receiver."""
