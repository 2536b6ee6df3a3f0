"""Protocol-v1 JSON messages, in and out, held to the contract's tables (contract.py) at the door.

A message the node writes names only fields of its table and keeps their rules, or it does not go out; a
message the node reads is acted on only if it satisfies its table. Problems read as contract.check's:
`<problem>:<field>`, plus `unknown_field:<name>` for a name the table does not have.
"""

import json

import contract


def encode(fields, msg):
    """The JSON bytes of `msg`; ValueError(problem) if it breaks the table `fields`."""
    known = contract.names(fields)
    for name in msg:
        if name not in known:
            raise ValueError("unknown_field:" + name)
    problem = contract.check(msg, fields)
    if problem is not None:
        raise ValueError(problem)
    return json.dumps(msg).encode()


def decode(payload, fields):
    """(message, None), or (None, why it is refused) for a payload that breaks the table `fields`."""
    try:
        msg = json.loads(payload)
    except ValueError:
        msg = None
    if not isinstance(msg, dict):
        return None, "not a protocol v1 JSON object"
    problem = contract.check(msg, fields)
    return (None, problem) if problem is not None else (msg, None)
