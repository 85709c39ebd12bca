"""Tectra's documented Flask receiver as a small app: check X-Tectra-Signature, then handle each delivery once."""
from __future__ import annotations

import hashlib
import hmac
import os

from flask import Flask, jsonify, request


def create_app(secret: str | None = None) -> Flask:
    """The receiver; the secret defaults to $TECTRA_WEBHOOK_SECRET, events handled go to app.extensions["handled"]."""
    app = Flask(__name__)
    webhook_secret = secret if secret is not None else os.environ["TECTRA_WEBHOOK_SECRET"]
    handled: list[dict] = []
    seen: set[str | None] = set()  # X-Tectra-Delivery ids: a redelivery is answered, not handled again
    app.extensions["handled"] = handled

    def verify_signature(payload: bytes, signature: str) -> bool:
        """The documentation's check: hex HMAC-SHA256 of the raw body, compared in constant time."""
        expected = hmac.new(webhook_secret.encode(), payload, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)

    @app.route("/webhooks/tectra", methods=["POST"])
    def handle_webhook():
        """Refuse a bad signature with 401; otherwise handle the event (once per delivery id) and answer 200."""
        signature = request.headers.get("X-Tectra-Signature", "")
        if not verify_signature(request.data, signature):
            return jsonify({"error": "Invalid signature"}), 401
        delivery = request.headers.get("X-Tectra-Delivery")
        if delivery and delivery in seen:
            return jsonify({"received": True}), 200
        event = request.json
        if event["event"] == "content.signed":
            app.logger.info("Content signed: %s", event["data"]["record_id"])
        elif event["event"] == "batch.anchored":
            app.logger.info("Batch anchored: %s", event["data"]["tx_hash"])
        elif event["event"] == "content.verified":
            app.logger.info("Verified: %s", event["data"]["authentic"])
        handled.append(event)
        seen.add(delivery)
        return jsonify({"received": True}), 200

    return app


if __name__ == "__main__":
    create_app().run(host="127.0.0.1", port=3000)
