"""The web console for medics and coordinators (`checkpoint-gateway web`; docs/console.md).

app.py builds the Starlette application (routes.py: pages, actions, live events), auth.py keeps accounts,
sessions, CSRF tokens and the login rate limit in the store, i18n.py the words in zh-CN and English and the
times in each site's zone. The console is its own process: it talks to the gateway only through the database,
so several may run beside one gateway.
"""
