#!/usr/bin/env bash
# Tells the local controller that the demo repository changed, as a GitHub push webhook would:
# a signed push event to http://127.0.0.1:${CONTROLLER_PORT}/api/webhook.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

CONTROLLER_PORT=${CONTROLLER_PORT:-8081}
DEMO_GIT_PORT=${DEMO_GIT_PORT:-9418}
DRIFTGUARD_WEBHOOK_SECRET=${DRIFTGUARD_WEBHOOK_SECRET:-local-webhook-secret}
REPO_URL=${1:-git://127.0.0.1:${DEMO_GIT_PORT}/shop.git}

case ${1:-} in -h | --help) echo "usage: hack/demo-push.sh [repo-url]  (default ${REPO_URL})"; exit 0 ;; esac
after=$(git ls-remote "${REPO_URL}" refs/heads/main 2>/dev/null | cut -f1)
body=$(printf '{"ref":"refs/heads/main","after":"%s","repository":{"clone_url":"%s"}}' \
  "${after:-0000000000000000000000000000000000000000}" "${REPO_URL}")
signature=$(printf '%s' "${body}" | openssl dgst -sha256 -hmac "${DRIFTGUARD_WEBHOOK_SECRET}" -r | cut -d' ' -f1)
curl -fsS -X POST "http://127.0.0.1:${CONTROLLER_PORT}/api/webhook" -H "Content-Type: application/json" \
  -H "X-GitHub-Event: push" -H "X-Hub-Signature-256: sha256=${signature}" --data "${body}"
