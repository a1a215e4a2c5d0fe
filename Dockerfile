# pwru-k8s: pwru, pwru-agent and kubectl-pwru on Debian bookworm.
#   docker build -t pwru-k8s:dev .
# The agent's privileges come from the chart (charts/pwru: root's uid with a
# list of capabilities); the image's default user is unprivileged.
# DEBIAN_IMAGE: any Debian bookworm image (scripts/build-image-offline.sh passes
# one made with debootstrap where no registry is reachable).
ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${DEBIAN_IMAGE} AS builder
WORKDIR /src
# Build dependencies first: this layer survives source changes.
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh build && rm -rf /var/lib/apt/lists/*
COPY . .
# The README's / scripts/dev.sh's build, without the test binaries.
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPWRU_BUILD_TESTS=OFF \
 && cmake --build build -j"$(nproc)" --target pwru pwru-agent kubectl-pwru \
 && mkdir /out \
 && cp build/pwru build/agent/pwru-agent build/kubectl-plugin/kubectl-pwru /out/ \
 && strip --strip-debug /out/* \
 && scripts/runtime-packages.sh /out/* > /out/runtime-packages

FROM ${DEBIAN_IMAGE}
COPY --from=builder /out/runtime-packages /tmp/runtime-packages
# Only the shared libraries the three binaries load (scripts/runtime-packages.sh).
RUN apt-get update -qq \
 && xargs -a /tmp/runtime-packages apt-get install -y -qq --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages \
 && useradd --system --uid 65532 --user-group --no-create-home --shell /usr/sbin/nologin pwru \
 && mkdir -p /run/netns
COPY --from=builder /out/pwru /out/pwru-agent /out/kubectl-pwru /usr/local/bin/
USER 65532:65532
CMD ["pwru-agent", "--help"]
