"""The API as one Swagger 2.0 document (``/openapi/v2``), converted from its OpenAPI v3 documents
for older tools."""

from __future__ import annotations

from typing import Any

import mfx
from mfx.server.openapi_definitions import MEDIA, Schema


def _to_v2(value: Any) -> Any:
    """A v3 schema fragment as Swagger 2.0 has it: refs to #/definitions, no nullable."""
    if isinstance(value, dict):
        result: Schema = {}
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                result[key] = item.replace("#/components/schemas/", "#/definitions/")
            elif key == "nullable":
                continue
            elif key == "allOf" and isinstance(item, list) and len(item) == 1 and "$ref" in item[0]:
                # Swagger 2.0 tools expect a plain $ref (its siblings are ignored there anyway).
                result["$ref"] = _to_v2(item[0])["$ref"]
            elif key == "default" and value.get("allOf"):
                continue
            else:
                result[key] = _to_v2(item)
        if result.get("x-kubernetes-int-or-string"):
            result.pop("anyOf", None)  # as the API server publishes int-or-string in v2
        return result
    if isinstance(value, list):
        return [_to_v2(item) for item in value]
    return value


def _operation_v2(operation: Schema) -> Schema:
    op = {k: v for k, v in operation.items() if k not in ("requestBody", "responses", "parameters")}
    params = [{k: v for k, v in p.items() if k != "schema"} | {"type": p["schema"]["type"]}
              for p in operation.get("parameters", [])]
    body = operation.get("requestBody")
    if body is not None:
        media, content = next(iter(body["content"].items()))
        op["consumes"] = list(body["content"])
        params.append({"name": "body", "in": "body", "required": True, "schema": _to_v2(content["schema"])})
    op["parameters"] = params
    op["produces"] = list(MEDIA)
    op["schemes"] = ["https"]
    op["responses"] = {
        code: ({"description": r["description"], "schema": _to_v2(next(iter(r["content"].values()))["schema"])}
               if "content" in r else r)
        for code, r in operation["responses"].items()
    }
    return op


def swagger_v2(documents: list[Schema]) -> Schema:
    """The v3 ``documents`` of the API as one Swagger 2.0 document (``/openapi/v2``)."""
    definitions: Schema = {}
    paths: Schema = {}
    for document in documents:
        definitions.update(_to_v2(document["components"]["schemas"]))
        for path, item in document["paths"].items():
            converted: Schema = {}
            for key, value in item.items():
                if key == "parameters":
                    converted[key] = [{k: v for k, v in p.items() if k != "schema"} | {"type": p["schema"]["type"]}
                                      for p in value]
                else:
                    converted[key] = _operation_v2(value)
            paths[path] = converted
    return {
        "swagger": "2.0",
        "info": {"title": "mfx", "version": mfx.__version__},
        "paths": dict(sorted(paths.items())),
        "definitions": dict(sorted(definitions.items())),
        "securityDefinitions": {"BearerToken": {"type": "apiKey", "name": "authorization", "in": "header"}},
        "security": [{"BearerToken": []}],
    }
