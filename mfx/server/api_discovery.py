"""API discovery: which groups, versions and resources this server serves, in the legacy
documents and in aggregated discovery (kubectl >= 1.26 asks for that first: every group's
resources in one answer)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from mfx.api.kinds import EVENT, GROUP, USER_KINDS, VERSION, KindInfo
from mfx.server.api_accept import wants_aggregated
from mfx.server.api_responses import json_response

DISCOVERY_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


async def core_versions(request: Request) -> Response:
    if wants_aggregated(request):
        return aggregated([discovery_group("", "v1", [EVENT])])
    return json_response({"kind": "APIVersions", "versions": ["v1"],
                          "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]})

async def core_resources(request: Request) -> Response:
    return json_response({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1",
                          "resources": [api_resource(EVENT, namespaced=True)]})

async def api_groups(request: Request) -> Response:
    if wants_aggregated(request):
        return aggregated([discovery_group(GROUP, VERSION, list(USER_KINDS))])
    return json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group_info()]})

async def api_group(request: Request) -> Response:
    return json_response({"kind": "APIGroup", "apiVersion": "v1", **group_info()})

async def group_resources(request: Request) -> Response:
    resources: list[dict[str, Any]] = []
    for info in USER_KINDS:
        resources.append(api_resource(info))
        resources.append({"name": f"{info.plural}/status", "singularName": "", "namespaced": False,
                          "kind": info.kind, "verbs": ["get", "patch", "update"]})
    return json_response({"kind": "APIResourceList", "apiVersion": "v1",
                          "groupVersion": f"{GROUP}/{VERSION}", "resources": resources})


def group_info() -> dict[str, Any]:
    gv = {"groupVersion": f"{GROUP}/{VERSION}", "version": VERSION}
    return {"name": GROUP, "versions": [gv], "preferredVersion": gv}


def api_resource(info: KindInfo, *, namespaced: bool | None = None) -> dict[str, Any]:
    if info is EVENT:
        namespaced, verbs = True, ["create", "get", "list", "patch", "watch"]
    else:
        verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    return {
        "name": info.plural,
        "singularName": info.singular,
        "namespaced": info.namespaced if namespaced is None else namespaced,
        "kind": info.kind,
        "verbs": verbs,
        "shortNames": list(info.short_names),
        "categories": list(info.categories),
    }


def aggregated(groups: list[dict[str, Any]]) -> Response:
    return Response(orjson.dumps({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
                                  "metadata": {}, "items": groups}), media_type=DISCOVERY_V2)


def discovery_group(group: str, version: str, kinds: list[KindInfo]) -> dict[str, Any]:
    resources = []
    for info in kinds:
        legacy = api_resource(info)
        kind_ref = {"group": group, "version": version, "kind": info.kind}
        resource: dict[str, Any] = {
            "resource": info.plural, "responseKind": kind_ref,
            "scope": "Namespaced" if legacy["namespaced"] else "Cluster",
            "singularResource": info.singular, "verbs": legacy["verbs"],
            "shortNames": legacy["shortNames"],
        }
        if legacy["categories"]:
            resource["categories"] = legacy["categories"]
        if info is not EVENT:
            resource["subresources"] = [{"subresource": "status", "responseKind": kind_ref,
                                         "verbs": ["get", "patch", "update"]}]
        resources.append(resource)
    metadata: dict[str, Any] = {"name": group} if group else {}
    return {"metadata": metadata,
            "versions": [{"version": version, "resources": resources, "freshness": "Current"}]}
