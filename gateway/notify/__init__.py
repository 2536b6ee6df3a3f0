"""Notifications that find a medic: alert events -> a durable outbox -> Apprise (docs/notifications.md).

settings.py reads [notify] (receivers, routes, timings); routing.py decides who hears of an event (an
Alertmanager-style route list); outbox.py is the SQL of the outbox, written in the event's own transaction by
the store; messages.py writes what a person reads (zh-CN and English, short and long forms); urls.py resolves a
receiver's URL from the environment or a file and redacts its secrets; send.py speaks Apprise; worker.py is
`checkpoint-gateway notify`, the process that routes, reminds, escalates and sends. Importing this package
loads no Apprise: only send.py does.
"""
