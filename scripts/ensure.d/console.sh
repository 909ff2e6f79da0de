# shellcheck shell=bash
# The web console's browser test (e2e/console_browser_test.go, issue 16),
# sourced by scripts/test.sh (which defines apt_install and npm_install):
#
#   - Debian's chromium: /usr/bin/chromium, driven headless
#   - playwright-core from npm under .tools/console (it drives the browser;
#     it never downloads one of its own: no `playwright install` here)
apt_install chromium
npm_install "$root/.tools/console" playwright-core@1.65.1
export CONSOLE_CHROMIUM=/usr/bin/chromium
export CONSOLE_PLAYWRIGHT_DIR="$root/.tools/console/node_modules/playwright-core"
log "console browser test: $(/usr/bin/chromium --version 2>/dev/null), playwright-core $(node -p "require('$CONSOLE_PLAYWRIGHT_DIR/package.json').version")"
