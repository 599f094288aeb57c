# srn-server and srnctl in a small Debian bookworm image (docs/DEPLOY.md).
#
#   docker build -t srn .
#   docker run -d --name srn -p 50051:50051 -p 9464:9464 -v srn-data:/var/lib/srn \
#       -e SRN_ADMIN_TOKEN=<at least 16 characters> srn
#
# Build arguments: SRN_ARCH_FLAGS (default "-mavx2;-mfma": the image needs AVX2 and FMA, like
# every default build), RUN_TESTS=1 builds everything and runs the test suite in the build stage.

############################################################################ build
FROM debian:bookworm AS build
# The one package list (deploy/install-deps.sh), the same the README and CI use.
COPY deploy/install-deps.sh /src/deploy/install-deps.sh
RUN /src/deploy/install-deps.sh build && rm -rf /var/lib/apt/lists/*

COPY . /src
WORKDIR /src
ARG SRN_ARCH_FLAGS="-mavx2;-mfma"
ARG RUN_TESTS=0
# The README's configure and build; without RUN_TESTS only the two shipped binaries.
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "-DSRN_ARCH_FLAGS=${SRN_ARCH_FLAGS}" \
    && if [ "$RUN_TESTS" = 1 ]; then \
         cmake --build build -j"$(nproc)" && ctest --test-dir build --output-on-failure -j"$(nproc)"; \
       else \
         cmake --build build -j"$(nproc)" --target srn-server srnctl; \
       fi \
    && strip build/server/srn-server build/client/srnctl

############################################################################ runtime
FROM debian:bookworm-slim AS runtime
# Only the shared libraries the binaries need (the script's "runtime" group).
COPY deploy/install-deps.sh /tmp/install-deps.sh
RUN /tmp/install-deps.sh runtime && rm -rf /var/lib/apt/lists/* /tmp/install-deps.sh

# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can check it (deploy/k8s uses 10001).
RUN groupadd --system --gid 10001 srn \
    && useradd --system --uid 10001 --gid srn --home-dir /var/lib/srn --no-create-home \
       --shell /usr/sbin/nologin srn \
    && mkdir -p /var/lib/srn/models /var/lib/srn/datasets \
    && chown -R srn:srn /var/lib/srn

COPY --from=build /src/build/server/srn-server /usr/local/bin/srn-server
COPY --from=build /src/build/client/srnctl /usr/local/bin/srnctl
# srn-server finds its bundled default model at <bin>/../share/srn/models/default.srnw.
COPY deploy/models/default.srnw /usr/local/share/srn/models/default.srnw

USER 10001:10001
WORKDIR /var/lib/srn
# The SQLite store (and its .lock: one server per volume), trained models and training data.
VOLUME ["/var/lib/srn"]
# gRPC, Prometheus /metrics.
EXPOSE 50051 9464

# Listening on all interfaces needs tokens: give $SRN_ADMIN_TOKEN / $SRN_READER_TOKEN or
# --tokens_file, or the server refuses to start (and says so); without tokens, both
# --allow_unauthenticated_remote and --metrics_public are needed. Arguments after the image name
# are added to these flags; a repeated flag overrides the one here.
ENTRYPOINT ["/usr/local/bin/srn-server", "--listen=0.0.0.0:50051", "--metrics_listen=0.0.0.0:9464", \
            "--store=/var/lib/srn/store.db", "--model_dir=/var/lib/srn/models", \
            "--data_dir=/var/lib/srn/datasets"]
# The gRPC health service (grpc.health.v1) of the whole server; NOT_SERVING while starting and
# while draining after SIGTERM. With TLS on, override it with srnctl's --tls_* flags.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/srnctl", "--server=127.0.0.1:50051", "--timeout=3", "health"]
# SIGTERM drains (health NOT_SERVING for --drain_seconds, then --grace_seconds for calls in
# flight): give `docker stop` more than their sum (default 5 + 10 s), e.g. `docker stop -t 20`.
STOPSIGNAL SIGTERM
