"""Checks the OpenAPI document's examples and links (tests/tests/contract.rs).

Reads the document (JSON) on stdin. Every operation must carry an example of
its request (parameters and body) and of its success response where those
have a body; every example must be valid against its schema (JSON Schema
2020-12, as OpenAPI 3.1 says, with the document's components); every link
must name an existing operation and only parameters that operation has.
Prints one line per defect and exits 1 if there is any; exit 3 when the
`jsonschema` package is missing (Schemathesis depends on it).
"""
import json
import sys

try:
    import jsonschema
except ImportError:
    sys.exit(3)

doc = json.load(sys.stdin)
defects = []
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def check(where, schema, value):
    root = {"$defs": {}, "components": doc.get("components", {}), "allOf": [schema]}
    validator = jsonschema.Draft202012Validator(root)
    for e in validator.iter_errors(value):
        path = "/".join(str(p) for p in e.absolute_path)
        defects.append(f"{where}: example invalid at /{path}: {e.message[:200]}")


def media_examples(where, content):
    found = False
    for media, m in (content or {}).items():
        if "example" in m:
            found = True
            if "json" in media and "schema" in m:
                check(f"{where} {media}", m["schema"], m["example"])
        for name, ex in (m.get("examples") or {}).items():
            found = True
            if "$ref" in ex:
                ex = doc["components"]["examples"][ex["$ref"].rsplit("/", 1)[1]]
            if "json" in media and "schema" in m:
                check(f"{where} {media} examples.{name}", m["schema"], ex["value"])
    return found


operations = {}
for path, item in doc["paths"].items():
    for method, op in item.items():
        if method in METHODS:
            operations[op["operationId"]] = (method, path, op)

for op_id, (method, path, op) in operations.items():
    where = f"{method.upper()} {path}"
    for p in op.get("parameters", []):
        if "schema" in p:
            if "example" not in p:
                defects.append(f"{where}: parameter {p['name']} has no example")
            else:
                check(f"{where} parameter {p['name']}", p["schema"], p["example"])
        elif not media_examples(f"{where} parameter {p['name']}", p.get("content")):
            defects.append(f"{where}: parameter {p['name']} has no example")
    body = op.get("requestBody")
    if body and not media_examples(f"{where} request", body.get("content")):
        defects.append(f"{where}: request body has no example")
    for status, r in op.get("responses", {}).items():
        content = {k: v for k, v in (r.get("content") or {}).items() if not k.startswith("image/")}
        if content and not media_examples(f"{where} {status}", content):
            defects.append(f"{where}: response {status} has no example")
        for name, link in (r.get("links") or {}).items():
            target = operations.get(link.get("operationId"))
            if target is None:
                defects.append(f"{where}: link {name} names no operation")
                continue
            t_method, t_path, t_op = target
            names = {p["name"] for p in t_op.get("parameters", [])}
            for param, expr in link.get("parameters", {}).items():
                if param not in names:
                    defects.append(f"{where}: link {name} sets {param}, which {t_method.upper()} {t_path} has not")
                if expr.startswith("$request.path."):
                    own = {p["name"] for p in op.get("parameters", []) if p.get("in") == "path"}
                    if expr.removeprefix("$request.path.") not in own:
                        defects.append(f"{where}: link {name} reads {expr}, which this operation has not")
            missing = {p["name"] for p in t_op.get("parameters", []) if p.get("in") == "path"} - set(link.get("parameters", {}))
            if missing:
                defects.append(f"{where}: link {name} leaves path parameters {sorted(missing)} unset")

for d in defects:
    print(d)
print(f"{len(operations)} operations, {len(defects)} defects", file=sys.stderr)
sys.exit(1 if defects else 0)
