"""The shipped JSON Schemas drive a real YAML language server: typos and wrong types show at their line.

Runs the npm package yaml-language-server over stdio (installed for this test only). Skipped, with
the reason, where Node.js or npm is absent or the package cannot be installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from ..conftest import CURRENT, ROOT

NODE, NPM = shutil.which("node"), shutil.which("npm")
pytestmark = pytest.mark.skipif(NODE is None or NPM is None, reason="Node.js and npm are not installed")


@pytest.fixture(scope="module")
def server_js(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prefix = tmp_path_factory.mktemp("yls")
    done = subprocess.run([NPM, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(prefix),
                           "yaml-language-server@1"], capture_output=True, text=True, timeout=300)
    script = prefix / "node_modules" / "yaml-language-server" / "bin" / "yaml-language-server"
    if done.returncode != 0 or not script.exists():
        pytest.skip(f"yaml-language-server could not be installed: {done.stderr.strip()[-300:]}")
    return script


class Client:
    """A minimal LSP client over stdio: enough to open documents and collect diagnostics."""

    def __init__(self, script: Path):
        self.proc = subprocess.Popen([NODE, str(script), "--stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        self.next_id = 0
        self.diagnostics: dict[str, list[dict[str, Any]]] = {}

    def send(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        self.proc.stdin.flush()

    def request(self, method: str, params: Any) -> Any:
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        while True:
            msg = self.read()
            if msg.get("id") == self.next_id and "method" not in msg:
                return msg.get("result")

    def notify(self, method: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        length = 0
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("the language server exited")
            if line in (b"\r\n", b"\n"):
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        msg = json.loads(self.proc.stdout.read(length))
        if msg.get("method") == "textDocument/publishDiagnostics":
            self.diagnostics[msg["params"]["uri"]] = msg["params"]["diagnostics"]
        elif "id" in msg and "method" in msg:  # a request from the server (configuration, registration)
            result: Any = [{"validate": True, "schemaStore": {"enable": False}}] * len(
                msg.get("params", {}).get("items", [])) if msg["method"] == "workspace/configuration" else None
            self.send({"jsonrpc": "2.0", "id": msg["id"], "result": result})
        return msg

    def diagnostics_for(self, uri: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.time() + timeout
        while uri not in self.diagnostics:
            if time.time() > deadline:
                raise TimeoutError(f"no diagnostics for {uri}")
            self.read()
        return self.diagnostics[uri]

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


def test_schemas_drive_a_real_yaml_language_server(server_js: Path, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    folder = tmp_path / "policies" / "p"
    folder.mkdir(parents=True)
    good = CURRENT.read_text(encoding="utf-8")
    files = {
        "shipped": good,
        "typo": good.replace("    severity: high\n    category: profitability",
                             "    severty: high\n    category: profitability", 1),
        "wrong_type": good.replace("    priority: 1\n", "    priority: urgent\n", 1),
    }
    lines = {}
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
        lines[name] = next((i for i, line in enumerate(text.splitlines()) if "severty:" in line or
                            "priority: urgent" in line), None)
    client = Client(server_js)
    try:
        client.request("initialize", {"processId": None, "rootUri": tmp_path.as_uri(), "capabilities": {},
                                      "workspaceFolders": [{"uri": tmp_path.as_uri(), "name": "t"}]})
        client.notify("initialized", {})
        client.notify("workspace/didChangeConfiguration",
                      {"settings": {"yaml": {"validate": True, "schemaStore": {"enable": False}}}})
        found = {}
        for name, text in files.items():
            uri = (folder / f"{name}.yaml").as_uri()
            client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1,
                                                                    "text": text}})
            found[name] = client.diagnostics_for(uri)
    finally:
        client.close()
    assert found["shipped"] == []
    typo = [d for d in found["typo"] if d["range"]["start"]["line"] == lines["typo"]]
    assert typo and any("severty" in d["message"] or "not allowed" in d["message"] for d in typo), found["typo"]
    wrong = [d for d in found["wrong_type"] if d["range"]["start"]["line"] == lines["wrong_type"]]
    assert wrong and any("integer" in d["message"].lower() for d in wrong), found["wrong_type"]
