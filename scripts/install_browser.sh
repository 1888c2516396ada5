#!/usr/bin/env bash
# Installs Debian's chromium for the browser test of the Dagster UI (tests/test_ui_browser.py).
# Idempotent: does nothing when a chromium is already there. Never fails the set-up: without root or apt
# (or without network) it prints why and exits 0; the browser test then skips with that reason.
set -u
for candidate in "${SERVICESCORE_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
        echo "browser: $candidate ($("$candidate" --version 2>/dev/null | head -1))"
        exit 0
    fi
done
if ! command -v apt-get >/dev/null 2>&1; then
    echo "browser: apt-get not available; install chromium yourself to run the UI test (it will skip)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "browser: not root and no password-less sudo; run 'sudo apt-get install -y chromium' (the UI test skips)"
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends chromium >/tmp/servicescore-chromium-install.log 2>&1; then
    $SUDO apt-get update >>/tmp/servicescore-chromium-install.log 2>&1 || true
    if ! $SUDO apt-get install -y --no-install-recommends chromium >>/tmp/servicescore-chromium-install.log 2>&1; then
        echo "browser: apt-get install chromium failed (see /tmp/servicescore-chromium-install.log); the UI test skips"
        exit 0
    fi
fi
echo "browser: installed $(/usr/bin/chromium --version 2>/dev/null | head -1)"
