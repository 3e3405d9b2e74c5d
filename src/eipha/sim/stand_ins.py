"""The stand-ins of the simulated story and the sandbox, each a simulated server on
127.0.0.1: a web server per node where HAProxy would be, and a router that plays the
internet (a request for an EIP goes to whichever node EC2 says holds it)."""

from __future__ import annotations

import http.client
import socketserver
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from eipha.sim import serving
from eipha.sim.ec2_client import ec2_client

if TYPE_CHECKING:
    from eipha.sim.story_lab import Lab

HOST = "127.0.0.1"


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class WebServer(serving.Served):
    """What HAProxy would be on node ``name``: answers 'served by NAME'."""

    what = "the web server"
    thread_name = "eipha-sim-web"

    def __init__(self, name: str, port: int = 0) -> None:
        super().__init__()
        self.name = name
        self._port = port

    def bind(self) -> socketserver.BaseServer:
        body = f"served by {self.name}\n".encode()

        class Handler(_Quiet):
            def do_GET(self) -> None:
                self.answer(200, body)

        return serving.HTTPServer((HOST, self._port), Handler)


class Router(serving.Served):
    """Plays the internet: ``GET /<eip>`` goes to the node EC2 says holds that EIP."""

    what = "the router"
    thread_name = "eipha-sim-router"

    def __init__(self, lab: Lab, port: int = 0) -> None:
        """``port`` 0: an ephemeral one (``eipha sandbox`` gives a fixed one)."""
        super().__init__()
        self.lab = lab
        self.client = ec2_client(lab.region)
        self._port = port

    def bind(self) -> socketserver.BaseServer:
        router = self

        class Handler(_Quiet):
            def do_GET(self) -> None:
                self.answer(*router.forward(self.path.strip("/")))

        return serving.HTTPServer((HOST, self._port), Handler)

    def forward(self, eip: str) -> tuple[int, bytes]:
        spec = self.lab.world.eips.get(eip)
        if spec is None:
            return 404, b"no such EIP\n"
        [address] = self.client.describe_addresses(AllocationIds=[spec.allocation_id])["Addresses"]
        node = next(
            (
                n
                for n in self.lab.world.nodes.values()
                if n.eni_id == address.get("NetworkInterfaceId")
            ),
            None,
        )
        port = self.lab.web_ports.get(node.name) if node else None
        if port is None:
            return 504, b"nothing answers at this address\n"
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=0.5)
            conn.request("GET", "/")
            answer = conn.getresponse()
            return answer.status, answer.read()
        except OSError:
            return 504, b"nothing answers at this address\n"
