#!/usr/bin/env bash
# Checks the deploy recipes in deploy/ with the real tools; fails on the first problem:
#   promtool check config / check rules / test rules   the scrape config and the alert rules
#   systemd-analyze verify                              the systemd unit (against the built binary)
#   kubernetes-validate --strict                        the Kubernetes example, against the schemas
#   kotae check                                         the kotae.toml inside the Kubernetes example
# Installs what it lacks (apt as root: prometheus, systemd; pip in a venv under target/).
set -euo pipefail
cd "$(dirname "$0")/.."
kotae=target/release/kotae
[[ -x $kotae ]] || cargo build --release --locked

need_apt=()
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
if ((${#need_apt[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "check-deploy: install ${need_apt[*]} (apt-get install -y ${need_apt[*]})" >&2
    exit 1
  fi
fi
venv=target/check-deploy-venv
if [[ ! -x $venv/bin/kubernetes-validate ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check kubernetes-validate==1.37.0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== promtool"
promtool check config deploy/prometheus.yml
promtool check rules deploy/alerts.yml
promtool test rules deploy/alerts.test.yml

echo "== systemd-analyze verify deploy/kotae.service"
sed "s#/usr/local/bin/kotae#$PWD/$kotae#" deploy/kotae.service >"$tmp/kotae.service"
# verify exits 0 on unknown keys and other warnings: any output is a failure.
out=$(systemd-analyze verify "$tmp/kotae.service" 2>&1 || echo "systemd-analyze exited $?")
if [[ -n $out ]]; then
  echo "$out" >&2
  exit 1
fi
echo "ok"

echo "== kubernetes-validate deploy/kubernetes-sidecar.yaml"
"$venv/bin/kubernetes-validate" --strict --quiet -k 1.29.0 deploy/kubernetes-sidecar.yaml
echo "ok"

echo "== kotae check with the Kubernetes example's kotae.toml"
"$venv/bin/python" - deploy/kubernetes-sidecar.yaml >"$tmp/kotae.toml" <<'PY'
import sys, yaml
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc and doc.get("kind") == "ConfigMap" and "kotae.toml" in doc.get("data", {}):
        sys.stdout.write(doc["data"]["kotae.toml"])
        break
else:
    sys.exit("no ConfigMap with kotae.toml")
PY
sed -i "s#/var/lib/kotae#$tmp/state#g" "$tmp/kotae.toml"
# Tokens come from the Secret there.
KOTAE_INGEST_TOKENS=check-ingest-token-0001 KOTAE_HOST_TOKENS=check-host-token-00001 \
  KOTAE_MODERATOR_TOKENS=check-moderator-token-01 "$kotae" --config "$tmp/kotae.toml" check
echo "deploy recipes: 5 passed, 0 failed"
