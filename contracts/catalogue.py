"""Data access's vocabulary, declared once: the catalogue of queries a requestor may propose, by code, and the
contract's actions whose gas a run reports.

``DataAccess.vy`` knows only the codes (``CATALOGUE_SIZE`` of them); the
study schema (``data_access.queries``) names them; what each computes, and
its sensitivity, is `gridledger.agents.data_catalogue`.
"""

CATALOGUE = ("aggregate-load-profile", "group-peak-kw", "ev-share")
"""Query names by code (position)."""
ACTIONS = ("propose", "approve", "post_result", "accept", "cancel")
"""The ``DataAccess`` functions a run calls (``data_action`` in results)."""
EVENT_OF_ACTION = {"propose": "Requested", "approve": "Approved", "post_result": "ResultPosted", "accept": "Paid",
                   "cancel": "Cancelled"}
"""The event each action's transaction emits first, by which its receipt is told apart."""
