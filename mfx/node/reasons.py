"""The reasons of a Node's Ready condition (the CRD's enum) and the labels the node code sets."""

from __future__ import annotations

import enum

from mfx.api.kinds import GROUP


class NodeReason(enum.StrEnum):
    AGENT_READY = "AgentReady"  # the agent runs and renews its Lease
    AGENT_NOT_READY = "AgentNotReady"  # the agent runs but cannot serve
    NODE_STATUS_UNKNOWN = "NodeStatusUnknown"  # the Lease expired: nobody knows


# Tells a node's heartbeat Lease from leader-election Leases (``mfx get leases -l ...``).
NODE_LEASE_LABEL = f"{GROUP}/node-lease"
