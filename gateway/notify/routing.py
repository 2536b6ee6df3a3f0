"""Who hears of an alert event: the routes of [notify], in order, as in Alertmanager's routing tree (one level).

A route matches an event when its kind, site and state are in the route's lists (an empty list: any). The first
matching route decides, unless it says `continue = true`: then the next matching routes add their receivers
too. No route matching is not an error: the event is kept, with no delivery (a coordinator reads it on the
console).
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.notify.settings import Route


def matches(route: Route, kind: str, site: str, state: str) -> bool:
    return (
        (not route.kinds or kind in route.kinds)
        and (not route.sites or site in route.sites)
        and (not route.states or state in route.states)
    )


def receivers_for(routes: Sequence[Route], kind: str, site: str, state: str) -> list[str]:
    """The receivers of an event of this kind, site and state, each once, in the order the routes name them."""
    out: list[str] = []
    for route in routes:
        if not matches(route, kind, site, state):
            continue
        out += [name for name in route.receivers if name not in out]
        if not route.keep_going:
            break
    return out
