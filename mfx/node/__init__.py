"""The node agent and leader election: what every machine of a fleet runs beside its player.

Both talk to the control plane only through ``ObjectClient`` (``mfx.node.client``), so the
same code runs inside ``mfx serve`` (over its store) and in a remote agent (over HTTP).
"""

from mfx.node.agent import AgentSettings, NodeAgent
from mfx.node.client import ObjectClient, StoreClient
from mfx.node.facts import NodeFacts, gather_facts
from mfx.node.leader import LeaderElector
from mfx.node.lease import LeaseRecord, micro_time
from mfx.node.reasons import NODE_LEASE_LABEL, NodeReason

__all__ = ["NODE_LEASE_LABEL", "AgentSettings", "LeaderElector", "LeaseRecord", "NodeAgent", "NodeFacts",
           "NodeReason", "ObjectClient", "StoreClient", "gather_facts", "micro_time"]
