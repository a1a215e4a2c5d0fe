#!/usr/bin/env bash
# Reads a render of charts/pwru (chart-render or `helm template`) on stdin and
# writes it with the certificate data the chart generates at random
# (tls.method helm: ca.crt, tls.crt, tls.key of the two Secrets) replaced by
# `<generated>`, so that two renders compare equal. manifests/pwru.yaml is
# stored in this form (it carries no keys; manifests/install.sh fills them).
set -euo pipefail
sed -E 's#^( +)(ca\.crt|tls\.crt|tls\.key): [A-Za-z0-9+/=]{64,}$#\1\2: <generated>#'
