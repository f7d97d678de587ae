# labwire's pod image for `labwire k8s` (see README, "A lab on Kubernetes"): the labwire binary and
# its node init, on a small Debian (a shell for the pod's command, glibc for the binaries). Nodes'
# images are not in it: labwire pulls and unpacks them into the pod's own store.
#
#   cargo build --release
#   docker build --build-arg BIN_DIR=target/release -t labwire:0.1.0 .
#
# BASE may name any local image with glibc and /bin/sh (the tests use open-nos:latest, as no
# registry is reachable where they run).
ARG BASE=debian:bookworm-slim
FROM ${BASE}
ARG BIN_DIR=target/release
COPY ${BIN_DIR}/labwire ${BIN_DIR}/labwire-init /usr/local/bin/
