"""Which AWS API operations Vigil's code calls, read from its source, and the IAM actions they need.

No hand-kept list: each call site is its own declaration. `call_sites(module)` parses the
module with `ast` and, for the services the module makes clients of (`aws.client("s3", ...)`)
or names in an API label (`fetch("s3:GetBucketPolicy", ...)`), collects:

* API labels, `"service:Operation"` strings naming a real operation (every collector call
  goes through `fetch("svc:Op", ...)`, whose label is also the evidence's `api`);
* client methods called or handed on (`s3.delete_objects(...)`, `retry(client.put_item, ...)`)
  whose name is an operation of one of those services (resolved by the receiver when it was
  made by `.client("svc", ...)` in the same function, or by the enclosing `fetch` label, else
  by the only module service that has that operation);
* operation names passed as strings, `get_paginator("list_object_versions")` or a helper's
  `_list(client, "list_keys", ...)`.

Operation names come from botocore's own service models, so a typo or a non-AWS method
never becomes an action. `actions_for(op)` maps an operation to the IAM actions it needs
where they differ (GetBucketEncryption -> s3:GetEncryptionConfiguration, ...).
"""
from __future__ import annotations

import ast
import importlib.util
import re
import threading
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import botocore.session
from botocore import xform_name

from vigil.s3_facts import S3_FACTS

_LABEL = re.compile(r"^([a-z0-9-]+):([A-Z][A-Za-z0-9]+)$")

# Operation -> IAM actions, where the action is not simply "<signing name>:<Operation>".
ACTIONS: dict[str, tuple[str, ...]] = {
    # The bucket-configuration reads carry their actions in the S3 facts table (added below).
    "s3:ListBuckets": ("s3:ListAllMyBuckets",),
    "s3:ListObjectVersions": ("s3:ListBucketVersions",),
    "s3:ListObjectsV2": ("s3:ListBucket",),
    "s3:ListObjects": ("s3:ListBucket",),
    # Reading a specific version (VersionId) needs the *Version actions as well.
    "s3:HeadObject": ("s3:GetObject", "s3:GetObjectVersion"),
    "s3:GetObject": ("s3:GetObject", "s3:GetObjectVersion"),
    "s3:GetObjectTagging": ("s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
    "s3:PutObject": ("s3:PutObject", "s3:PutObjectTagging"),  # the rewrite carries the old version's tags
    "s3:DeleteObjects": ("s3:DeleteObject", "s3:DeleteObjectVersion"),
    "s3:DeleteObject": ("s3:DeleteObject", "s3:DeleteObjectVersion"),
    # A transaction needs the action of each kind of write in it (ConditionCheck for the guards).
    "dynamodb:TransactWriteItems": ("dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"),
    "s3control:GetPublicAccessBlock": ("s3:GetAccountPublicAccessBlock",),
    "sts:GetCallerIdentity": (),  # answers for any valid credentials; no permission exists for it
    **{row.api: row.iam for row in S3_FACTS.values()},
}

# What S3 asks of KMS on the caller's behalf for objects encrypted with a customer key.
VIA_S3_KMS: dict[str, tuple[str, ...]] = {
    "s3:GetObject": ("kms:Decrypt",),
    "s3:PutObject": ("kms:GenerateDataKey", "kms:Decrypt"),
}
# What DynamoDB asks of KMS on the caller's behalf for a table under a customer key: it decrypts the
# table key (cached a few minutes per caller) to read, and writes under it (AWS CDK's grantReadData /
# grantWriteData give these, with wildcards). A key policy that already allows the account's principals through
# DynamoDB makes these redundant, never wrong.
_DDB_READ = ("kms:Decrypt", "kms:DescribeKey")
_DDB_WRITE = (*_DDB_READ, "kms:Encrypt", "kms:GenerateDataKey")
VIA_DYNAMODB_KMS: dict[str, tuple[str, ...]] = {
    **{f"dynamodb:{op}": _DDB_READ for op in ("Scan", "Query", "GetItem", "BatchGetItem")},
    **{f"dynamodb:{op}": _DDB_WRITE for op in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")},
}


@dataclass(frozen=True, order=True)
class CallSite:
    operation: str  # "service:Operation" in botocore's names ("s3control:GetPublicAccessBlock")
    module: str
    line: int


@cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@cache
def known_services() -> frozenset[str]:
    return frozenset(_session().get_available_services())


@cache
def operations(service: str) -> dict[str, str]:
    """snake_case method name -> Operation name, from botocore's model of `service`."""
    return {xform_name(name): name for name in _session().get_service_model(service).operation_names}


@cache
def iam_prefix(service: str) -> str:
    return _session().get_service_model(service).signing_name or service


def actions_for(operation: str) -> tuple[str, ...]:
    """IAM actions one API operation ("s3:GetBucketEncryption") needs."""
    if operation in ACTIONS:
        return ACTIONS[operation]
    service, name = operation.split(":", 1)
    return (f"{iam_prefix(service)}:{name}",)


def module_path(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # "pkg.mod.Name": a name imported from a module, not a module
        return None
    return Path(spec.origin) if spec and spec.origin and spec.origin.endswith(".py") else None


def _client_service(node: ast.AST) -> str | None:
    """"s3" for `<anything>.client("s3", ...)`."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "client"
            and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value in known_services()):
        return node.args[0].value
    return None


def _services(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        service = _client_service(node)
        if service:
            found.add(service)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = _LABEL.match(node.value)
            if match and match.group(1) in known_services() and match.group(2) in operations(match.group(1)).values():
                found.add(match.group(1))
    return found


def _bindings(function: ast.AST) -> dict[str, str]:
    """Names bound in a function to a client of a known service: `s3 = aws.client("s3", region)`."""
    bound: dict[str, str] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            service = _client_service(node.value)
            if service:
                bound[node.targets[0].id] = service
    return bound


def _labelled_services(tree: ast.AST, services: set[str]) -> dict[int, str]:
    """Nodes inside `fetch("svc:Op", <call>)` -> svc: the label says which client the call uses."""
    out: dict[int, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            match = _LABEL.match(str(node.args[0].value))
            if match and match.group(1) in services:
                for inner in node.args[1:]:
                    for child in ast.walk(inner):
                        out[id(child)] = match.group(1)
    return out


# CPython 3.11 keeps one AST-constructor recursion counter per interpreter: two threads parsing at
# once (Pulumi runs a program's callbacks on more than one) can fail with "AST constructor recursion
# depth mismatch" (python/cpython#106905). So every parse here is serialized, and each source is
# parsed once per process (the trees are only read).
_PARSING = threading.Lock()


def parsed(path: Path) -> ast.Module:
    """The module at `path` as an AST (read each time, parsed once per distinct source)."""
    text = path.read_text(encoding="utf-8")
    with _PARSING:
        return _parse(text, str(path))


@lru_cache(maxsize=1024)
def _parse(text: str, filename: str) -> ast.Module:
    return ast.parse(text, filename=filename)


def call_sites(module: str, clients: tuple[str, ...] = ()) -> list[CallSite]:
    """Every AWS operation `module` declares by calling or naming it (see the module docstring).
    `clients`: services of clients the module is handed rather than makes (`S3Lock(s3, ...)`)."""
    path = module_path(module)
    if path is None:
        return []
    tree = parsed(path)
    services = _services(tree) | set(clients)
    by_method: dict[str, list[str]] = {}
    for service in sorted(services):
        for method, name in operations(service).items():
            by_method.setdefault(method, []).append(f"{service}:{name}")
    scopes = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    receivers: dict[int, dict[str, str]] = {}
    for function in scopes:
        bound = _bindings(function)
        for node in ast.walk(function):  # outer functions come first; an inner one adds its own names
            receivers[id(node)] = {**receivers.get(id(node), {}), **bound}
    labelled = _labelled_services(tree, services)
    labels = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str) and _LABEL.match(n.value)}
    found: set[CallSite] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = _LABEL.match(node.value)
            if match and match.group(1) in services and match.group(2) in operations(match.group(1)).values():
                found.add(CallSite(node.value, module, node.lineno))
            elif node.value in by_method:  # an operation named as a string: get_paginator("list_keys")
                found.update(CallSite(op, module, node.lineno) for op in by_method[node.value])
        elif isinstance(node, ast.Attribute) and node.attr in by_method:
            # a call `s3.get_object(...)` or a method handed on, `_call("PutItem", client.put_item, ...)`
            candidates = by_method[node.attr]
            receiver = node.value
            resolved = _client_service(receiver)
            if resolved is None and isinstance(receiver, ast.Name):
                resolved = receivers.get(id(node), {}).get(receiver.id)
            resolved = resolved or labelled.get(id(node))
            if resolved is not None:
                candidates = [op for op in candidates if op.startswith(resolved + ":")] or candidates
            elif len(candidates) > 1:  # still ambiguous: trust the module's own label for that operation
                candidates = [op for op in candidates if op in labels] or candidates
            found.update(CallSite(op, module, node.lineno) for op in candidates)
    return sorted(found)


def imported_module(package: str, node: ast.ImportFrom) -> str:
    """The absolute name a `from ... import` statement in `package` reads from (relative levels resolved)."""
    base = node.module or ""
    if not node.level:
        return base
    parts = package.split(".")
    parent = ".".join(parts[: len(parts) - node.level + 1])
    return f"{parent}.{base}" if base else parent


def imported_modules(module: str, within: tuple[str, ...]) -> set[str]:
    """`module` and every module it imports statically, transitively, whose name starts with one of `within`."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen or not name.startswith(within):
            continue
        path = module_path(name)
        if path is None:
            continue
        seen.add(name)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(parsed(path)):
            if isinstance(node, ast.ImportFrom):
                base = imported_module(package, node)
                todo.append(base)
                todo.extend(f"{base}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                todo.extend(alias.name for alias in node.names)
    return seen
