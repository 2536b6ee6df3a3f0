#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian/Ubuntu machine: system packages, then .venv with the project.
# A second run only checks and returns.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)   # pyright type-checks firmware/ on Node
command -v openssl >/dev/null 2>&1 || missing+=(openssl)     # TLS tests make their own certificates
[ -x /usr/bin/chromium ] || missing+=(chromium)              # the console's browser tests (tests/web/)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)  # the PostgreSQL store's tests
# The broker cluster's tests (tests/scale/): members of their own on free ports; a packaged service is not used.
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing+=(rabbitmq-server)
[ -n "$(fc-list :lang=zh 2>/dev/null)" ] || missing+=(fonts-wqy-microhei)  # Chinese text in its screenshots
if ((${#missing[@]})); then
    if [ "$(id -u)" = 0 ]; then
        echo "setup: installing system packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        if [[ " ${missing[*]} " == *" rabbitmq-server "* ]] && command -v systemctl >/dev/null 2>&1; then
            # apt starts the packaged broker (rabbit@host on 5672): the tests run their own, it would only take
            # memory on the machine. epmd (port 4369) stays: every Erlang node on the machine shares it.
            systemctl disable --now rabbitmq-server >/dev/null 2>&1 || true
        fi
    else
        echo "setup: missing system packages: ${missing[*]}" >&2
        echo "setup: run: sudo apt-get install -y ${missing[*]}  (then run make again)" >&2
        exit 1
    fi
fi

stamp=".venv/.installed-$(cat pyproject.toml | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
    [ -x .venv/bin/python ] || python3 -m venv .venv
    echo "setup: installing the project and its dev tools into .venv (once)"
    .venv/bin/pip install -q --disable-pip-version-check -e '.[dev]'
    rm -f .venv/.installed-*
    touch "$stamp"
fi

# The console's htmx from the npm registry, served by the console itself (posts have no internet: never a CDN).
vendor=gateway/web/static/vendor
if [ ! -f "$vendor/htmx.min.js" ]; then
    echo "setup: installing htmx for the web console (npm)"
    npm install --prefix build/web-assets --no-audit --no-fund --silent htmx.org@2.0.11
    mkdir -p "$vendor"
    cp build/web-assets/node_modules/htmx.org/dist/htmx.min.js "$vendor/"
fi
