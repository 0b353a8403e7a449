"""A local HTTP server that plays the Hugging Face Hub's part for the calls mind-upload makes.

It speaks the Hub's own wire protocol, as huggingface_hub 1.17 uses it: `whoami-v2`, `repos/create` (keeping the
visibility it was asked for), repo info, `preupload` (regular files go inline in the commit; LFS files through
the Git LFS batch API, basic transfer), the NDJSON `commit`, and the reads `datasets.load_dataset` makes of a
repo at a revision (`paths-info`, `tree`, `resolve`). Every request is recorded with its headers, so tests can
check what was sent, and every API call must carry the one token the server was started with.

Run it alone with `python tests/hubserver.py` (it prints its URL and the token to use).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

USER = "elijah"
LFS_PATTERN = re.compile(r"\.(safetensors|bin|parquet|arrow|gguf|pt|zip)$")
LFS_THRESHOLD = 10 * 1024 * 1024  # the Hub's limit for regular (non-LFS) files


def git_blob_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Commit:
    oid: str
    summary: str
    files: dict[str, bytes]


@dataclass
class Repo:
    repo_type: str  # model | dataset
    repo_id: str
    private: bool
    commits: list[Commit] = field(default_factory=list)

    @property
    def head(self) -> Commit | None:
        return self.commits[-1] if self.commits else None

    def at(self, revision: str) -> Commit | None:
        if revision in ("main", "HEAD"):
            return self.head
        return next((c for c in self.commits if c.oid == revision), None)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    status: int = 0  # what the fake Hub answered
    unknown: bool = False  # no such endpoint here: the client made a call this server does not play


class FakeHub:
    """The server and its state; `with FakeHub(token) as hub:` starts it on 127.0.0.1 and stops it."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def repo(self, repo_type: str, repo_id: str) -> Repo:
        return self.repos[(repo_type, repo_id)]

    def files(self, repo_type: str, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        commit = self.repo(repo_type, repo_id).at(revision)
        return dict(commit.files) if commit else {}

    def unknown_calls(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests if r.unknown]

    def commits(self) -> list[Request]:
        return [r for r in self.requests if r.method == "POST" and "/commit/" in r.path]


# ---------------------------------------------------------------- the request handler

API = re.compile(r"^/api/(?P<type>model|dataset)s/(?P<repo>[^/]+/[^/]+)(?P<rest>/.*)?$")
LFS_BATCH = re.compile(r"^/(?P<prefix>datasets/)?(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/batch$")
RESOLVE = re.compile(r"^/(?P<prefix>datasets/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


def _handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet: tests read hub.requests instead
            pass

        # -------------------------------------------------------- plumbing

        def _record(self) -> Request:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            with hub.lock:
                hub.requests.append(request)
            self._request = request
            return request

        def _send(self, status: int, payload=None, raw: bytes | None = None, headers: dict | None = None) -> None:
            body = raw if raw is not None else json.dumps(payload if payload is not None else {}).encode()
            self._request.status = status
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if raw is None else "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, status: int, message: str, code: str | None = None) -> None:
            headers = {"X-Error-Message": message}
            if code:
                headers["X-Error-Code"] = code
            self._send(status, {"error": message}, headers=headers)

        def _authorized(self, request: Request) -> bool:
            if request.headers.get("authorization") == f"Bearer {hub.token}":
                return True
            self._error(401, "Invalid credentials in Authorization header")
            return False

        def _repo(self, repo_type: str, repo_id: str) -> Repo | None:
            repo = hub.repos.get((repo_type, repo_id))
            if repo is None:
                self._error(404, "Repository not found", "RepoNotFound")
            return repo

        def _commit(self, repo: Repo, revision: str) -> Commit | None:
            commit = repo.at(unquote(revision))
            if commit is None:
                self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            return commit

        # -------------------------------------------------------- dispatch

        def do_GET(self) -> None:
            self._dispatch()

        def do_HEAD(self) -> None:
            self._dispatch()

        def do_POST(self) -> None:
            self._dispatch()

        def do_PUT(self) -> None:
            self._dispatch()

        def _dispatch(self) -> None:
            request = self._record()
            url = urlsplit(request.path)
            path, query = unquote(url.path), parse_qs(url.query)
            if path.startswith("/lfs-upload/"):
                return self._lfs_upload(path.rsplit("/", 1)[1], request)
            if not self._authorized(request):
                return None
            if path == "/api/whoami-v2":
                return self._send(200, {"type": "user", "name": USER, "orgs": [], "auth": {"type": "access_token"}})
            if path == "/api/repos/create" and request.method == "POST":
                return self._create(json.loads(request.body))
            if path == "/api/validate-yaml" and request.method == "POST":
                errors = _metadata_errors(json.loads(request.body))
                return self._send(400 if errors else 200, {"errors": errors, "warnings": []})
            if path == "/lfs-verify":
                body = json.loads(request.body)
                return self._send(200 if body["oid"] in hub.lfs else 404, {})
            if m := LFS_BATCH.match(path):
                return self._lfs_batch(json.loads(request.body))
            if m := RESOLVE.match(path):
                kind = "dataset" if m["prefix"] else "model"
                return self._resolve(kind, m["repo"], m["rev"], m["path"])
            if m := API.match(path):
                return self._api(m["type"], m["repo"], m["rest"] or "", request, query)
            request.unknown = True
            return self._error(404, f"no such endpoint {request.method} {path}")

        def _api(self, repo_type: str, repo_id: str, rest: str, request: Request, query: dict) -> None:
            repo = self._repo(repo_type, repo_id)
            if repo is None:
                return None
            if m := re.match(r"^/preupload/(?P<rev>.+)$", rest):
                return self._preupload(repo, json.loads(request.body))
            if m := re.match(r"^/commit/(?P<rev>.+)$", rest):
                return self._commit_files(repo, request.body)
            if rest == "" or (m := re.match(r"^/revision/(?P<rev>.+)$", rest)):
                commit = self._commit(repo, m["rev"]) if rest else repo.head
                if rest and commit is None:
                    return None
                return self._send(200, _info(repo, commit))
            if m := re.match(r"^/paths-info/(?P<rev>[^/]+)$", rest):
                commit = self._commit(repo, m["rev"])
                if commit is None:
                    return None
                wanted = parse_qs(request.body.decode()).get("paths", [])
                return self._send(200, [e for e in _tree(commit, "", True) if e["path"] in wanted])
            if m := re.match(r"^/tree/(?P<rev>[^/]+)(?:/(?P<dir>.*))?$", rest):
                commit = self._commit(repo, m["rev"])
                if commit is None:
                    return None
                recursive = query.get("recursive", ["false"])[0].lower() == "true"
                return self._send(200, _tree(commit, m["dir"] or "", recursive))
            request.unknown = True
            return self._error(404, f"no such endpoint {request.method} {request.path}")

        # -------------------------------------------------------- repos and uploads

        def _create(self, body: dict) -> None:
            repo_type = body.get("type") or "model"
            repo_id = f"{body.get('organization') or USER}/{body['name']}"
            prefix = "datasets/" if repo_type == "dataset" else ""
            url = f"{hub.url}/{prefix}{repo_id}"
            with hub.lock:
                if (repo_type, repo_id) in hub.repos:
                    return self._send(409, {"error": "You already created this repo", "url": url})
                hub.repos[(repo_type, repo_id)] = Repo(repo_type, repo_id, private=body.get("visibility") == "private")
            return self._send(200, {"url": url, "name": repo_id})

        def _preupload(self, repo: Repo, body: dict) -> None:
            head = repo.head.files if repo.head else {}
            files = []
            for item in body["files"]:
                sample = base64.b64decode(item["sample"])
                lfs = bool(LFS_PATTERN.search(item["path"])) or item["size"] >= LFS_THRESHOLD or b"\0" in sample
                existing = head.get(item["path"])
                oid = None
                if existing is not None:
                    oid = hashlib.sha256(existing).hexdigest() if lfs else git_blob_oid(existing)
                files.append(
                    {"path": item["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid}
                )
            return self._send(200, {"files": files, "commitOid": repo.head.oid if repo.head else None})

        def _lfs_batch(self, body: dict) -> None:
            objects = []
            for obj in body["objects"]:
                entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
                if obj["oid"] not in hub.lfs:
                    entry["actions"] = {
                        "upload": {"href": f"{hub.url}/lfs-upload/{obj['oid']}"},
                        "verify": {"href": f"{hub.url}/lfs-verify"},
                    }
                objects.append(entry)
            return self._send(200, {"transfer": "basic", "objects": objects})

        def _lfs_upload(self, oid: str, request: Request) -> None:
            if hashlib.sha256(request.body).hexdigest() != oid:
                return self._error(400, "sha256 mismatch")
            hub.lfs[oid] = request.body
            return self._send(200, {})

        def _commit_files(self, repo: Repo, body: bytes) -> None:
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
            header = lines[0]["value"]
            files = dict(repo.head.files) if repo.head else {}
            for line in lines[1:]:
                value = line["value"]
                if line["key"] == "file":
                    files[value["path"]] = base64.b64decode(value["content"])
                elif line["key"] == "lfsFile":
                    if value["oid"] not in hub.lfs:
                        return self._error(422, f"LFS object {value['oid']} was never uploaded")
                    files[value["path"]] = hub.lfs[value["oid"]]
                elif line["key"] == "deletedFile":
                    files.pop(value["path"], None)
            parent = repo.head.oid if repo.head else ""
            oid = hashlib.sha1(f"{parent}{header['summary']}{time.time_ns()}".encode()).hexdigest()
            with hub.lock:
                repo.commits.append(Commit(oid, header["summary"], files))
            prefix = "datasets/" if repo.repo_type == "dataset" else ""
            commit_url = f"{hub.url}/{prefix}{repo.repo_id}/commit/{oid}"
            return self._send(200, {"commitUrl": commit_url, "commitOid": oid, "pullRequestUrl": None})

        # -------------------------------------------------------- reads (datasets.load_dataset)

        def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
            repo = self._repo(repo_type, repo_id)
            commit = repo and self._commit(repo, revision)
            if commit is None:
                return None
            if path not in commit.files:
                return self._error(404, "Entry not found", "EntryNotFound")
            content = commit.files[path]
            headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{git_blob_oid(content)}"'}
            return self._send(200, raw=content, headers=headers)

    return Handler


def front_matter(readme: str) -> dict:
    """The YAML metadata block of a card (what the Hub reads), or {} when there is none."""
    import yaml

    m = re.match(r"^---\n(.*?)\n---\n", readme, re.S)
    return (yaml.safe_load(m[1]) or {}) if m else {}


def _metadata_errors(body: dict) -> list[dict]:
    """A part of the Hub's card checks: the block parses, dataset configs name splits and files, and a
    model's base_model is a repo id rather than a local path."""
    try:
        meta = front_matter(body["content"])
    except Exception as e:
        return [{"message": f"metadata is not valid YAML: {e}"}]
    if not isinstance(meta, dict):
        return [{"message": "metadata must be a mapping"}]
    errors = []
    for config in meta.get("configs", []):
        for entry in config.get("data_files", []):
            if not (isinstance(entry, dict) and entry.get("split") and entry.get("path")):
                errors.append({"message": f"configs.{config.get('config_name')}: data_files need split and path"})
    base = meta.get("base_model")
    if base is not None and not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", str(base)):
        errors.append({"message": f"base_model {base!r} is not a model id"})
    return errors


def _info(repo: Repo, commit: Commit | None) -> dict:
    return {
        "id": repo.repo_id,
        "private": repo.private,
        "sha": commit.oid if commit else None,
        "siblings": [{"rfilename": p} for p in sorted(commit.files)] if commit else [],
        "disabled": False,
        "gated": False,
        "downloads": 0,
        "likes": 0,
        "tags": [],
        "lastModified": "2026-11-28T00:00:00.000Z",
    }


def _tree(commit: Commit, folder: str, recursive: bool) -> list[dict]:
    prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
    entries: dict[str, dict] = {}
    for path, content in sorted(commit.files.items()):
        if not path.startswith(prefix):
            continue
        rest = path[len(prefix) :].split("/")
        for depth in range(1, len(rest)):
            name = prefix + "/".join(rest[:depth])
            if recursive or depth == 1:
                entries.setdefault(name, {"type": "directory", "path": name, "oid": git_blob_oid(name.encode())})
        if recursive or len(rest) == 1:
            entries[path] = {"type": "file", "path": path, "size": len(content), "oid": git_blob_oid(content)}
    return list(entries.values())


if __name__ == "__main__":
    import secrets

    with FakeHub(token := f"hf_{secrets.token_hex(16)}") as hub:
        print(f"HF_ENDPOINT={hub.url} HF_TOKEN={token}", flush=True)
        threading.Event().wait()
