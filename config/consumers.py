"""A ping consumer that proves the WebSocket wiring: auth, the channel layer, JSON frames."""

from __future__ import annotations

from channels.generic.websocket import AsyncJsonWebsocketConsumer

# WebSocket close code for "authentication required" (4000-4999 are for applications).
CLOSE_UNAUTHENTICATED = 4401


class AuthenticatedJsonConsumer(AsyncJsonWebsocketConsumer):
    """Base for our consumers: anonymous connections are closed before they are accepted."""

    async def websocket_connect(self, message):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        await super().websocket_connect(message)


class PingConsumer(AuthenticatedJsonConsumer):
    """``{"type": "ping", ...}`` → ``{"type": "pong", ...}`` sent back through the channel layer."""

    async def connect(self):
        await self.accept()
        await self.send_json({"type": "hello", "user": self.scope["user"].pk})

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict) or content.get("type") != "ping":
            await self.send_json({"type": "error", "message": 'Send {"type": "ping"}.'})
            return
        # Round-trip through Redis so a pong proves the channel layer works, not just the socket.
        await self.channel_layer.send(self.channel_name, {"type": "pong.message", "echo": content.get("data")})

    async def pong_message(self, event):
        await self.send_json({"type": "pong", "data": event["echo"], "user": self.scope["user"].pk})
