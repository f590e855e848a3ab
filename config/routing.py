from django.urls import path

from config.consumers import PingConsumer
from recognition.routing import websocket_urlpatterns as recognition_websockets

websocket_urlpatterns = [
    path("ws/ping/", PingConsumer.as_asgi()),
    *recognition_websockets,
]
